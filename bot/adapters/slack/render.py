"""The Slack-facing basics every renderer shares: a message's fallback text and blocks, the one
check of Slack's limits, clipping, mrkdwn escaping and dates. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

MAX_BLOCKS = 50
# Text of all the blocks of one message together. Slack answers `msg_blocks_too_long` past about
# 12,000 characters plus what it counts for the blocks themselves (slackapi/bolt-js#2509,
# undocumented): this leaves room for that.
TEXT_BUDGET = 10_000
SECTION_TEXT = 3000
JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Message:
    """A message's fallback text (notifications, screen readers) and its blocks."""

    text: str
    blocks: list[JsonDict]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Slack mrkdwn escaping of the three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_date(when: datetime | None, fmt: str = "{date_short_pretty} {time}") -> str:
    """A date each reader sees in their own time zone, with a UTC fallback."""
    if when is None:
        return "unknown time"
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{fmt}|{fallback}>"


def who(actor: str) -> str:
    """A Slack user id as a mention; anyone else (a CLI user name) as plain text."""
    return f"<@{actor}>" if re.fullmatch(r"[UW][A-Z0-9]{2,}", actor) else escape(actor)


def render(blocks: Sequence[Block]) -> list[JsonDict]:
    """The blocks as Slack's JSON, each checked against Slack's limits (`to_dict` validates),
    and the message against its 50 blocks."""
    rendered = [b.to_dict() for b in blocks]
    if len(rendered) > MAX_BLOCKS:
        raise ValueError(f"{len(rendered)} blocks: over Slack's {MAX_BLOCKS}")
    return rendered


def text_section(text: str) -> SectionBlock:
    """One mrkdwn section, clipped to Slack's limit."""
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT)))


NOTHING_TO_ROLL_BACK_TO = "No previous revision is kept: there is nothing to roll back to."


def fallback(text: str) -> str:
    """A message's fallback text (what notifications show), from plain words: escaped, since
    Slack reads `<!channel>` and links there too, and clipped."""
    return escape(clip(text, SECTION_TEXT))


def section_message(text: str, body: str) -> Message:
    """A message of one mrkdwn section (clipped to Slack's limit) and its plain fallback text."""
    return Message(text=fallback(text), blocks=render([text_section(body)]))


def text_size(blocks: Iterable[Block]) -> int:
    """Characters of every text object in the blocks as sent: what Slack's cumulative limit
    (`TEXT_BUDGET`) counts."""

    def walk(node: Any) -> int:
        if isinstance(node, dict):
            return sum(
                len(value) if key == "text" and isinstance(value, str) else walk(value)
                for key, value in node.items()
            )
        if isinstance(node, list):
            return sum(walk(item) for item in node)
        return 0

    return walk([block.to_dict() for block in blocks])
