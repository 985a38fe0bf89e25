"""The blue-green switch's listeners, registered on a stand-in app and called with Slack's bodies:
the button (re-authorized, the confirmation opened saying what will happen, or why not), and the
modal's submit (the reason, re-authorized afresh, the switch started or why not told privately).
The catalog, `Access` and the use case are real; the cluster is `switch_fakes`' in-memory one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Any, cast

from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.switch_payloads import SwitchButton, SwitchContext
from bot.config.catalog import Catalog, ServiceEntry
from bot.domain.audit import AuditRecord, Step
from bot.domain.rollback.models import Deployment, WorkloadKind
from bot.domain.rollback.switches import SwitchEnding
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.access import Access
from bot.usecases.rollback.ports import Cluster
from bot.usecases.rollback.switch import BlueGreenSwitches
from handlers import switch
from handlers.switch import Switches
from tests.builders import OneCluster as RollbackClusters
from tests.unit.usecases.rollback.switch_fakes import (
    ALICE,
    FakeCluster,
    Messages,
    OneCluster,
    Told,
)

Listener = Callable[..., Awaitable[None]]
EVE, BOB = "U0EVE0001", "U0BOB0001"
SRE = "S0SRE0001"
CHANNEL, TS = "C0SHOP", "1795752000.000100"


class App:
    def __init__(self) -> None:
        self.actions: dict[str, Listener] = {}
        self.views: dict[str, Listener] = {}

    def action(self, action_id: Any) -> Callable[[Listener], Listener]:
        def keep(listener: Listener) -> Listener:
            self.actions[getattr(action_id, "pattern", action_id)] = listener
            return listener

        return keep

    def view(self, callback_id: str) -> Callable[[Listener], Listener]:
        def keep(listener: Listener) -> Listener:
            self.views[callback_id] = listener
            return listener

        return keep


class Directory:
    def __init__(self) -> None:
        self.asked: list[tuple[str, bool]] = []

    async def is_guest(self, user: str) -> bool:
        return False

    async def groups_of(
        self, user: str, among: Collection[str], *, fresh: bool = False
    ) -> frozenset[str]:
        self.asked.append((user, fresh))
        return frozenset({SRE} & set(among)) if user == BOB and fresh is False else frozenset()


class NoDeployment:
    async def read(
        self, namespace: str, name: str, *, kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    ) -> Deployment:
        from bot.domain.errors import NotFound

        raise NotFound(f"{name} is a Service, not a Deployment")


class Sink:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        self.records.append(record)


class Client:
    """The Web API calls the listeners make."""

    def __init__(self, member: bool = True) -> None:
        self.member = member
        self.opened: list[dict[str, Any]] = []
        self.ephemerals: list[dict[str, Any]] = []

    async def conversations_info(self, channel: str) -> dict[str, Any]:
        return {"channel": {"id": channel, "is_member": self.member}}

    async def views_open(self, trigger_id: str, view: dict[str, Any]) -> None:
        self.opened.append(view)

    async def chat_postEphemeral(self, **kwargs: Any) -> None:
        self.ephemerals.append(kwargs)

    def told(self) -> str:
        return "\n".join(str(e["blocks"][0]["text"]["text"]) for e in self.ephemerals)


class Respond:
    def __init__(self) -> None:
        self.said: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.said.append(kwargs)

    @property
    def text(self) -> str:
        (said,) = self.said
        return str(said["blocks"][0]["text"]["text"])


class Ack:
    def __init__(self) -> None:
        self.kwargs: dict[str, Any] | None = None

    async def __call__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class World:
    def __init__(self, cluster: FakeCluster | None = None, **entry: Any) -> None:
        self.cluster = cluster or FakeCluster()
        self.catalog = Catalog(
            services={
                "web": ServiceEntry.model_validate(
                    {
                        "kind": "BlueGreen",
                        "namespace": "shop",
                        "service": "web",
                        "selector_key": "color",
                        "blue": "web-blue",
                        "green": "web-green",
                        "allowed_users": [ALICE],
                        "allowed_groups": [SRE],
                        **entry,
                    }
                ),
                "checkout": ServiceEntry(namespace="shop", deployment="checkout"),
            },
            source="catalog.yaml",
        )
        self.sink = Sink()
        self.directory = Directory()
        audit = AuditTrail([self.sink])
        access = Access(
            self.catalog,
            self.directory,
            RollbackClusters(cast(Cluster, NoDeployment())),
            audit,
        )
        self.told = Told()
        self.switches = BlueGreenSwitches(
            OneCluster(self.cluster), audit, self.told, replica_id="me", messages=Messages()
        )
        listeners: Switches = self.switches  # the Protocol, checked by mypy
        self.app = App()
        switch.register(cast(AsyncApp, self.app), self.catalog, access, listeners)
        self.client = Client()
        self.respond = Respond()

    async def click(self, value: Any, user: str = ALICE) -> None:
        await self.app.actions[r"^switch:to:[A-Za-z0-9._-]{1,63}$"](
            ack=Ack(),
            body=clicked(value, user),
            client=cast(AsyncWebClient, self.client),
            respond=cast(AsyncRespond, self.respond),
        )

    async def submit(self, metadata: str, reason: str | None, user: str = ALICE) -> Ack:
        ack = Ack()
        view = {
            "private_metadata": metadata,
            "state": {"values": {"switch:reason": {"reason": {"value": reason}}}},
        }
        await self.app.views["switch:confirm"](
            ack=ack,
            body={"type": "view_submission", "user": {"id": user, "team_id": "T0SHOP"}},
            view=view,
            client=cast(AsyncWebClient, self.client),
        )
        return ack


def button(to: str = "blue", live: str | None = "green", service: str = "web") -> str:
    return SwitchButton(service=service, to_color=to, live=live).encode()


def clicked(value: Any, user: str = ALICE) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user, "team_id": "T0SHOP"},
        "team": {"id": "T0SHOP"},
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "message_ts": TS},
        "message": {"ts": TS, "text": "web: green is live"},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "response_url": "https://hooks.slack.example/actions/1",
        "actions": [{"type": "button", "action_id": "switch:to:blue", "value": value}],
    }


def metadata(to: str = "blue", live: str | None = "green") -> str:
    return SwitchContext(
        button=SwitchButton(service="web", to_color=to, live=live), channel=CHANNEL, message_ts=TS
    ).encode()


async def test_a_click_opens_the_confirmation_saying_what_will_happen() -> None:
    w = World()
    await w.click(button())
    [modal] = w.client.opened
    assert modal["callback_id"] == "switch:confirm"
    assert modal["submit"]["text"] == "Scale up and switch"
    assert "Scale `web-blue` up from 0 to 3 replicas" in modal["blocks"][0]["text"]["text"]
    assert SwitchContext.decode(modal["private_metadata"]).button.to_color == "blue"
    assert not w.respond.said and not w.sink.records


async def test_a_denied_click_opens_nothing_and_is_recorded() -> None:
    w = World()
    await w.click(button(), user=EVE)
    assert not w.client.opened
    assert w.respond.text.startswith(":no_entry: You may not roll back *web*: ")
    [denied] = w.sink.records
    assert (denied.step, denied.actor) == (Step.DENIED, EVE)
    assert denied.detail is not None and denied.detail.startswith("switch click: ")


async def test_a_value_not_made_by_the_bot_is_refused() -> None:
    w = World()
    for value in (None, "not json", '{"s":"web","t":"blue","x":1}', "x" * 5000):
        w.respond.said.clear()
        await w.click(value)
        assert (
            w.respond.text == ":warning: this button was not made by this version of rollback-bot"
        )
    assert not w.client.opened


async def test_a_button_of_a_service_no_longer_blue_green_is_answered() -> None:
    w = World()
    await w.click(button(service="checkout"))
    assert "checkout is not a blue-green service" in w.respond.text
    assert not w.client.opened


async def test_a_click_on_an_out_of_date_message_says_so() -> None:
    w = World()
    await w.click(button(to="green", live="blue"))
    assert w.respond.text == (
        ":warning: Not switched: web's Service routes to green now, not to blue as the "
        "message showed. Ask `/rollback web` again."
    )
    assert not w.client.opened


async def test_the_bot_must_be_in_the_channel_to_tell_the_switch() -> None:
    w = World()
    w.client.member = False
    await w.click(button())
    assert "I am not in this channel" in w.respond.text and not w.client.opened


async def test_a_submit_starts_the_switch_told_in_the_messages_thread() -> None:
    w = World()
    ack = await w.submit(metadata(), "5xx after green")
    assert ack.kwargs == {}
    await asyncio.wait_for(w.told.done.wait(), 5)
    assert w.told.outcome is not None and w.told.outcome.ending is SwitchEnding.SWITCHED
    started = w.told.said[0][1]
    run, _plan, reason = started
    assert (run.actor, run.via, reason) == (ALICE, "Slack", "5xx after green")
    assert run.thread.channel == CHANNEL and run.thread.message_ts == TS
    assert not w.client.ephemerals


async def test_a_required_reason_is_asked_for_in_the_modal() -> None:
    w = World(reason_required=True)
    ack = await w.submit(metadata(), None)
    assert ack.kwargs == {
        "response_action": "errors",
        "errors": {"switch:reason": "A reason is required to switch web."},
    }
    assert not w.told.said


async def test_a_modal_not_made_by_the_bot_is_answered_in_the_modal() -> None:
    w = World()
    ack = await w.submit("{}", "x")
    assert ack.kwargs is not None and ack.kwargs["response_action"] == "errors"
    assert "this confirmation was not made" in ack.kwargs["errors"]["switch:reason"]


async def test_a_submit_denied_afresh_starts_nothing() -> None:
    w = World()
    # BOB's group membership is gone when Slack is asked afresh
    await w.submit(metadata(), "x", user=BOB)
    assert "You may not roll back *web*" in w.client.told()
    assert not w.told.said and not w.cluster.scales
    assert (BOB, True) in w.directory.asked


async def test_a_second_submit_while_one_runs_is_told_privately() -> None:
    w = World(FakeCluster(ready_steps=None))
    await w.submit(metadata(), "first")
    await w.submit(metadata(), "second")
    assert "is already switching *web* to *blue (4.1.0)*" in w.client.told()
    await w.click(button())
    assert "is already switching *web*" in w.respond.text
    await w.switches.shutdown(0)


async def test_a_stale_submit_is_told_next_to_the_message() -> None:
    w = World(FakeCluster(live="blue", blue_replicas=3))
    await w.submit(metadata(to="blue", live="green"), "x")
    [told] = w.client.ephemerals
    assert told["thread_ts"] == TS
    assert (
        "Not switched: the Service web routes to blue now, not to green as shown"
        in (told["blocks"][0]["text"]["text"])
    )
