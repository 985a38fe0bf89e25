"""Block Kit for alerts: the one message per alert group, its "resolved" thread note, and the reply
under Alertmanager's own Slack message. Pure: domain values in, `Message` (text + blocks) out.

Built with `slack_sdk.models.blocks` (limits checked by `render`) and the helpers of
`render` and `blocks`, so dates, escaping, clipping and the rollback button (`source="alert"`)
look and behave as everywhere else. Every renderer returns the fallback `text` with the blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.adapters.slack.blocks import (
    offer_block_id,
    override_button,
    rollback_button,
    running_text,
)
from bot.adapters.slack.render import (
    NOTHING_TO_ROLL_BACK_TO,
    SECTION_TEXT,
    Message,
    clip,
    escape,
    fallback,
    render,
    section_message,
    slack_date,
    text_section,
)
from bot.domain.alerts.advice import Advice, Verdict
from bot.domain.alerts.views import AlertGroupView
from bot.domain.alerts.webhook import Alert, group_severity
from bot.domain.rollback.migrations import migration_block
from bot.domain.rollback.models import Revision
from bot.domain.rollback.planning import previous_revision
from bot.domain.rollback.views import ServiceView
from bot.domain.times import ago, format_duration

HEADER_TEXT = 150
FIELD_TEXT = 2000
CONTEXT_TEXT = 2000
MAX_ALERTS_LISTED = 8
BUTTON_SOURCE = "alert"

_ADVICE_EMOJI = {
    Verdict.LIKELY: ":point_right:",
    Verdict.NOT_RECENT: ":information_source:",
    Verdict.AFTER: ":information_source:",
    Verdict.UNKNOWN: ":information_source:",
}
_SEVERITY_EMOJI = {"critical": ":red_circle:", "error": ":red_circle:", "warning": ":warning:"}


def _link(url: str, label: str) -> str | None:
    """A Slack link to an http(s) URL; None for anything else (never a javascript: link)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    safe = escape(url.replace("|", "%7C"))
    return f"<{safe}|{escape(label)}>"


def _title(view: AlertGroupView) -> str:
    if view.firing:
        count = sum(1 for a in view.alerts if a.firing)
        return f"[FIRING:{count}] {view.alert_name} · {view.service}"
    return f"[RESOLVED] {view.alert_name} · {view.service}"


def _summary(view: AlertGroupView) -> str | None:
    common = view.group.common_annotations
    summary = common.get("summary") or next((a.summary for a in view.alerts if a.summary), None)
    description = common.get("description")
    if summary and description and description != summary:
        return f"*{escape(clip(summary, 500))}*\n{escape(clip(description, 2000))}"
    if summary:
        return f"*{escape(clip(summary, 500))}*"
    return None


def _where(view: AlertGroupView) -> str:
    if view.service_view is None:
        return f"*Service*\n{escape(clip(view.service, 200))}"
    sv = view.service_view
    return (
        f"*Service*\n{escape(clip(view.service, 200))} · `{escape(sv.namespace)}/"
        f"{escape(sv.history.deployment.name)}` on `{escape(sv.cluster)}`"
    )


def _deployed(view: AlertGroupView) -> str:
    sv = view.service_view
    if sv is None:
        return f"*Deployed now*\nunknown: {escape(clip(view.problem or 'not read', 1500))}"
    deployment = sv.history.deployment
    out = sv.history.went_out
    return (
        f"*Deployed now*\n{escape(clip(deployment.version, 200))} (revision "
        f"{deployment.revision or '?'}), out {slack_date(out)} ({ago(out, view.taken_at)})"
    )


def _fields(view: AlertGroupView) -> SectionBlock:
    severity = view.group.common_labels.get("severity") or group_severity(view.alerts) or "none"
    start = view.started_at
    fields = [
        f"*Severity*\n{_SEVERITY_EMOJI.get(severity.lower(), '')} {escape(clip(severity, 100))}",
        f"*Since*\n{slack_date(start)} ({ago(start, view.taken_at)})",
    ]
    if not view.firing:
        duration = view.duration
        lasted = format_duration(duration) if duration is not None else "unknown"
        fields[1] = f"*Resolved*\n{slack_date(view.ended_at)} after {lasted}"
    fields += [_where(view), _deployed(view)]
    return SectionBlock(
        fields=[MarkdownTextObject(text=clip(f.strip(), FIELD_TEXT)) for f in fields]
    )


def _distinct_labels(alert: Alert, common: Mapping[str, str]) -> str:
    own = [(k, v) for k, v in sorted(alert.labels.items()) if common.get(k) != v]
    return ", ".join(f"{k}={v}" for k, v in own)


def _alert_line(alert: Alert, view: AlertGroupView, with_source: bool) -> str:
    mark = ":red_circle:" if alert.firing else ":white_check_mark:"
    what = alert.annotations.get("description") or alert.summary or alert.name or "alert"
    labels = _distinct_labels(alert, view.group.common_labels)
    where = f" `{escape(clip(labels, 200))}`" if labels else ""
    when = (
        f"since {slack_date(alert.starts_at, '{time}')}"
        if alert.firing
        else f"resolved {slack_date(alert.ends_at, '{time}')}"
    )
    source = _link(alert.generator_url, "source") if with_source else None
    tail = f" · {source}" if source else ""
    return f"{mark} {escape(clip(what, 300))}{where} · {when}{tail}"


def _alert_list(view: AlertGroupView) -> list[Block]:
    shown = sorted(view.alerts, key=lambda a: (not a.firing, a.starts_at))[:MAX_ALERTS_LISTED]
    # One source for all (the context block links it) or one link per alert.
    with_source = len({a.generator_url for a in view.alerts}) > 1
    lines = [_alert_line(a, view, with_source) for a in shown]
    hidden = len(view.alerts) - len(shown)
    if hidden > 0:
        lines.append(f"…and {hidden} more alert{'s' if hidden > 1 else ''} in this group")
    truncated = view.group.truncated_alerts
    if truncated > 0:
        lines.append(
            f"Alertmanager left out {truncated} more alert{'s' if truncated > 1 else ''} of "
            "this group (its webhook `max_alerts`)"
        )
    if len(view.alerts) == 1 and truncated == 0:
        return []  # one alert: the summary and the fields already say it all
    return [SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), SECTION_TEXT)))]


def rollback_offer(sv: ServiceView, target: Revision) -> list[Block]:
    """The one rollback button, in a block that tells a click on a known-bad version; for a
    target the migration guard blocks, why, and the break-glass override instead."""
    guard = migration_block(sv.history, target)
    if guard is not None:
        return [
            SectionBlock(text=MarkdownTextObject(text=f":no_entry: {escape(guard.reason)}")),
            ActionsBlock(elements=[override_button(sv, target, source=BUTTON_SOURCE)]),
        ]
    return [
        ActionsBlock(
            block_id=offer_block_id(sv, target),
            elements=[rollback_button(sv, target, source=BUTTON_SOURCE)],
        )
    ]


def _offer(view: AlertGroupView) -> list[Block]:
    """The advice and the one rollback button, or why there is no button."""
    blocks: list[Block] = []
    sv = view.service_view
    advice = view.advice
    if not view.firing:
        return blocks
    if advice is not None:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip(f"{_ADVICE_EMOJI[advice.verdict]} {escape(advice.text)}", 3000)
                )
            )
        )
    if sv is None:
        return blocks
    if sv.running is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=running_text(sv.running))))
        return blocks
    target = previous_revision(sv.history)
    if target is None:
        blocks.append(text_section(NOTHING_TO_ROLL_BACK_TO))
        return blocks
    blocks += rollback_offer(sv, target)
    return blocks


def _context(view: AlertGroupView) -> ContextBlock:
    links = []
    sources = {a.generator_url for a in view.alerts if a.generator_url}
    if len(sources) == 1:
        link = _link(sources.pop(), "Source")
        if link:
            links.append(link)
    am = _link(view.group.external_url, "Alertmanager")
    if am:
        links.append(am)
    parts = [*links, f"updated {slack_date(view.taken_at, '{time}')}"]
    if view.firing and view.service_view is not None and view.service_view.running is None:
        parts.append("a click asks to confirm and re-checks the cluster first")
    return ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(parts), CONTEXT_TEXT))])


def alert_message(view: AlertGroupView) -> Message:
    """The alert group's message: posted once, then updated in place (repeats, resolution)."""
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(_title(view), HEADER_TEXT))),
        _fields(view),
    ]
    summary = _summary(view)
    if summary:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(summary, SECTION_TEXT))))
    blocks += _alert_list(view)
    blocks += _offer(view)
    blocks.append(_context(view))
    return Message(text=fallback(_fallback(view)), blocks=render(blocks))


def _fallback(view: AlertGroupView) -> str:
    head = _title(view)
    if not view.firing:
        duration = view.duration
        return head + (
            f": resolved after {format_duration(duration)}" if duration else ": resolved"
        )
    if view.advice is not None:
        return f"{head}: {view.advice.headline}"
    return head


def resolved_note(view: AlertGroupView) -> Message:
    """The thread note when the group resolves ("resolved after 23m07s")."""
    duration = view.duration
    after = f" after {format_duration(duration)}" if duration is not None else ""
    body = (
        f":white_check_mark: *{escape(clip(view.alert_name, 300))}* on "
        f"*{escape(clip(view.service, 200))}* resolved {slack_date(view.ended_at)}{after}."
    )
    return section_message(f"{view.alert_name} on {view.service} resolved{after}", body)


def alert_reply(sv: ServiceView, title: str, advice: Advice | None) -> Message:
    """The reply in the thread of Alertmanager's own Slack message: the same offer, compact."""
    deployment = sv.history.deployment
    out = sv.history.went_out
    lines = [
        f"This alert is about *{escape(clip(sv.service, 200))}* (`{escape(sv.namespace)}/"
        f"{escape(deployment.name)}` on `{escape(sv.cluster)}`), which runs "
        f"*{escape(clip(deployment.version, 200))}* (revision {deployment.revision or '?'}), "
        f"out {slack_date(out)} ({ago(out, sv.taken_at)})."
    ]
    if advice is not None:
        lines.append(f"{_ADVICE_EMOJI[advice.verdict]} {escape(advice.text)}")
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), SECTION_TEXT)))
    ]
    target = previous_revision(sv.history)
    if sv.running is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=running_text(sv.running))))
    elif target is None:
        blocks.append(text_section(NOTHING_TO_ROLL_BACK_TO))
    else:
        blocks += rollback_offer(sv, target)
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="A click asks to confirm and re-checks the cluster first."
                    )
                ]
            )
        )
    headline = advice.headline if advice is not None else f"{deployment.version} deployed"
    return Message(text=fallback(f"{sv.service}: {headline} ({title})"), blocks=render(blocks))
