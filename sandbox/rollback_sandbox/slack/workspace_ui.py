"""A local Slack workspace in the browser: the embedded default when no real Slack is configured.

`LocalWorkspace` serves, on one aiohttp server, the Slack stand-in the bot talks to
(`/api/…`, response_urls, Socket Mode; see web_api.py) and a small web UI at `/` standing in for
the Slack client: a channel with its messages and threads, the bot's Block Kit rendered, a
composer that sends slash commands, buttons that send `block_actions`, and modals opened with
`views.open` whose submit sends a `view_submission`. Everything the user does reaches the bot as
Slack would send it: signed with the signing secret, to the bot's `/slack/events`.

The page (static/index.html, app.js, app.css: plain HTML and JavaScript, no build step, no
external assets) speaks JSON to these routes:

- `GET /ui/api/state?channel=C…&since=ETAG`: the channel as the local user sees it; long-polls
  until it differs from `since` (or 20 s pass). It never holds the bot token or the signing
  secret (the page is for the user, not for the bot's credentials);
- `POST /ui/api/send` `{channel, text}`: a message, or a slash command when it starts with `/`;
- `POST /ui/api/click` `{channel, ts, action_id}`: click a button in a message;
- `POST /ui/api/views/{id}/submit` `{values: {action_id: value}}`, `POST /ui/api/views/{id}/close`;
- `POST /ui/api/dismiss` `{channel, ts}`: dismiss an ephemeral message.
POSTs must be JSON (a cross-site form cannot send that without a CORS preflight this server
never answers).

Files the bot uploads (files.completeUploadExternal) show in their thread: `GET
/ui/threads/{channel}/{ts}` is that thread as a page of its own, rendered here with the images
inline (`<img>`), and `GET /ui/files/{id}/{name}` serves a shared file's bytes (images with their
own `Content-Type`, anything else as a download). Every title, filename and text on that page is
HTML-escaped and its Content-Security-Policy allows no script at all. In the state, a message
with files lists them (`files`) and links to the image and to the thread page.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import shlex
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Self
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp import web

from rollback_sandbox.slack.blockkit import texts_in
from rollback_sandbox.slack.files import FileMessage, StoredFile
from rollback_sandbox.slack.records import StoredMessage
from rollback_sandbox.slack.requests import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_USER_ID,
    BotReply,
    SlackRequestSender,
)
from rollback_sandbox.slack.web_api import DEFAULT_BOT_TOKEN, FakeSlackWebApi, SlackError

__all__ = ["Delivery", "LocalWorkspace", "SubmitResult", "bot_environment_for"]

JsonDict = dict[str, Any]

#: Slack gives an app three seconds to answer a request before it reports `operation_timeout`.
SLACK_TIMEOUT_SECONDS = 3.0
#: How long `GET /ui/state` waits for a change before answering with the same state.
LONG_POLL_SECONDS = 20.0
_POLL_TICK = 0.1
_STATIC = ("index.html", "app.js", "app.css")
_CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_TOPIC = "Incidents and rollbacks. Try `/rollback checkout`."
#: What `bot_environment()` holds that the page must never show.
_SECRET_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
#: Images a browser may show inline; any other file is only ever served as a download, so that
#: uploaded HTML or SVG can never run as a page of this origin.
_INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif"})
#: The thread page needs no script: none may run, whatever a title or a message holds.
_THREAD_PAGE_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_THREAD_PAGE_STYLE = (
    "body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:50em;color:#1d1c1d}"
    "article{border-top:1px solid #ddd;padding:.6em 0}.reply{margin-left:2em}"
    "time{color:#616061;font-size:.85em}.text{white-space:pre-wrap;margin:.3em 0}"
    "figure{margin:.5em 0}img{max-width:100%;border:1px solid #ddd;border-radius:4px}"
    "figcaption{color:#616061;font-size:.85em}"
)


@dataclass(frozen=True)
class Delivery:
    """How one request to the bot went."""

    ok: bool
    #: The bot's HTTP status, None when it did not answer.
    status: int | None = None
    #: The error Slack would show (`dispatch_failed`, `operation_timeout`, …) when not ok.
    error: str | None = None
    #: What went wrong, for a person.
    detail: str | None = None
    #: The bot's answer, decoded when JSON.
    body: Any = None

    def to_json(self) -> JsonDict:
        return {"ok": self.ok, "status": self.status, "error": self.error, "detail": self.detail}


@dataclass(frozen=True)
class SubmitResult:
    """What became of a modal submission."""

    delivery: Delivery
    #: Whether the modal is closed now (the bot acked without `response_action: errors`).
    closed: bool = False
    #: `response_action: errors`: the message for each input block id.
    errors: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> JsonDict:
        return {**self.delivery.to_json(), "closed": self.closed, "errors": dict(self.errors)}


def bot_environment_for(
    *, api_url: str, bot_events_url: str, signing_secret: str, bot_token: str
) -> dict[str, str]:
    """What `rollback-bot serve` needs to use a workspace whose Web API is at `api_url` and
    which sends to `bot_events_url`: the token, the signing secret, the API URL, and the
    address to listen on (taken from `bot_events_url`)."""
    events = urlsplit(bot_events_url)
    env = {
        "SLACK_BOT_TOKEN": bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "ROLLBACK_BOT_SLACK_API_URL": api_url,
    }
    if events.hostname:
        env["ROLLBACK_BOT_HOST"] = events.hostname
    if events.port:
        env["ROLLBACK_BOT_PORT"] = str(events.port)
    return env


class LocalWorkspace:
    """The Slack stand-in plus its browser UI, for one local user talking to one bot."""

    def __init__(
        self,
        *,
        bot_events_url: str,
        signing_secret: str,
        bot_token: str = DEFAULT_BOT_TOKEN,
        command: str = "/rollback",
        channel_id: str = DEFAULT_CHANNEL_ID,
        user_id: str = DEFAULT_USER_ID,
        health_interval: float = 2.0,
    ) -> None:
        self.api = FakeSlackWebApi(bot_token=bot_token)
        self.commands = frozenset({command})
        self.channel_id = channel_id
        self.user_id = user_id
        self.sender = SlackRequestSender(
            signing_secret,
            events_url=bot_events_url,
            slack=self.api,
            user_id=user_id,
            channel_id=channel_id,
            timeout=SLACK_TIMEOUT_SECONDS,
        )
        self._health_interval = health_interval
        self._closed_views: set[str] = set()
        #: Messages from "Slackbot" that only the local user sees (delivery failures).
        self._notices: list[JsonDict] = []
        self._dismissed: set[str] = set()
        self._bot_status: JsonDict = {"state": "unknown", "detail": "not checked yet"}
        self._health_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()
        self._recheck = asyncio.Event()
        chan = self.api.channel(channel_id)
        if chan is not None and not chan.topic:
            chan.topic = _TOPIC

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/ui/{name}", self._static)
        app.router.add_get("/ui/api/state", self._get_state)
        app.router.add_post("/ui/api/send", self._post_send)
        app.router.add_post("/ui/api/click", self._post_click)
        app.router.add_post("/ui/api/views/{id}/submit", self._post_submit)
        app.router.add_post("/ui/api/views/{id}/close", self._post_close)
        app.router.add_post("/ui/api/dismiss", self._post_dismiss)
        app.router.add_get("/ui/threads/{channel}/{ts}", self._get_thread_page)
        app.router.add_get("/ui/files/{id}/{name}", self._get_file)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))
        try:
            await self.api.start(host, port, app=app)
        except BaseException:
            await self._session.close()
            raise
        self._health_task = asyncio.create_task(self._watch_bot(), name="local-slack-health")
        return self

    async def stop(self) -> None:
        self._stopping.set()  # long polls answer now instead of holding the shutdown
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
            self._health_task = None
        await self.sender.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.api.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def bot_events_url(self) -> str:
        """Where commands, clicks and submissions go: the bot's `/slack/events`."""
        assert self.sender.events_url is not None
        return self.sender.events_url

    @bot_events_url.setter
    def bot_events_url(self, url: str) -> None:
        """Point at the bot once its port is known (it may start after this workspace)."""
        self.sender.events_url = url
        self._bot_status = {"state": "unknown", "detail": "not checked yet"}
        self._recheck.set()

    @property
    def url(self) -> str:
        """The page to open in a browser (`http://host:port/`)."""
        return f"{self.api.url}/"

    @property
    def api_url(self) -> str:
        """What the bot's `ROLLBACK_BOT_SLACK_API_URL` must be."""
        return self.api.api_url

    def bot_environment(self) -> dict[str, str]:
        """The environment `rollback-bot serve` needs to talk to this workspace."""
        return bot_environment_for(
            api_url=self.api_url,
            bot_events_url=self.bot_events_url,
            signing_secret=self.sender.signing_secret,
            bot_token=self.api.bot_token,
        )

    def bot_command(self, *, with_secrets: bool = True) -> str:
        """The shell command that starts the bot for this workspace; without secrets, the bot
        token and the signing secret are placeholders (`<SLACK_BOT_TOKEN>`)."""
        env = self.bot_environment()
        if not with_secrets:
            env.update({name: f"<{name}>" for name in _SECRET_VARIABLES})
        pairs = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        return f"{pairs} rollback-bot serve"

    # -- what the user does ------------------------------------------------------------------

    async def send(self, channel: str, text: str) -> Delivery:
        """What pressing Enter in the composer does: a slash command or a message."""
        text = text.strip()
        if not text:
            return Delivery(ok=False, error="no_text", detail="Type something first.")
        if text.startswith("/"):
            command, _, rest = text.partition(" ")
            return await self.slash_command(channel, command.lower(), rest.strip())
        message = self.api.post_as(channel, text, user=self.user_id)
        chan = self.api.channel(channel)
        event = message.to_event("im" if chan is not None and chan.is_im else "channel")
        # The bot may not listen to messages at all: only a failure to reach it is news.
        delivery = await self._deliver(self.sender.event(event))
        return delivery if delivery.status is None else Delivery(ok=True, status=delivery.status)

    async def slash_command(self, channel: str, command: str, text: str) -> Delivery:
        if command not in self.commands:
            detail = (
                f"`{command}` is not a valid command. In Slack, all messages that start with "
                'the "/" character are interpreted as commands. Try '
                f"`{min(self.commands)} checkout`."
            )
            self._notice(channel, detail)
            return Delivery(ok=False, error="unknown_command", detail=detail)
        fields = self.sender.build_slash_command(command, text, channel_id=channel)
        delivery = await self._deliver(self.sender.send_form(fields))
        if not delivery.ok:
            self._delivery_notice(channel, f"`{command}`", delivery)
        elif delivery.body:
            # A command's immediate answer shows as a response would (ephemeral by default).
            body = delivery.body if isinstance(delivery.body, dict) else {"text": delivery.body}
            await self._post_response(fields["response_url"], body)
        return delivery

    async def click(self, channel: str, ts: str, action_id: str) -> Delivery:
        try:
            payload = self.sender.build_click(channel, ts, action_id)
        except LookupError as exc:
            return Delivery(ok=False, error="message_not_found", detail=str(exc))
        delivery = await self._deliver(self.sender.send_interactive(payload))
        if not delivery.ok:
            self._delivery_notice(channel, "That button", delivery)
        return delivery

    async def submit_view(self, view_id: str, values: Mapping[str, Any]) -> SubmitResult:
        view = self.api.view(view_id)
        if view is None or view_id in self._closed_views:
            return SubmitResult(Delivery(ok=False, error="not_found", detail="no such modal"))
        payload = self.sender.build_view_submission(view, values)
        delivery = await self._deliver(self.sender.send_interactive(payload))
        if not delivery.ok:
            return SubmitResult(delivery)
        body = delivery.body if isinstance(delivery.body, dict) else {}
        action = body.get("response_action")
        if action == "errors":
            errors = body.get("errors") or {}
            return SubmitResult(delivery, errors={str(k): str(v) for k, v in errors.items()})
        if action in {"update", "push"} and isinstance(body.get("view"), dict):
            try:
                self.api.replace_view(view_id, body["view"])
            except SlackError as exc:
                bad = Delivery(ok=False, error=exc.error, detail="the bot sent an invalid view")
                return SubmitResult(bad)
            return SubmitResult(delivery)
        self._closed_views.add(view_id)
        return SubmitResult(delivery, closed=True)

    async def close_view(self, view_id: str) -> Delivery:
        view = self.api.view(view_id)
        if view is None:
            return Delivery(ok=False, error="not_found", detail="no such modal")
        self._closed_views.add(view_id)
        if not view.get("notify_on_close"):
            return Delivery(ok=True)
        ws = self.api.workspace
        payload = {
            "type": "view_closed",
            "team": ws.team,
            "user": {"id": self.user_id, "name": self.api.user_name(self.user_id)},
            "api_app_id": ws.api_app_id,
            "token": ws.verification_token,
            "view": view,
            "is_cleared": False,
            "is_enterprise_install": False,
        }
        return await self._deliver(self.sender.send_interactive(payload))

    def dismiss(self, channel: str, ts: str) -> bool:
        """Dismiss an ephemeral message shown to the local user."""
        for notice in self._notices:
            if notice["channel"] == channel and notice["ts"] == ts:
                self._dismissed.add(ts)
                return True
        found = self.api.message(channel, ts)
        if found is None or found.ephemeral_to != self.user_id:
            return False
        found.deleted = True
        return True

    # -- what the user sees ------------------------------------------------------------------

    def open_view(self) -> JsonDict | None:
        """The modal on screen: the newest view opened and not closed."""
        open_views = [v for v in self.api.views() if v["id"] not in self._closed_views]
        return open_views[-1] if open_views else None

    def state(self, channel: str | None = None) -> JsonDict:
        """The channel as the local user sees it, for the page."""
        chan = self.api.channel(channel or self.channel_id) or self.api.channel(self.channel_id)
        assert chan is not None
        ws = self.api.workspace
        me = self.api.user(self.user_id)
        mine = self.api.ephemerals(chan.id, self.user_id)
        top = [self._ui_message(m) for m in self.api.messages(chan.id)]
        top += [self._ui_message(m) for m in mine if not m.thread_ts]
        top += [
            n for n in self._notices if n["channel"] == chan.id and n["ts"] not in self._dismissed
        ]
        for message in top:
            replies = [self._ui_message(r) for r in self.api.thread(chan.id, message["ts"])]
            replies += [self._ui_message(m) for m in mine if m.thread_ts == message["ts"]]
            message["replies"] = sorted(replies, key=lambda r: float(r["ts"]))
        top.sort(key=lambda m: float(m["ts"]))
        calls = [
            {"method": c.method, "ok": c.ok, "error": c.error, "at": c.time}
            for c in self.api.calls()[-30:]
        ]
        return {
            "team": ws.team_name,
            "me": {"id": self.user_id, "name": me.name if me else self.user_id},
            "bot": {
                "name": ws.bot_user_name,
                "user_id": ws.bot_user_id,
                "events_url": self.bot_events_url,
                "command": self.bot_command(with_secrets=False),
                **self._bot_status,
            },
            "commands": sorted(self.commands),
            "channels": [
                {"id": c.id, "name": c.name}
                for c in self.api.channels()
                if not c.is_im and not c.is_archived
            ],
            "channel": {"id": chan.id, "name": chan.name, "topic": chan.topic},
            "users": {u.id: u.real_name or u.name for u in self.api.users()},
            "messages": top,
            "modal": self.open_view(),
            "calls": calls,
        }

    def _ui_message(self, m: StoredMessage) -> JsonDict:
        user = self.api.user(m.user) if m.user else None
        if m.bot_id:
            author = m.username or (m.bot_profile or {}).get("name") or m.bot_id
        else:
            author = (user.real_name or user.name) if user else (m.user or "someone")
        files = [self._ui_file(f) for f in m.files] if isinstance(m, FileMessage) else []
        thread_page = f"{self.api.url}{_thread_path(m.channel, m.thread_ts or m.ts)}"
        # The page's script shows attachments, not `files`: each file also gets an attachment
        # linking to it and to the thread page that shows it inline. Only in what the page is
        # given; what the bot sees of the message is unchanged.
        links = [
            {
                "fallback": f["title"],
                "title": ("🖼 " if f["is_image"] else "📎 ") + f["title"],
                "title_link": f"{self.api.url}{f['url']}",
                "text": f"<{thread_page}|Open the thread page to see it inline>",
            }
            for f in files
        ]
        return {
            "channel": m.channel,
            "ts": m.ts,
            "thread_ts": m.thread_ts,
            "author": author,
            "is_bot": bool(m.bot_id),
            "text": m.text,
            "blocks": m.blocks,
            "attachments": [*m.attachments, *links],
            "files": files,
            "edited": m.edited is not None or bool(m.edits),
            "ephemeral": m.is_ephemeral,
            "system": False,
        }

    @staticmethod
    def _ui_file(f: StoredFile) -> JsonDict:
        title = f.title if f.title is not None else f.name
        return {
            "id": f.id,
            "name": f.name,
            "title": title,
            "alt": f.alt_txt or title,
            "mimetype": f.mimetype,
            "is_image": f.mimetype in _INLINE_IMAGES,
            "url": f"/ui/files/{quote(f.id, safe='')}/{quote(f.name, safe='')}",
        }

    def thread_page(self, channel: str, ts: str) -> str | None:
        """The thread of message `ts` (or of the thread `ts` is a reply in) as a page of its
        own, images inline; None when the channel has no such message."""
        chan = self.api.channel(channel)
        if chan is None:
            return None
        messages = self.state(chan.id)["messages"]
        root = next(
            (m for m in messages if m["ts"] == ts or any(r["ts"] == ts for r in m["replies"])),
            None,
        )
        if root is None:
            return None
        e = _escape
        body = [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>Thread in #{e(chan.name)} · Local Slack</title>",
            f"<style>{_THREAD_PAGE_STYLE}</style></head><body>",
            f'<p><a href="/?channel={e(quote(chan.id, safe=""))}">← #{e(chan.name)}</a></p>',
            _message_html(root, "message"),
            *(_message_html(r, "message reply") for r in root["replies"]),
            "</body></html>",
        ]
        return "\n".join(body)

    # -- delivery ----------------------------------------------------------------------------

    async def _deliver(self, sending: Awaitable[BotReply]) -> Delivery:
        try:
            reply = await sending
        except TimeoutError:
            return Delivery(
                ok=False,
                error="operation_timeout",
                detail=f"the bot did not answer within {SLACK_TIMEOUT_SECONDS:g} seconds",
            )
        except (aiohttp.ClientError, OSError) as exc:
            return Delivery(
                ok=False,
                error="dispatch_failed",
                detail=f"the bot is not answering at {self.bot_events_url} ({_why(exc)})",
            )
        body: Any = reply.text
        with contextlib.suppress(ValueError):
            body = reply.json()
        if reply.status == 200:
            return Delivery(ok=True, status=200, body=body)
        detail = f"the bot answered HTTP {reply.status}"
        if reply.status == 401:
            detail += (
                ": it refused the request signature (give it the same SLACK_SIGNING_SECRET "
                "as this workspace)"
            )
        elif reply.status == 404:
            detail += f": is {self.bot_events_url} its Slack events URL?"
        return Delivery(ok=False, status=reply.status, error="dispatch_failed", detail=detail)

    async def _post_response(self, response_url: str, body: Mapping[str, Any]) -> None:
        assert self._session is not None
        async with self._session.post(response_url, json=dict(body)) as response:
            await response.read()

    def _notice(self, channel: str, text: str) -> None:
        self._notices.append(
            {
                "channel": channel,
                "ts": f"{time.time():.6f}",
                "thread_ts": None,
                "author": "Slackbot",
                "is_bot": True,
                "text": text,
                "blocks": [],
                "attachments": [],
                "edited": False,
                "ephemeral": True,
                "system": True,
            }
        )

    def _delivery_notice(self, channel: str, what: str, delivery: Delivery) -> None:
        self._notice(channel, f'{what} failed with the error "{delivery.error}": {delivery.detail}')

    async def _watch_bot(self) -> None:
        """Keep `bot.state` current: is the bot's `/healthz` answering?"""
        while True:
            assert self._session is not None
            self._recheck.clear()
            events_url = self.bot_events_url
            parts = urlsplit(events_url)
            health = f"{parts.scheme}://{parts.netloc}/healthz"
            try:
                async with self._session.get(health) as response:
                    await response.read()
                    if response.status == 200:
                        status = {"state": "online", "detail": f"answering at {parts.netloc}"}
                    else:
                        status = {"state": "error", "detail": f"{health}: HTTP {response.status}"}
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                status = {
                    "state": "offline",
                    "detail": f"not answering at {parts.netloc} ({_why(exc)})",
                }
            if events_url == self.bot_events_url:  # not re-pointed meanwhile
                self._bot_status = status
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._health_interval):  # wait_for may eat a cancel
                    await self._recheck.wait()

    # -- HTTP --------------------------------------------------------------------------------

    async def _page(self, _request: web.Request) -> web.Response:
        return self._file("index.html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return self._file(name)

    @staticmethod
    def _file(name: str) -> web.Response:
        text = (resources.files("rollback_sandbox.slack") / "static" / name).read_text("utf-8")
        suffix = name[name.rindex(".") :]
        return web.Response(
            text=text,
            content_type=_CONTENT_TYPES[suffix],
            headers={"Cache-Control": "no-store"},
        )

    async def _get_state(self, request: web.Request) -> web.Response:
        channel = request.query.get("channel") or self.channel_id
        since = request.query.get("since")
        deadline = time.monotonic() + LONG_POLL_SECONDS
        while True:
            body = json.dumps(self.state(channel), sort_keys=True)
            etag = hashlib.sha256(body.encode()).hexdigest()[:16]
            if etag != since or time.monotonic() >= deadline or self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_POLL_TICK):
                    await self._stopping.wait()
        return web.json_response(
            {"etag": etag, "state": json.loads(body)}, headers={"Cache-Control": "no-store"}
        )

    @staticmethod
    async def _json_body(request: web.Request) -> JsonDict:
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send JSON")
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="invalid JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="send a JSON object")
        return body

    @staticmethod
    def _field(body: Mapping[str, Any], name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise web.HTTPBadRequest(text=f"missing {name}")
        return value

    async def _post_send(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        channel = str(body.get("channel") or self.channel_id)
        delivery = await self.send(channel, str(body.get("text", "")))
        return web.json_response(delivery.to_json())

    async def _post_click(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        delivery = await self.click(
            self._field(body, "channel"), self._field(body, "ts"), self._field(body, "action_id")
        )
        return web.json_response(delivery.to_json())

    async def _post_submit(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise web.HTTPBadRequest(text="values must be an object")
        try:
            result = await self.submit_view(request.match_info["id"], values)
        except LookupError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(result.to_json())

    async def _post_close(self, request: web.Request) -> web.Response:
        await self._json_body(request)
        delivery = await self.close_view(request.match_info["id"])
        return web.json_response(delivery.to_json())

    async def _post_dismiss(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        done = self.dismiss(self._field(body, "channel"), self._field(body, "ts"))
        return web.json_response({"ok": done})

    async def _get_thread_page(self, request: web.Request) -> web.Response:
        page = self.thread_page(request.match_info["channel"], request.match_info["ts"])
        if page is None:
            raise web.HTTPNotFound(text="no such thread")
        return web.Response(
            text=page,
            content_type="text/html",
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": _THREAD_PAGE_CSP,
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def _get_file(self, request: web.Request) -> web.Response:
        """A file's bytes, once it is shared in a channel (what the local user can see)."""
        stored = self.api.file(request.match_info["id"])
        if stored is None or not stored.shares:
            raise web.HTTPNotFound(text="no such file")
        inline = stored.mimetype in _INLINE_IMAGES
        headers = {
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            # Opened on its own, it still runs nothing.
            "Content-Security-Policy": "default-src 'none'; sandbox",
        }
        if not inline:
            headers["Content-Disposition"] = "attachment"
        return web.Response(
            body=stored.data,
            content_type=stored.mimetype if inline else "application/octet-stream",
            headers=headers,
        )


def _escape(value: Any) -> str:
    """Text for HTML, quotes included (it goes into attributes too)."""
    return html.escape(str(value), quote=True)


def _thread_path(channel: str, ts: str) -> str:
    return f"/ui/threads/{quote(channel, safe='')}/{quote(ts, safe='')}"


def _message_html(m: Mapping[str, Any], css_class: str) -> str:
    """One message of the thread page: author, time, text, then its files."""
    e = _escape
    when = time.strftime("%H:%M:%S", time.localtime(float(m["ts"])))
    text = m["text"] or "\n".join(texts_in(m["blocks"]))
    parts = [
        f'<article class="{css_class}" id="m{e(m["ts"])}">',
        f"<header><strong>{e(m['author'])}</strong> <time>{e(when)}</time></header>",
    ]
    if text:
        parts.append(f'<p class="text">{e(text)}</p>')
    for f in m.get("files", []):
        if f["is_image"]:
            parts.append(
                f'<figure><img src="{e(f["url"])}" alt="{e(f["alt"])}">'
                f"<figcaption>{e(f['title'])}</figcaption></figure>"
            )
        else:
            parts.append(
                f'<p class="file"><a href="{e(f["url"])}" download>{e(f["title"])}</a></p>'
            )
    parts.append("</article>")
    return "".join(parts)


def _why(exc: BaseException) -> str:
    """A short reason a request to the bot failed."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (
            "connection refused"
            if isinstance(exc.os_error, ConnectionRefusedError)
            else (exc.os_error.strerror or "cannot connect")
        )
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
