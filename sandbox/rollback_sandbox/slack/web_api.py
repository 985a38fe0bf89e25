"""A Slack Web API stand-in on real HTTP, built from Slack's documented formats.

`FakeSlackWebApi` serves `http://127.0.0.1:<port>/api/<method>` for the methods the bot uses,
the Socket Mode websocket (`apps.connections.open` returns its URL) and `response_url`s
(`POST /response/<id>`). Point `slack_sdk`'s clients at it with `base_url=fake.api_url`.

It behaves as Slack documents:
- arguments as query string, form body (JSON-typed ones such as `blocks` as JSON strings) or a
  JSON body; the token as `Authorization: Bearer` or a `token` argument (never inside a JSON
  body); `not_authed`, `invalid_auth`, `not_allowed_token_type` (bot vs app-level token);
- errors as HTTP 200 `{"ok": false, "error": …}`, except `ratelimited`: HTTP 429 with
  `Retry-After` (whole seconds until the call would pass, at least 1);
- Slack's documented rate limits, on by default (`rate_limits.SLACK_LIMITS`, token buckets: a
  burst, then the documented rate): chat.postMessage 1 a second per channel with bursts of 5
  and 300 a minute across the workspace, chat.update 50 a minute (Tier 3) with bursts of 10,
  and the other methods' tiers. Every authenticated call counts, whatever its outcome (the
  limits are checked before the method's own checks); a refused call does not.
  `enforce_limits=False` or `use_limits(None)` turns them off, `limits=`/`use_limits(table)`
  replaces them, `reset_limits()` refills the buckets; `clock=` drives them in tests;
- on top of those, opt-in faults: `set_rate_limit` (sliding windows, e.g. a tighter limit for
  one channel or per message) and `fail_next` (the next calls fail, 429 or any error);
  `clear_faults()` forgets those and leaves Slack's limits as they are;
- message size: text over 40,000 characters is `msg_too_long`. (Slack also answers
  `msg_blocks_too_long` for blocks too long as a whole, but publishes no figure, so the fake
  does not make one up.)
- Block Kit limits checked (`invalid_blocks`, with Slack's `errors` and json-pointers): 50 blocks
  a message (100 a modal), section text 3,000, fields 10 × 2,000, header 150, button text 75,
  value 2,000, action_id/block_id 255, URL 3,000, confirm text 300, 25 elements an actions block,
  10 a context block; blocks without `block_id` get a generated one, plain_text gets `emoji`;
- messages get unique, increasing `ts` ("1700000000.000100"), keep `thread_ts` (a reply's
  `thread_ts` is normalised to its parent), parents track `reply_count`/`latest_reply`;
  `chat.update` keeps the previous blocks/attachments when omitted, marks `edited` and refuses
  others' messages (`cant_update_message`) and ephemeral ones (`message_not_found`);
- `views.open` exchanges a trigger once (`exchanged_trigger_id`), refuses it after 3 s
  (`expired_trigger_id`); `views.update` honours `hash` (`hash_conflict`);
- files as slack_sdk's `files_upload_v2` uploads them (files.py): `files.getUploadURLExternal`
  answers an `upload_url` (`POST /upload/v1/<key>`, no token: raw bytes or a multipart form,
  exactly the `length` announced, else HTTP 400; an unknown or spent URL is a 404; recorded as
  calls of method `"upload_url"`, transport "raw" or "form"; `fail_next("upload_url", …)` fails
  it), `files.completeUploadExternal` shares them once as a message with `files` (in a thread
  with `thread_ts`, which must name a message: `thread_not_found`), after chat.postMessage's
  channel checks; `url_private` (`GET /files-pri/…`) serves the bytes to the bot token.

Everything is recorded: `calls(method)` (method, parsed args, time, HTTP status, response),
the current state of every message per channel (`messages`, `message`, `thread`, `ephemerals`)
with each message's edit history (`StoredMessage.edits`), views, response_url posts
(recorded as calls of method `"response_url"`) and files (`files`, `file`: bytes, title, where
they were shared; a file's message is a `FileMessage` whose `files` the thread shows).
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import string
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, TypeVar

from aiohttp import web

from rollback_sandbox.slack.blockkit import (
    MAX_MESSAGE_BLOCKS,
    MAX_VIEW_BLOCKS,
    normalise_blocks,
    validate_blocks,
    validate_view,
)
from rollback_sandbox.slack.files import (
    MAX_SHARE_CHANNELS,
    FileMessage,
    FileShare,
    FileUploadError,
    FileUploads,
    StoredFile,
    UploadRejected,
    read_upload,
    thread_parent,
)
from rollback_sandbox.slack.rate_limits import SLACK_LIMITS, LimitTable, RateLimiter
from rollback_sandbox.slack.records import (
    FakeChannel,
    FakeUser,
    MessageVersion,
    RecordedCall,
    StoredMessage,
)
from rollback_sandbox.slack.requests import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_CHANNEL_NAME,
    DEFAULT_USER_ID,
    DEFAULT_USER_NAME,
    DEFAULT_WORKSPACE,
    MessageRef,
    Workspace,
    trigger_issued_at,
)
from rollback_sandbox.slack.socket_mode import SocketModeServer

__all__ = [
    "DEFAULT_APP_TOKEN",
    "DEFAULT_BOT_TOKEN",
    "GENERAL_CHANNEL_ID",
    "MAX_ATTACHMENTS",
    "MAX_MESSAGE_BLOCKS",
    "MAX_TEXT_LENGTH",
    "MAX_VIEW_BLOCKS",
    "RESPONSE_URL_MAX_USES",
    "RESPONSE_URL_TTL_SECONDS",
    "SLACK_LIMITS",
    "FakeChannel",
    "FakeSlackWebApi",
    "FakeUser",
    "FileMessage",
    "LimitTable",
    "MessageVersion",
    "RateLimitScope",
    "RecordedCall",
    "SlackError",
    "StoredFile",
    "StoredMessage",
    "validate_blocks",
    "validate_view",
]

JsonDict = dict[str, Any]
T = TypeVar("T")
#: What one rate-limit budget covers: each channel, each message (channel + ts), or the method.
RateLimitScope = Literal["channel", "message", "method"]

#: Tokens the stand-in accepts (made up: they open nothing but this fake).
DEFAULT_BOT_TOKEN = "xoxb-0000000001-0000000001-fakeBotTokenForTests"  # noqa: S105
DEFAULT_APP_TOKEN = "xapp-1-A0ROLLBACK-0000000001-fakeAppLevelTokenForTests"  # noqa: S105
GENERAL_CHANNEL_ID = "C0GENERAL1"

#: Scopes the fake bot token "has", reported in `X-OAuth-Scopes` like Slack does.
_BOT_SCOPES = (
    "chat:write,chat:write.public,commands,channels:read,groups:read,users:read,"
    "usergroups:read,reactions:write,channels:history,files:write"
)
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
#: Message text longer than this is refused with `msg_too_long`.
MAX_TEXT_LENGTH = 40_000
MAX_ATTACHMENTS = 100
#: A response_url works five times within 30 minutes.
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60

_ID_ALPHABET = string.ascii_uppercase + string.digits


class SlackError(Exception):
    """An `ok: false` answer (HTTP 200 unless `status` says otherwise)."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> JsonDict:
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class _UserGroup:
    id: str
    handle: str
    name: str
    users: list[str]
    disabled: bool = False


@dataclass
class _ResponseUrl:
    channel_id: str
    user_id: str
    message_ts: str | None
    thread_ts: str | None
    is_ephemeral: bool
    issued_at: float
    uses: int = 0
    #: The last message this response_url posted (what a later replace_original replaces).
    last_posted: str | None = None


@dataclass
class _RateRule:
    method: str
    channel: str | None
    per: RateLimitScope
    max_calls: int
    window: float
    retry_after: int | None


@dataclass
class _Injected:
    error: str
    status: int
    retry_after: int | None
    remaining: int


@dataclass(frozen=True)
class _Content:
    """A message's content as Slack stores it; None where the request did not give it."""

    text: str | None
    blocks: list[JsonDict] | None
    attachments: list[JsonDict] | None
    metadata: JsonDict | None
    username: str | None


def _ratelimited(retry_after: int) -> SlackError:
    return SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class FakeSlackWebApi:
    """Slack's Web API, Socket Mode and response_url endpoints for one fake workspace."""

    def __init__(
        self,
        *,
        workspace: Workspace = DEFAULT_WORKSPACE,
        bot_token: str = DEFAULT_BOT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        trigger_ttl: float | None = 3.0,
        enforce_limits: bool = True,
        limits: LimitTable | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`enforce_limits`: Slack's rate limits (`limits`, default `SLACK_LIMITS`) answer 429
        past their rate. `clock`: seconds, for the rate limits and `set_rate_limit` windows."""
        self._workspace = workspace
        self.bot_token = bot_token
        self.app_token = app_token
        #: Seconds a trigger_id stays usable (Slack: 3); None turns the check off.
        self.trigger_ttl = trigger_ttl
        self.socket_mode = SocketModeServer(app_id=workspace.api_app_id)
        self._calls: list[RecordedCall] = []
        self._users: dict[str, FakeUser] = {}
        self._channels: dict[str, FakeChannel] = {}
        self._ephemerals: list[StoredMessage] = []
        self._usergroups: dict[str, _UserGroup] = {}
        self._views: dict[str, JsonDict] = {}
        self._used_triggers: set[str] = set()
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._files = FileUploads(self._new_id)
        self._clock = clock
        self._limiter: RateLimiter | None = None
        self.use_limits((SLACK_LIMITS if limits is None else limits) if enforce_limits else None)
        self._rate_rules: list[_RateRule] = []
        self._rate_hits: dict[tuple[str, str], deque[float]] = {}
        self._injected: dict[str, list[_Injected]] = {}
        self._last_ts_micros = 0
        self._ids = 0
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._seed()

    # -- lifecycle ---------------------------------------------------------------------------

    def _seed(self) -> None:
        ws = self._workspace
        self._users[ws.bot_user_id] = FakeUser(
            ws.bot_user_id, ws.bot_user_name, ws.bot_user_name, is_bot=True, team_id=ws.team_id
        )
        self.add_user(
            DEFAULT_USER_NAME,
            user_id=DEFAULT_USER_ID,
            real_name="On Call",
            email="oncall@example.com",
        )
        self.add_channel("general", channel_id=GENERAL_CHANNEL_ID)
        self.add_channel(DEFAULT_CHANNEL_NAME, channel_id=DEFAULT_CHANNEL_ID)

    def attach(self, app: web.Application) -> None:
        """Mount the Web API, response_url and Socket Mode routes on `app`."""
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{id}", self._handle_response_url)
        app.router.add_post("/upload/v1/{key}", self._handle_upload)
        app.router.add_get("/files-pri/{ref}/{name}", self._handle_file_download)
        self.socket_mode.attach(app)

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, app: web.Application | None = None
    ) -> Self:
        """Serve on `host:port` (0: a free port); with `app`, mount into it and serve that
        (the local workspace adds its pages to the same server)."""
        if app is None:
            app = web.Application()
        self.attach(app)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        address = self._runner.addresses[0]
        self._host = host
        self._port = int(address[1])
        return self

    async def close(self) -> None:
        await self.socket_mode.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        if self._port is None:
            raise RuntimeError("the fake Slack is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def api_url(self) -> str:
        """The `base_url` for slack_sdk clients (ends with `/api/`)."""
        return f"{self.url}/api/"

    @property
    def workspace(self) -> Workspace:
        return self._workspace

    # -- seeding -----------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        number = self._ids
        digits = ""
        while number:
            number, rest = divmod(number, 36)
            digits = _ID_ALPHABET[rest] + digits
        return prefix + "0F" + digits.rjust(8, "0")

    def add_user(
        self,
        name: str,
        *,
        user_id: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
        is_bot: bool = False,
        is_admin: bool = False,
        deleted: bool = False,
        tz: str = "Europe/London",
        tz_offset: int = 0,
        guest: bool = False,
        single_channel_guest: bool = False,
    ) -> str:
        """Add a user (or replace one with the same id); returns its id (`U…`)."""
        user_id = user_id or self._new_id("U")
        self._users[user_id] = FakeUser(
            id=user_id,
            name=name,
            real_name=real_name or name,
            email=email,
            is_bot=is_bot,
            is_admin=is_admin,
            deleted=deleted,
            tz=tz,
            tz_offset=tz_offset,
            team_id=self._workspace.team_id,
            is_restricted=guest,
            is_ultra_restricted=single_channel_guest,
        )
        return user_id

    def add_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        is_private: bool = False,
        bot_is_member: bool = True,
        is_archived: bool = False,
        members: Iterable[str] | None = None,
        topic: str = "",
    ) -> str:
        """Add a channel; returns its id (`C…`). `members=None` means everyone is in it."""
        channel_id = channel_id or self._new_id("C")
        self._channels[channel_id] = FakeChannel(
            id=channel_id,
            name=name.lstrip("#"),
            is_private=is_private,
            bot_is_member=bot_is_member,
            is_archived=is_archived,
            members=None if members is None else set(members),
            topic=topic,
        )
        return channel_id

    def add_usergroup(
        self,
        usergroup_id: str,
        handle: str,
        users: Sequence[str],
        *,
        name: str | None = None,
        disabled: bool = False,
    ) -> str:
        """Add a user group (`S…`) with its members; returns its id."""
        self._usergroups[usergroup_id] = _UserGroup(
            usergroup_id, handle, name or handle, list(users), disabled
        )
        return usergroup_id

    def post_as(
        self,
        channel: str,
        text: str = "",
        *,
        user: str | None = None,
        bot_id: str | None = None,
        username: str | None = None,
        attachments: Sequence[Mapping[str, Any]] = (),
        blocks: Sequence[Mapping[str, Any]] = (),
        thread_ts: str | None = None,
    ) -> StoredMessage:
        """Put a message in a channel as someone else would (a person, or an integration
        such as Alertmanager's incoming webhook with `bot_id`/`username`). Not recorded as a
        call. Pair it with `message_event`/`bot_message_event` to tell the bot about it."""
        chan = self._channel(channel)
        subtype = "bot_message" if bot_id and not user else None
        numbered = [{"id": i, **dict(a)} for i, a in enumerate(attachments, start=1)]
        author = user if user or bot_id else DEFAULT_USER_ID
        return self._store(
            chan,
            StoredMessage(
                channel=chan.id,
                ts=self._next_ts(),
                text=text,
                blocks=normalise_blocks([dict(b) for b in blocks]),
                attachments=numbered,
                user=author,
                bot_id=bot_id,
                username=username,
                subtype=subtype,
                team=self._workspace.team_id if author else None,
                posted_by="seed",
            ),
            thread_ts,
        )

    # -- rate limits -------------------------------------------------------------------------

    @property
    def limits(self) -> LimitTable | None:
        """The rate limits enforced by method, or None when none are."""
        return None if self._limiter is None else self._limiter.limits

    def use_limits(self, limits: LimitTable | None = SLACK_LIMITS) -> None:
        """Enforce `limits` from now on, with full buckets (Slack's by default; None: none).

        Tests that exercise a tighter budget pass their own table (`rate_limits`), e.g.
        `{"chat.update": MethodLimits("tier3", (Limit(per_minute=6, burst=1),))}`."""
        self._limiter = None if limits is None else RateLimiter(limits, self._clock)

    def reset_limits(self) -> None:
        """Refill every rate-limit bucket, as if no call had been made."""
        if self._limiter is not None:
            self._limiter.reset()

    # -- fault injection ---------------------------------------------------------------------

    def set_rate_limit(
        self,
        method: str,
        *,
        per: RateLimitScope = "channel",
        channel: str | None = None,
        max_calls: int = 1,
        window: float = 1.0,
        retry_after: int | None = None,
    ) -> None:
        """Answer 429 `ratelimited` (with `Retry-After`) past `max_calls` per `window` seconds.

        A sliding window on top of Slack's limits (a call must pass both; `clear_faults`
        removes it). The budget is per channel by default; `per="message"` counts each
        message (`channel` + `ts`, for chat.update), `per="method"` the method as a whole.
        `channel` limits only that channel. `retry_after` defaults to the seconds until the
        window frees up (at least 1).
        """
        self._rate_rules.append(_RateRule(method, channel, per, max_calls, window, retry_after))

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        times: int = 1,
        status: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Make the next `times` authenticated calls of `method` fail with `error`.

        `ratelimited` defaults to HTTP 429 and `Retry-After: 1`; other errors to HTTP 200.
        """
        if error == "ratelimited":
            status = 429 if status is None else status
            retry_after = 1 if retry_after is None else retry_after
        injected = _Injected(error, status or 200, retry_after, times)
        self._injected.setdefault(method, []).append(injected)

    def clear_faults(self) -> None:
        """Forget the rate limits set with `set_rate_limit` and the failures queued with
        `fail_next`. Slack's limits stay on and their buckets as they are: see `use_limits`
        and `reset_limits`."""
        self._rate_rules.clear()
        self._rate_hits.clear()
        self._injected.clear()

    # -- inspection --------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Recorded calls, oldest first (all, or those of one method)."""
        return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str) -> list[StoredMessage]:
        """The channel's messages now, oldest first: top-level ones and broadcast replies."""
        chan = self._channel(channel)
        return [
            m
            for m in chan.messages.values()
            if not m.deleted and (not m.is_reply or m.reply_broadcast)
        ]

    def message(self, channel: str, ts: str) -> StoredMessage | None:
        """One message (thread replies and ephemeral messages included) as it is now."""
        chan = self._channel(channel)
        found = chan.messages.get(ts)
        if found is not None and not found.deleted:
            return found
        for m in self._ephemerals:
            if m.channel == chan.id and m.ts == ts and not m.deleted:
                return m
        return None

    def thread(self, channel: str, ts: str) -> list[StoredMessage]:
        """The replies in the thread of message `ts` (the parent excluded), oldest first."""
        chan = self._channel(channel)
        return [
            m for m in chan.messages.values() if m.thread_ts == ts and m.ts != ts and not m.deleted
        ]

    def ephemerals(
        self, channel: str | None = None, user: str | None = None
    ) -> list[StoredMessage]:
        """Ephemeral messages (chat.postEphemeral, ephemeral response_url replies)."""
        channel_id = None if channel is None else self._channel(channel).id
        return [
            m
            for m in self._ephemerals
            if not m.deleted
            and (channel_id is None or m.channel == channel_id)
            and (user is None or m.ephemeral_to == user)
        ]

    def files(self, channel: str | None = None) -> list[StoredFile]:
        """Files reserved with files.getUploadURLExternal, oldest first (with `channel`: those
        shared there). Each has its bytes (`data`), `title`, `channel` and `thread_ts`."""
        if channel is None:
            return self._files.all()
        channel_id = self._channel(channel).id
        return [f for f in self._files.all() if any(s.channel == channel_id for s in f.shares)]

    def file(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def views(self) -> list[JsonDict]:
        """Every view opened, as it is now."""
        return list(self._views.values())

    def view(self, view_id: str) -> JsonDict | None:
        """One view as it is now."""
        return self._views.get(view_id)

    def replace_view(self, view_id: str, view: Mapping[str, Any]) -> JsonDict:
        """Replace a view's content as a `response_action: update` does; return it as stored.

        Raises SlackError (`not_found`, `invalid_arguments`) like `views.update`.
        """
        return dict(self._views_update({"view_id": view_id, "view": dict(view)})["view"])

    def user(self, user_id: str) -> FakeUser | None:
        return self._users.get(user_id)

    def users(self) -> list[FakeUser]:
        return list(self._users.values())

    def channel(self, ref: str) -> FakeChannel | None:
        """A channel by ID or name ('#x' or 'x'), or None."""
        found = self._channels.get(ref)
        if found is not None:
            return found
        return next(
            (c for c in self._channels.values() if not c.is_im and c.name == ref.lstrip("#")),
            None,
        )

    def channels(self) -> list[FakeChannel]:
        """Every channel (direct messages included), in the order they were made."""
        return list(self._channels.values())

    async def wait_for(
        self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01
    ) -> T:
        """Poll `predicate` until it returns something truthy, and return that.

        Raises AssertionError after `timeout` seconds, listing the last calls received.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                recent = (
                    ", ".join(f"{c.method}({c.error or 'ok'})" for c in self._calls[-10:]) or "none"
                )
                raise AssertionError(f"condition not met within {timeout}s; last calls: {recent}")
            await asyncio.sleep(interval)

    async def wait_for_call(
        self,
        method: str,
        where: Callable[[RecordedCall], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> RecordedCall:
        """Wait until `count` calls of `method` (matching `where`) arrived; return the last."""

        def matching() -> list[RecordedCall]:
            found = [c for c in self.calls(method) if where is None or where(c)]
            return found if len(found) >= count else []

        return (await self.wait_for(matching, timeout))[-1]

    # -- SlackSide (for SlackRequestSender) ---------------------------------------------------

    def issue_response_url(
        self,
        *,
        channel_id: str,
        user_id: str,
        message_ts: str | None = None,
        thread_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> str:
        """A response_url bound to a channel, user and (for clicks) the source message."""
        key = secrets.token_urlsafe(18)
        self._response_urls[key] = _ResponseUrl(
            channel_id, user_id, message_ts, thread_ts, is_ephemeral, time.time()
        )
        return f"{self.url}/response/{key}"

    def user_name(self, user_id: str) -> str:
        user = self._users.get(user_id)
        return user.name if user else user_id.lower()

    def channel_name(self, channel_id: str) -> str:
        chan = self._channels.get(channel_id)
        if chan is None:
            return channel_id.lower()
        return "directmessage" if chan.is_im else chan.name

    def lookup_message(self, channel_id: str, ts: str) -> MessageRef | None:
        found = self.message(channel_id, ts)
        if found is None:
            return None
        return MessageRef(found.to_api(), found.is_ephemeral, found.thread_ts)

    def lookup_view(self, view_id: str) -> Mapping[str, Any] | None:
        return self._views.get(view_id)

    # -- internals: state --------------------------------------------------------------------

    def _next_ts(self) -> str:
        micros = max(int(time.time() * 1_000_000), self._last_ts_micros + 1)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _channel(self, ref: str) -> FakeChannel:
        """Resolve an ID, a name ('#x' or 'x') or a user ID (its DM) to a channel."""
        found = self._find_channel(ref)
        if found is None:
            raise SlackError("channel_not_found")
        return found

    def _find_channel(self, ref: str) -> FakeChannel | None:
        found = self._existing_channel(ref)
        if found is None and ref[:1] in {"U", "W"} and ref in self._users:
            found = FakeChannel(id=self._new_id("D"), name=ref, is_im=True, im_user=ref)
            self._channels[found.id] = found
        return found

    def _existing_channel(self, ref: str) -> FakeChannel | None:
        """`_find_channel` without opening the DM a user ID stands for."""
        if ref in self._channels:
            return self._channels[ref]
        name = ref.lstrip("#")
        for chan in self._channels.values():
            if not chan.is_im and chan.name == name:
                return chan
        if ref[:1] in {"U", "W"}:
            for chan in self._channels.values():
                if chan.is_im and chan.im_user == ref:
                    return chan
        return None

    def _store(
        self, chan: FakeChannel, message: StoredMessage, thread_ts: str | None
    ) -> StoredMessage:
        if thread_ts:
            parent = chan.messages.get(thread_ts)
            if parent is not None and parent.is_reply and parent.thread_ts:
                thread_ts = parent.thread_ts
                parent = chan.messages.get(thread_ts)
            message.thread_ts = thread_ts
            if parent is not None:
                message.parent_user_id = parent.user
                parent.thread_ts = parent.ts
                parent.replies.append(message.ts)
        chan.messages[message.ts] = message
        return message

    def _bot_message(self, chan: FakeChannel, content: _Content, by: str) -> StoredMessage:
        ws = self._workspace
        return StoredMessage(
            channel=chan.id,
            ts=self._next_ts(),
            text=content.text or "",
            blocks=content.blocks or [],
            attachments=content.attachments or [],
            user=ws.bot_user_id,
            bot_id=ws.bot_id,
            app_id=ws.api_app_id,
            username=content.username,
            team=ws.team_id,
            metadata=content.metadata,
            bot_profile={
                "id": ws.bot_id,
                "app_id": ws.api_app_id,
                "name": ws.bot_user_name,
                "deleted": False,
                "team_id": ws.team_id,
                "updated": 1_700_000_000,
                "icons": {"image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png"},
            },
            posted_by=by,
        )

    # -- internals: HTTP ---------------------------------------------------------------------

    async def _read_args(self, request: web.Request) -> tuple[dict[str, Any], str | None, str]:
        args: dict[str, Any] = dict(request.query)
        transport = "query"
        token: str | None = None
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            token = authorization.removeprefix("Bearer ").strip() or None
        if request.method == "POST" and request.body_exists:
            if request.content_type == "application/json":
                transport = "json"
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise SlackError("invalid_json") from exc
                if not isinstance(body, dict):
                    raise SlackError("invalid_json")
                body.pop("token", None)  # Slack reads no token from a JSON body
                args.update(body)
            elif request.content_type in {
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            }:
                transport = "form"
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        query_token = args.pop("token", None)
        if token is None and isinstance(query_token, str) and query_token:
            token = query_token
        return args, token, transport

    @staticmethod
    def _decode_json_arg(args: dict[str, Any], name: str, error: str) -> None:
        value = args.get(name)
        if isinstance(value, str):
            if not value.strip():
                args.pop(name)
                return
            try:
                args[name] = json.loads(value)
            except ValueError as exc:
                raise SlackError(error) from exc

    def _check_token(self, method: str, token: str | None) -> None:
        if token is None:
            raise SlackError("not_authed")
        if token not in {self.bot_token, self.app_token}:
            raise SlackError("invalid_auth")
        wants_app_token = method in _APP_TOKEN_METHODS
        if (token == self.app_token) != wants_app_token:
            raise SlackError("not_allowed_token_type")

    def _check_faults(self, method: str, args: Mapping[str, Any]) -> None:
        queue = self._injected.get(method)
        if queue:
            injected = queue[0]
            injected.remaining -= 1
            if injected.remaining <= 0:
                queue.pop(0)
            headers = {}
            if injected.retry_after is not None:
                headers["Retry-After"] = str(injected.retry_after)
            raise SlackError(injected.error, status=injected.status, headers=headers)
        channel_ref = str(args.get("channel", ""))
        resolved = self._existing_channel(channel_ref) if channel_ref else None
        channel_id = resolved.id if resolved else channel_ref
        # A DM is counted by its user: posting to "U…" and to its "D…" share one budget, even
        # before the first post opens the DM.
        key = resolved.im_user if resolved is not None and resolved.im_user else channel_id
        now = self._clock()
        # Check every budget before charging any, so that a refused call costs nothing.
        charges: list[deque[float]] = []
        for rule in self._rate_rules:
            if rule.method != method:
                continue
            if rule.channel is not None and rule.channel not in {channel_id, channel_ref, key}:
                continue
            scope = {
                "channel": key,
                "message": f"{key}/{args.get('ts', '')}",
                "method": "*",
            }[rule.per]
            hits = self._rate_hits.setdefault((method, scope), deque())
            while hits and now - hits[0] >= rule.window:
                hits.popleft()
            if len(hits) >= rule.max_calls:
                wait = rule.retry_after
                if wait is None:
                    wait = max(1, math.ceil(rule.window - (now - hits[0])))
                raise _ratelimited(wait)
            charges.append(hits)
        if self._limiter is not None:
            decision = self._limiter.check(method, key)
            if not decision.allowed:
                raise _ratelimited(decision.retry_after)
        for hits in charges:
            hits.append(now)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = {}
        token: str | None = None
        transport = "query"
        status = 200
        headers: dict[str, str] = {}
        try:
            args, token, transport = await self._read_args(request)
            handler = self._handlers.get(method)
            if handler is None:
                raise SlackError("unknown_method", status=404)
            self._check_token(method, token)
            self._check_faults(method, args)
            body = {"ok": True, **handler(self, args)}
            if token == self.bot_token:
                headers["X-OAuth-Scopes"] = _BOT_SCOPES
        except SlackError as exc:
            body, status, headers = exc.body(), exc.status, exc.headers
        self._calls.append(
            RecordedCall(
                method=method,
                args=args,
                time=time.time(),
                token=token,
                transport=transport,
                status=status,
                response=body,
                headers=headers,
            )
        )
        return web.json_response(body, status=status, headers=headers)

    # -- methods -----------------------------------------------------------------------------

    def _auth_test(self, args: dict[str, Any]) -> JsonDict:
        ws = self._workspace
        return {
            "url": f"https://{ws.team_domain}.slack.com/",
            "team": ws.team_name,
            "user": ws.bot_user_name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }

    def _message_content(self, args: dict[str, Any], *, require_content: bool) -> _Content:
        """Check text/blocks/attachments as chat.postMessage does; return what Slack stores.

        JSON-typed arguments are decoded in `args` (so calls record them parsed); the stored
        form (generated block_ids, numbered attachments) is returned, not written back.
        """
        self._decode_json_arg(args, "blocks", "invalid_blocks_format")
        self._decode_json_arg(args, "attachments", "invalid_attachments")
        self._decode_json_arg(args, "metadata", "invalid_metadata_format")
        blocks: list[JsonDict] | None = None
        attachments: list[JsonDict] | None = None
        if "blocks" in args:
            errors = validate_blocks(args["blocks"])
            if errors:
                raise SlackError(
                    "invalid_blocks",
                    extra={
                        "errors": errors,
                        "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
                    },
                )
            blocks = normalise_blocks(args["blocks"])
        if "attachments" in args:
            given = args["attachments"]
            if not isinstance(given, list) or not all(isinstance(a, dict) for a in given):
                raise SlackError("invalid_attachments")
            if len(given) > MAX_ATTACHMENTS:
                raise SlackError("too_many_attachments")
            attachments = [{"id": i, **a} for i, a in enumerate(given, start=1)]
        text = args.get("text")
        if text is not None and not isinstance(text, str):
            text = str(text)
        if text is not None and len(text) > MAX_TEXT_LENGTH:
            raise SlackError("msg_too_long")
        if require_content and not (text or blocks or attachments):
            raise SlackError("no_text")
        metadata = args.get("metadata")
        username = args.get("username")
        return _Content(
            text=text,
            blocks=blocks,
            attachments=attachments,
            metadata=metadata if isinstance(metadata, dict) else None,
            username=str(username) if username else None,
        )

    def _postable_channel(self, args: Mapping[str, Any]) -> FakeChannel:
        if not args.get("channel"):
            raise SlackError("channel_not_found")
        chan = self._channel(str(args["channel"]))
        if chan.is_archived:
            raise SlackError("is_archived")
        if chan.is_private and not chan.bot_is_member:
            raise SlackError("channel_not_found")
        if not chan.bot_is_member:
            raise SlackError("not_in_channel")
        return chan

    def _chat_post_message(self, args: dict[str, Any]) -> JsonDict:
        chan = self._postable_channel(args)
        content = self._message_content(args, require_content=True)
        message = self._bot_message(chan, content, "chat.postMessage")
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        message.reply_broadcast = thread_ts is not None and _truthy(args.get("reply_broadcast"))
        if message.reply_broadcast:
            message.subtype = "thread_broadcast"
        self._store(chan, message, thread_ts)
        return {"channel": chan.id, "ts": message.ts, "message": message.to_api()}

    def _chat_update(self, args: dict[str, Any]) -> JsonDict:
        chan = self._channel(str(args.get("channel", "")))
        ts = str(args.get("ts", ""))
        message = chan.messages.get(ts)
        if message is None or message.deleted:
            raise SlackError("message_not_found")
        if message.user != self._workspace.bot_user_id:
            raise SlackError("cant_update_message")
        content = self._message_content(args, require_content=False)
        if content.text is None and content.blocks is None and content.attachments is None:
            raise SlackError("no_text")
        # Slack keeps the previous blocks/attachments when an update leaves them out.
        message._replace(
            "chat.update",
            text=content.text,
            blocks=content.blocks,
            attachments=content.attachments,
        )
        if content.metadata is not None:
            message.metadata = content.metadata
        message.edited = {"user": self._workspace.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": chan.id,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_api(),
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> JsonDict:
        chan = self._postable_channel(args)
        user = str(args.get("user", ""))
        if user not in self._users:
            raise SlackError("user_not_found")
        if chan.members is not None and user not in chan.members:
            raise SlackError("user_not_in_channel")
        content = self._message_content(args, require_content=True)
        message = self._bot_message(chan, content, "chat.postEphemeral")
        message.ephemeral_to = user
        if args.get("thread_ts"):
            message.thread_ts = str(args["thread_ts"])
        self._ephemerals.append(message)
        return {"message_ts": message.ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> JsonDict:
        chan = self._channel(str(args.get("channel", "")))
        ts = str(args.get("message_ts", ""))
        message = chan.messages.get(ts)
        if message is None or message.deleted:
            raise SlackError("message_not_found")
        link = f"https://{self._workspace.team_domain}.slack.com/archives/{chan.id}/p"
        link += ts.replace(".", "")
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={chan.id}"
        return {"channel": chan.id, "permalink": link}

    def _view_arg(self, args: dict[str, Any]) -> JsonDict:
        self._decode_json_arg(args, "view", "invalid_arguments")
        view = args.get("view")
        errors = validate_view(view)
        if errors:
            raise SlackError(
                "invalid_arguments",
                extra={"response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}},
            )
        assert isinstance(view, dict)
        return view

    def _render_view(self, view: JsonDict, view_id: str, root_id: str) -> JsonDict:
        ws = self._workspace
        return {
            "id": view_id,
            "team_id": ws.team_id,
            "type": view["type"],
            "blocks": normalise_blocks(list(view.get("blocks", []))),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": {**view["title"], "emoji": view["title"].get("emoji", True)},
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": root_id,
            "app_id": ws.api_app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": ws.team_id,
            "bot_id": ws.bot_id,
        }

    def _views_open(self, args: dict[str, Any]) -> JsonDict:
        trigger_id = str(args.get("trigger_id", ""))
        issued = trigger_issued_at(trigger_id)
        if issued is None:
            raise SlackError("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise SlackError("exchanged_trigger_id")
        if self.trigger_ttl is not None and time.time() - issued > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        view = self._view_arg(args)
        self._used_triggers.add(trigger_id)
        view_id = self._new_id("V")
        rendered = self._render_view(view, view_id, view_id)
        self._views[view_id] = rendered
        return {"view": rendered}

    def _views_update(self, args: dict[str, Any]) -> JsonDict:
        view_id = args.get("view_id")
        external_id = args.get("external_id")
        current: JsonDict | None = None
        if view_id:
            current = self._views.get(str(view_id))
        elif external_id:
            current = next(
                (v for v in self._views.values() if v.get("external_id") == external_id), None
            )
        else:
            raise SlackError("invalid_arguments")
        if current is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = {"external_id": current["external_id"], **self._view_arg(args)}
        rendered = self._render_view(view, current["id"], current["root_view_id"])
        self._views[current["id"]] = rendered
        return {"view": rendered}

    def _usergroups_users_list(self, args: dict[str, Any]) -> JsonDict:
        group = self._usergroups.get(str(args.get("usergroup", "")))
        if group is None:
            raise SlackError("no_such_subteam")
        if group.disabled and not _truthy(args.get("include_disabled")):
            raise SlackError("no_such_subteam")
        return {"users": list(group.users)}

    def _users_info(self, args: dict[str, Any]) -> JsonDict:
        user = self._users.get(str(args.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.to_api()}

    def _conversations_info(self, args: dict[str, Any]) -> JsonDict:
        channel_id = str(args.get("channel", ""))
        chan = self._channels.get(channel_id)
        if chan is None or (chan.is_private and not chan.bot_is_member):
            raise SlackError("channel_not_found")
        return {"channel": chan.to_api()}

    def _reactions_add(self, args: dict[str, Any]) -> JsonDict:
        name = str(args.get("name", ""))
        if not name or any(c in name for c in ": ") or name != name.lower():
            raise SlackError("invalid_name")
        chan = self._channel(str(args.get("channel", "")))
        ts = str(args.get("timestamp", ""))
        if not ts:
            raise SlackError("no_item_specified")
        message = chan.messages.get(ts)
        if message is None or message.deleted:
            raise SlackError("message_not_found")
        users = message.reactions.setdefault(name, [])
        if self._workspace.bot_user_id in users:
            raise SlackError("already_reacted")
        users.append(self._workspace.bot_user_id)
        return {}

    def _apps_connections_open(self, args: dict[str, Any]) -> JsonDict:
        return {"url": self.socket_mode.issue_url(self.url.replace("http://", "ws://", 1))}

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> JsonDict:
        ws = self._workspace
        # Like Slack's files.slack.com/upload/v1/…: the URL alone lets one POST in, so unguessable.
        key = secrets.token_urlsafe(18)
        try:
            stored = self._files.reserve(
                args,
                user=ws.bot_user_id,
                team=ws.team_id,
                team_domain=ws.team_domain,
                server=self.url,
                key=key,
            )
        except FileUploadError as exc:
            raise SlackError(exc.error, extra=exc.extra) from exc
        return {"upload_url": f"{self.url}/upload/v1/{key}", "file_id": stored.id}

    def _files_complete_upload_external(self, args: dict[str, Any]) -> JsonDict:
        self._decode_json_arg(args, "files", "invalid_arguments")
        # Every check comes before any change: a refused call shares nothing and spends no file.
        try:
            claimed = self._files.claim(args.get("files"))
            given = [str(args.get("channel_id") or ""), *str(args.get("channels") or "").split(",")]
            targets = list(dict.fromkeys(c.strip() for c in given if c.strip()))
            if len(targets) > MAX_SHARE_CHANNELS:
                raise SlackError("channels_limit_exceeded")
            thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
            if thread_ts is not None and len(targets) != 1:
                # "make sure to provide only one channel when using 'thread_ts'"
                raise FileUploadError("invalid_arguments", "thread_ts needs exactly one channel")
            chans = [self._postable_channel({"channel": target}) for target in targets]
            parents = [thread_parent(c, thread_ts) if thread_ts else None for c in chans]
        except FileUploadError as exc:
            raise SlackError(exc.error, extra=exc.extra) from exc
        # "If the initial_comment field is provided, the blocks field is ignored"
        comment = args.get("initial_comment")
        given_content = {"text": comment} if comment else {"blocks": args.get("blocks")}
        content = self._message_content(
            {k: v for k, v in given_content.items() if v}, require_content=False
        )
        files = [stored for stored, _ in claimed]
        shares: list[FileShare] = []
        for chan, parent in zip(chans, parents, strict=True):
            made = self._bot_message(chan, content, "files.completeUploadExternal")
            message = self._store(chan, FileMessage.sharing(made, files), parent)
            visibility = "private" if chan.is_private or chan.is_im else "public"
            shares.append(FileShare(chan.id, chan.name, message.ts, parent, visibility))
        return {"files": [f.to_api() for f in self._files.complete(claimed, shares)]}

    _handlers: ClassVar[dict[str, Callable[[FakeSlackWebApi, dict[str, Any]], JsonDict]]] = {
        "auth.test": _auth_test,
        "chat.postMessage": _chat_post_message,
        "chat.update": _chat_update,
        "chat.postEphemeral": _chat_post_ephemeral,
        "chat.getPermalink": _chat_get_permalink,
        "views.open": _views_open,
        "views.update": _views_update,
        "usergroups.users.list": _usergroups_users_list,
        "users.info": _users_info,
        "conversations.info": _conversations_info,
        "reactions.add": _reactions_add,
        "apps.connections.open": _apps_connections_open,
        "files.getUploadURLExternal": _files_get_upload_url_external,
        "files.completeUploadExternal": _files_complete_upload_external,
    }

    # -- upload URLs and url_private ---------------------------------------------------------

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The `upload_url` of files.getUploadURLExternal: a plain POST of the bytes."""
        args: dict[str, Any] = {"upload_key": request.match_info["key"]}
        status, text, headers = 200, "", {}
        try:
            # `fail_next("upload_url", …)` makes the upload itself fail, as a flaky edge would.
            self._check_faults("upload_url", {})
            stored = self._files.by_key(request.match_info["key"])
            args["file_id"] = stored.id
            content = await read_upload(request, stored.length)
            args["length"] = len(content)
            self._files.receive(stored, content)
            text = f"OK - {len(content)}"  # what Slack's upload URL answers (text/plain)
        except SlackError as exc:
            status, text, headers = exc.status, exc.error, exc.headers
        except UploadRejected as exc:
            status, text = exc.status, exc.reason
        self._calls.append(
            RecordedCall(
                method="upload_url",
                args=args,
                time=time.time(),
                token=None,
                transport="form" if request.content_type == "multipart/form-data" else "raw",
                status=status,
                response={"ok": True} if status == 200 else {"ok": False, "error": text},
            )
        )
        return web.Response(text=text, status=status, content_type="text/plain", headers=headers)

    async def _handle_file_download(self, request: web.Request) -> web.Response:
        """A file's `url_private`: the bytes, for a request with the bot token (as Slack)."""
        authorization = request.headers.get("Authorization", "")
        if authorization.removeprefix("Bearer ").strip() != self.bot_token:
            raise web.HTTPForbidden(text="url_private needs Authorization: Bearer <bot token>")
        _team, _, file_id = request.match_info["ref"].partition("-")
        stored = self._files.get(file_id)
        if stored is None or not stored.completed:
            raise web.HTTPNotFound(text="no such file")
        headers = {"X-Content-Type-Options": "nosniff"}
        if "download" in request.query:
            headers["Content-Disposition"] = "attachment"
        return web.Response(body=stored.data, content_type=stored.mimetype, headers=headers)

    # -- response_url ------------------------------------------------------------------------

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        key = request.match_info["id"]
        args: dict[str, Any] = {}
        status = 200
        try:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise SlackError("invalid_payload", status=400) from exc
            else:
                form = await request.post()
                raw = form.get("payload")
                try:
                    body = json.loads(raw) if isinstance(raw, str) else None
                except ValueError as exc:
                    raise SlackError("invalid_payload", status=400) from exc
            if not isinstance(body, dict):
                raise SlackError("invalid_payload", status=400)
            args = body
            response = self._respond(key, args)
        except SlackError as exc:
            response, status = exc.body(), exc.status
        self._calls.append(
            RecordedCall(
                method="response_url",
                args={**args, "response_url_id": key},
                time=time.time(),
                token=None,
                transport="json",
                status=status,
                response=response,
            )
        )
        return web.json_response(response, status=status)

    def _respond(self, key: str, args: dict[str, Any]) -> JsonDict:
        context = self._response_urls.get(key)
        if context is None or time.time() - context.issued_at > RESPONSE_URL_TTL_SECONDS:
            raise SlackError("expired_url", status=404)
        if context.uses >= RESPONSE_URL_MAX_USES:
            raise SlackError("used_url", status=404)
        chan = self._channel(context.channel_id)
        try:
            content = self._message_content(
                args, require_content=not _truthy(args.get("delete_original"))
            )
        except SlackError as exc:
            raise SlackError(exc.error, status=400, extra=exc.extra) from exc
        context.uses += 1
        target_ts = context.message_ts or context.last_posted
        if _truthy(args.get("delete_original")):
            original = self.message(chan.id, target_ts) if target_ts else None
            if original is None:
                raise SlackError("message_not_found", status=404)
            original.deleted = True
            return {}
        if _truthy(args.get("replace_original")) and target_ts:
            original = self.message(chan.id, target_ts)
            if original is None:
                raise SlackError("message_not_found", status=404)
            # A replacement is a whole new message: what it leaves out is gone.
            original._replace(
                "response_url",
                text=content.text or "",
                blocks=content.blocks or [],
                attachments=content.attachments or [],
            )
            return {}
        message = self._bot_message(chan, content, "response_url")
        thread_ts = args.get("thread_ts") or context.thread_ts
        if args.get("response_type") == "in_channel":
            self._store(chan, message, str(thread_ts) if thread_ts else None)
        else:
            message.ephemeral_to = context.user_id
            message.thread_ts = str(thread_ts) if thread_ts else None
            self._ephemerals.append(message)
        context.last_posted = message.ts
        return {}
