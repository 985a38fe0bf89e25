"""The "Stop watching" button: the listener registered on a stand-in app, called with Slack's
block_actions body, over a real catalog and `Access` (a denial recorded as a rollback click's
is), with the watch's `stop` recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any, cast

import pytest
from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import action_ids
from bot.adapters.slack.payloads import StopWatchButton
from bot.config.catalog import Catalog, ServiceEntry, ServiceRef
from bot.domain.audit import AuditRecord, Step
from bot.domain.errors import ClusterError
from bot.domain.rollback.models import Deployment, WorkloadKind
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.access import Access
from bot.usecases.rollback.ports import Cluster
from handlers import analysis
from handlers.analysis import StopsWatching
from tests.builders import OneCluster
from tests.unit.adapters.slack.test_alert_blocks import history

if TYPE_CHECKING:
    from bot.usecases.analysis.watch import RolloutWatch

Listener = Callable[..., Awaitable[None]]
ALICE, BOB, EVE = "U0ALICE01", "U0BOB0001", "U0EVE0001"
SRE = "S0SRE0001"


def the_real_watch_stops(watch: RolloutWatch) -> StopsWatching:
    return watch  # mypy checks that the use case satisfies the listener's Protocol


class App:
    """What `register` uses of Bolt's app: the listener it registers, by action_id."""

    def __init__(self) -> None:
        self.listeners: dict[str, Listener] = {}

    def action(self, action_id: str) -> Callable[[Listener], Listener]:
        def keep(listener: Listener) -> Listener:
            self.listeners[action_id] = listener
            return listener

        return keep


class Directory:
    """Bob is in the SRE group (asked afresh only); Gina is a guest."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, bool]] = []

    async def is_guest(self, user: str) -> bool:
        return user == "U0GINA001"

    async def groups_of(
        self, user: str, among: Collection[str], *, fresh: bool = False
    ) -> frozenset[str]:
        self.asked.append((user, fresh))
        return frozenset({SRE} & set(among)) if user == BOB else frozenset()


class ReadCluster:
    """The cluster as a denial's record reads it."""

    async def read(
        self, namespace: str, name: str, *, kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    ) -> Deployment:
        return history().deployment


class Sink:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        self.records.append(record)


class Watch:
    def __init__(self, fails: Exception | None = None) -> None:
        self.stops: list[tuple[ServiceRef, int, str]] = []
        self.fails = fails

    async def stop(self, ref: ServiceRef, revision: int, user: str) -> str:
        self.stops.append((ref, revision, user))
        if self.fails is not None:
            raise self.fails
        return f"Stopping the watch of revision {revision} of {ref.name}: <!channel> <@{user}>."


class Respond:
    def __init__(self) -> None:
        self.said: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.said.append(kwargs)

    @property
    def text(self) -> str:
        (said,) = self.said
        assert said["response_type"] == "ephemeral"
        return str(said["blocks"][0]["text"]["text"])


async def ack() -> None:
    return None


class World:
    def __init__(self, watch: Watch | None = None) -> None:
        self.catalog = Catalog(
            services={
                "checkout": ServiceEntry(
                    namespace="shop",
                    deployment="checkout",
                    allowed_users=(ALICE,),
                    allowed_groups=(SRE,),
                )
            },
            source="catalog.yaml",
        )
        self.directory = Directory()
        self.sink = Sink()
        access = Access(
            self.catalog,
            self.directory,
            OneCluster(cast(Cluster, ReadCluster())),
            AuditTrail([self.sink]),
        )
        self.watch = watch or Watch()
        watching: StopsWatching = self.watch  # the Protocol, checked by mypy
        self.app = App()
        analysis.register(cast(AsyncApp, self.app), self.catalog, access, watching)
        self.respond = Respond()

    async def click(self, body: dict[str, Any]) -> None:
        await self.app.listeners[action_ids.ANALYSIS_STOP](
            ack=ack,
            body=body,
            client=cast(AsyncWebClient, object()),
            respond=cast(AsyncRespond, self.respond),
        )


def button(service: str = "checkout", deployment: str = "checkout", revision: int = 3) -> str:
    return StopWatchButton(
        service=service, namespace="shop", deployment=deployment, revision=revision
    ).encode()


def clicked(value: Any, user: str = ALICE, team: str = "T0SHOP") -> dict[str, Any]:
    """Slack's block_actions body for a click on "Stop watching" by `user` of `team`."""
    return {
        "type": "block_actions",
        "user": {"id": user, "team_id": team},
        "team": {"id": "T0SHOP"},
        "channel": {"id": "C0SHOP"},
        "container": {"type": "message", "message_ts": "1764216000.000100"},
        "message": {"ts": "1764216000.000100", "text": "Watching checkout"},
        "response_url": "https://hooks.slack.example/actions/1",
        "actions": [
            {
                "type": "button",
                "action_id": action_ids.ANALYSIS_STOP,
                "block_id": "analysis:watch",
                "value": value,
            }
        ],
    }


async def test_an_allowed_click_stops_the_watch_and_says_so_privately() -> None:
    world = World()
    await world.click(clicked(button()))
    ((ref, revision, user),) = world.watch.stops
    assert (ref.name, ref.namespace, ref.deployment, revision, user) == (
        "checkout",
        "shop",
        "checkout",
        3,
        ALICE,
    )
    assert world.respond.text == (
        ":octagonal_sign: Stopping the watch of revision 3 of checkout: &lt;!channel&gt; "
        f"<@{ALICE}>."
    )
    assert world.sink.records == []


async def test_a_group_member_is_asked_afresh() -> None:
    world = World()
    await world.click(clicked(button(), user=BOB))
    assert [user for _, _, user in world.watch.stops] == [BOB]
    assert world.directory.asked == [(BOB, True)]


@pytest.mark.parametrize(
    ("user", "team", "why"),
    [
        (EVE, "T0SHOP", "only the users and groups its catalog entry names may"),
        ("U0GINA001", "T0SHOP", "guests of the workspace"),
        (BOB, "T0OTHER", "people of another workspace"),
    ],
)
async def test_a_denied_click_stops_nothing_and_is_recorded(user: str, team: str, why: str) -> None:
    world = World()
    await world.click(clicked(button(), user=user, team=team))
    assert world.watch.stops == []
    assert world.respond.text.startswith(":no_entry: You may not roll back *checkout*: ")
    assert why in world.respond.text
    (denied,) = world.sink.records
    assert (denied.step, denied.actor, denied.service) == (Step.DENIED, user, "checkout")
    assert denied.detail is not None and denied.detail.startswith("stop watching: ")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "not json",
        '{"s":"checkout","n":"shop","d":"checkout","r":"3"}',
        '{"s":"checkout","n":"shop","d":"checkout","r":3,"extra":1}',
        "x" * 5000,
    ],
)
async def test_a_value_not_made_by_the_bot_is_refused(value: Any) -> None:
    world = World()
    await world.click(clicked(value))
    assert world.watch.stops == [] and world.sink.records == []
    assert world.respond.text == (
        ":warning: this button was not made by this version of rollback-bot"
    )


async def test_a_service_gone_from_the_catalog_is_answered() -> None:
    world = World()
    await world.click(clicked(button(service="payments")))
    assert world.watch.stops == []
    assert "unknown service 'payments'" in world.respond.text


async def test_a_service_moved_in_the_catalog_is_not_stopped() -> None:
    world = World()
    await world.click(clicked(button(deployment="checkout-v1")))
    assert world.watch.stops == []
    assert world.respond.text == (
        ":warning: The catalog now puts checkout at shop/checkout, not shop/checkout-v1 as "
        "watched: nothing was stopped."
    )


async def test_a_watch_that_cannot_be_asked_is_answered_privately() -> None:
    world = World(Watch(fails=ClusterError("the API server did not answer in 10s")))
    await world.click(clicked(button()))
    assert len(world.watch.stops) == 1
    assert world.respond.text == ":x: the API server did not answer in 10s"
