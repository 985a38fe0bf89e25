"""Files in the Slack stand-in, uploaded by slack_sdk's real `files_upload_v2` over HTTP.

What the bot will do with its charts: `AsyncWebClient.files_upload_v2(channel=…, thread_ts=…,
file=bytes, …)`, which calls files.getUploadURLExternal, POSTs the bytes to the `upload_url`, then
calls files.completeUploadExternal. The stand-in must take that flow as Slack does, refuse what
Slack refuses, and the local workspace page must show the image in its thread.
"""

from __future__ import annotations

import struct
import zlib
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from rollback_sandbox.slack.files import FileMessage
from rollback_sandbox.slack.rate_limits import SLACK_LIMITS, Limit, MethodLimits
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID
from rollback_sandbox.slack.web_api import FakeSlackWebApi
from rollback_sandbox.slack.workspace_ui import LocalWorkspace
from tests.slack_fixtures import SLACK_SIGNING_SECRET

#: Nothing listens here: port 9 (discard) on the loopback is closed on any test machine.
NOWHERE = "http://127.0.0.1:9/slack/events"


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG, red all over: signature, IHDR, one zlib IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))  # filter 0 a row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = tiny_png()


@pytest.fixture
def client(slack_api: FakeSlackWebApi) -> AsyncWebClient:
    return AsyncWebClient(token=slack_api.bot_token, base_url=slack_api.api_url)


async def parent_ts(client: AsyncWebClient, channel: str = DEFAULT_CHANNEL_ID) -> str:
    posted = await client.chat_postMessage(channel=channel, text="Rolling back checkout")
    return str(posted["ts"])


async def slack_error(call: Any) -> str:
    with pytest.raises(SlackApiError) as caught:
        await call
    return str(caught.value.response["error"])


# ---------------------------------------------------------------------------------------------
# The flow, as slack_sdk drives it
# ---------------------------------------------------------------------------------------------


async def test_a_png_lands_in_the_thread_with_its_title(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    ts = await parent_ts(client)
    response = await client.files_upload_v2(
        channel=DEFAULT_CHANNEL_ID,
        thread_ts=ts,
        file=PNG,
        filename="error-rate.png",
        title="Error rate, last hour",
        initial_comment="Error rate since 2.14.0",
    )

    file = response["file"]  # slack_sdk adds it when one file was uploaded
    assert file["title"] == "Error rate, last hour"
    assert (file["name"], file["mimetype"], file["filetype"]) == (
        "error-rate.png",
        "image/png",
        "png",
    )
    assert (file["size"], file["original_w"], file["original_h"]) == (len(PNG), 3, 2)
    [share] = file["shares"]["public"][DEFAULT_CHANNEL_ID]
    assert share["thread_ts"] == ts

    [stored] = slack_api.files()
    assert stored.data == PNG
    assert (stored.channel, stored.thread_ts, stored.title) == (
        DEFAULT_CHANNEL_ID,
        ts,
        file["title"],
    )
    assert stored.completed and stored.id == file["id"]

    [reply] = slack_api.thread(DEFAULT_CHANNEL_ID, ts)
    assert isinstance(reply, FileMessage)
    assert reply.text == "Error rate since 2.14.0" and reply.ts == share["ts"]
    shown = reply.to_api()
    assert shown["upload"] is True and shown["thread_ts"] == ts
    assert [(f["id"], f["title"], f["mimetype"]) for f in shown["files"]] == [
        (stored.id, "Error rate, last hour", "image/png")
    ]
    assert reply.to_event()["subtype"] == "file_share"
    parent = slack_api.message(DEFAULT_CHANNEL_ID, ts)
    assert parent is not None and parent.replies == [reply.ts]

    # Recorded like any call; the upload POST is method "upload_url" (raw bytes, no token).
    got, upload, completed = (
        slack_api.calls("files.getUploadURLExternal")[0],
        slack_api.calls("upload_url")[0],
        slack_api.calls("files.completeUploadExternal")[0],
    )
    assert got.args["filename"] == "error-rate.png" and got.args["length"] == str(len(PNG))
    assert (upload.ok, upload.transport, upload.token) == (True, "raw", None)
    assert upload.args["length"] == len(PNG)
    assert completed.args["files"] == [{"id": stored.id, "title": "Error rate, last hour"}]
    assert (completed.args["channel_id"], completed.args["thread_ts"]) == (DEFAULT_CHANNEL_ID, ts)


async def test_url_private_serves_the_bytes_to_the_bot_token_only(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    response = await client.files_upload_v2(channel=DEFAULT_CHANNEL_ID, file=PNG, filename="c.png")
    url = response["file"]["url_private"]
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {slack_api.bot_token}"}
        async with session.get(url, headers=headers) as r:
            assert (r.status, r.content_type, await r.read()) == (200, "image/png", PNG)
        async with session.get(url) as r:
            assert r.status == 403


async def test_a_multipart_upload_is_taken_too(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    # Slack: "Files can be sent as raw bytes or can be multipart form encoded."
    ticket = await client.files_getUploadURLExternal(filename="c.png", length=len(PNG))
    form = aiohttp.FormData()
    form.add_field("filename", PNG, filename="c.png", content_type="image/png")
    async with (
        aiohttp.ClientSession() as session,
        session.post(ticket["upload_url"], data=form) as r,
    ):
        assert (r.status, await r.text()) == (200, f"OK - {len(PNG)}")
    done = await client.files_completeUploadExternal(
        files=[{"id": ticket["file_id"], "title": "Chart"}], channel_id=DEFAULT_CHANNEL_ID
    )
    assert done["files"][0]["mimetype"] == "image/png"
    [message] = slack_api.messages(DEFAULT_CHANNEL_ID)
    assert isinstance(message, FileMessage) and message.files[0].data == PNG


async def test_without_a_channel_the_file_stays_private(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    response = await client.files_upload_v2(file=PNG, filename="c.png")
    assert "shares" not in response["file"]
    [stored] = slack_api.files()
    assert stored.completed and stored.channel is None
    assert slack_api.messages(DEFAULT_CHANNEL_ID) == []


# ---------------------------------------------------------------------------------------------
# What Slack refuses
# ---------------------------------------------------------------------------------------------


async def test_a_channel_the_bot_is_not_in_shares_nothing(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    outside = slack_api.add_channel("war-room", bot_is_member=False)
    hidden = slack_api.add_channel("secret-ops", is_private=True, bot_is_member=False)
    # As chat.postMessage: not a member of a public channel; a private one it cannot see.
    for channel, error in (
        (outside, "not_in_channel"),
        (hidden, "channel_not_found"),
        ("C0NOSUCH01", "channel_not_found"),
    ):
        upload = client.files_upload_v2(channel=channel, file=PNG, filename="c.png")
        assert await slack_error(upload) == error
    # The bytes went up, nothing was shared, and no file was spent by the refusals.
    assert [(f.uploaded, f.completed, f.shares) for f in slack_api.files()] == [
        (True, False, [])
    ] * 3
    assert slack_api.messages(outside) == [] and slack_api.messages(hidden) == []


async def test_a_thread_that_is_not_there(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    upload = client.files_upload_v2(
        channel=DEFAULT_CHANNEL_ID, thread_ts="1700000000.123456", file=PNG, filename="c.png"
    )
    assert await slack_error(upload) == "thread_not_found"
    bad = client.files_upload_v2(
        channel=DEFAULT_CHANNEL_ID, thread_ts="0", file=PNG, filename="c.png"
    )
    assert await slack_error(bad) == "invalid_thread_ts"
    assert slack_api.messages(DEFAULT_CHANNEL_ID) == []


async def test_a_reply_ts_shares_into_its_parents_thread(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    ts = await parent_ts(client)
    reply = await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, thread_ts=ts, text="step 1")
    await client.files_upload_v2(
        channel=DEFAULT_CHANNEL_ID, thread_ts=reply["ts"], file=PNG, filename="c.png"
    )
    assert [f.thread_ts for f in slack_api.files()] == [ts]
    assert len(slack_api.thread(DEFAULT_CHANNEL_ID, ts)) == 2


async def test_bytes_that_are_not_the_announced_length_are_refused(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    ticket = await client.files_getUploadURLExternal(filename="c.png", length=len(PNG) + 5)
    async with aiohttp.ClientSession() as session:
        async with session.post(ticket["upload_url"], data=PNG) as r:
            assert r.status == 400 and "length mismatch" in await r.text()
        async with session.post(ticket["upload_url"], data=PNG + b"\x00" * 10) as r:
            assert r.status == 400
    assert [c.ok for c in slack_api.calls("upload_url")] == [False, False]
    # Nothing was kept: completing it finds no file, as for any upload that did not happen.
    complete = client.files_completeUploadExternal(
        files=[{"id": ticket["file_id"]}], channel_id=DEFAULT_CHANNEL_ID
    )
    assert await slack_error(complete) == "file_not_found"


async def test_an_id_never_uploaded_or_already_completed_is_file_not_found(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    ticket = await client.files_getUploadURLExternal(filename="c.png", length=len(PNG))
    for file_id in (ticket["file_id"], "F0NEVERSEEN"):
        complete = client.files_completeUploadExternal(
            files=[{"id": file_id}], channel_id=DEFAULT_CHANNEL_ID
        )
        assert await slack_error(complete) == "file_not_found"

    done = await client.files_upload_v2(channel=DEFAULT_CHANNEL_ID, file=PNG, filename="c.png")
    # "This method can only be called once."
    again = client.files_completeUploadExternal(
        files=[{"id": done["file"]["id"]}], channel_id=DEFAULT_CHANNEL_ID
    )
    assert await slack_error(again) == "file_not_found"
    assert len(slack_api.messages(DEFAULT_CHANNEL_ID)) == 1

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{slack_api.url}/upload/v1/not-a-ticket", data=PNG) as r:
            assert r.status == 404
        # A completed file's upload URL is spent.
        spent = slack_api.files()[-1].upload_key
        async with session.post(f"{slack_api.url}/upload/v1/{spent}", data=PNG) as r:
            assert r.status == 404


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"length": 10}, "invalid_arguments"),
        ({"filename": "c.png"}, "invalid_arguments"),
        ({"filename": "c.png", "length": "ten"}, "invalid_arguments"),
        ({"filename": "c.png", "length": 0}, "missing_argument"),
        ({"filename": "c.png", "length": 1024**3 + 1}, "invalid_arguments"),
        ({"filename": "c.png", "length": 10, "alt_txt": "x" * 1001}, "alt_txt_too_large"),
        (
            {"filename": "c.py", "length": 1024**2 + 1, "snippet_type": "python"},
            "snippet_too_large",
        ),
    ],
)
async def test_get_upload_url_checks_its_arguments(
    client: AsyncWebClient, params: dict[str, Any], error: str
) -> None:
    assert await slack_error(client.api_call("files.getUploadURLExternal", params=params)) == error


async def test_the_largest_file_slack_takes_gets_an_upload_url(client: AsyncWebClient) -> None:
    ticket = await client.files_getUploadURLExternal(filename="big.bin", length=1024**3)
    assert ticket["file_id"].startswith("F")


async def test_complete_checks_its_files_argument(client: AsyncWebClient) -> None:
    for files in ("not json", "[]", '[{"title": "no id"}]'):
        call = client.api_call(
            "files.completeUploadExternal",
            params={"files": files, "channel_id": DEFAULT_CHANNEL_ID},
        )
        assert await slack_error(call) == "invalid_arguments"


async def test_both_methods_are_tier_4_and_limited(slack_api: FakeSlackWebApi) -> None:
    for method in ("files.getUploadURLExternal", "files.completeUploadExternal"):
        assert SLACK_LIMITS[method] == MethodLimits("tier4", (Limit(100, 50),))
    slack_api.use_limits(
        {"files.getUploadURLExternal": MethodLimits("tier4", (Limit(per_minute=1, burst=1),))}
    )
    client = AsyncWebClient(token=slack_api.bot_token, base_url=slack_api.api_url)
    await client.files_getUploadURLExternal(filename="a.png", length=1)
    with pytest.raises(SlackApiError) as caught:
        await client.files_getUploadURLExternal(filename="b.png", length=1)
    assert caught.value.response.status_code == 429


async def test_a_failing_upload_url_fails_files_upload_v2(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    slack_api.fail_next("upload_url", "internal_error", status=500)
    with pytest.raises(Exception, match="Failed to upload a file"):
        await client.files_upload_v2(channel=DEFAULT_CHANNEL_ID, file=PNG, filename="c.png")
    assert slack_api.calls("files.completeUploadExternal") == []


# ---------------------------------------------------------------------------------------------
# The local workspace page shows the image in its thread
# ---------------------------------------------------------------------------------------------


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.sources.extend(v for k, v in attrs if k == "src" and v)


async def test_the_page_shows_the_uploaded_image_inline_in_its_thread() -> None:
    hostile = '<script>alert("title")</script>'
    async with (
        LocalWorkspace(bot_events_url=NOWHERE, signing_secret=SLACK_SIGNING_SECRET) as ws,
        aiohttp.ClientSession() as session,
    ):
        client = AsyncWebClient(token=ws.api.bot_token, base_url=ws.api_url)
        ts = await parent_ts(client)
        await client.files_upload_v2(
            channel=DEFAULT_CHANNEL_ID,
            thread_ts=ts,
            file=PNG,
            filename='"><img src=x onerror=alert(1)>.png',
            title=hostile,
            initial_comment="<b>not bold</b>",
        )

        async with session.get(f"{ws.url}ui/threads/{DEFAULT_CHANNEL_ID}/{ts}") as r:
            assert (r.status, r.content_type) == (200, "text/html")
            assert "script-src" not in r.headers["Content-Security-Policy"]  # none allowed
            page = await r.text()
        parsed = _Images()
        parsed.feed(page)
        assert "script" not in parsed.tags and "b" not in parsed.tags
        assert "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;" in page
        [src] = parsed.sources  # the hostile filename made no second <img>
        async with session.get(f"{ws.api.url}{src}") as r:
            assert (r.status, r.content_type) == (200, "image/png")
            assert await r.read() == PNG

        # The page's own state lists the file and links the image and the thread page.
        [message] = [m for m in ws.state()["messages"] if m["ts"] == ts]
        [reply] = message["replies"]
        assert [f["title"] for f in reply["files"]] == [hostile]
        [link] = reply["attachments"]
        assert link["title_link"] == f"{ws.api.url}{src}"
        assert f"/ui/threads/{DEFAULT_CHANNEL_ID}/{ts}|" in link["text"]

        # The same page for a reply's ts; unknown threads and files are 404s.
        async with session.get(f"{ws.url}ui/threads/{DEFAULT_CHANNEL_ID}/{reply['ts']}") as r:
            assert r.status == 200
        async with session.get(f"{ws.url}ui/threads/{DEFAULT_CHANNEL_ID}/1.000001") as r:
            assert r.status == 404
        async with session.get(f"{ws.url}ui/files/F0NEVERSEEN/x.png") as r:
            assert r.status == 404


async def test_the_page_serves_unshared_or_non_image_files_safely() -> None:
    async with (
        LocalWorkspace(bot_events_url=NOWHERE, signing_secret=SLACK_SIGNING_SECRET) as ws,
        aiohttp.ClientSession() as session,
    ):
        client = AsyncWebClient(token=ws.api.bot_token, base_url=ws.api_url)
        private = await client.files_upload_v2(file=PNG, filename="private.png")
        async with session.get(f"{ws.url}ui/files/{private['file']['id']}/private.png") as r:
            assert r.status == 404  # never shared: the local user cannot see it
        page = b"<html><script>alert(1)</script></html>"
        shared = await client.files_upload_v2(
            channel=DEFAULT_CHANNEL_ID, content=page, filename="evil.html"
        )
        async with session.get(f"{ws.url}ui/files/{shared['file']['id']}/evil.html") as r:
            assert r.status == 200 and r.content_type == "application/octet-stream"
            assert r.headers["Content-Disposition"] == "attachment"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
