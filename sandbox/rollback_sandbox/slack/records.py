"""What the Slack stand-in holds and records: calls, messages with their edit history, users,
channels. Plain dataclasses; `FakeSlackWebApi` (web_api.py) creates and changes them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollback_sandbox.slack.blockkit import texts_in
from rollback_sandbox.slack.requests import DEFAULT_USER_ID, DEFAULT_WORKSPACE, iter_buttons

__all__ = ["FakeChannel", "FakeUser", "MessageVersion", "RecordedCall", "StoredMessage"]

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class RecordedCall:
    """One request the fake received."""

    method: str
    #: The arguments, parsed: JSON-typed ones (blocks, attachments, view, metadata) decoded;
    #: form and query values otherwise stay strings, JSON bodies keep their types.
    args: Mapping[str, Any]
    #: `time.time()` when it arrived.
    time: float
    token: str | None
    #: "json", "form" or "query" (how the arguments came).
    transport: str
    status: int
    response: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return None if error is None else str(error)


@dataclass(frozen=True)
class MessageVersion:
    """A message's content at one point of its life."""

    text: str
    blocks: tuple[JsonDict, ...]
    attachments: tuple[JsonDict, ...]
    #: `time.time()` when this version was written.
    at: float
    #: What wrote it: "chat.postMessage", "chat.update", "response_url", "seed", …
    by: str


@dataclass
class StoredMessage:
    """A message as the fake holds it now (mutable: edits, replies and reactions change it)."""

    channel: str
    ts: str
    text: str
    blocks: list[JsonDict] = field(default_factory=list)
    attachments: list[JsonDict] = field(default_factory=list)
    user: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    username: str | None = None
    subtype: str | None = None
    team: str | None = None
    thread_ts: str | None = None
    parent_user_id: str | None = None
    metadata: JsonDict | None = None
    bot_profile: JsonDict | None = None
    reply_broadcast: bool = False
    #: For ephemeral messages: the only user who sees it.
    ephemeral_to: str | None = None
    deleted: bool = False
    posted_at: float = field(default_factory=time.time)
    posted_by: str = "chat.postMessage"
    #: Previous versions, oldest first (each `chat.update` or `replace_original` adds one).
    edits: list[MessageVersion] = field(default_factory=list)
    #: When and by what the current version was written.
    written_at: float = field(default_factory=time.time)
    written_by: str = ""
    edited: JsonDict | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)

    @property
    def is_ephemeral(self) -> bool:
        return self.ephemeral_to is not None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def __post_init__(self) -> None:
        self.written_at = self.posted_at
        self.written_by = self.written_by or self.posted_by

    @property
    def versions(self) -> list[MessageVersion]:
        """Every version, oldest first, the current one last."""
        return [*self.edits, self._current()]

    def buttons(self) -> list[JsonDict]:
        """Every button in the message's blocks (with `block_id` added to each)."""
        return [{**b, "block_id": block_id} for block_id, b in iter_buttons(self.blocks)]

    def button(self, action_id: str) -> JsonDict:
        for b in self.buttons():
            if b.get("action_id") == action_id:
                return b
        raise LookupError(f"no button {action_id!r} in message {self.ts}")

    def all_text(self) -> str:
        """The message's visible text: `text`, block texts and fields, attachment texts."""
        parts = [self.text]
        parts.extend(texts_in(self.blocks))
        for a in self.attachments:
            parts.extend(str(a.get(k, "")) for k in ("pretext", "title", "text", "fallback"))
            parts.extend(texts_in(a.get("blocks", [])))
        return "\n".join(p for p in parts if p)

    def to_api(self) -> JsonDict:
        """The message object as `chat.postMessage`, history and interaction payloads show it."""
        d: JsonDict = {"type": "message"}
        if self.subtype:
            d["subtype"] = self.subtype
        d["text"] = self.text
        if self.user:
            d["user"] = self.user
        if self.username:
            d["username"] = self.username
        if self.bot_id:
            d["bot_id"] = self.bot_id
        if self.app_id:
            d["app_id"] = self.app_id
        d["ts"] = self.ts
        if self.team:
            d["team"] = self.team
        if self.bot_profile:
            d["bot_profile"] = self.bot_profile
        if self.blocks:
            d["blocks"] = self.blocks
        if self.attachments:
            d["attachments"] = self.attachments
        if self.metadata:
            d["metadata"] = self.metadata
        if self.edited:
            d["edited"] = self.edited
        if self.thread_ts:
            d["thread_ts"] = self.thread_ts
        if self.parent_user_id:
            d["parent_user_id"] = self.parent_user_id
        if self.replies:
            d["reply_count"] = len(self.replies)
            d["latest_reply"] = self.replies[-1]
        if self.reactions:
            d["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        if self.is_ephemeral:
            d["is_ephemeral"] = True
        return d

    def to_event(self, channel_type: str = "channel") -> JsonDict:
        """This message as the Events API `message` event announcing it.

        A person's message carries `client_msg_id`; an integration's is subtype `bot_message`.
        """
        event = self.to_api()
        event.pop("bot_profile", None)
        if self.user and not self.bot_id:
            event["client_msg_id"] = str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{self.channel}/{self.ts}")
            )
        event["channel"] = self.channel
        event["event_ts"] = self.ts
        event["channel_type"] = channel_type
        return event

    def _current(self) -> MessageVersion:
        return MessageVersion(
            self.text,
            tuple(self.blocks),
            tuple(self.attachments),
            self.written_at,
            self.written_by,
        )

    def _replace(
        self,
        by: str,
        *,
        text: str | None,
        blocks: list[JsonDict] | None,
        attachments: list[JsonDict] | None,
    ) -> None:
        """Record the current version in `edits`, then apply the given parts."""
        self.edits.append(self._current())
        if text is not None:
            self.text = text
        if blocks is not None:
            self.blocks = blocks
        if attachments is not None:
            self.attachments = attachments
        self.written_at = time.time()
        self.written_by = by


@dataclass
class FakeUser:
    id: str
    name: str
    real_name: str
    email: str | None = None
    is_bot: bool = False
    is_admin: bool = False
    deleted: bool = False
    tz: str = "Europe/London"
    tz_offset: int = 0
    team_id: str = DEFAULT_WORKSPACE.team_id
    #: A guest: multi-channel (restricted) or single-channel (ultra restricted).
    is_restricted: bool = False
    is_ultra_restricted: bool = False

    def to_api(self) -> JsonDict:
        profile: JsonDict = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "status_text": "",
            "status_emoji": "",
            "avatar_hash": self.id.lower()[:12],
            "team": self.team_id,
        }
        if self.email:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": self.tz_offset,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": self.is_restricted or self.is_ultra_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "has_2fa": False,
        }


@dataclass
class FakeChannel:
    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    is_archived: bool = False
    bot_is_member: bool = True
    #: Who is in the channel; None means everyone.
    members: set[str] | None = None
    created: int = 1_700_000_000
    topic: str = ""
    purpose: str = ""
    messages: dict[str, StoredMessage] = field(default_factory=dict)

    def to_api(self) -> JsonDict:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "is_member": self.bot_is_member,
            "creator": DEFAULT_USER_ID,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
        }
