"""Slack's side of the conversation, as the bot receives it: payloads and signed requests.

The builders are pure functions producing the payloads Slack documents for slash commands,
Block Kit interactions (`block_actions`), modal submissions (`view_submission`), the Events API
(`event_callback`, including Alertmanager's legacy-attachment `bot_message`) and
`url_verification`. The same dicts feed the HTTP sender here and the Socket Mode fake.

`SlackRequestSender` posts them to a bot's `POST /slack/events` endpoint signed the way Slack
signs them (v0: `HMAC-SHA256(signing_secret, "v0:{timestamp}:{body}")`), with options for
retries, a forged signature and an expired timestamp.

References: docs.slack.dev "Verifying requests from Slack", "Implementing slash commands",
"block_actions payload", "View interaction payloads", "Events API" and "url_verification".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp

__all__ = [
    "DEFAULT_CHANNEL_ID",
    "DEFAULT_CHANNEL_NAME",
    "DEFAULT_USER_ID",
    "DEFAULT_USER_NAME",
    "DEFAULT_WORKSPACE",
    "MAX_TIMESTAMP_SKEW_SECONDS",
    "BotReply",
    "MessageRef",
    "SendOptions",
    "SlackRequestSender",
    "SlackSide",
    "Workspace",
    "alertmanager_attachment",
    "block_actions_payload",
    "bot_message_event",
    "event_callback_payload",
    "find_action_element",
    "iter_buttons",
    "make_event_id",
    "make_trigger_id",
    "message_event",
    "sign",
    "slash_command_payload",
    "trigger_issued_at",
    "url_verification_payload",
    "view_state_values",
    "view_submission_payload",
]

JsonDict = dict[str, Any]

SIGNATURE_VERSION = "v0"
#: Slack rejects (and Bolt refuses) requests whose timestamp is more than five minutes away.
MAX_TIMESTAMP_SKEW_SECONDS = 60 * 5


@dataclass(frozen=True)
class Workspace:
    """The identity of the fake workspace and of the app installed in it.

    IDs follow Slack's shapes: `T…` team, `A…` app, `U…` user, `B…` bot.
    """

    team_id: str = "T0ROLLBACK"
    team_domain: str = "rollback-test"
    team_name: str = "Rollback Test"
    api_app_id: str = "A0ROLLBACK"
    #: The deprecated verification token Slack still sends in every payload's `token` field.
    verification_token: str = "fakeVerificationToken0001"  # noqa: S105 - made up, like every id here
    bot_user_id: str = "U0ROLLBOT1"
    bot_user_name: str = "rollback-bot"
    bot_id: str = "B0ROLLBOT1"

    @property
    def team(self) -> JsonDict:
        return {"id": self.team_id, "domain": self.team_domain}

    def authorizations(self) -> list[JsonDict]:
        return [
            {
                "enterprise_id": None,
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ]


DEFAULT_WORKSPACE = Workspace()
#: The human the sender acts as unless told otherwise; the fake Web API knows this user.
DEFAULT_USER_ID = "U0ONCALL01"
DEFAULT_USER_NAME = "oncall"
#: The channel the sender acts in unless told otherwise; the fake Web API knows this channel.
DEFAULT_CHANNEL_ID = "C0INCIDENT"
DEFAULT_CHANNEL_NAME = "incidents"


# ---------------------------------------------------------------------------------------------
# IDs and signatures
# ---------------------------------------------------------------------------------------------

_ID_ALPHABET = string.ascii_uppercase + string.digits


def _random_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def make_event_id() -> str:
    """An Events API `event_id` ("Ev" followed by upper-case letters and digits)."""
    return _random_id("Ev")


def make_trigger_id(now: float | None = None) -> str:
    """A `trigger_id` shaped like Slack's ("<digits>.<digits>.<32 hex>").

    Its first part is the issue time in milliseconds, so the fake Web API can refuse it with
    `expired_trigger_id` once it is older than Slack's three seconds.
    """
    issued_ms = int((time.time() if now is None else now) * 1000)
    return f"{issued_ms}.{secrets.randbelow(10**10):010d}.{secrets.token_hex(16)}"


def trigger_issued_at(trigger_id: str) -> float | None:
    """When a trigger from `make_trigger_id` was issued (epoch seconds), or None if malformed."""
    parts = trigger_id.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    if len(parts[2]) != 32 or any(c not in string.hexdigits for c in parts[2]):
        return None
    return int(parts[0]) / 1000


def _action_ts(now: float | None = None) -> str:
    return f"{(time.time() if now is None else now):.6f}"


def sign(signing_secret: str, timestamp: int | str, body: bytes | str) -> str:
    """Slack's v0 request signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    raw = body if isinstance(body, bytes) else body.encode()
    basestring = f"{SIGNATURE_VERSION}:{timestamp}:".encode() + raw
    digest = hmac.new(signing_secret.encode(), basestring, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


# ---------------------------------------------------------------------------------------------
# Payload builders (pure)
# ---------------------------------------------------------------------------------------------


def _user_object(workspace: Workspace, user_id: str, user_name: str) -> JsonDict:
    return {
        "id": user_id,
        "username": user_name,
        "name": user_name,
        "team_id": workspace.team_id,
    }


def slash_command_payload(
    command: str,
    text: str = "",
    *,
    workspace: Workspace = DEFAULT_WORKSPACE,
    user_id: str = DEFAULT_USER_ID,
    user_name: str = DEFAULT_USER_NAME,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    response_url: str | None = None,
    trigger_id: str | None = None,
) -> dict[str, str]:
    """The form fields Slack POSTs for a slash command (all values are strings).

    Over HTTP they are form-encoded; over Socket Mode the same mapping is the envelope payload.
    """
    if not command.startswith("/"):
        raise ValueError(f"a slash command starts with '/': {command!r}")
    return {
        "token": workspace.verification_token,
        "team_id": workspace.team_id,
        "team_domain": workspace.team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": workspace.api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url
        or f"https://hooks.slack.com/commands/{workspace.team_id}/{secrets.randbelow(10**13)}/"
        f"{secrets.token_urlsafe(18)}",
        "trigger_id": trigger_id or make_trigger_id(),
    }


def find_action_element(
    blocks: Sequence[Mapping[str, Any]], action_id: str, block_id: str | None = None
) -> tuple[str, Mapping[str, Any]]:
    """The `(block_id, element)` of the interactive element with `action_id` in `blocks` (in
    the block `block_id` when given: an action_id need only be unique within its block).

    Looks in `actions` blocks' elements and in `section` accessories, as Slack renders them.
    """
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates: list[Mapping[str, Any]] = []
        if block.get("type") == "actions":
            candidates.extend(block.get("elements", []))
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping):
            candidates.append(accessory)
        for element in candidates:
            if element.get("action_id") == action_id:
                return str(block.get("block_id", "")), element
    where = f" of block {block_id!r}" if block_id is not None else ""
    raise LookupError(f"no interactive element with action_id {action_id!r} in the blocks{where}")


def _action_from_element(
    element: Mapping[str, Any], block_id: str, *, value: str | None, now: float | None
) -> JsonDict:
    """An `actions[]` item as Slack sends it for a clicked button (or other element)."""
    kind = str(element.get("type", "button"))
    action: JsonDict = {
        "action_id": element["action_id"],
        "block_id": block_id,
        "type": kind,
        "action_ts": _action_ts(now),
    }
    if kind == "button":
        action["text"] = dict(element.get("text", {"type": "plain_text", "text": ""}))
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        if "style" in element:
            action["style"] = element["style"]
    elif kind in {"static_select", "overflow", "radio_buttons"}:
        options = list(element.get("options", []))
        picked = next((o for o in options if o.get("value") == value), None)
        action["selected_option"] = picked
    elif value is not None:
        action["value"] = value
    return action


def block_actions_payload(
    *,
    message: Mapping[str, Any] | None,
    message_ts: str,
    action_id: str,
    blocks: Sequence[Mapping[str, Any]] | None = None,
    value: str | None = None,
    block_id: str | None = None,
    workspace: Workspace = DEFAULT_WORKSPACE,
    user_id: str = DEFAULT_USER_ID,
    user_name: str = DEFAULT_USER_NAME,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    is_ephemeral: bool = False,
    thread_ts: str | None = None,
    response_url: str | None = None,
    trigger_id: str | None = None,
    now: float | None = None,
) -> JsonDict:
    """The interactive payload Slack sends when a user clicks an element in a message.

    `message` is the message as the Web API returns it (its `blocks` locate the element). For an
    ephemeral message Slack sends no `message`; pass `message=None, blocks=...,
    is_ephemeral=True`. `value` overrides the element's value (a stale or tampered button).
    `block_id`: the clicked element's block, where several blocks hold the same action_id.
    """
    source_blocks = blocks if blocks is not None else (message or {}).get("blocks", [])
    block_id, element = find_action_element(source_blocks, action_id, block_id)
    container: JsonDict = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": is_ephemeral,
    }
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
    payload: JsonDict = {
        "type": "block_actions",
        "user": _user_object(workspace, user_id, user_name),
        "api_app_id": workspace.api_app_id,
        "token": workspace.verification_token,
        "container": container,
        "trigger_id": trigger_id or make_trigger_id(now),
        "team": workspace.team,
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
    }
    if message is not None and not is_ephemeral:
        payload["message"] = dict(message)
    payload["state"] = {"values": {}}
    payload["response_url"] = response_url or (
        f"https://hooks.slack.com/actions/{workspace.team_id}/{secrets.randbelow(10**13)}/"
        f"{secrets.token_urlsafe(18)}"
    )
    payload["actions"] = [_action_from_element(element, block_id, value=value, now=now)]
    return payload


def view_state_values(view: Mapping[str, Any], answers: Mapping[str, Any]) -> JsonDict:
    """`view.state.values` for a modal, filled the way Slack fills it on submission.

    `answers` maps an input element's `action_id` to what the user entered: a string for text
    and number inputs, the chosen option `value` for selects and radio buttons, a list of values
    for checkboxes and multi-selects, a user/channel id for `users_select`/
    `conversations_select`. Inputs left out are submitted empty, as Slack does.
    """
    values: JsonDict = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block.get("element", {})
        action_id = element.get("action_id")
        if action_id is None:
            continue
        kind = element.get("type")
        answer = answers.get(action_id)
        state: JsonDict = {"type": kind}
        options = list(element.get("options", []))
        if kind in {"plain_text_input", "number_input", "email_text_input", "url_text_input"}:
            state["value"] = None if answer is None else str(answer)
        elif kind in {"static_select", "radio_buttons"}:
            state["selected_option"] = next((o for o in options if o.get("value") == answer), None)
        elif kind in {"checkboxes", "multi_static_select"}:
            chosen = set(answer or [])
            state["selected_options"] = [o for o in options if o.get("value") in chosen]
        elif kind == "users_select":
            state["selected_user"] = answer
        elif kind == "conversations_select":
            state["selected_conversation"] = answer
        elif kind == "channels_select":
            state["selected_channel"] = answer
        else:
            state["value"] = answer
        values[str(block.get("block_id", ""))] = {action_id: state}
    unknown = set(answers) - {b.get("element", {}).get("action_id") for b in view.get("blocks", [])}
    if unknown:
        raise LookupError(f"the view has no input elements {sorted(unknown)}")
    return values


def view_submission_payload(
    view: Mapping[str, Any],
    answers: Mapping[str, Any] | None = None,
    *,
    state_values: Mapping[str, Any] | None = None,
    workspace: Workspace = DEFAULT_WORKSPACE,
    user_id: str = DEFAULT_USER_ID,
    user_name: str = DEFAULT_USER_NAME,
    trigger_id: str | None = None,
) -> JsonDict:
    """The interactive payload Slack sends when a user submits a modal.

    `view` is the view as `views.open`/`views.update` returned it (id, hash, callback_id,
    private_metadata, blocks …); `answers` fills `state.values` via `view_state_values`, or pass
    `state_values` directly.
    """
    submitted = dict(view)
    if state_values is None:
        state_values = view_state_values(view, answers or {})
    submitted["state"] = {"values": dict(state_values)}
    return {
        "type": "view_submission",
        "team": workspace.team,
        "user": _user_object(workspace, user_id, user_name),
        "api_app_id": workspace.api_app_id,
        "token": workspace.verification_token,
        "trigger_id": trigger_id or make_trigger_id(),
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def message_event(
    text: str,
    *,
    channel: str = DEFAULT_CHANNEL_ID,
    user: str = DEFAULT_USER_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    workspace: Workspace = DEFAULT_WORKSPACE,
    channel_type: str = "channel",
) -> JsonDict:
    """A `message` event for a person's message in a channel (Events API `event` field)."""
    ts = ts or _action_ts()
    event: JsonDict = {
        "type": "message",
        "client_msg_id": str(uuid.uuid4()),
        "text": text,
        "user": user,
        "ts": ts,
        "team": workspace.team_id,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def bot_message_event(
    *,
    attachments: Sequence[Mapping[str, Any]],
    bot_id: str,
    username: str,
    text: str = "",
    channel: str = DEFAULT_CHANNEL_ID,
    ts: str | None = None,
    channel_type: str = "channel",
) -> JsonDict:
    """A `message` event with subtype `bot_message`, as an incoming webhook's post arrives.

    Attachments get the sequential `id` Slack assigns to each.
    """
    ts = ts or _action_ts()
    numbered = [{"id": i, **dict(a)} for i, a in enumerate(attachments, start=1)]
    return {
        "type": "message",
        "subtype": "bot_message",
        "text": text,
        "ts": ts,
        "username": username,
        "bot_id": bot_id,
        "attachments": numbered,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }


#: Slack's hex for the named attachment colours (the API returns them without '#').
_ATTACHMENT_COLOURS = {"good": "2eb886", "warning": "daa038", "danger": "a30200"}


def alertmanager_attachment(
    *,
    status: str = "firing",
    alert_count: int = 1,
    group_labels: Mapping[str, str],
    common_labels: Mapping[str, str] | None = None,
    external_url: str = "http://alertmanager.monitoring:9093",
    receiver: str = "slack",
    text: str = "",
) -> JsonDict:
    """One legacy attachment as Alertmanager's default `slack_configs` renders it.

    Title: `[FIRING:n] <group label values> (<other common label values>)` — the values sorted
    by label name, like Go templates' `SortedPairs.Values`; colour danger/good; a title link
    to the Alertmanager UI; the fallback is `title | link`; `text` is empty by default.
    """
    common = dict(common_labels or group_labels)
    title = f"[{status.upper()}"
    if status == "firing":
        title += f":{alert_count}"
    title += "] " + " ".join(v for _, v in sorted(group_labels.items()))
    extra = {k: v for k, v in common.items() if k not in group_labels}
    if len(common) > len(group_labels) and extra:
        title += " (" + " ".join(v for _, v in sorted(extra.items())) + ")"
    link = f"{external_url}/#/alerts?receiver={receiver}"
    return {
        "color": _ATTACHMENT_COLOURS["danger" if status == "firing" else "good"],
        "fallback": f"{title} | {link}",
        "title": title,
        "title_link": link,
        "text": text,
        "mrkdwn_in": ["fallback", "pretext", "text"],
    }


def event_callback_payload(
    event: Mapping[str, Any],
    *,
    workspace: Workspace = DEFAULT_WORKSPACE,
    event_id: str | None = None,
    event_time: int | None = None,
) -> JsonDict:
    """The Events API envelope (`type: event_callback`) around one event."""
    return {
        "token": workspace.verification_token,
        "team_id": workspace.team_id,
        "context_team_id": workspace.team_id,
        "context_enterprise_id": None,
        "api_app_id": workspace.api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or make_event_id(),
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": workspace.authorizations(),
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }


def url_verification_payload(
    challenge: str | None = None, *, workspace: Workspace = DEFAULT_WORKSPACE
) -> JsonDict:
    """The handshake Slack sends when a Request URL is configured."""
    return {
        "token": workspace.verification_token,
        "challenge": challenge or secrets.token_urlsafe(36),
        "type": "url_verification",
    }


# ---------------------------------------------------------------------------------------------
# The sender
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageRef:
    """A message as the Slack side holds it, for building a click on it."""

    payload: Mapping[str, Any]
    is_ephemeral: bool = False
    thread_ts: str | None = None


class SlackSide(Protocol):
    """What the sender asks of a Slack stand-in (the fake Web API implements it)."""

    @property
    def workspace(self) -> Workspace: ...

    def issue_response_url(
        self,
        *,
        channel_id: str,
        user_id: str,
        message_ts: str | None = None,
        thread_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> str: ...

    def user_name(self, user_id: str) -> str: ...

    def channel_name(self, channel_id: str) -> str: ...

    def lookup_message(self, channel_id: str, ts: str) -> MessageRef | None: ...

    def lookup_view(self, view_id: str) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class SendOptions:
    """How to deliver one request: as a retry, with a forged signature or a stale timestamp."""

    retry_num: int | None = None
    retry_reason: str | None = None
    forge_signature: bool = False
    expired_timestamp: bool = False
    timestamp: int | None = None

    @classmethod
    def retry(cls, num: int = 1, reason: str = "http_timeout") -> SendOptions:
        return cls(retry_num=num, retry_reason=reason)


@dataclass(frozen=True)
class BotReply:
    """The bot's HTTP answer to one request."""

    status: int
    text: str
    headers: Mapping[str, str]
    #: The body that was sent, decoded (form fields, interactive payload or JSON event).
    sent: Mapping[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


class SlackRequestSender:
    """Sends correctly signed Slack requests to a bot's `POST /slack/events` endpoint.

    With `slack` (the fake Web API), response URLs point at the fake (so `respond()` lands
    there), names of users and channels come from it, and clicks and submissions are built from
    the message or view as the fake holds it now. Set `events_url` (or pass it) before sending.
    """

    def __init__(
        self,
        signing_secret: str,
        *,
        events_url: str | None = None,
        slack: SlackSide | None = None,
        workspace: Workspace | None = None,
        user_id: str = DEFAULT_USER_ID,
        channel_id: str = DEFAULT_CHANNEL_ID,
        timeout: float = 10.0,
    ) -> None:
        self.signing_secret = signing_secret
        self.events_url = events_url
        self.slack = slack
        self.workspace = workspace or (slack.workspace if slack is not None else DEFAULT_WORKSPACE)
        self.user_id = user_id
        self.channel_id = channel_id
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        #: Every reply, in order, for tests that want to look back.
        self.replies: list[BotReply] = []

    async def __aenter__(self) -> SlackRequestSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- names and URLs ---------------------------------------------------------------------

    def _user_name(self, user_id: str) -> str:
        if self.slack is not None:
            return self.slack.user_name(user_id)
        return DEFAULT_USER_NAME if user_id == DEFAULT_USER_ID else user_id.lower()

    def _channel_name(self, channel_id: str) -> str:
        if self.slack is not None:
            return self.slack.channel_name(channel_id)
        return DEFAULT_CHANNEL_NAME if channel_id == DEFAULT_CHANNEL_ID else channel_id.lower()

    def _response_url(
        self,
        *,
        channel_id: str,
        user_id: str,
        message_ts: str | None = None,
        thread_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> str | None:
        if self.slack is None:
            return None
        return self.slack.issue_response_url(
            channel_id=channel_id,
            user_id=user_id,
            message_ts=message_ts,
            thread_ts=thread_ts,
            is_ephemeral=is_ephemeral,
        )

    # -- builders bound to this sender's workspace and Slack side ----------------------------

    def build_slash_command(
        self,
        command: str,
        text: str = "",
        *,
        user_id: str | None = None,
        channel_id: str | None = None,
    ) -> dict[str, str]:
        user_id = user_id or self.user_id
        channel_id = channel_id or self.channel_id
        return slash_command_payload(
            command,
            text,
            workspace=self.workspace,
            user_id=user_id,
            user_name=self._user_name(user_id),
            channel_id=channel_id,
            channel_name=self._channel_name(channel_id),
            response_url=self._response_url(channel_id=channel_id, user_id=user_id),
        )

    def build_click(
        self,
        channel_id: str,
        message_ts: str,
        action_id: str,
        *,
        user_id: str | None = None,
        value: str | None = None,
        message: Mapping[str, Any] | None = None,
        block_id: str | None = None,
    ) -> JsonDict:
        """A `block_actions` payload for clicking `action_id` on a message.

        The message comes from the Slack side as it is now (or pass `message`).
        """
        user_id = user_id or self.user_id
        is_ephemeral = False
        thread_ts: str | None = None
        if message is None:
            if self.slack is None:
                raise ValueError("pass `message` when the sender has no Slack side")
            ref = self.slack.lookup_message(channel_id, message_ts)
            if ref is None:
                raise LookupError(f"no message {message_ts} in {channel_id}")
            message, is_ephemeral, thread_ts = ref.payload, ref.is_ephemeral, ref.thread_ts
        else:
            thread_ts = message.get("thread_ts")
        return block_actions_payload(
            message=message,
            message_ts=message_ts,
            action_id=action_id,
            blocks=message.get("blocks", []),
            value=value,
            block_id=block_id,
            workspace=self.workspace,
            user_id=user_id,
            user_name=self._user_name(user_id),
            channel_id=channel_id,
            channel_name=self._channel_name(channel_id),
            is_ephemeral=is_ephemeral,
            thread_ts=thread_ts,
            response_url=self._response_url(
                channel_id=channel_id,
                user_id=user_id,
                message_ts=message_ts,
                thread_ts=thread_ts,
                is_ephemeral=is_ephemeral,
            ),
        )

    def build_view_submission(
        self,
        view: str | Mapping[str, Any],
        answers: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
    ) -> JsonDict:
        """A `view_submission` payload for a view (its id, looked up on the Slack side, or
        the view itself)."""
        if isinstance(view, str):
            if self.slack is None:
                raise ValueError("pass the view itself when the sender has no Slack side")
            found = self.slack.lookup_view(view)
            if found is None:
                raise LookupError(f"no view {view}")
            view = found
        user_id = user_id or self.user_id
        return view_submission_payload(
            view,
            answers,
            workspace=self.workspace,
            user_id=user_id,
            user_name=self._user_name(user_id),
        )

    def build_event(self, event: Mapping[str, Any], *, event_id: str | None = None) -> JsonDict:
        return event_callback_payload(event, workspace=self.workspace, event_id=event_id)

    # -- sending ----------------------------------------------------------------------------

    async def post(
        self,
        body: str,
        content_type: str,
        options: SendOptions | None = None,
        *,
        sent: Mapping[str, Any] | None = None,
    ) -> BotReply:
        """POST a raw body with Slack's signature headers (and retry headers if asked)."""
        if self.events_url is None:
            raise RuntimeError("set SlackRequestSender.events_url to the bot's /slack/events URL")
        options = options or SendOptions()
        timestamp = options.timestamp if options.timestamp is not None else int(time.time())
        if options.expired_timestamp:
            timestamp -= MAX_TIMESTAMP_SKEW_SECONDS + 60
        secret = self.signing_secret
        if options.forge_signature:
            secret = "forged-" + secrets.token_hex(8)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign(secret, timestamp, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if options.retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(options.retry_num)
            headers["X-Slack-Retry-Reason"] = options.retry_reason or "http_timeout"
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.post(self.events_url, data=body.encode(), headers=headers) as r:
            reply = BotReply(
                status=r.status, text=await r.text(), headers=dict(r.headers), sent=sent or {}
            )
        self.replies.append(reply)
        return reply

    async def send_form(
        self, fields: Mapping[str, str], options: SendOptions | None = None
    ) -> BotReply:
        body = urlencode(fields)
        return await self.post(body, "application/x-www-form-urlencoded", options, sent=fields)

    async def send_interactive(
        self, payload: Mapping[str, Any], options: SendOptions | None = None
    ) -> BotReply:
        """An interactive payload: form-encoded, one field `payload` holding the JSON."""
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", options, sent=payload)

    async def send_json(
        self, payload: Mapping[str, Any], options: SendOptions | None = None
    ) -> BotReply:
        """An Events API body (JSON)."""
        return await self.post(json.dumps(payload), "application/json", options, sent=payload)

    async def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        user_id: str | None = None,
        channel_id: str | None = None,
        options: SendOptions | None = None,
    ) -> BotReply:
        fields = self.build_slash_command(command, text, user_id=user_id, channel_id=channel_id)
        return await self.send_form(fields, options)

    async def click(
        self,
        channel_id: str,
        message_ts: str,
        action_id: str,
        *,
        user_id: str | None = None,
        value: str | None = None,
        message: Mapping[str, Any] | None = None,
        block_id: str | None = None,
        options: SendOptions | None = None,
    ) -> BotReply:
        """Click the element `action_id` (in the block `block_id`, where several blocks hold
        it) on the message at `channel_id`/`message_ts`."""
        payload = self.build_click(
            channel_id,
            message_ts,
            action_id,
            user_id=user_id,
            value=value,
            message=message,
            block_id=block_id,
        )
        return await self.send_interactive(payload, options)

    async def submit_view(
        self,
        view: str | Mapping[str, Any],
        answers: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        options: SendOptions | None = None,
    ) -> BotReply:
        payload = self.build_view_submission(view, answers, user_id=user_id)
        return await self.send_interactive(payload, options)

    async def event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        options: SendOptions | None = None,
    ) -> BotReply:
        return await self.send_json(self.build_event(event, event_id=event_id), options)

    async def url_verification(
        self, challenge: str | None = None, options: SendOptions | None = None
    ) -> BotReply:
        return await self.send_json(
            url_verification_payload(challenge, workspace=self.workspace), options
        )


def iter_buttons(blocks: Iterable[Mapping[str, Any]]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """`(block_id, button)` for every button in `blocks` (actions elements and accessories)."""
    for block in blocks:
        elements: list[Mapping[str, Any]] = []
        if block.get("type") == "actions":
            elements.extend(block.get("elements", []))
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping):
            elements.append(accessory)
        for element in elements:
            if element.get("type") == "button":
                yield str(block.get("block_id", "")), element
