"""Block Kit renderers: pure functions from domain values to Slack messages and modals.

Built with `slack_sdk.models.blocks` so Slack's limits are checked when rendered; long texts are
clipped here first, so a service with 30 revisions and 6 containers still renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.adapters.slack import action_ids, gitops_blocks
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
from bot.domain.audit import AuditRecord, Step
from bot.domain.errors import RollbackRefused
from bot.domain.rollback import argo_rollouts
from bot.domain.rollback.approvals import ApprovalRequest
from bot.domain.rollback.approvals import State as ApprovalState
from bot.domain.rollback.gitops import GitopsNote
from bot.domain.rollback.migrations import (
    MigrationBlock,
    history_limit_note,
    migration_block,
    migration_note,
    mutable_images_note,
)
from bot.domain.rollback.models import (
    Container,
    Deployment,
    Revision,
    RunInfo,
    Target,
    WorkloadKind,
)
from bot.domain.rollback.planning import rolled_back_from
from bot.domain.rollback.progress import Ending, Progress, ending
from bot.domain.rollback.template_diff import ContainerPreview
from bot.domain.rollback.views import ServiceView
from bot.domain.rollback.workload_undo import strategy_notes
from bot.domain.times import ago, format_duration, span

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


def _button_value(view: ServiceView, revision: Revision, source: str) -> RollbackButton:
    """What a button towards `revision` carries: the target and the state it was offered in."""
    deployment = view.history.deployment
    return RollbackButton(
        service=view.service,
        target_revision=revision.number,
        target_replicaset=revision.replicaset,
        target_version=clip(revision.version, 128),
        from_version=clip(deployment.version, 128),
        revision=deployment.revision,
        generation=deployment.generation,
        source=source,
    )


def rollback_button(
    view: ServiceView, revision: Revision, source: str = "command"
) -> ButtonElement:
    """The button: a red "Roll back to X"; for a version already rolled back from, "Redeploy X
    (known bad)" in the default style, so that it does not read as the way out."""
    value = _button_value(view, revision, source)
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
                        f"{workload_place(view.namespace, deployment)} on `{escape(view.cluster)}`",
                        CONTEXT_TEXT,
                    )
                )
            ]
        ),
        *_deployed_now(view),
        *_deployment_notes(deployment),
        *_rollout_blocks(view),
        DividerBlock(),
    ]
    if view.running is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=running_text(view.running))))
    # The catalog refuses rollbacks its GitOps would revert: the note says what to do instead.
    gitops_refused = view.gitops is not None and view.gitops.action == "refuse"
    if view.gitops is not None:
        blocks.append(text_section(gitops_blocks.versions_note(view.gitops, view.service)))
    if not previous:
        blocks.append(text_section(NOTHING_TO_ROLL_BACK_TO))
    for revision in previous:
        guard = migration_block(history, revision)
        notes = _guard_notes(revision, guard) + _notes(revision, current, known_bad)
        offer = override_button(view, revision) if guard else rollback_button(view, revision)
        blocks.append(
            SectionBlock(
                block_id=None if view.running or gitops_refused else offer_block_id(view, revision),
                text=MarkdownTextObject(text=_revision_text(revision, view, notes)),
                accessory=None if view.running or gitops_refused else offer,
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
                text=f"*{escape(view.service)}* · {workload_place(view.namespace, deployment)} "
                f"on `{escape(view.cluster)}`"
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
                text=f"*{escape(view.service)}* revisions "
                f"({workload_place(view.namespace, view.history.deployment)})"
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
    user may also name a workload outside the catalog (`namespace/deployment`,
    `statefulset/namespace/name`, `daemonset/namespace/name`)."""
    where = (
        "a catalog name, `namespace/deployment`, or `statefulset/namespace/name` and "
        "`daemonset/namespace/name`"
        if uncataloged
        else "a catalog name"
    )
    usage = (
        f"*{command} SERVICE* — the deployed version and earlier ones, with rollback buttons\n"
        f"*{command} status SERVICE* — what runs now\n"
        f"*{command} history SERVICE* — every kept revision\n"
        f"*{command} audit SERVICE* [--since 7d] — its audit trail, newest first, for you only\n"
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
    context: ConfirmContext,
    reason_required: bool,
    *,
    known_bad: bool = False,
    approvals: int = 0,
    changes: Sequence[ContainerPreview] | None = None,
    changes_unread: bool = False,
    gitops: GitopsNote | None = None,
) -> JsonDict:
    """The confirmation: one submit rolls back; the reason goes to the record. `known_bad`: the
    target is a version the bot rolled back from, and the modal says so. `approvals`: the
    submit asks that many approvers instead, unless break glass is ticked (with a reason)."""
    button = context.button
    service, target = escape(button.service), escape(button.target_version)
    revisions = (
        f"from *{escape(button.from_version)}* (revision {button.revision or '?'}) to "
        f"*{target}* (revision {button.target_revision})"
    )
    if button.abort:
        ask = (
            f"Abort the update of *{service}* to *{escape(button.from_version)}*? Its traffic "
            f"goes back to the stable *{target}* at once (the canary scaled to 0), as "
            "`kubectl argo rollouts abort` does; the Rollout then stays Degraded until it is "
            "deployed again or undone."
        )
    elif known_bad:
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
        *preview_blocks(changes, unread=changes_unread),
        *_gitops_blocks(gitops),
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
    if approvals:
        blocks += _approval_blocks(approvals)
    submit = "Abort" if button.abort else "Redeploy" if known_bad else "Roll back"
    if gitops is not None and gitops.action == "warn":
        submit = f"{submit} anyway"  # the note says GitOps will revert it
    title = (
        "Abort the update"
        if button.abort
        else "Redeploy known bad"
        if known_bad
        else "Confirm rollback"
    )
    view = View(
        type="modal",
        callback_id=action_ids.CONFIRM_VIEW,
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text="Ask for approval" if approvals else submit),
        close=PlainTextObject(text="Cancel"),
        private_metadata=context.encode(),
        blocks=blocks,
    )
    rendered: JsonDict = view.to_dict()
    return rendered


def _gitops_blocks(gitops: GitopsNote | None) -> list[Block]:
    note = gitops_blocks.modal_note(gitops) if gitops is not None else None
    return [text_section(note)] if note is not None else []


def started_message(
    run: RunInfo, from_revision: int | None, reason: str | None, namespace: str
) -> Message:
    why = f"\n>{escape(clip(reason, REASON_MAX))}" if reason else ""
    if run.abort:
        body = (
            f":octagonal_sign: {who(run.actor)} aborted the update of *{escape(run.service)}* "
            f"(`{escape(namespace)}`) to *{escape(run.from_version)}*: its traffic goes back to "
            f"the stable *{escape(run.to_version)}* (revision {run.to_revision}).{why}"
        )
        return section_message(f"{run.service}: aborting, back to {run.to_version}", body)
    body = (
        f":rewind: {who(run.actor)} started rolling *{escape(run.service)}* "
        f"(`{escape(namespace)}`) back from *{escape(run.from_version)}* (revision "
        f"{from_revision or '?'}) to *{escape(run.to_version)}* (revision {run.to_revision})."
        f"{why}"
    )
    return section_message(f"{run.service}: rolling back to {run.to_version}", body)


_ENDED = {  # emoji, what happened to the version, and how the time reads
    Ending.SUCCEEDED: (":white_check_mark:", "Rolled out {version}", "in"),
    Ending.PODS_TO_DELETE: (":warning:", "Template back at {version}; pods to delete", "in"),
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
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT,
) -> Message:
    """The last word in the thread: done, the template back with the pods to delete (OnDelete),
    failed (with what to do next), or not known because the bot lost sight of the rollout (with
    how to see it)."""
    took = format_duration(elapsed)
    verdict = ending(last, error, unknown=unknown)
    target = Target(namespace, deployment, kind=kind)
    if verdict is Ending.PODS_TO_DELETE:
        body = (
            f":warning: *{escape(service)}*'s {kind.noun} template is back at "
            f"*{escape(to_version)}* (in {took}), but its update strategy is *OnDelete*: "
            "Kubernetes replaces no pod, so every pod keeps the version it runs until it is "
            f"deleted. Delete them to bring {escape(to_version)} up, one at a time for a "
            f"StatefulSet (`kubectl -n {namespace} delete pod &lt;pod&gt;`), and check with "
            f"`kubectl -n {namespace} get pods -L controller-revision-hash`."
        )
        return section_message(
            f"{service}: template rolled back to {to_version}; delete the pods to take it", body
        )
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
            f"The rollout itself may well go on: check with `{target.status_command}`."
            f"{_stuck_pod_hint(kind, namespace, last)}"
        )
        return section_message(
            f"Lost sight of the rollback of {service} to {to_version}: {clip(cause, 200)}", body
        )
    next_steps = (
        f"Next: look at the pods (`kubectl -n {namespace} get pods`, "
        f"`kubectl -n {namespace} describe {kind.kubectl} {deployment}`), then roll forward or to "
        "another version with `/rollback` again."
    )
    body = (
        f":x: Rollback of *{escape(service)}* to *{escape(to_version)}* failed after {took}: "
        f"{escape(clip(cause, 1500))}{counts}.\n{next_steps}"
        f"{_stuck_pod_hint(kind, namespace, last)}"
    )
    return section_message(
        f"Rollback of {service} to {to_version} failed: {clip(cause, 200)}", body
    )


def _stuck_pod_hint(kind: WorkloadKind, namespace: str, last: Progress | None) -> str:
    """A StatefulSet short of ready pods replaces no more of them: a pod of the bad version that
    never becomes ready holds the rollback until it is deleted (Kubernetes' forced rollback)."""
    if kind is not WorkloadKind.STATEFULSET or last is None or last.ready >= last.desired:
        return ""
    return (
        "\nA StatefulSet replaces its pods one at a time, each once the one before is ready: a "
        "pod of the bad version that never becomes ready stops it here. Delete that pod "
        f"(`kubectl -n {namespace} get pods -L controller-revision-hash`, then "
        f"`kubectl -n {namespace} delete pod &lt;pod&gt;`); Kubernetes recreates it at the "
        "rolled-back revision and the rollout goes on."
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


# -- the two-person rule ------------------------------------------------------------------------


def _approval_blocks(approvals: int) -> list[Block]:
    needed = "one approver" if approvals == 1 else f"{approvals} approvers"
    return [
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f":busts_in_silhouette: This service needs {needed} other than you: "
                    "the request goes to the thread, and the rollback starts at the last approval."
                )
            ]
        ),
        InputBlock(
            block_id=action_ids.BREAK_GLASS_BLOCK,
            label=PlainTextObject(text="Break glass"),
            optional=True,
            element=CheckboxesElement(
                action_id=action_ids.BREAK_GLASS_INPUT,
                options=[
                    Option(
                        value="break-glass",
                        text=MarkdownTextObject(text="*Skip approval now*"),
                        description=PlainTextObject(
                            text="Only for the catalog's break-glass people, with a reason; "
                            "announced to the approvers and recorded."
                        ),
                    )
                ],
            ),
        ),
    ]


def _people(ids: Sequence[str]) -> str:
    """Slack ids as mentions: users as <@U…>, user groups as <!subteam^S…>."""
    mentions = [f"<!subteam^{i}>" if i.startswith("S") else who(i) for i in ids]
    return ", ".join(mentions) if mentions else "anyone who may roll it back"


def approval_request_message(
    request: ApprovalRequest, approvers: Sequence[str], *, at: datetime
) -> Message:
    """The request in the thread: who asked, from → to, why, what changes, and its state, with
    Approve / Reject while it waits."""
    head = (
        f"{who(request.requester)} asks to roll *{escape(request.service)}* back from "
        f"*{escape(request.from_version)}* to *{escape(request.to_version)}* (revision "
        f"{request.target_revision})."
    )
    why = f"\n>{escape(clip(request.reason, REASON_MAX))}" if request.reason else ""
    changes = ""
    if request.changes:
        shown = [escape(clip(c, 200)) for c in request.changes[:10]]
        more = len(request.changes) - len(shown)
        changes = "\nChanges: " + "; ".join(shown) + (f" (and {more} more)" if more else "")
    state = _approval_state(request, approvers, at)
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(text=clip(f":raised_hand: {head}{why}{changes}", SECTION_TEXT))
        ),
        ContextBlock(elements=[MarkdownTextObject(text=clip(state, CONTEXT_TEXT))]),
    ]
    if request.state is ApprovalState.PENDING:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        action_id=action_ids.APPROVE_BUTTON,
                        text=PlainTextObject(text="Approve"),
                        value=request.id,
                        style="primary",
                    ),
                    ButtonElement(
                        action_id=action_ids.REJECT_BUTTON,
                        text=PlainTextObject(text="Reject"),
                        value=request.id,
                        style="danger",
                    ),
                ]
            )
        )
    text = f"{request.service}: rollback to {request.to_version} asked, {request.state}"
    return Message(text=fallback(text), blocks=render(blocks))


def _approval_state(request: ApprovalRequest, approvers: Sequence[str], at: datetime) -> str:
    done = ", ".join(who(a) for a in request.approvers)
    got = f" Approved by {done}." if done else ""
    if request.state is ApprovalState.PENDING:
        tried = f"{escape(clip(request.outcome, 500))} " if request.outcome else ""
        return (
            f"{tried}:hourglass: Waiting for {request.missing} more approval"
            f"{'s' if request.missing != 1 else ''} from {_people(approvers)} (not "
            f"{who(request.requester)}), until {slack_date(request.expires_at, '{time}')} "
            f"({span(request.expires_at - at)} left).{got}"
        )
    if request.state is ApprovalState.APPROVED:
        outcome = escape(clip(request.outcome or "rolling back", 500))
        return f":white_check_mark: Approved.{got} {outcome}"
    if request.state is ApprovalState.REJECTED:
        by = who(request.decided_by) if request.decided_by else "someone"
        return f":no_entry: Rejected by {by}: nothing was rolled back.{got}"
    return (
        f":hourglass: Expired at {slack_date(request.expires_at, '{time}')} without enough "
        f"approvals: nothing was rolled back.{got} Ask again with `/rollback` if it is still "
        "needed."
    )


def break_glass_message(
    requester: str, service: str, to_version: str, reason: str, approvers: Sequence[str]
) -> Message:
    body = (
        f":rotating_light: {who(requester)} broke glass: rolling *{escape(service)}* back to "
        f"*{escape(to_version)}* without approval. Reason: {escape(clip(reason, REASON_MAX))}\n"
        f"Approvers, for your information: {_people(approvers)}."
    )
    return section_message(
        f"Break glass: {service} rolled back to {to_version} without approval", body
    )


# -- the guards: the migration guard, what a rollback changes, the artifacts kept -------------
PREVIEW_TEXT = SECTION_TEXT - 200  # room for the count of what was left out
PREVIEW_UNAVAILABLE = "_What changes could not be read just now; it is read again before acting._"


def _deployment_notes(deployment: Deployment) -> list[Block]:
    notes = [f":warning: {escape(n)}" for n in [history_limit_note(deployment)] if n]
    notes += [f":information_source: {escape(n)}" for n in strategy_notes(deployment)]
    if not notes:
        return []
    return [ContextBlock(elements=[MarkdownTextObject(text=n) for n in notes])]


def _rollout_blocks(view: ServiceView) -> list[Block]:
    """An Argo Rollout's state (phase, step, stable and canary), with "Abort" while it updates."""
    history = view.history
    rollout = history.deployment
    if rollout.kind is not WorkloadKind.ROLLOUT:
        return []
    try:
        state = argo_rollouts.rollout_state(rollout.raw, list(history.owned_json))
    except RollbackRefused as exc:
        return [text_section(f":warning: {escape(clip(str(exc), 500))}")]
    step = (
        f" · step {state.step_index}/{state.step_count} ({state.weight}% to the canary)"
        if state.step_index is not None and state.step_count
        else ""
    )
    stable = state.stable_version or "none yet"
    line = (
        f"*Rollout* {escape(clip(state.line, 300))}{step}\nstable *{escape(clip(stable, 100))}*"
        + (f" · canary *{escape(clip(state.canary_version, 100))}*" if state.in_progress else "")
    )
    stable_revision = argo_rollouts.rollout_history(rollout.raw, list(history.owned_json)).by_hash(
        state.stable_hash
    )
    if not state.in_progress or view.running is not None or stable_revision is None:
        return [text_section(line)]
    button = RollbackButton(
        service=view.service,
        target_revision=stable_revision.number,
        target_replicaset=stable_revision.replicaset,
        target_version=clip(stable_revision.version, 128),
        from_version=clip(state.canary_version, 128),
        revision=rollout.revision,
        generation=rollout.generation,
        abort=True,
    )
    return [
        SectionBlock(
            text=MarkdownTextObject(text=clip(line, SECTION_TEXT)),
            accessory=ButtonElement(
                text=PlainTextObject(text=clip(f"Abort: back to {stable}", BUTTON_TEXT)),
                action_id=action_ids.ABORT_BUTTON,
                value=button.encode(),
                style="danger",
            ),
        )
    ]


def workload_place(namespace: str, deployment: Deployment) -> str:
    """`shop/checkout` for a Deployment, "StatefulSet `shop/orders-db`" for the others."""
    where = f"`{escape(namespace)}/{escape(deployment.name)}`"
    return where if deployment.kind is WorkloadKind.DEPLOYMENT else f"{deployment.kind} {where}"


def _guard_notes(revision: Revision, guard: MigrationBlock | None) -> list[str]:
    notes = []
    if guard is not None:
        notes.append(f":no_entry: {escape(clip(guard.reason, 500))}")
    own = migration_note(revision)
    if own is not None:
        notes.append(f":information_source: {escape(own)}")
    mutable = mutable_images_note(revision)
    if mutable is not None:
        notes.append(f":warning: {escape(clip(mutable, 600))}")
    return notes


def override_button(
    view: ServiceView, revision: Revision, *, source: str = "command"
) -> ButtonElement:
    """For a revision the migration guard blocks: "Override migration guard", useful only to
    the catalog's break-glass people (checked at the click and at the submit). `source`: as
    `rollback_button`'s, the kind of message it sits in."""
    value = _button_value(view, revision, source)
    return ButtonElement(
        text=PlainTextObject(text="Override migration guard"),
        action_id=action_ids.override_button_id(revision.number),
        value=value.encode(),
    )


def preview_text(changes: Sequence[ContainerPreview], limit: int = PREVIEW_TEXT) -> str:
    """What the rollback changes, container by container (env values never shown), cut to
    `limit` characters with a count of the changes left out."""
    if not changes:
        return "*What changes*\nNothing in the pod template."
    lines = ["*What changes* (env values are never shown)"]
    used = len(lines[0])
    left_out = 0
    for item in changes:
        title = f"*{escape(clip(item.title, 100))}*"
        body = [f"• {escape(clip(line, 400))}" for line in item.lines]
        for index, line in enumerate([title, *body]):
            if left_out or used + len(line) + 1 > limit:
                left_out += 1 if index else 0
                continue
            lines.append(line)
            used += len(line) + 1
    if left_out:
        lines.append(f"_… and {left_out} more change{'s' if left_out != 1 else ''} not shown_")
    return "\n".join(lines)


def preview_blocks(
    changes: Sequence[ContainerPreview] | None, *, unread: bool = True
) -> list[Block]:
    """The confirmation's "what changes" section. None: not shown, or, `unread`, said to be
    unread (the cluster did not answer in time)."""
    if changes is None and not unread:
        return []
    text = PREVIEW_UNAVAILABLE if changes is None else preview_text(changes)
    return [SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT)))]


def override_modal(
    context: ConfirmContext, reason: str, changes: Sequence[ContainerPreview] | None
) -> JsonDict:
    """Break glass past the migration guard: the service's name typed, and a reason, both
    required; the override is recorded and told in the thread."""
    button = context.button
    service = escape(button.service)
    ask = (
        f":rotating_light: *Override the migration guard* of *{service}*: {escape(reason)}.\n"
        f"Rolling back from *{escape(button.from_version)}* to "
        f"*{escape(button.target_version)}* (revision {button.target_revision}) runs older code "
        "against a schema it may not understand. Only the catalog's break-glass people may; it "
        "is recorded with your reason."
    )
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=clip(ask, SECTION_TEXT))),
        *preview_blocks(changes),
        InputBlock(
            block_id=action_ids.OVERRIDE_SERVICE_BLOCK,
            label=PlainTextObject(text=clip(f"Type the service name ({button.service})", 150)),
            element=PlainTextInputElement(
                action_id=action_ids.OVERRIDE_SERVICE_INPUT, max_length=300, multiline=False
            ),
        ),
        InputBlock(
            block_id=action_ids.REASON_BLOCK,
            label=PlainTextObject(text="Reason"),
            element=PlainTextInputElement(
                action_id=action_ids.REASON_INPUT,
                placeholder=PlainTextObject(text="e.g. why the old code is safe on this schema"),
                max_length=REASON_MAX,
                multiline=False,
            ),
        ),
    ]
    view = View(
        type="modal",
        callback_id=action_ids.OVERRIDE_VIEW,
        title=PlainTextObject(text="Override guard"),
        submit=PlainTextObject(text="Override, roll back"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=context.encode(),
        blocks=blocks,
    )
    rendered: JsonDict = view.to_dict()
    return rendered


# -- the audit trail ---------------------------------------------------------------------------

AUDIT_LINES = 40  # records shown in Slack; the CLI shows them all
_OUTCOMES = {
    Step.SUCCEEDED: (":white_check_mark:", "rolled back"),
    Step.FAILED: (":x:", "failed to roll back"),
    Step.UNKNOWN: (":grey_question:", "lost sight of the rollback of"),
    Step.TIMED_OUT: (":hourglass:", "stopped waiting for the rollback of"),
    Step.ABANDONED: (":white_circle:", "never sent the rollback of"),
}


def _audit_versions(record: AuditRecord) -> str:
    if record.to_version is None and record.to_revision is None:
        return ""
    before = escape(clip(record.from_version or "?", 80))
    after = escape(clip(record.to_version or f"revision {record.to_revision}", 80))
    return f" {before} → {after}"


def audit_line(record: AuditRecord) -> str:
    """One stored record as one line: when (in the reader's time zone), the step, who, how,
    the versions, why and what happened. Everything in it came from the store: escaped."""
    text = (
        f"{slack_date(record.at, '{date_short} {time_secs}')} `{record.step}` "
        f"{who(clip(record.actor, 120))} via {escape(clip(record.via, 40))}"
        f"{_audit_versions(record)}"
    )
    if record.reason:
        text += f" · reason: {escape(clip(record.reason, 200))}"
    if record.detail:
        text += f" · {escape(clip(record.detail, 300))}"
    return text


def audit_message(
    service: str, where: str, since: str, records: Sequence[AuditRecord], cli_hint: str
) -> Message:
    """`/rollback audit SERVICE`: the records of the last `since`, newest first, at most
    AUDIT_LINES of them; `cli_hint` says how to see them all."""
    title = f"Audit trail of *{escape(service)}* (`{escape(where)}`), last {escape(since)}"
    if not records:
        return notice(f"{title}: nothing recorded.", plain=f"Audit trail of {service}: nothing")
    shown = records[:AUDIT_LINES]
    blocks: list[Block] = [
        text_section(
            f"{title}: {len(records)} record{'s' if len(records) != 1 else ''}, newest first"
        )
    ]
    chunk: list[str] = []
    for line in (audit_line(r) for r in shown):
        if chunk and sum(len(x) + 1 for x in chunk) + len(line) > SECTION_TEXT - 10:
            blocks.append(text_section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    blocks.append(text_section("\n".join(chunk)))
    if len(records) > len(shown):
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=clip(
                            f"{len(records) - len(shown)} older records not shown: "
                            f"`{escape(cli_hint)}` lists them all",
                            SECTION_TEXT,
                        )
                    )
                ]
            )
        )
    return Message(
        text=fallback(f"Audit trail of {service}: {len(records)} records"), blocks=render(blocks)
    )


def audit_channel_message(record: AuditRecord, permalink: str | None) -> Message:
    """The audit channel's one line for a finished rollback, with a link to its thread."""
    emoji, verb = _OUTCOMES.get(record.step, (":information_source:", str(record.step)))
    text = (
        f"{emoji} {who(clip(record.actor, 120))} {verb} *{escape(clip(record.service, 100))}* "
        f"(`{escape(clip(record.namespace + '/' + record.deployment, 200))}`)"
        f"{_audit_versions(record)} via {escape(clip(record.via, 40))}"
    )
    if record.reason:
        text += f" · reason: {escape(clip(record.reason, 200))}"
    if record.detail:
        text += f" · {escape(clip(record.detail, 300))}"
    if permalink and permalink.startswith("https://") and not set(permalink) & set("<>| "):
        text += f" · <{permalink}|thread>"
    plain = f"{record.service}: {verb} ({record.step})"
    return section_message(plain, text)
