"""Files for the Slack stand-in, uploaded the way Slack's external upload works.

Slack's flow (https://docs.slack.dev/reference/methods/files.getUploadURLExternal and
https://docs.slack.dev/reference/methods/files.completeUploadExternal), which slack_sdk's
`files_upload_v2` follows step by step:

1. `files.getUploadURLExternal` (`filename`, `length`; optional `alt_txt`, `snippet_type`)
   answers `upload_url` and `file_id`;
2. a plain HTTP POST of the bytes to `upload_url` (no token: the URL is the credential). Slack:
   "Files can be sent as raw bytes or can be multipart form encoded. Slack will return HTTP 200 if
   the upload is successful; a non-200 response indicates a failure." slack_sdk sends the raw
   bytes (aiohttp `data=bytes`) and only looks at the status;
3. `files.completeUploadExternal` (`files`: a JSON list of `{id, title}`; `channel_id` or
   `channels`, `thread_ts`, `initial_comment` or `blocks`) shares the files as one message per
   channel. Without a channel the file stays private. "This method can only be called once."

This module holds what that needs and does not depend on the server: the stored files
(`StoredFile`), the store that reserves, receives and claims them (`FileUploads`), the message that
carries them (`FileMessage`), reading an upload body (`read_upload`) and the file type sniffed from
the bytes. `FakeSlackWebApi` (web_api.py) wires them to its routes and turns `FileUploadError`
into Slack's `ok: false` answers.

Figures: `alt_txt` up to 1,000 characters (`alt_txt_too_large`), snippets up to 1 MB
(`snippet_too_large`), 100 channels a share (`channels_limit_exceeded`), a `length` of 0 is
`missing_argument`: all from the two method pages above. Slack's API pages give no maximum file
size; 1 GB is the figure slack_sdk enforces (`MAX_V2_FILE_SIZE`, "Slack files.upload limit"),
so the stand-in refuses a larger `length` with `invalid_arguments` (its choice of error: Slack
documents none for this).
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from rollback_sandbox.slack.records import FakeChannel, StoredMessage

__all__ = [
    "MAX_ALT_TXT_LENGTH",
    "MAX_FILE_BYTES",
    "MAX_SHARE_CHANNELS",
    "MAX_SNIPPET_BYTES",
    "FileMessage",
    "FileShare",
    "FileUploadError",
    "FileUploads",
    "StoredFile",
    "UploadRejected",
    "read_upload",
    "sniff",
    "thread_parent",
]

JsonDict = dict[str, Any]

#: The largest `length` accepted: slack_sdk's 1 GB (Slack's API pages publish no figure).
MAX_FILE_BYTES = 1024 * 1024 * 1024
#: "Description for the image is longer than the limit of 1000 character".
MAX_ALT_TXT_LENGTH = 1000
#: Snippets "are limited to 1MB".
MAX_SNIPPET_BYTES = 1024 * 1024
#: "A maximum of 100 channels is allowed per request."
MAX_SHARE_CHANNELS = 100

#: What a message `ts` looks like. Slack answers `invalid_thread_ts` ("[ERROR] 0 is not a valid
#: thread_ts") for anything else.
_TS = re.compile(r"\d+\.\d+")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: (magic prefix, mimetype, filetype, pretty_type) for the images a bot may upload.
_IMAGE_MAGIC = (
    (_PNG_MAGIC, "image/png", "png", "PNG"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg", "JPEG"),
    (b"GIF87a", "image/gif", "gif", "GIF"),
    (b"GIF89a", "image/gif", "gif", "GIF"),
)
_READ_CHUNK = 64 * 1024


class FileUploadError(Exception):
    """A Web API refusal (`ok: false` with `error`, HTTP 200); web_api.py answers it."""

    def __init__(self, error: str, *messages: str) -> None:
        super().__init__(error)
        self.error = error
        #: Slack's `response_metadata.messages` ("[ERROR] …"), when it explains itself.
        self.extra: JsonDict = (
            {"response_metadata": {"messages": [f"[ERROR] {m}" for m in messages]}}
            if messages
            else {}
        )


class UploadRejected(Exception):
    """The upload URL refuses a POST: a non-200 status (all slack_sdk looks at) and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class FileShare:
    """One message a file was shared in."""

    channel: str
    channel_name: str
    #: The message carrying the file.
    ts: str
    #: The thread it went to (its parent's ts), None at the top of the channel.
    thread_ts: str | None
    #: Where Slack files the share: "public" channels, or "private" ones (and DMs).
    visibility: str


@dataclass
class StoredFile:
    """A file as the stand-in holds it, from `files.getUploadURLExternal` on."""

    id: str
    #: `filename` as given to `files.getUploadURLExternal` (the file object's `name`).
    name: str
    #: `length` as announced: the upload must bring exactly this many bytes.
    length: int
    #: The secret part of the upload URL (`/upload/v1/<key>`).
    upload_key: str
    user: str
    team: str
    team_domain: str
    #: The stand-in's `http://host:port`, for `url_private`.
    server: str
    created: int = field(default_factory=lambda: int(time.time()))
    alt_txt: str | None = None
    snippet_type: str | None = None
    #: The bytes, once uploaded (None before).
    content: bytes | None = None
    #: The title given to `files.completeUploadExternal` (the name until then).
    title: str | None = None
    #: Whether `files.completeUploadExternal` took it (it can do so once).
    completed: bool = False
    shares: list[FileShare] = field(default_factory=list)

    @property
    def uploaded(self) -> bool:
        return self.content is not None

    @property
    def data(self) -> bytes:
        """The bytes uploaded (empty before the upload)."""
        return self.content or b""

    @property
    def channel(self) -> str | None:
        """The first channel it was shared in; None while private."""
        return self.shares[0].channel if self.shares else None

    @property
    def thread_ts(self) -> str | None:
        """The thread of its first share; None at the top of a channel or while private."""
        return self.shares[0].thread_ts if self.shares else None

    @property
    def mimetype(self) -> str:
        return sniff(self.data)[0]

    @property
    def is_image(self) -> bool:
        return self.mimetype.startswith("image/")

    @property
    def url_private(self) -> str:
        """Where Slack serves the bytes to a token holder (`Authorization: Bearer`)."""
        return f"{self.server}/files-pri/{self.team}-{self.id}/{quote(self.name, safe='')}"

    def to_api(self) -> JsonDict:
        """The file object as Slack returns it (files.completeUploadExternal, a message's
        `files`). The mimetype is read from the bytes, as Slack does once it has them."""
        mimetype, filetype, pretty_type = sniff(self.data)
        d: JsonDict = {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title if self.title is not None else self.name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": pretty_type,
            "user": self.user,
            "user_team": self.team,
            "editable": False,
            "size": len(self.data),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": any(s.visibility == "public" for s in self.shares),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": self.url_private,
            "url_private_download": f"{self.url_private}?download=1",
            "permalink": (
                f"https://{self.team_domain}.slack.com/files/{self.user}/{self.id}/"
                f"{quote(self.name, safe='')}"
            ),
            "channels": [s.channel for s in self.shares if s.visibility == "public"],
            "groups": [s.channel for s in self.shares if s.visibility == "private"],
            "ims": [],
            "comments_count": 0,
            "has_rich_preview": False,
            "file_access": "visible",
        }
        size = _png_size(self.data)
        if size is not None:
            d["original_w"], d["original_h"] = size
        if self.alt_txt:
            d["alt_txt"] = self.alt_txt
        if self.shares:
            shares: dict[str, dict[str, list[JsonDict]]] = {}
            for s in self.shares:
                entry: JsonDict = {
                    "ts": s.ts,
                    "channel_name": s.channel_name,
                    "team_id": self.team,
                    "share_user_id": self.user,
                    "reply_users": [],
                    "reply_users_count": 0,
                    "reply_count": 0,
                }
                if s.thread_ts:
                    entry["thread_ts"] = s.thread_ts
                shares.setdefault(s.visibility, {}).setdefault(s.channel, []).append(entry)
            d["shares"] = shares
        return d


@dataclass
class FileMessage(StoredMessage):
    """A message sharing files: `to_api` shows them (`files`, `upload: true`), and its Events
    API `message` event is the `file_share` subtype."""

    files: list[StoredFile] = field(default_factory=list)

    @classmethod
    def sharing(cls, message: StoredMessage, files: Sequence[StoredFile]) -> FileMessage:
        """`message` (made as any bot message is) carrying `files`."""
        own = {f.name: getattr(message, f.name) for f in fields(StoredMessage) if f.init}
        return cls(**own, files=list(files))

    def to_api(self) -> JsonDict:
        d = super().to_api()
        d["files"] = [f.to_api() for f in self.files]
        d["upload"] = True
        d["display_as_bot"] = False
        return d

    def to_event(self, channel_type: str = "channel") -> JsonDict:
        event = super().to_event(channel_type)
        event["subtype"] = "file_share"
        return event


class FileUploads:
    """The files of one fake workspace: reserved, uploaded, then completed (once)."""

    def __init__(self, new_id: Callable[[str], str]) -> None:
        self._new_id = new_id
        self._files: dict[str, StoredFile] = {}
        self._by_key: dict[str, str] = {}

    def all(self) -> list[StoredFile]:
        """Every file reserved, oldest first."""
        return list(self._files.values())

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def reserve(
        self,
        args: Mapping[str, Any],
        *,
        user: str,
        team: str,
        team_domain: str,
        server: str,
        key: str,
    ) -> StoredFile:
        """`files.getUploadURLExternal`: check the arguments as Slack does, reserve an id."""
        filename = args.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            raise FileUploadError("invalid_arguments", "missing required field: filename")
        length = _length(args.get("length"))
        if length == 0:
            # Slack: missing_argument "Typically only occurs when the `length` provided is 0."
            raise FileUploadError("missing_argument", "length must be greater than 0")
        if length > MAX_FILE_BYTES:
            raise FileUploadError(
                "invalid_arguments", f"length must be at most {MAX_FILE_BYTES} bytes (1 GB)"
            )
        alt_txt = _optional_text(args.get("alt_txt"))
        if alt_txt is not None and len(alt_txt) > MAX_ALT_TXT_LENGTH:
            raise FileUploadError("alt_txt_too_large")
        snippet_type = _optional_text(args.get("snippet_type"))
        if snippet_type is not None and length > MAX_SNIPPET_BYTES:
            raise FileUploadError("snippet_too_large")
        stored = StoredFile(
            id=self._new_id("F"),
            name=filename,
            length=length,
            upload_key=key,
            user=user,
            team=team,
            team_domain=team_domain,
            server=server,
            alt_txt=alt_txt,
            snippet_type=snippet_type,
        )
        self._files[stored.id] = stored
        self._by_key[key] = stored.id
        return stored

    def by_key(self, key: str) -> StoredFile:
        """The file an upload URL is for; `UploadRejected(404)` when there is none (or it is
        completed: the URL is spent)."""
        stored = self._files.get(self._by_key.get(key, ""))
        if stored is None or stored.completed:
            raise UploadRejected(404, "no such upload")
        return stored

    @staticmethod
    def receive(stored: StoredFile, content: bytes) -> None:
        """Keep the bytes POSTed to the upload URL if there are exactly as many as announced.

        A second POST before completion replaces the first: that is a client retrying."""
        if len(content) != stored.length:
            raise UploadRejected(
                400, f"length mismatch: {stored.length} bytes announced, {len(content)} received"
            )
        stored.content = content

    def claim(self, files_arg: Any) -> list[tuple[StoredFile, str | None]]:
        """The files `files.completeUploadExternal` names, each with the title given, after
        checking that each was uploaded and not completed yet. Changes nothing."""
        if not isinstance(files_arg, list) or not files_arg:
            raise FileUploadError("invalid_arguments", "files must be a non-empty JSON array")
        claimed: list[tuple[StoredFile, str | None]] = []
        for i, item in enumerate(files_arg):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise FileUploadError("invalid_arguments", f"files[{i}] must have a string id")
            title = item.get("title")
            if title is not None and not isinstance(title, str):
                raise FileUploadError("invalid_arguments", f"files[{i}].title must be a string")
            stored = self._files.get(item["id"])
            # "Could not find the file from the upload ticket": never reserved, never uploaded,
            # or already completed ("This method can only be called once").
            if stored is None or not stored.uploaded or stored.completed:
                raise FileUploadError("file_not_found")
            if any(other is stored for other, _ in claimed):
                raise FileUploadError("invalid_arguments", f"files[{i}] repeats {stored.id}")
            claimed.append((stored, title or None))
        return claimed

    @staticmethod
    def complete(
        claimed: Iterable[tuple[StoredFile, str | None]], shares: Iterable[FileShare]
    ) -> list[StoredFile]:
        """Mark the claimed files completed, titled and shared where they went."""
        done: list[StoredFile] = []
        share_list = list(shares)
        for stored, title in claimed:
            stored.completed = True
            stored.title = title if title is not None else stored.name
            stored.shares.extend(share_list)
            done.append(stored)
        return done


def thread_parent(chan: FakeChannel, thread_ts: str) -> str:
    """The ts of the thread a file share goes to: `thread_ts` itself, or its parent when it
    names a reply (as chat.postMessage does here).

    `invalid_thread_ts` for something that is not a ts (what Slack answers chat.postMessage).
    `thread_not_found` for a ts with no message in the channel: Slack's page for
    files.completeUploadExternal documents no error for that, and chat.postMessage accepts such
    a ts and files the message where no one sees it. The stand-in refuses it on purpose (the
    error name is conversations.replies'): a chart that lands in no visible thread is a bug the
    tests should see.
    """
    if not _TS.fullmatch(thread_ts):
        raise FileUploadError("invalid_thread_ts", f"{thread_ts} is not a valid thread_ts")
    parent = chan.messages.get(thread_ts)
    if parent is None or parent.deleted:
        raise FileUploadError("thread_not_found", f"no message {thread_ts} in {chan.id}")
    if parent.is_reply and parent.thread_ts:
        return parent.thread_ts
    return thread_ts


async def read_upload(request: web.Request, limit: int) -> bytes:
    """The file in an upload POST: the raw body, or the file part of a multipart form.

    Reads at most `limit + 1` bytes (one more than announced tells "too long" without reading a
    huge body), from the stream: aiohttp's `client_max_size` (1 MiB) is for form bodies, not
    for files."""
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                raise UploadRejected(400, "no file in the multipart form")
            if isinstance(part, BodyPartReader) and (part.filename or part.name == "file"):
                return await _read_part(part, limit)
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await part.read_chunk(min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def sniff(content: bytes) -> tuple[str, str, str]:
    """(mimetype, filetype, pretty_type) of `content`, read from its first bytes: images by
    their magic numbers, UTF-8 as plain text, anything else as binary."""
    for magic, mimetype, filetype, pretty in _IMAGE_MAGIC:
        if content.startswith(magic):
            return mimetype, filetype, pretty
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream", "binary", "Binary"
    return "text/plain", "text", "Plain Text"


def _png_size(content: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk (the first one, right after the magic)."""
    if not content.startswith(_PNG_MAGIC) or content[12:16] != b"IHDR" or len(content) < 24:
        return None
    width, height = struct.unpack(">II", content[16:24])
    return int(width), int(height)


def _length(value: Any) -> int:
    """`length` as an integer (a form or query string, or a JSON number)."""
    if isinstance(value, bool):
        raise FileUploadError("invalid_arguments", "length must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif value is None or value == "":
        raise FileUploadError("invalid_arguments", "missing required field: length")
    else:
        raise FileUploadError("invalid_arguments", "length must be an integer")
    if number < 0:
        raise FileUploadError("invalid_arguments", "length must be an integer")
    return number


def _optional_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
