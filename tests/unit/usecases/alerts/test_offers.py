"""Alerts turned into rollback offers: one message per group and service, posted once and then
updated; Alertmanager's own Slack posts answered once. The index is the in-memory one; Slack and
the cluster are fakes that record what they were asked."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.adapters.kube.parsing import parse_history
from bot.adapters.memory import MemoryDocument
from bot.config.catalog import Catalog, ServiceEntry, ServiceRef
from bot.domain.alerts.advice import Advice, Verdict
from bot.domain.alerts.mapping import message_key
from bot.domain.alerts.views import AlertGroupView, DigestView
from bot.domain.alerts.webhook import WebhookMessage, parse_webhook
from bot.domain.errors import ClusterError
from bot.domain.rollback.views import ServiceView
from bot.usecases.alerts.digests import Digests
from bot.usecases.alerts.index import AlertIndex
from bot.usecases.alerts.offers import AlertBusy, AlertOffers, Handled
from tests.builders import deployment, replicaset, template
from tests.paths import ALERTMANAGER_FIXTURES

NOW = datetime(2026, 11, 27, 4, 5, tzinfo=UTC)
WINDOW = timedelta(minutes=60)
CHECKOUT_CHANNEL = "C0SHOP"
ALERT_CHANNEL, ALERT_TS = "C0SHOPALRT", "1795751900.000100"  # 03:58:20, Alertmanager's post


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ALERTMANAGER_FIXTURES / name).read_text())
    return data


def webhook(name: str, edit: Callable[[dict[str, Any]], None] | None = None) -> WebhookMessage:
    body = fixture(name)
    if edit is not None:
        edit(body)
    return parse_webhook(json.dumps(body).encode())


FIRING = webhook("firing_single.json")
RESOLVED = webhook("resolved.json")


def catalog(cart_channel: str | None = None) -> Catalog:
    return Catalog(
        services={
            "checkout": ServiceEntry(
                namespace="shop", deployment="checkout", channel=CHECKOUT_CHANNEL
            ),
            "cart": ServiceEntry(namespace="shop", deployment="cart", channel=cart_channel),
        }
    )


def history_view(ref: ServiceRef, asked_by: str) -> ServiceView:
    rss = [
        replicaset(template("1.1"), revision=2, pod_hash="b", created="2026-11-26T10:00:00Z"),
        # The current version went out 18 minutes before the alert started.
        replicaset(template("1.2"), revision=3, pod_hash="c", created="2026-11-27T03:40:00Z"),
    ]
    history = parse_history(deployment(template("1.2"), revision=3), rss)
    return ServiceView(
        service=ref.name,
        namespace=ref.namespace,
        cluster="https://k8s.example.com",
        history=history,
        asked_by=asked_by,
        taken_at=NOW,
    )


class FakeViewer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.error: Exception | None = None
        self._waiters: dict[int, asyncio.Event] = {}

    def called(self, times: int) -> asyncio.Event:
        """Set once the viewer has been asked `times` times."""
        event = self._waiters.setdefault(times, asyncio.Event())
        if len(self.calls) >= times:
            event.set()
        return event

    async def view(self, ref: ServiceRef, asked_by: str) -> ServiceView:
        self.calls.append((ref.name, asked_by))
        for times, event in self._waiters.items():
            if len(self.calls) >= times:
                event.set()
        if self.error is not None:
            raise self.error
        return history_view(ref, asked_by)


class FakeMessages:
    """The alert messages as Slack would hold them, and every call made."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, AlertGroupView]] = []  # channel, ts, view
        self.updates: list[tuple[str, str, AlertGroupView]] = []
        self.notes: list[tuple[str, str, AlertGroupView]] = []
        self.replies: list[tuple[str, str, ServiceView, str, Advice | None]] = []
        self.digests: list[tuple[str, str, DigestView]] = []
        self.digest_updates: list[tuple[str, str, DigestView]] = []
        self.digest_updated = asyncio.Event()
        self.fail_next: Exception | None = None
        self.post_gate: asyncio.Event | None = None
        self.posting = asyncio.Event()
        self._n = 0

    def _ts(self) -> str:
        self._n += 1
        return f"1795752300.{self._n:06d}"

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error

    async def post(self, channel: str, view: AlertGroupView) -> str:
        self.posting.set()
        if self.post_gate is not None:
            await self.post_gate.wait()
        self._maybe_fail()
        ts = self._ts()
        self.posts.append((channel, ts, view))
        return ts

    async def update(self, channel: str, ts: str, view: AlertGroupView) -> None:
        self.updates.append((channel, ts, view))

    async def note_resolved(self, channel: str, ts: str, view: AlertGroupView) -> None:
        self.notes.append((channel, ts, view))

    async def reply(
        self, channel: str, thread_ts: str, view: ServiceView, title: str, advice: Advice | None
    ) -> str:
        self._maybe_fail()
        self.replies.append((channel, thread_ts, view, title, advice))
        return self._ts()

    async def post_digest(self, channel: str, view: DigestView) -> str:
        self._maybe_fail()
        ts = self._ts()
        self.digests.append((channel, ts, view))
        return ts

    async def update_digest(
        self, channel: str, ts: str, view: DigestView, list_ts: str | None
    ) -> str | None:
        self.digest_updates.append((channel, ts, view))
        self.digest_updated.set()
        return None


class World:
    def __init__(self, *, default_channel: str | None = None, cart_channel: str | None = None):
        self.document = MemoryDocument()
        self.index = AlertIndex(self.document)
        self.messages = FakeMessages()
        self.viewer = FakeViewer()
        self.digests = Digests(
            catalog(cart_channel), self.index, self.messages, self.viewer, window=WINDOW
        )
        self.offers = AlertOffers(
            catalog(cart_channel),
            self.index,
            self.messages,
            self.viewer,
            self.digests,
            default_channel=default_channel,
            window=WINDOW,
            now=lambda: NOW,
        )


def alertmanager_post(**changes: Any) -> dict[str, Any]:
    """Alertmanager's default Slack post as the bot receives it (a bot_message event)."""
    posted = fixture("slack_default.json")
    event: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "bot_id": "B0AM00001",
        "username": posted["username"],
        "text": "",
        "ts": ALERT_TS,
        "channel": ALERT_CHANNEL,
        "attachments": [{"id": 1, **a} for a in posted["attachments"]],
    }
    event.update(changes)
    return event


def with_title(title: str) -> dict[str, Any]:
    event = alertmanager_post()
    event["attachments"][0]["title"] = title
    event["attachments"][0]["fallback"] = title
    return event


# -- the webhook ------------------------------------------------------------------------------


async def test_the_first_delivery_posts_in_the_services_channel() -> None:
    world = World(default_channel="C0DEFAULT")
    assert await world.offers.handle(FIRING) == Handled(posted=1)

    [(channel, ts, view)] = world.messages.posts
    assert channel == CHECKOUT_CHANNEL
    assert view.service == "checkout"
    assert view.firing
    assert view.taken_at == NOW
    assert [a.name for a in view.alerts] == ["HighErrorRate"]
    assert view.service_view is not None and view.problem is None
    assert view.advice is not None and view.advice.verdict is Verdict.LIKELY
    assert view.advice.version == "1.2"
    assert world.viewer.calls == [("checkout", "alertmanager")]
    stored = await world.index.lookup(message_key(FIRING.group_key, "checkout"))
    assert stored is not None
    assert (stored.channel, stored.ts, stored.status) == (CHECKOUT_CHANNEL, ts, "firing")


async def test_a_repeat_updates_the_same_message() -> None:
    world = World()
    await world.offers.handle(FIRING)
    assert await world.offers.handle(FIRING) == Handled(updated=1)
    assert await world.offers.handle(FIRING) == Handled(updated=1)

    [(_, ts, _)] = world.messages.posts
    assert [(c, t) for c, t, _ in world.messages.updates] == [(CHECKOUT_CHANNEL, ts)] * 2
    assert world.messages.notes == []


async def test_resolution_updates_the_message_and_notes_it_once() -> None:
    world = World()
    await world.offers.handle(FIRING)
    [(_, ts, _)] = world.messages.posts

    assert await world.offers.handle(RESOLVED) == Handled(updated=1)
    assert await world.offers.handle(RESOLVED) == Handled(updated=1)  # Alertmanager repeats it

    assert [(c, t, v.firing) for c, t, v in world.messages.updates] == [
        (CHECKOUT_CHANNEL, ts, False),
        (CHECKOUT_CHANNEL, ts, False),
    ]
    [(channel, note_ts, view)] = world.messages.notes
    assert (channel, note_ts) == (CHECKOUT_CHANNEL, ts)
    assert view.duration == pytest.approx(23 * 60 + 7)
    stored = await world.index.lookup(message_key(FIRING.group_key, "checkout"))
    assert stored is not None and stored.status == "resolved"


async def test_firing_again_after_resolution_updates_without_a_note() -> None:
    world = World()
    await world.offers.handle(FIRING)
    await world.offers.handle(RESOLVED)
    assert await world.offers.handle(FIRING) == Handled(updated=1)
    assert len(world.messages.posts) == 1
    assert len(world.messages.notes) == 1
    assert world.messages.updates[-1][2].firing


async def test_two_concurrent_deliveries_of_one_group_post_once() -> None:
    world = World()
    world.messages.post_gate = asyncio.Event()
    first = asyncio.create_task(world.offers.handle(FIRING))
    await world.messages.posting.wait()  # the first delivery won the claim and is posting
    second = asyncio.create_task(world.offers.handle(FIRING))
    await world.viewer.called(2).wait()  # the second one is under way too
    world.messages.post_gate.set()

    results = await asyncio.gather(first, second)
    assert sorted(results, key=lambda h: h.posted) == [Handled(updated=1), Handled(posted=1)]
    [(_, ts, _)] = world.messages.posts
    assert [(c, t) for c, t, _ in world.messages.updates] == [(CHECKOUT_CHANNEL, ts)]


async def test_a_failed_post_gives_the_claim_back() -> None:
    world = World()
    world.messages.fail_next = ConnectionError("slack is down")
    with pytest.raises(ConnectionError):
        await world.offers.handle(FIRING)
    assert await world.index.lookup(message_key(FIRING.group_key, "checkout")) is None

    # Alertmanager retries at once: it posts, without waiting for the claim to expire.
    assert await world.offers.handle(FIRING) == Handled(posted=1)
    assert len(world.messages.posts) == 1


async def test_a_group_another_replica_gave_up_posting_asks_for_a_retry() -> None:
    world = World()
    other_replica = AlertIndex(world.document)
    key = message_key(FIRING.group_key, "checkout")
    claim = await other_replica.claim(key, CHECKOUT_CHANNEL)
    assert claim.must_post and claim.token is not None

    delivery = asyncio.create_task(world.offers.handle(FIRING))
    # Past reading the service, the delivery finds the claim taken and waits for its message
    # (the in-memory index answers without suspending, so it is polling by now).
    await world.viewer.called(1).wait()
    await other_replica.abandon(key, claim.token)
    with pytest.raises(AlertBusy):
        await delivery
    assert world.messages.posts == []
    assert world.messages.updates == []


async def test_unmapped_alerts_and_services_without_a_channel_are_counted() -> None:
    def add_cart_and_a_node_alert(body: dict[str, Any]) -> None:
        checkout = body["alerts"][0]
        cart = copy.deepcopy(checkout)
        cart["labels"] = {"alertname": "HighErrorRate", "namespace": "shop", "deployment": "cart"}
        node = copy.deepcopy(checkout)
        node["labels"] = {"alertname": "HighErrorRate", "instance": "node-7:9100"}
        body["alerts"] = [checkout, cart, node]
        body["commonLabels"] = {"alertname": "HighErrorRate"}

    group = webhook("firing_single.json", add_cart_and_a_node_alert)
    world = World()
    assert await world.offers.handle(group) == Handled(posted=1, unmapped=1, no_channel=1)
    assert [(c, v.service) for c, _, v in world.messages.posts] == [(CHECKOUT_CHANNEL, "checkout")]

    with_default = World(default_channel="C0DEFAULT")
    assert await with_default.offers.handle(group) == Handled(posted=2, unmapped=1)
    assert sorted((c, v.service) for c, _, v in with_default.messages.posts) == [
        ("C0DEFAULT", "cart"),
        (CHECKOUT_CHANNEL, "checkout"),
    ]


async def test_a_group_about_no_service_posts_nothing() -> None:
    world = World(default_channel="C0DEFAULT")
    assert await world.offers.handle(webhook("unknown_labels.json")) == Handled(unmapped=1)
    assert world.messages.posts == []
    assert world.viewer.calls == []


async def test_a_cluster_read_failure_still_posts_with_the_problem() -> None:
    world = World()
    world.viewer.error = ClusterError("the API server at https://k8s.example.com timed out")
    assert await world.offers.handle(FIRING) == Handled(posted=1)
    [(_, _, view)] = world.messages.posts
    assert view.service_view is None
    assert view.advice is None
    assert view.problem == "the API server at https://k8s.example.com timed out"
    assert view.firing


# -- Alertmanager's own Slack posts -----------------------------------------------------------


async def test_an_alertmanager_post_is_answered_once_in_its_thread() -> None:
    world = World()
    event = alertmanager_post()
    assert await world.offers.reply_to_message(event)
    assert not await world.offers.reply_to_message(event)  # Slack redelivered it

    [(channel, thread_ts, view, title, advice)] = world.messages.replies
    assert (channel, thread_ts) == (ALERT_CHANNEL, ALERT_TS)
    assert view.service == "checkout"
    assert title == "[FIRING:2] HighErrorRate checkout (critical)"
    assert advice is not None and advice.verdict is Verdict.LIKELY
    assert advice.alert_started == datetime(2026, 11, 27, 3, 58, 20, 100, tzinfo=UTC)
    assert world.viewer.calls == [("checkout", "alertmanager")]


async def test_a_failed_reply_is_tried_again_on_the_next_delivery() -> None:
    world = World()
    world.messages.fail_next = ConnectionError("slack is down")
    with pytest.raises(ConnectionError):
        await world.offers.reply_to_message(alertmanager_post())
    assert await world.offers.reply_to_message(alertmanager_post())
    assert len(world.messages.replies) == 1


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(alertmanager_post(thread_ts="1795751000.000001"), id="a reply in a thread"),
        pytest.param(with_title("[RESOLVED] HighErrorRate checkout (critical)"), id="resolved"),
        pytest.param(with_title("[FIRING:1] HighErrorRate payments (critical)"), id="unknown"),
        pytest.param(with_title("[FIRING:1] HighErrorRate cart checkout"), id="two services"),
        pytest.param(
            {"type": "message", "ts": ALERT_TS, "channel": ALERT_CHANNEL, "text": "deployed 1.2"},
            id="not alertmanager",
        ),
    ],
)
async def test_other_messages_are_not_answered(event: dict[str, Any]) -> None:
    world = World()
    assert not await world.offers.reply_to_message(event)
    assert world.messages.replies == []
    assert world.viewer.calls == []


async def test_the_first_message_of_its_own_thread_is_answered() -> None:
    world = World()
    assert await world.offers.reply_to_message(alertmanager_post(thread_ts=ALERT_TS))
    assert len(world.messages.replies) == 1
