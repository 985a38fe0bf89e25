"""Block Kit renderers: pure functions from domain values to Slack messages and modals.

Built with `slack_sdk.models.blocks` so Slack's limits are checked when rendered; long texts are
clipped here first, so a service with 30 revisions and 6 containers still renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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

from bot.adapters.slack import action_ids
from bot.adapters.slack.payloads import ConfirmContext, RollbackButton
from bot.adapters.slack.render import (
    NOTHING_TO_ROLL_BACK_TO,
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
from bot.domain.rollback.models import Container, Deployment, Revision, RunInfo
from bot.domain.rollback.planning import rolled_back_from
from bot.domain.rollback.progress import Ending, Progress, ending
from bot.domain.rollback.views import ServiceView
from bot.domain.times import ago, format_duration

BUTTON_TEXT = 75
CONTEXT_TEXT = 2000
MAX_REVISIONS_SHOWN = 20
REASON_MAX = 500
KNOWN_BAD_BLOCK = "rollback:known-bad"  # block_id prefix of a known-bad version's button


def _images(containers: Sequence[Container], limit: int = 900) -> str:
    text = "\n".join(f"`{escape(c.name)}` {escape(c.image)}" for c in containers)
    return clip(text, limit)


def _health(deployment: Deployment) -> str:
    status = deployment.status
    desired = deployment.desired_replicas if deployment.desired_replicas is not None else 1
    parts = [f"{status.ready_replicas}/{desired} ready"]
    if status.updated_replicas != desired:
        parts.append(f"{status.updated_replicas}/{desired} updated")
    bad = [
        f"{c.type}={c.status} ({c.reason})"
        for c in status.conditions
        if c.status != "True" or c.reason == "ProgressDeadlineExceeded"
    ]
    if deployment.paused:
        parts.append("paused")
    return ", ".join(parts + bad)


def _deployed_now(view: ServiceView) -> list[Block]:
    deployment = view.history.deployment
    went_out = view.history.went_out
    cause = deployment.change_cause or "no change cause recorded"
    return [
        SectionBlock(
            fields=[
                MarkdownTextObject(
                    text=f"*Deployed now*\n{escape(clip(deployment.version, 200))} "
                    f"(revision {deployment.revision or '?'})"
                ),
                MarkdownTextObject(
                    text=f"*Went out*\n{slack_date(went_out)} ({ago(went_out, view.taken_at)})"
                ),
                MarkdownTextObject(text=f"*Health*\n{escape(_health(deployment))}"),
                MarkdownTextObject(text=f"*Change cause*\n{escape(clip(cause, 1500))}"),
            ]
        ),
        SectionBlock(text=MarkdownTextObject(text=_images(deployment.containers, 2900))),
    ]


def _notes(revision: Revision, current: Revision | None, known_bad: dict[str, str]) -> list[str]:
    notes = []
    if revision.version in known_bad:
        notes.append(f":warning: known bad: {who(known_bad[revision.version])} rolled back from it")
    if current is not None and revision.containers == current.containers:
        notes.append(":information_source: same images as now (only the pod config differs)")
    if current is not None and revision.version == current.version and not notes:
        notes.append(":information_source: same version as now")
    return notes


def _revision_text(revision: Revision, view: ServiceView, notes: list[str]) -> str:
    went_out = view.history.went_out_of(revision)
    head = (
        f"*{escape(clip(revision.version, 200))}* · revision {revision.number} · went out "
        f"{slack_date(went_out)} ({ago(went_out, view.taken_at)})"
    )
    cause = f"\n_{escape(clip(revision.change_cause, 500))}_" if revision.change_cause else ""
    images = _images(revision.containers, 1500)
    extra = ("\n" + "\n".join(notes)) if notes else ""
    return clip(f"{head}{cause}\n{images}{extra}", SECTION_TEXT)


def is_known_bad(view: ServiceView, revision: Revision) -> bool:
    """Whether going back to `revision` redeploys a version the bot has rolled back from: a
    roll-forward to a known-bad version, not a rollback to a good one."""
    return revision.version in rolled_back_from(view.history)


def offer_block_id(view: ServiceView, revision: Revision) -> str | None:
    """The block_id of the block holding `revision`'s button. Slack sends it back with the
    click, which is how the confirmation knows it redeploys a known-bad version."""
    return f"{KNOWN_BAD_BLOCK}:{revision.number}" if is_known_bad(view, revision) else None


def clicked_known_bad(block_id: str | None) -> bool:
    """Whether a click came from a button `offer_block_id` marked as known bad."""
    return block_id is not None and block_id.startswith(f"{KNOWN_BAD_BLOCK}:")


def rollback_button(
    view: ServiceView, revision: Revision, source: str = "command"
) -> ButtonElement:
    """The button: a red "Roll back to X"; for a version already rolled back from, "Redeploy X
    (known bad)" in the default style, so that it does not read as the way out."""
    deployment = view.history.deployment
    value = RollbackButton(
        service=view.service,
        target_revision=revision.number,
        target_replicaset=revision.replicaset,
        target_version=clip(revision.version, 128),
        from_version=clip(deployment.version, 128),
        revision=deployment.revision,
        generation=deployment.generation,
        source=source,
    )
    if is_known_bad(view, revision):
        label, style = f"Redeploy {clip(revision.version, 40)} (known bad)", None
    else:
        label, style = f"Roll back to {revision.version}", "danger"
    return ButtonElement(
        text=PlainTextObject(text=clip(label, BUTTON_TEXT)),
        action_id=action_ids.rollback_button_id(revision.number),
        value=value.encode(),
        style=style,
    )


def versions_message(view: ServiceView) -> Message:
    """`/rollback SERVICE`: the deployed version, the previous ones, a button for each."""
    history = view.history
    deployment = history.deployment
    current = history.current
    known_bad = rolled_back_from(history)
    previous = [r for r in history.revisions if not r.current][
        : min(view.limit, MAX_REVISIONS_SHOWN)
    ]
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(f"Roll back {view.service}?", 150))),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=clip(
                        f"`{escape(view.namespace)}/{escape(deployment.name)}` on "
                        f"`{escape(view.cluster)}`",
                        CONTEXT_TEXT,
                    )
                )
            ]
        ),
        *_deployed_now(view),
        DividerBlock(),
    ]
    if view.running is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=running_text(view.running))))
    if not previous:
        blocks.append(text_section(NOTHING_TO_ROLL_BACK_TO))
    for revision in previous:
        notes = _notes(revision, current, known_bad)
        blocks.append(
            SectionBlock(
                block_id=None if view.running else offer_block_id(view, revision),
                text=MarkdownTextObject(text=_revision_text(revision, view, notes)),
                accessory=None if view.running else rollback_button(view, revision),
            )
        )
    hidden = len([r for r in history.revisions if not r.current]) - len(previous)
    more = f" · {hidden} older revisions not shown" if hidden > 0 else ""
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Taken {slack_date(view.taken_at)} for {who(view.asked_by)}{more} · "
                    "a click asks to confirm and re-checks the cluster first"
                )
            ]
        )
    )
    text = f"{view.service}: {deployment.version} deployed; {len(previous)} earlier versions"
    return Message(text=fallback(text), blocks=render(blocks))


def running_text(run: RunInfo) -> str:
    return (
        f":rewind: {who(run.actor)} is rolling back to *{escape(run.to_version)}* "
        f"(revision {run.to_revision}) since {slack_date(run.started_at, '{time}')}: "
        "follow it in this thread"
    )


def locked_message(view: ServiceView, run: RunInfo) -> Message:
    """The versions message once a rollback started: no buttons inviting a second one."""
    return versions_message(view.with_run(run))


def status_message(view: ServiceView) -> Message:
    """`/rollback status SERVICE`: what runs now, without buttons."""
    deployment = view.history.deployment
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"*{escape(view.service)}* · `{escape(view.namespace)}/"
                f"{escape(deployment.name)}` on `{escape(view.cluster)}`"
            )
        ),
        *_deployed_now(view),
    ]
    return Message(
        text=fallback(f"{view.service}: {deployment.version} (revision {deployment.revision})"),
        blocks=render(blocks),
    )


def history_message(view: ServiceView) -> Message:
    """`/rollback history SERVICE`: every kept revision, newest first, without buttons."""
    lines = []
    for r in view.history.revisions[:MAX_REVISIONS_SHOWN]:
        mark = " ← deployed now" if r.current else ""
        cause = f" — {escape(clip(r.change_cause, 200))}" if r.change_cause else ""
        went_out = view.history.went_out_of(r)
        lines.append(
            f"`{r.number:>3}` *{escape(clip(r.version, 100))}* went out "
            f"{slack_date(went_out)} ({ago(went_out, view.taken_at)}){cause}{mark}"
        )
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"*{escape(view.service)}* revisions (`{escape(view.namespace)}/"
                f"{escape(view.history.deployment.name)}`)"
            )
        )
    ]
    chunk: list[str] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > SECTION_TEXT - 10:
            blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
    return Message(text=fallback(f"{view.service}: {len(lines)} revisions"), blocks=render(blocks))


@dataclass(frozen=True)
class HelpEntry:
    """A catalog service as `/rollback help` lists it for one person."""

    name: str
    where: str
    allowed: bool  # this person may roll it back
    anyone: bool  # everyone in the workspace may (no users or groups named)


def help_message(command: str, services: Sequence[HelpEntry], uncataloged: bool) -> Message:
    """Usage, and the services with whether this user may roll each back. `uncataloged`: this
    user may also name a Deployment outside the catalog (`namespace/deployment`)."""
    where = "a catalog name or `namespace/deployment`" if uncataloged else "a catalog name"
    usage = (
        f"*{command} SERVICE* — the deployed version and earlier ones, with rollback buttons\n"
        f"*{command} status SERVICE* — what runs now\n"
        f"*{command} history SERVICE* — every kept revision\n"
        f"*{command} help* — this message\n"
        f"SERVICE is {where}."
    )
    if services:
        listed = "\n".join(
            f"• *{escape(e.name)}* `{escape(e.where)}`"
            + ("" if e.allowed else " (view only for you)")
            + (" · :warning: anyone in the workspace may roll it back" if e.anyone else "")
            for e in services[:40]
        )
    else:
        listed = "No services are in the catalog."
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=usage)),
        SectionBlock(text=MarkdownTextObject(text=clip(f"*Services*\n{listed}", SECTION_TEXT))),
    ]
    return Message(text=fallback(f"How to use {command}"), blocks=render(blocks))


def notice(text: str, emoji: str = ":information_source:", *, plain: str | None = None) -> Message:
    """A one-section message: errors, refusals, denials. `plain`: the fallback in plain words
    when `text` holds mrkdwn (mentions, dates)."""
    return section_message(plain if plain is not None else text, f"{emoji} {text}")


def denied_message(service: str, reason: str) -> Message:
    said = f"{reason}. Nothing was changed; this attempt is recorded."
    return notice(
        f"You may not roll back *{escape(service)}*: {escape(said)}",
        ":no_entry:",
        plain=f"You may not roll back {service}: {said}",
    )


def stale_message(service: str, reason: str, *, refreshed: bool) -> Message:
    """Told in the thread of the message clicked: what changed since it was posted, and where
    the current state is (that message itself, refreshed, or a new `/rollback`)."""
    where = (
        "The message you clicked now shows what is deployed: choose again there."
        if refreshed
        else f"Ask `/rollback {escape(service)}` for what is deployed now."
    )
    body = (
        f":warning: Not rolled back: what you confirmed about *{escape(service)}* is out of "
        f"date: {escape(reason)}. Nothing was changed. {where}"
    )
    return section_message(f"Not rolled back, out of date: {reason}", body)


def already_running_message(run: RunInfo) -> Message:
    message = notice(
        f"{who(run.actor)} is already rolling *{escape(run.service)}* back from "
        f"{escape(run.from_version)} to *{escape(run.to_version)}* since "
        f"{slack_date(run.started_at, '{time}')}; nothing else was started.",
        ":hourglass_flowing_sand:",
        plain=f"is already rolling {run.service} back from {run.from_version} to "
        f"{run.to_version}; nothing else was started.",
    )
    # The notification names the person as Slack does too, not by a bare user id.
    return Message(text=f"{who(run.actor)} {message.text}", blocks=message.blocks)


def confirm_modal(
    context: ConfirmContext, reason_required: bool, *, known_bad: bool = False
) -> JsonDict:
    """The confirmation: one submit rolls back; the reason goes to the record. `known_bad`: the
    target is a version the bot rolled back from, and the modal says so."""
    button = context.button
    service, target = escape(button.service), escape(button.target_version)
    revisions = (
        f"from *{escape(button.from_version)}* (revision {button.revision or '?'}) to "
        f"*{target}* (revision {button.target_revision})"
    )
    if known_bad:
        ask = (
            f":warning: *{target}* is known bad: it was rolled back from before. This is not a "
            f"rollback to a good version but a roll-forward to a known-bad one.\n"
            f"Redeploy *{service}* {revisions}?"
        )
    else:
        ask = f"Roll *{service}* back {revisions}?"
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=clip(
                    f"{ask}\nThe whole channel will see it in the thread; the cluster is "
                    "checked again before anything changes.",
                    SECTION_TEXT,
                )
            )
        ),
        InputBlock(
            block_id=action_ids.REASON_BLOCK,
            label=PlainTextObject(text="Reason"),  # Slack itself marks an optional input
            element=PlainTextInputElement(
                action_id=action_ids.REASON_INPUT,
                placeholder=PlainTextObject(
                    text="e.g. why it is safe now" if known_bad else "e.g. 5xx spike after 2.14.0"
                ),
                max_length=REASON_MAX,
                multiline=False,
            ),
            optional=not reason_required,
        ),
    ]
    view = View(
        type="modal",
        callback_id=action_ids.CONFIRM_VIEW,
        title=PlainTextObject(text="Redeploy known bad" if known_bad else "Confirm rollback"),
        submit=PlainTextObject(text="Redeploy" if known_bad else "Roll back"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=context.encode(),
        blocks=blocks,
    )
    rendered: JsonDict = view.to_dict()
    return rendered


def started_message(
    run: RunInfo, from_revision: int | None, reason: str | None, namespace: str
) -> Message:
    why = f"\n>{escape(clip(reason, REASON_MAX))}" if reason else ""
    body = (
        f":rewind: {who(run.actor)} started rolling *{escape(run.service)}* "
        f"(`{escape(namespace)}`) back from *{escape(run.from_version)}* (revision "
        f"{from_revision or '?'}) to *{escape(run.to_version)}* (revision {run.to_revision})."
        f"{why}"
    )
    return section_message(f"{run.service}: rolling back to {run.to_version}", body)


_ENDED = {  # emoji, what happened to the version, and how the time reads
    Ending.SUCCEEDED: (":white_check_mark:", "Rolled out {version}", "in"),
    Ending.FAILED: (":x:", "Rollout of {version} failed", "after"),
    Ending.UNKNOWN: (":grey_question:", "Lost sight of the rollout of {version}", "after"),
}


def progress_message(
    progress: Progress, elapsed: float, to_version: str, ended: Ending | None = None
) -> Message:
    """The progress message while the rollout runs; once `ended`, its final state (the outcome
    itself is told in a message of its own below it)."""
    counts = (
        f"{progress.updated}/{progress.desired} updated · {progress.ready}/{progress.desired} "
        f"ready · {progress.available}/{progress.desired} available"
    )
    took = format_duration(elapsed)
    if ended is None:
        emoji, what, when = ":hourglass_flowing_sand:", "Rolling out {version}", ""
    else:
        emoji, what, when = _ENDED[ended]
    head = what.format(version=f"*{escape(to_version)}*")
    timing = f"{when} {took}" if when else took
    plain = what.format(version=to_version) + (f" {timing}" if when else "")
    return Message(
        text=fallback(f"{plain}: {progress.counts}"),
        blocks=render(
            [
                SectionBlock(
                    text=MarkdownTextObject(
                        text=f"{emoji} {head} {_bar(progress)}\n{counts} · {timing}"
                    )
                ),
                ContextBlock(
                    elements=[MarkdownTextObject(text=escape(clip(progress.message, 1000)))]
                ),
            ]
        ),
    )


def _bar(progress: Progress, width: int = 10) -> str:
    """kubectl's waits (updated, old replicas gone, updated available) as a bar, full only
    once the rollout is complete."""
    done, of = progress.steps
    filled = width * done // of
    return "▰" * filled + "▱" * (width - filled)


def outcome_message(
    service: str,
    to_version: str,
    namespace: str,
    deployment: str,
    last: Progress | None,
    elapsed: float,
    error: str | None = None,
    *,
    unknown: bool = False,
) -> Message:
    """The last word in the thread: done, failed (with what to do next), or not known because
    the bot lost sight of the rollout (with how to see it)."""
    took = format_duration(elapsed)
    verdict = ending(last, error, unknown=unknown)
    if verdict is Ending.SUCCEEDED and last is not None:
        body = (
            f":white_check_mark: *{escape(service)}* rolled back to *{escape(to_version)}* in "
            f"{took} ({last.ready}/{last.desired} ready)."
        )
        return section_message(f"{service} rolled back to {to_version} in {took}", body)
    counts = (
        f" ({last.updated}/{last.desired} updated to {escape(to_version)}, {last.ready} pods ready)"
        if last
        else ""
    )
    cause = error or (last.message if last else "the rollout ended without a verdict")
    if verdict is Ending.UNKNOWN:
        where = f"at {last.updated}/{last.desired} updated" if last else "before any progress"
        body = (
            f":grey_question: Lost sight of the rollback of *{escape(service)}* to "
            f"*{escape(to_version)}* {where}, after {took}: {escape(clip(cause, 1500))}.\n"
            f"The rollout itself may well go on: check with `kubectl -n {namespace} rollout "
            f"status deployment/{deployment}`."
        )
        return section_message(
            f"Lost sight of the rollback of {service} to {to_version}: {clip(cause, 200)}", body
        )
    next_steps = (
        f"Next: look at the pods (`kubectl -n {namespace} get pods`, "
        f"`kubectl -n {namespace} describe deployment {deployment}`), then roll forward or to "
        "another version with `/rollback` again."
    )
    body = (
        f":x: Rollback of *{escape(service)}* to *{escape(to_version)}* failed after {took}: "
        f"{escape(clip(cause, 1500))}{counts}.\n{next_steps}"
    )
    return section_message(
        f"Rollback of {service} to {to_version} failed: {clip(cause, 200)}", body
    )


# -- a rollback told by more than one replica ------------------------------------------------
REPLICA_TEXT = 100


def _replica(name: str) -> str:
    return f"`{escape(clip(name, REPLICA_TEXT))}`"


def picked_up_message(run: RunInfo, previous: str, namespace: str) -> Message:
    """The first word of a replica finishing the story of a rollback another one started."""
    body = (
        f":arrows_counterclockwise: Picked up after replica {_replica(previous)} stopped: "
        f"following the rollback of *{escape(run.service)}* (`{escape(namespace)}`) from "
        f"*{escape(run.from_version)}* to *{escape(run.to_version)}* (revision "
        f"{run.to_revision}) that {who(run.actor)} started "
        f"{slack_date(run.started_at, '{time}')}."
    )
    return section_message(
        f"Picked up after replica {clip(previous, REPLICA_TEXT)} stopped: following the "
        f"rollback of {run.service} to {run.to_version}",
        body,
    )


def handed_over_message(run: RunInfo, me: str) -> Message:
    body = (
        f":pause_button: Replica {_replica(me)} is stopping: another replica picks up "
        f"following the rollback of *{escape(run.service)}* to *{escape(run.to_version)}* "
        "and tells its end here."
    )
    return section_message(f"Replica {clip(me, REPLICA_TEXT)} is stopping: handed over", body)


def not_picked_up_message(run: RunInfo, previous: str, detail: str, *, sent: bool) -> Message:
    """A picked-up run with nothing to follow: never sent (nothing changed), or moved on."""
    if not sent:
        body = (
            f":warning: The rollback of *{escape(run.service)}* to *{escape(run.to_version)}* "
            f"that {who(run.actor)} confirmed was not sent: replica {_replica(previous)} "
            f"stopped first. {escape(clip(detail, 500))}. Ask again with `/rollback` if it is "
            "still needed."
        )
        return section_message(
            f"Not rolled back: {run.service} to {run.to_version} was never sent", body
        )
    body = (
        f":grey_question: Replica {_replica(previous)} stopped while rolling "
        f"*{escape(run.service)}* back to *{escape(run.to_version)}*, and "
        f"{escape(clip(detail, 500))}. Look before acting again."
    )
    return section_message(f"Lost sight of the rollback of {run.service} to {run.to_version}", body)
