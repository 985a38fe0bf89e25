"""The digest's picker: the listener registered on a stand-in app, called with Slack's
block_actions body, over a real catalog and `ServiceViews` reading a one-cluster fake."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import action_ids
from bot.adapters.slack.payloads import RollbackButton
from bot.config.catalog import Catalog, ServiceEntry
from bot.domain.audit import AuditRecord, Step
from bot.domain.rollback.models import Deployment, History, RunInfo, Target, WorkloadKind
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.ports import Cluster
from bot.usecases.rollback.views import ServiceViews
from handlers import digest
from handlers.after_ack import AfterAck
from tests.builders import OneCluster
from tests.unit.adapters.slack.test_alert_blocks import history

NOW = datetime(2026, 11, 27, 4, 5, tzinfo=UTC)
Listener = Callable[..., Awaitable[None]]


class App:
    """What `register` uses of Bolt's app: the listener it registers, by action_id."""

    def __init__(self) -> None:
        self.listeners: dict[str, Listener] = {}

    def action(self, action_id: str) -> Callable[[Listener], Listener]:
        def keep(listener: Listener) -> Listener:
            self.listeners[action_id] = listener
            return listener

        return keep


class ReadOnlyCluster:
    """The cluster as `ServiceViews` reads it: one history, whatever the Deployment."""

    def __init__(self, h: History) -> None:
        self._history = h
        self.reads: list[tuple[str, str]] = []

    @property
    def server(self) -> str:
        return "https://prod-eu.example.com"

    async def history(
        self, namespace: str, name: str, *, kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    ) -> History:
        self.reads.append((namespace, name))
        return self._history


class NoRuns:
    def running(self, target: Target) -> RunInfo | None:
        return None


class Sink:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        self.records.append(record)


class Client:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []

    async def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        self.posts.append(kwargs)
        return {"ok": True, "ts": "1764216100.000200"}


class Respond:
    def __init__(self) -> None:
        self.said: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.said.append(kwargs)


async def ack() -> None:
    return None


class World:
    def __init__(self) -> None:
        self.cluster = ReadOnlyCluster(history())
        self.sink = Sink()
        views = ServiceViews(
            OneCluster(cast(Cluster, self.cluster)), NoRuns(), AuditTrail([self.sink])
        )
        catalog = Catalog(
            services={"payments": ServiceEntry(namespace="shop", deployment="payments")},
            source="catalog.yaml",
        )
        self.app = App()
        digest.register(cast(AsyncApp, self.app), catalog, views, after_ack=AfterAck())
        self.client = Client()
        self.respond = Respond()

    async def pick(self, body: dict[str, Any]) -> None:
        listener = self.app.listeners[action_ids.DIGEST_PICK]
        await listener(
            ack=ack,
            body=body,
            client=cast(AsyncWebClient, self.client),
            respond=cast(AsyncRespond, self.respond),
        )


def picked(value: Any, **changes: Any) -> dict[str, Any]:
    """Slack's block_actions body for a choice in the digest's picker."""
    body: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0BOB0001"},
        "channel": {"id": "C0ALERTS"},
        "container": {"type": "message", "message_ts": "1764216000.000100"},
        "message": {"ts": "1764216000.000100", "text": "Alert storm"},
        "response_url": "https://hooks.slack.example/actions/1",
        "actions": [
            {
                "type": "static_select",
                "action_id": action_ids.DIGEST_PICK,
                "block_id": "digest:more",
                "selected_option": {"value": value, "text": {"type": "plain_text", "text": "x"}},
            }
        ],
    }
    body.update(changes)
    return body


async def test_a_picked_service_is_offered_in_the_digests_thread() -> None:
    world = World()
    await world.pick(picked("payments"))
    (post,) = world.client.posts
    assert (post["channel"], post["thread_ts"]) == ("C0ALERTS", "1764216000.000100")
    assert post["blocks"][0]["elements"][0]["text"].startswith(
        ":point_down: <@U0BOB0001> picked *payments*"
    )
    (button,) = [e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]]
    value = RollbackButton.decode(button["value"])
    assert (value.service, value.target_revision, value.source) == ("payments", 2, "alert")
    assert world.cluster.reads == [("shop", "payments")]
    (asked,) = world.sink.records  # the offer is recorded, as a /rollback's
    assert (asked.step, asked.actor, asked.channel) == (Step.ASKED, "U0BOB0001", "C0ALERTS")
    assert world.respond.said == []


async def test_without_the_message_the_container_names_the_digest() -> None:
    world = World()
    body = picked("payments")
    del body["message"]
    await world.pick(body)
    assert world.client.posts[0]["thread_ts"] == "1764216000.000100"


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        ("paymnts", "paymnts"),  # not in the catalog: the catalog's own answer
        ("shop/payments-legacy", "is not a service of the catalog"),
        ("x" * 151, "not made by this version of rollback-bot"),
        (None, "not made by this version of rollback-bot"),
        ("<!channel>", "&lt;!channel&gt;"),
    ],
)
async def test_anything_else_is_answered_privately_and_nothing_is_posted(
    value: Any, answer: str
) -> None:
    world = World()
    await world.pick(picked(value))
    assert world.client.posts == []
    assert world.cluster.reads == [] and world.sink.records == []
    (said,) = world.respond.said
    assert said["response_type"] == "ephemeral"
    assert answer in said["blocks"][0]["text"]["text"]
    assert "<!channel>" not in said["text"] + said["blocks"][0]["text"]["text"]
