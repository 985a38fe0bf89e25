"""Block Kit for an alert storm's digest: the one message a channel gets per storm, edited in
place, with one line per service; the thread reply listing every service when they do not all
fit; and the offer for a service picked from the digest. Pure: domain values in, `Message` out.

The buttons are the alert messages' own (`source="alert"`), so a click from the digest is handled
as any alert button's, in the digest's thread.

Slack refuses a message past 50 blocks, and (undocumented, answering `msg_blocks_too_long`) one
whose blocks hold more than about 12,000 characters of text together. So a digest shows the
services that fit within both, most urgent first, and offers the other firing ones in a picker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)

from bot.adapters.slack import action_ids
from bot.adapters.slack.alert_blocks import BUTTON_SOURCE, CONTEXT_TEXT, HEADER_TEXT, alert_reply
from bot.adapters.slack.blocks import (
    BUTTON_TEXT,
    is_known_bad,
    offer_block_id,
    override_button,
    rollback_button,
    running_text,
)
from bot.adapters.slack.render import (
    MAX_BLOCKS,
    NOTHING_TO_ROLL_BACK_TO,
    SECTION_TEXT,
    TEXT_BUDGET,
    Message,
    clip,
    escape,
    fallback,
    render,
    slack_date,
    text_section,
    text_size,
    who,
)
from bot.domain.alerts.advice import Advice
from bot.domain.alerts.storms import ServiceSummary
from bot.domain.alerts.views import DigestServiceView, DigestView
from bot.domain.rollback.migrations import migration_block
from bot.domain.rollback.planning import previous_revision
from bot.domain.rollback.views import ServiceView
from bot.domain.times import ago, format_duration, span

SERVICE_LINE = 600
LIST_LINE = 300
NAME_TEXT = 80
ALERT_NAME_TEXT = 40
ALERTS_SHOWN = 3
LIST_ALERTS_SHOWN = 2
ADVICE_TEXT = 150
VERSION_TEXT = 40
# A button's value carries the service's name (`RollbackButton.service`), at most this long.
BUTTON_SERVICE = 300
NOTE_TEXT = 200
# The picker: Slack's limits on a static_select, and its share of the text budget.
PICKER_OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
PICKER_TEXT = 3_000
PICKER_PLACEHOLDER = "Roll back another service…"
SERVICE_BLOCK = "digest:service"
MORE_BLOCK = "digest:more"
PICKED_TITLE = "picked from the alert storm digest"


def _outside(text: str, limit: int) -> str:
    """Text from outside as mrkdwn: escaped, then clipped, so `limit` holds however much the
    escaping grew it (a cut entity shows only itself, never a link or a mention)."""
    return clip(escape(text), limit)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _size(block: Block) -> int:
    return text_size([block])


# -- one service's line ------------------------------------------------------------------------


def _alerts(alerts: Sequence[tuple[str, int]], shown: int) -> str:
    """ "HighErrorRate ×3 · HighLatency ×1 · +2 more": the most frequent names, the rest counted."""
    parts = [
        f"{_outside(name or 'alert', ALERT_NAME_TEXT)} ×{count}" for name, count in alerts[:shown]
    ]
    hidden = len(alerts) - shown
    if hidden > 0:
        parts.append(f"+{hidden} more")
    return " · ".join(parts) or "alerts"


def _resolved(summary: ServiceSummary) -> str:
    since, ended = summary.since, summary.resolved_at
    if since is None or ended is None:
        return "resolved"
    return f"resolved after {format_duration(max(0.0, (ended - since).total_seconds()))}"


def _head(summary: ServiceSummary, taken_at: datetime) -> str:
    name = _outside(summary.service, NAME_TEXT)
    groups = f" · {summary.groups} groups" if summary.groups > 1 else ""
    if not summary.firing:
        return f"~*{name}*~{groups} · {_resolved(summary)}"
    since = summary.since
    if since is None:
        return f"*{name}*{groups} · firing"
    return f"*{name}*{groups} · firing since {slack_date(since, '{time}')} ({ago(since, taken_at)})"


def _advice(advice: Advice) -> str:
    # The alert messages' convention: a pointing finger only where a rollback likely helps.
    emoji = ":point_right:" if advice.likely else ":information_source:"
    return f"{emoji} {_outside(advice.headline, ADVICE_TEXT)}"


def _labelled_button(
    sv: ServiceView, offered: ButtonElement, version: str, *, known_bad: bool
) -> ButtonElement:
    """The alert button's action, value and style, labelled with the service: a digest has
    many. A known-bad version reads as a redeploy, as everywhere else."""
    if known_bad:
        label = f"Redeploy {clip(sv.service, 28)} {clip(version, 25)} (known bad)"
    else:
        label = f"Roll back {clip(sv.service, 33)} to {clip(version, 28)}"
    return ButtonElement(
        text=PlainTextObject(text=clip(label, BUTTON_TEXT)),
        action_id=offered.action_id,
        value=offered.value,
        style=offered.style,
    )


@dataclass(frozen=True)
class _Offer:
    """What a line offers: a note when there is no plain button, the accessory (the rollback
    or override button), and the known-bad marker of the button's block."""

    note: str | None = None
    accessory: ButtonElement | None = None
    marker: str | None = None


def _offer(item: DigestServiceView) -> _Offer:
    if not item.summary.firing:
        return _Offer()
    sv = item.service_view
    if sv is None:
        why = _outside(item.problem or "not read", NOTE_TEXT)
        return _Offer(note=f":warning: the cluster could not be read: {why}")
    if sv.running is not None:
        return _Offer(note=running_text(sv.running))
    if len(sv.service) > BUTTON_SERVICE:
        return _Offer(note=":warning: its name is too long for a button")
    target = previous_revision(sv.history)
    if target is None:
        return _Offer(note=NOTHING_TO_ROLL_BACK_TO)
    guard = migration_block(sv.history, target)
    if guard is not None:
        return _Offer(
            note=f":no_entry: {_outside(guard.reason, NOTE_TEXT)}",
            accessory=override_button(sv, target, source=BUTTON_SOURCE),
        )
    offered = rollback_button(sv, target, source=BUTTON_SOURCE)
    known_bad = is_known_bad(sv, target)
    button = _labelled_button(sv, offered, target.version, known_bad=known_bad)
    return _Offer(accessory=button, marker=offer_block_id(sv, target))


def _service_section(item: DigestServiceView, index: int, taken_at: datetime) -> SectionBlock:
    summary = item.summary
    alerts = _alerts(summary.alerts, ALERTS_SHOWN)
    lines = [_head(summary, taken_at), alerts if summary.firing else f"~{alerts}~"]
    if summary.firing and item.advice is not None:
        lines.append(_advice(item.advice))
    offer = _offer(item)
    if offer.note:
        lines.append(offer.note)
    # Slack refuses a message whose block_ids repeat, and the known-bad marker names only the
    # revision: the line's index keeps it unique (the click checks only the marker's prefix).
    block_id = f"{offer.marker or SERVICE_BLOCK}:{index}"
    return SectionBlock(
        block_id=block_id,
        text=MarkdownTextObject(text=clip("\n".join(lines), SERVICE_LINE)),
        accessory=offer.accessory,
    )


# -- the digest ----------------------------------------------------------------------------------


def _title(view: DigestView) -> str:
    count = len(view.services)
    state = f"{view.firing} still firing" if view.firing else "all resolved"
    return (
        f"Alert storm: {_plural(count, 'service')}, {_plural(view.groups, 'alert group')} · {state}"
    )


def _context(view: DigestView) -> ContextBlock:
    if view.taken_at - view.last < view.window:
        ends = f"it ends once no new group arrives for {span(view.window)}"
    else:
        ends = f"it ended {slack_date(view.last + view.window, '{time}')}"
    parts = [
        f"Started {slack_date(view.started)}",
        f"last new group {slack_date(view.last, '{time}')}",
        ends,
        "alert groups from before the storm keep their own messages",
        f"updated {slack_date(view.taken_at, '{time}')}",
    ]
    if view.firing:
        parts.append("a click asks to confirm and re-checks the cluster first")
    return ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(parts), CONTEXT_TEXT))])


def _picker_options(rest: Sequence[DigestServiceView]) -> tuple[list[Option], int]:
    """The firing services among `rest` as options (a name longer than an option's value could
    not be resolved back: those are in the thread's list only), and how many are firing."""
    firing = [s.service for s in rest if s.summary.firing]
    options: list[Option] = []
    used = 0
    for name in firing:
        text = clip(name, OPTION_TEXT)
        if not name.strip() or len(name) > OPTION_VALUE:
            continue
        if len(options) == PICKER_OPTIONS or used + len(text) > PICKER_TEXT:
            break
        options.append(Option(value=name, text=PlainTextObject(text=text)))
        used += len(text)
    return options, len(firing)


def _more(rest: Sequence[DigestServiceView]) -> SectionBlock:
    """The line under the services shown: how many more, and the picker for the firing ones."""
    options, firing = _picker_options(rest)
    line = f"…and {_plural(len(rest), 'more service')}: the full list is in the thread."
    if options:
        line += " Pick a firing one to get its rollback offer there"
        line += f" (the first {len(options)} of {firing})." if len(options) < firing else "."
    picker = (
        StaticSelectElement(
            action_id=action_ids.DIGEST_PICK,
            placeholder=PlainTextObject(text=PICKER_PLACEHOLDER),
            options=options,
        )
        if options
        else None
    )
    return SectionBlock(block_id=MORE_BLOCK, text=MarkdownTextObject(text=line), accessory=picker)


def _services(view: DigestView, room: int, budget: int) -> list[tuple[Block, int]]:
    """The lines of the most urgent services, in order, with their sizes, while they fit in
    `room` blocks and `budget` characters of text."""
    sections: list[tuple[Block, int]] = []
    for index, item in enumerate(view.services[:room]):
        section = _service_section(item, index, view.taken_at)
        size = _size(section)
        budget -= size
        if budget < 0:
            break
        sections.append((section, size))
    return sections


def _digest_blocks(view: DigestView) -> tuple[list[Block], int]:
    """The digest's blocks and how many services have a line of their own."""
    head: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(_title(view), HEADER_TEXT))),
        _context(view),
    ]
    budget = TEXT_BUDGET - sum(_size(b) for b in head)
    room = MAX_BLOCKS - len(head)
    every = _services(view, room, budget)
    if len(every) == len(view.services):
        return head + [section for section, _ in every], len(every)
    # The line under them takes a block and some text: the last lines make room for it.
    shown = every[: room - 1]
    tail = _more(view.services[len(shown) :])
    while shown and sum(size for _, size in shown) + _size(tail) > budget:
        shown.pop()
        tail = _more(view.services[len(shown) :])
    return [*head, *(section for section, _ in shown), tail], len(shown)


def digest_message(view: DigestView) -> Message:
    """The storm's digest: a header, when it started and ends, then one line per service (most
    urgent first) with its rollback button; the services that do not fit are counted, the
    firing ones offered in a picker, and all of them listed in the thread."""
    blocks, _ = _digest_blocks(view)
    return Message(text=fallback(_fallback(view)), blocks=render(blocks))


def digest_overflows(view: DigestView) -> bool:
    """Whether some services have no line in the digest: then the thread lists them all."""
    _, shown = _digest_blocks(view)
    return shown < len(view.services)


def _fallback(view: DigestView) -> str:
    firing = [clip(s.service, 40) for s in view.services if s.summary.firing]
    head = (
        f"Alert storm: {_plural(len(view.services), 'service')}, "
        f"{_plural(view.groups, 'alert group')}, {view.firing} still firing"
    )
    if not firing:
        return head
    more = ", …" if len(firing) > 3 else ""
    return f"{head}: {', '.join(firing[:3])}{more}"


# -- the full list, in the digest's thread -------------------------------------------------------


def _list_line(item: DigestServiceView) -> str:
    """One service in a few words: Slack's text limit is for the whole list."""
    summary = item.summary
    name = _outside(summary.service, NAME_TEXT)
    if not summary.firing:
        return clip(f"• ~*{name}*~ · {_resolved(summary)}", LIST_LINE)
    advice = item.advice
    likely = advice is not None and advice.likely
    mark = ":point_right: " if likely else ""
    version = (
        f" ({_outside(advice.version, VERSION_TEXT)})" if advice is not None and likely else ""
    )
    alerts = _alerts(summary.alerts, LIST_ALERTS_SHOWN)
    return clip(f"• {mark}*{name}*{version} · {alerts}", LIST_LINE)


def _chunks(lines: Sequence[str], room: int, budget: int) -> tuple[list[str], int]:
    """`lines` joined into at most `room` section texts, within `budget` characters in all;
    the texts and how many lines they hold."""
    chunks: list[str] = []
    current: list[str] = []
    size = held = 0
    for line in lines:
        if budget - len(line) - 1 < 0:
            break
        if current and size + len(line) + 1 > SECTION_TEXT:
            if len(chunks) + 1 == room:
                break
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
        budget -= len(line) + 1
        held += 1
    if current:
        chunks.append("\n".join(current))
    return chunks, held


def digest_list_message(view: DigestView) -> Message:
    """The thread reply of an overflowing digest: every service, most urgent first, in plain
    lines (no buttons: the digest's picker offers the firing ones)."""
    count = len(view.services)
    head = text_section(
        f"*Every service of this alert storm* ({count}, {view.firing} still firing), most "
        "urgent first. :point_right: likely caused by the deploy of the version in brackets."
    )
    lines = [_list_line(item) for item in view.services]
    # One block and some text kept for the count of those left out.
    chunks, held = _chunks(lines, MAX_BLOCKS - 2, TEXT_BUDGET - _size(head) - 200)
    blocks: list[Block] = [head, *(text_section(chunk) for chunk in chunks)]
    if held < count:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"…and {_plural(count - held, 'more service')} not listed here."
                    )
                ]
            )
        )
    text = f"Alert storm: all {_plural(count, 'service')}, {view.firing} still firing"
    return Message(text=fallback(text), blocks=render(blocks))


# -- a service picked from the digest ------------------------------------------------------------


def picked_reply(sv: ServiceView, user: str, advice: Advice | None = None) -> Message:
    """The offer for a service picked in the digest's picker, posted in the digest's thread:
    the alert reply's offer, with who picked it for everyone to see."""
    reply = alert_reply(sv, PICKED_TITLE, advice)
    picked = ContextBlock(
        elements=[
            MarkdownTextObject(
                text=f":point_down: {who(clip(user, 40))} picked "
                f"*{_outside(sv.service, NAME_TEXT)}* from the alert storm digest"
            )
        ]
    )
    return Message(text=reply.text, blocks=[*render([picked]), *reply.blocks])
