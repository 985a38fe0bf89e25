"""Block Kit for automatic rollback's watch of a rollout: the watch message (edited in place as
the watch ends, with "Stop watching" while it runs), the verdict in its thread (each signal's
evidence, what was done, the on-call group, the rollback button when nothing was rolled back),
and its one-line notices. Pure: domain values in, `Message` out.

Everything from outside is escaped: service names, versions, signal names and the detail of a
status (the cluster's and Prometheus' words), PromQL and links. Versions are shown as code spans,
where Slack's bold and italics do not apply, so a version reads as it is.

A verdict holds one section per signal, most urgent first, while Slack's 50 blocks and its text
budget allow (the one `digest_blocks` keeps under); the signals past that get a line each
without their PromQL, and `rollback-bot analyze` prints everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.adapters.slack import action_ids
from bot.adapters.slack.alert_blocks import CONTEXT_TEXT, rollback_offer
from bot.adapters.slack.blocks import running_text
from bot.adapters.slack.digest_blocks import BUTTON_SERVICE
from bot.adapters.slack.payloads import StopWatchButton
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
    section_message,
    text_section,
    text_size,
)
from bot.domain.analysis.checks import Outcome
from bot.domain.analysis.figures import format_value
from bot.domain.analysis.report import Report, SignalReport
from bot.domain.analysis.watching import Phase, WatchStatus
from bot.domain.rollback.models import Revision
from bot.domain.rollback.planning import previous_revision
from bot.domain.rollback.views import ServiceView
from bot.domain.times import span

NAME_TEXT = 80
VERSION_TEXT = 80
DETAIL_TEXT = 1000
REASON_TEXT = 300
RULE_TEXT = 200
FIGURE_TEXT = 40
# A signal's section holds its PromQL and its graph link: each kept under these, so that the
# section stays under Slack's 3,000 characters with its other lines and is never cut mid-link.
QUERY_TEXT = 1200
LINK_TEXT = 1200
SIGNAL_LINE = 300  # a signal shown without its PromQL, past the budget
STOP_BUTTON_TEXT = "Stop watching"
WATCH_BLOCK = "analysis:watch"
OFFER_NOTE = "A click asks to confirm and re-checks the cluster first."

MODE_TEXT = {
    "dry-run": "dry-run: it will only say what it would do",
    "act": "act: a confirmed breach rolls it back",
}
_OUTCOME = {
    Outcome.BREACH: ":red_circle: breach",
    Outcome.PASS: ":large_green_circle: pass",
    Outcome.LOW_VOLUME: ":white_circle: not enough traffic",
    Outcome.NO_DATA: ":white_circle: no data",
}
_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,24})&gt;")
_PLAIN_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,24})>")
_USER = re.compile(r"[UW][A-Z0-9]{2,24}")
_GROUP = re.compile(r"S[A-Z0-9]{2,24}")


# -- words, as mrkdwn or as plain text -----------------------------------------------------------


@dataclass(frozen=True)
class _Words:
    """The same sentence for the blocks (mrkdwn, escaped) and for the fallback text (plain:
    `fallback` escapes it once, whole)."""

    markup: bool

    def name(self, text: str) -> str:
        return f"*{clip(escape(text), NAME_TEXT)}*" if self.markup else clip(text, NAME_TEXT)

    def version(self, text: str) -> str:
        shown = text.strip() or "?"
        if not self.markup:
            return clip(shown, VERSION_TEXT)
        # A backtick or a line break would end the code span: neither is part of a real version.
        inner = shown.replace("`", "ˋ").replace("\n", " ")
        return f"`{clip(escape(inner), VERSION_TEXT)}`"

    def text(self, text: str, limit: int = DETAIL_TEXT) -> str:
        return clip(escape(text), limit) if self.markup else clip(text, limit)

    def with_mentions(self, text: str) -> str:
        """The bot's own sentence naming someone ("stopped by <@U…>"): its user mentions kept,
        the rest escaped; plain, a mention reads "@U…"."""
        if not self.markup:
            return clip(_PLAIN_MENTION.sub(r"@\1", text), DETAIL_TEXT)
        return _MENTION.sub(r"<@\1>", clip(escape(text), DETAIL_TEXT))

    def who_stopped(self, detail: str) -> str:
        """The use case's "stopped by <@U…>", or a bare user id."""
        return self.with_mentions(f"stopped by <@{detail}>" if _USER.fullmatch(detail) else detail)


_MARKUP = _Words(markup=True)
_PLAIN = _Words(markup=False)


def _window(status: WatchStatus) -> str:
    return span(timedelta(seconds=status.window_seconds))


def _rollout(status: WatchStatus, w: _Words) -> str:
    return f"{w.name(status.service)} {w.version(status.version)} (revision {status.revision})"


def _baseline(status: WatchStatus, w: _Words) -> str | None:
    if status.baseline_revision is None:
        return None
    if status.baseline_version is None:
        return f"revision {status.baseline_revision}"
    return f"{w.version(status.baseline_version)} (revision {status.baseline_revision})"


def _headline(status: WatchStatus, w: _Words) -> tuple[str, str]:
    """The emoji and the sentence of where the watch stands."""
    name, version = w.name(status.service), w.version(status.version)
    detail = status.detail
    target = _baseline(status, w) or "the previous revision"
    phase = status.phase
    if phase is Phase.WATCHING:
        against = _baseline(status, w) or "the window before the deploy"
        return ":eyes:", f"Watching {_rollout(status, w)} for {_window(status)} against {against}"
    if phase is Phase.HEALTHY:
        return ":white_check_mark:", f"{name} {version} looks healthy after {_window(status)}"
    if phase is Phase.NO_VERDICT:
        why = w.text(detail) if detail else "the analysis could not decide"
        return ":grey_question:", f"{name}: no verdict on {version}: {why}"
    if phase is Phase.ROLLED_BACK:
        return ":rotating_light:", f"{name} {version} breached: rolled back to {target}"
    if phase is Phase.WOULD_ROLL_BACK:
        return (
            ":rotating_light:",
            f"{name} {version} breached: would have rolled back to {target} (dry-run)",
        )
    if phase is Phase.NOT_ROLLED_BACK:
        why = w.text(detail) if detail else "nothing was changed"
        return ":rotating_light:", f"{name} {version} breached, NOT rolled back: {why}"
    if phase is Phase.STOPPED:
        who = w.who_stopped(detail) if detail else "stopped"
        return ":octagonal_sign:", f"Stopped watching {name} {version}: {who}"
    why = w.text(detail) if detail else "the deployment moved on"
    return ":fast_forward:", f"Stopped watching {name} {version}: {why}"


def _headline_text(status: WatchStatus) -> str:
    emoji, said = _headline(status, _MARKUP)
    return clip(f"{emoji} {said}", SECTION_TEXT)


def _fallback(status: WatchStatus) -> str:
    return fallback(_headline(status, _PLAIN)[1])


def _where(status: WatchStatus) -> str:
    where = f"`{escape(clip(status.namespace, 63))}/{escape(clip(status.deployment, 253))}`"
    if status.context:
        where += f" on `{escape(clip(status.context, 100))}`"
    return where


def _context(parts: Iterable[str]) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(parts), CONTEXT_TEXT))])


def _said_in_context(status: WatchStatus) -> bool:
    """Whether the status' detail goes under the headline (it is not in it)."""
    return status.phase in (Phase.HEALTHY, Phase.ROLLED_BACK, Phase.WOULD_ROLL_BACK)


# -- the watch message -------------------------------------------------------------------------


def _stop_button(status: WatchStatus) -> Block:
    if len(status.service) > BUTTON_SERVICE:
        return text_section(
            ":warning: Its name is too long for a button: it cannot be stopped here."
        )
    value = StopWatchButton(
        service=status.service,
        namespace=status.namespace,
        deployment=status.deployment,
        revision=status.revision,
    )
    return ActionsBlock(
        block_id=WATCH_BLOCK,
        elements=[
            ButtonElement(
                text=PlainTextObject(text=STOP_BUTTON_TEXT),
                action_id=action_ids.ANALYSIS_STOP,
                value=value.encode(),
            )
        ],
    )


def watch_message(status: WatchStatus) -> Message:
    """The watch message: while watching, what is watched against what, for how long, in which
    mode, and "Stop watching"; once ended, how it ended (no button)."""
    blocks: list[Block] = [text_section(_headline_text(status))]
    if status.phase is Phase.WATCHING:
        blocks.append(_context([_where(status), MODE_TEXT[status.mode]]))
        blocks.append(_stop_button(status))
    else:
        parts = [_where(status)]
        if status.detail and _said_in_context(status):
            parts.insert(0, escape(clip(status.detail, DETAIL_TEXT)))
        blocks.append(_context(parts))
    return Message(text=_fallback(status), blocks=render(blocks))


def notice_message(status: WatchStatus | None, text: str) -> Message:
    """A line in the watch's thread: no data, not enough traffic, Prometheus unreachable.
    `status`: the watch's, when known, to name the rollout in the notification text."""
    plain = f"{status.service} {status.version}: {text}" if status is not None else text
    return section_message(plain, f":warning: {clip(escape(text), SECTION_TEXT - 20)}")


def stop_answer(said: str) -> Message:
    """The private answer to "Stop watching": the watch's sentence, escaped, with the user
    mention it may make ("<@U…> has already asked to stop") kept."""
    body = _MARKUP.with_mentions(said)
    return section_message(_PLAIN.with_mentions(said), f":octagonal_sign: {body}")


# -- the verdict -------------------------------------------------------------------------------


def _graph(url: str) -> str | None:
    """Prometheus' graph page as a Slack link, or why there is none; None for what is no
    http(s) URL (never a javascript: link)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    safe = escape(url.replace("|", "%7C"))
    return f"<{safe}|graph>" if len(safe) <= LINK_TEXT else "graph link too long for Slack"


def _promql(query: str) -> str:
    """A query in a code block: escaped, clipped, with no run of three backticks to end it (a
    PromQL raw string may hold backticks; three in a row is no query)."""
    inner = clip(escape(query.strip()), QUERY_TEXT).replace("```", "`\u200b``")
    return f"```{inner}```"


def _figures(item: SignalReport) -> str:
    shown = item.evidence
    line = (
        f"baseline {escape(clip(shown.baseline, FIGURE_TEXT))} → new "
        f"{escape(clip(shown.new, FIGURE_TEXT))} (rule: {escape(clip(shown.rule, RULE_TEXT))}"
    )
    if item.threshold is not None:
        line += f"; it had to stay under {format_value(item.threshold, item.signal.unit)}"
    return line + ")"


def _signal_section(item: SignalReport) -> SectionBlock:
    shown = item.evidence
    graph = _graph(shown.link)
    head = f"*{clip(escape(shown.signal), NAME_TEXT)}* · {_OUTCOME[shown.outcome]}"
    if graph is not None:
        head += f" · {graph}"
    lines = [
        head,
        _figures(item),
        clip(escape(shown.reason), REASON_TEXT),
        _promql(shown.query),
    ]
    return SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), SECTION_TEXT)))


def _signal_line(item: SignalReport) -> str:
    shown = item.evidence
    return clip(
        f"• *{clip(escape(shown.signal), NAME_TEXT)}* · {_OUTCOME[shown.outcome]} · "
        f"{_figures(item)}",
        SIGNAL_LINE,
    )


def _size(blocks: Sequence[Block]) -> int:
    return text_size(blocks)


def _others(items: Sequence[SignalReport], status: WatchStatus) -> SectionBlock:
    """The signals without a section of their own: a line each while they fit, then a count."""
    service = escape(clip(status.service, NAME_TEXT)).replace("`", "ˋ")
    head = (
        f"`rollback-bot analyze {service} --revision {status.revision}` shows every signal "
        "with its PromQL and graph link."
    )
    lines: list[str] = []
    room = SECTION_TEXT - len(head) - 60  # the count of those left out
    for item in items:
        line = _signal_line(item)
        if len(line) + 1 > room:
            break
        lines.append(line)
        room -= len(line) + 1
    left = len(items) - len(lines)
    if left:
        lines.append(f"…and {left} more signal{'s' if left > 1 else ''}.")
    return text_section("\n".join([*lines, head]))


def _offer_target(status: WatchStatus, offer: ServiceView) -> Revision | None:
    """What the breach would roll back to: the watch's baseline, when the Deployment keeps it;
    else what `kubectl rollout undo` would pick."""
    if status.baseline_revision is not None:
        found = offer.history.revision(status.baseline_revision)
        if found is not None and not found.current:
            return found
    return previous_revision(offer.history)


def _offer_blocks(status: WatchStatus, offer: ServiceView) -> list[Block]:
    """The alert messages' own rollback button (a click goes through the confirmation), or
    why there is none."""
    if offer.running is not None:
        return [text_section(running_text(offer.running))]
    now = offer.history.deployment.revision
    if now != status.revision:
        return [
            text_section(
                f":information_source: No button: the Deployment moved on since (revision "
                f"{now or '?'} runs now). `/rollback {escape(clip(offer.service, NAME_TEXT))}` "
                "shows what it runs."
            )
        ]
    target = _offer_target(status, offer)
    if target is None:
        return [text_section(NOTHING_TO_ROLL_BACK_TO)]
    if len(offer.service) > BUTTON_SERVICE:
        return [text_section(":warning: Its name is too long for a button.")]
    return [*rollback_offer(offer, target), _context([OFFER_NOTE])]


def _verdict_head(status: WatchStatus, report: Report) -> list[Block]:
    text = _headline_text(status)
    group = status.on_call_group
    if group:
        # A catalog value: a mention only when it is a user group's id, else shown as written.
        mention = f"<!subteam^{group}>" if _GROUP.fullmatch(group) else escape(clip(group, 40))
        text = clip(f"{text}\n{mention}", SECTION_TEXT)
    parts = [escape(clip(report.reason, REASON_TEXT))]
    if status.detail and _said_in_context(status):
        parts.append(escape(clip(status.detail, DETAIL_TEXT)))
    parts += [f"baseline {escape(clip(report.baseline.description, 400))}", _where(status)]
    return [text_section(text), _context(parts)]


def _ordered(report: Report) -> list[SignalReport]:
    """The breaching signals first: they decided the verdict."""
    return sorted(report.signals, key=lambda item: item.evidence.outcome is not Outcome.BREACH)


def verdict_message(status: WatchStatus, report: Report, *, offer: ServiceView | None) -> Message:
    """The breach in the watch's thread: what was done (by `status`), the on-call group, each
    signal's evidence (baseline against new, the rule, the PromQL, a graph link), and the
    rollback button of `offer` when given."""
    head = _verdict_head(status, report)
    tail = _offer_blocks(status, offer) if offer is not None else []
    ordered = _ordered(report)
    room = MAX_BLOCKS - len(head) - len(tail)
    budget = TEXT_BUDGET - _size(head) - _size(tail)
    shown: list[tuple[Block, int]] = []
    spare = budget
    for item in ordered[:room]:
        section = _signal_section(item)
        size = _size([section])
        if size > spare:
            break
        shown.append((section, size))
        spare -= size
    middle = [section for section, _ in shown]
    if len(shown) < len(ordered):
        # The line of the signals left without a section takes a block and some text: the last
        # sections make room for it.
        shown = shown[: room - 1]
        spare = budget - sum(size for _, size in shown)
        others = _others(ordered[len(shown) :], status)
        while shown and _size([others]) > spare:
            spare += shown.pop()[1]
            others = _others(ordered[len(shown) :], status)
        middle = [*(section for section, _ in shown), others]
    return Message(text=_fallback(status), blocks=render([*head, *middle, *tail]))
