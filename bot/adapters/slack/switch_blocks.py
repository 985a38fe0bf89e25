"""The blue-green switch's Block Kit: pure functions from the domain's values to Slack messages
and the confirmation modal. Everything from outside (names and versions from the cluster and the
catalog, refusals quoting a selector, reasons) is escaped and clipped here.

- `switch_message`: which colour is live (the Service's selector), what each colour runs, its
  replicas and endpoints, whether the idle one is scaled down; a button on each idle colour
  ("Switch back to blue", or "Scale up blue and switch" when it is scaled down), none while a
  switch runs;
- `confirm_modal`: what the switch will do, step by step, and the reason;
- the thread: `started_message`, `scaling_message`, `readiness_message` (one message edited as
  the colour comes up), `outcome_message` (with the switch's own time and the total).
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.adapters.slack.render import (
    SECTION_TEXT,
    JsonDict,
    Message,
    clip,
    escape,
    fallback,
    render,
    section_message,
    slack_date,
    text_section,
    who,
)
from bot.adapters.slack.switch_payloads import (
    SWITCH_REASON_BLOCK,
    SWITCH_REASON_INPUT,
    SWITCH_VIEW,
    SwitchButton,
    SwitchContext,
    switch_button_id,
)
from bot.domain.rollback.blue_green import ColorState, SwitchPlan, SwitchRefused
from bot.domain.rollback.models import RunInfo
from bot.domain.rollback.switches import SwitchEnding, SwitchOutcome, SwitchView, version_mark
from bot.domain.times import format_duration

BUTTON_TEXT = 75
CONTEXT_TEXT = 2000
REASON_MAX = 500
NAME = 120  # a name or a version as a message shows it


def _e(text: str, limit: int = NAME) -> str:
    """Outside text for mrkdwn: clipped, then escaped."""
    return escape(clip(text, limit))


def _code(text: str, limit: int = NAME) -> str:
    """A name as code. Backticks would end it early: shown as quotes."""
    quoted = text.replace("`", "'")
    return f"`{_e(quoted, limit)}`"


def _replicas(state: ColorState) -> str:
    if not state.found:
        return "its Deployment was not found"
    if state.scaled_down:
        return "scaled down (0 replicas)"
    return (
        f"{state.ready_replicas}/{state.desired_replicas} ready, "
        f"{state.available_replicas} available"
        + ("" if state.available else " · not available yet")
    )


def _endpoints(state: ColorState, view: SwitchView) -> str:
    if not view.endpoints.complete:
        return "endpoints: the Service's EndpointSlices could not all be read"
    if not state.endpoints:
        return "no endpoints in the Service"
    return f"{state.ready_endpoints}/{state.endpoints} endpoints ready in the Service"


def _color_text(state: ColorState, view: SwitchView) -> str:
    live = view.routing.live_color == state.color
    mark = ":large_green_circle:" if live else ":white_circle:"
    role = "live" if live else "idle"
    version = f" · {_e(state.version)}" if state.version else ""
    lines = [
        f"{mark} *{_e(state.color)}* ({role}) · {_code(state.deployment)}{version}",
        _replicas(state) + f" · {_endpoints(state, view)}",
    ]
    if not live and state.found and not state.scaled_down:
        lines.append(
            "still scaled up: traffic can switch to it at once"
            if state.available
            else "still scaled up, not available: it would be waited for"
        )
    offer = view.offer(state.color)
    if isinstance(offer, SwitchRefused) and view.routing.live_color is not None:
        lines.append(f":no_entry_sign: {_e(offer.reason, 1500)}")
    return clip("\n".join(lines), SECTION_TEXT)


def switch_label(plan: SwitchPlan) -> str:
    """The button: "Scale up blue and switch" when it must be scaled up first, else "Switch
    back to blue"."""
    color = clip(plan.to_color, 30)
    text = f"Scale up {color} and switch" if plan.needs_scale_up else f"Switch back to {color}"
    return clip(text, BUTTON_TEXT)


def switch_button(view: SwitchView, plan: SwitchPlan) -> ButtonElement:
    shown = next((c for c in view.colors if c.color == plan.to_color), None)
    value = SwitchButton(
        service=clip(view.service, 300),
        to_color=plan.to_color,
        live=view.routing.live_color,
        version=version_mark(shown.version) if shown is not None and shown.version else None,
    )
    return ButtonElement(
        text=PlainTextObject(text=switch_label(plan)),
        action_id=switch_button_id(plan.to_color),
        value=value.encode(),
        style="danger",
    )


def running_text(run: RunInfo) -> str:
    return (
        f":twisted_rightwards_arrows: {who(run.actor)} is switching to *{_e(run.to_version)}* "
        f"since {slack_date(run.started_at, '{time}')}: follow it in this thread"
    )


def switch_message(view: SwitchView, *, buttons: bool = True, note: str | None = None) -> Message:
    """`/rollback SERVICE` of a blue-green service: the live colour, each colour's state, a
    button on each colour it may switch to (none while a switch runs, or with `buttons`
    False: `/rollback status`). `note`: one more line (plain words, escaped here)."""
    routing = view.routing
    spec = view.spec
    live = routing.live_color
    if live is not None:
        selector = f"{spec.selector_key}={live}"
        head = f"*Live: {_e(live)}* · Service {_code(spec.service)} selects {_code(selector, 400)}"
    else:
        why = routing.reason or "the Service routes to no known colour"
        head = f":warning: *No live colour*: {_e(why, 1500)}"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(f"Switch {view.service} back?", 150))),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=clip(
                        f"blue-green · {_code(view.namespace)}/{_code(spec.service)} on "
                        f"{_code(view.cluster, 300)}",
                        CONTEXT_TEXT,
                    )
                )
            ]
        ),
        text_section(head),
        DividerBlock(),
    ]
    if view.running is not None:
        blocks.append(text_section(running_text(view.running)))
    for state in view.colors:
        offer = view.offer(state.color)
        accessory = (
            switch_button(view, offer)
            if buttons and view.running is None and isinstance(offer, SwitchPlan)
            else None
        )
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=_color_text(state, view)), accessory=accessory
            )
        )
    if note:
        blocks.append(text_section(_e(note, 1500)))
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Taken {slack_date(view.taken_at)} for {who(view.asked_by)}"
                    + (
                        " · a click asks to confirm and re-checks the cluster first"
                        if buttons
                        else ""
                    )
                )
            ]
        )
    )
    where = f"{live} is live" if live else "no colour is live"
    return Message(text=fallback(f"{view.service}: {where}"), blocks=render(blocks))


def status_message(view: SwitchView) -> Message:
    """`/rollback status SERVICE` of a blue-green service: the same, without buttons."""
    return switch_message(view, buttons=False)


def history_message(view: SwitchView) -> Message:
    """`/rollback history SERVICE`: a blue-green service's rollback is a switch of colours, so
    its state is what is shown, with where each colour's own revisions are."""
    names = ", ".join(f"{c.deployment}" for c in view.colors)
    note = (
        f"{view.service} is a blue-green service: rolling it back switches its Service between "
        f"colours. Each colour's own revisions are its Deployment's ({names}): "
        "`kubectl rollout history deployment/NAME`."
    )
    return switch_message(view, buttons=False, note=note)


def already_switching_message(run: RunInfo) -> Message:
    body = (
        f":hourglass_flowing_sand: {who(run.actor)} is already switching *{_e(run.service)}* "
        f"to *{_e(run.to_version)}* since {slack_date(run.started_at, '{time}')}; nothing "
        "else was started."
    )
    return section_message(
        f"already switching {run.service} to {run.to_version}; nothing else was started.", body
    )


def _colour(color: str, state: ColorState | None, deployment: str) -> str:
    """ "*blue* (4.1.0, `web-blue`)"."""
    version = f"{_e(state.version)}, " if state is not None and state.version else ""
    return f"*{_e(color)}* ({version}{_code(deployment)})"


def confirm_modal(
    context: SwitchContext,
    plan: SwitchPlan,
    view: SwitchView,
    *,
    reason_required: bool,
    ready_timeout: float,
) -> JsonDict:
    """What the switch will do, step by step; one submit switches. The reason goes to the
    record (required when the catalog says so)."""
    target = view.state(plan.to_color)
    to = _colour(plan.to_color, target, plan.to_deployment)
    from_ = _colour(plan.from_color, view.state(plan.from_color), plan.from_deployment)
    steps = []
    if plan.needs_scale_up and target is not None:
        steps.append(
            f"Scale {_code(plan.to_deployment)} up from {target.desired_replicas} to "
            f"{plan.scale_to} replicas, and wait until they are available (up to "
            f"{format_duration(ready_timeout)}; the Service is not touched before)."
        )
    else:
        steps.append(
            f"Check that {_e(plan.to_color)} is available with {plan.wait_for_replicas} "
            "ready replicas."
        )
    selector = f"{view.spec.selector_key}={plan.to_color}"
    steps.append(
        f"Point Service {_code(plan.service)}'s selector at {_code(selector, 400)}: one patch, "
        "refused if the Service changed since it was read."
    )
    steps.append(
        f"Wait until its EndpointSlices show only {_e(plan.to_color)}'s pods, and tell the time."
    )
    numbered = "\n".join(f"{n}. {text}" for n, text in enumerate(steps, 1))
    ask = (
        f"Switch *{_e(view.service)}* from {from_} back to {to}?\n{numbered}\n"
        f"{_e(plan.from_color)} keeps running: switching again is quick. The whole channel "
        "will see it in the thread; the cluster is checked again before anything changes."
    )
    blocks: list[Block] = [
        text_section(ask),
        InputBlock(
            block_id=SWITCH_REASON_BLOCK,
            label=PlainTextObject(text="Reason"),
            element=PlainTextInputElement(
                action_id=SWITCH_REASON_INPUT,
                placeholder=PlainTextObject(text="e.g. 5xx spike after the switch to green"),
                max_length=REASON_MAX,
                multiline=False,
            ),
            optional=not reason_required,
        ),
    ]
    modal = View(
        type="modal",
        callback_id=SWITCH_VIEW,
        title=PlainTextObject(text="Confirm switch"),
        submit=PlainTextObject(text="Scale up and switch" if plan.needs_scale_up else "Switch"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=context.encode(),
        blocks=blocks,
    )
    rendered: JsonDict = modal.to_dict()
    return rendered


def started_message(run: RunInfo, plan: SwitchPlan, reason: str | None, namespace: str) -> Message:
    why = f"\n>{_e(reason, REASON_MAX)}" if reason else ""
    body = (
        f":twisted_rightwards_arrows: {who(run.actor)} started switching *{_e(run.service)}* "
        f"({_code(namespace)}) from *{_e(run.from_version)}* back to *{_e(run.to_version)}*: "
        f"Service {_code(plan.service)} → {_code(plan.to_deployment)}.{why}"
    )
    return section_message(f"{run.service}: switching to {run.to_version}", body)


def scaling_message(plan: SwitchPlan, current: ColorState) -> Message:
    body = (
        f":arrow_up: Scaling up *{_e(plan.to_color)}* ({_code(plan.to_deployment)}) from "
        f"{current.desired_replicas} to {plan.scale_to} replicas first; the Service is switched "
        "once they are ready."
    )
    return section_message(f"Scaling up {plan.to_color} to {plan.scale_to} replicas first", body)


def readiness_message(
    plan: SwitchPlan, state: ColorState, elapsed: float, *, ready: bool | None = None
) -> Message:
    """The target colour coming up (`ready` None), ready (True), or not in time (False)."""
    color = _e(plan.to_color)
    counts = (
        f"{state.ready_replicas}/{plan.wait_for_replicas} ready · "
        f"{state.available_replicas}/{plan.wait_for_replicas} available"
    )
    took = format_duration(elapsed)
    if ready is None:
        text = f":hourglass_flowing_sand: Waiting for *{color}* to be ready: {counts} · {took}"
        plain = f"Waiting for {plan.to_color}: {counts}"
    elif ready:
        text = f":white_check_mark: *{color}* is ready: {counts} · after {took}"
        plain = f"{plan.to_color} is ready: {counts}"
    else:
        text = f":x: *{color}* did not become ready: {counts} · after {took}"
        plain = f"{plan.to_color} did not become ready: {counts}"
    return section_message(plain, text)


_ENDINGS = {
    SwitchEnding.NOT_READY: ":x:",
    SwitchEnding.NOT_CONVERGED: ":warning:",
    SwitchEnding.REFUSED: ":no_entry_sign:",
    SwitchEnding.FAILED: ":x:",
    SwitchEnding.ERROR: ":x:",
    SwitchEnding.STOPPED: ":grey_question:",
}


def outcome_message(outcome: SwitchOutcome) -> Message:
    """The end, in the thread: switched (with the switch's own time, from the Service's patch to
    the slices showing only the target's pods, and the total), or why not and what is left."""
    plan = outcome.plan
    color, total = _e(plan.to_color), format_duration(outcome.total_seconds)
    if outcome.succeeded:
        took = outcome.switch_time
        shown = outcome.endpoints.message if outcome.endpoints is not None else ""
        scaled = "scaling up included" if outcome.scaled_up else "readiness checked first"
        body = (
            f":white_check_mark: Switched *{_e(outcome.service)}* to *{color}* in *{took}*: "
            f"EndpointSlices show only {color}'s pods ({_e(shown, 300)}). {total} in all, "
            f"{scaled}.\n{_e(plan.from_color)} ({_code(plan.from_deployment)}) keeps running: "
            "switching back to it is quick."
        )
        plain = (
            f"Switched {outcome.service} to {plan.to_color} in {took}: EndpointSlices show only "
            f"{plan.to_color}'s pods ({total} in all)"
        )
        return section_message(plain, body)
    emoji = _ENDINGS[outcome.ending]
    head = (
        "Switched, but not seen taking effect"
        if outcome.ending is SwitchEnding.NOT_CONVERGED
        else "Not switched"
        if not outcome.service_patched
        else "Switch interrupted"
    )
    body = (
        f"{emoji} {head} after {total}: {_e(outcome.error or outcome.ending.value, 1500)}.\n"
        f"{_e(outcome.left, 800)}"
    )
    plain = f"{outcome.service}: {head.lower()}: {outcome.error or outcome.ending.value}"
    return section_message(plain, body)
