"""Blue-green switches: refused with one sentence, or started and told step by step; scaled up
first when the colour is scaled down, the Service patched only once it is ready, a conflict
read and planned again, and nothing half-done left unsaid. The cluster, the reporter, the
message and the audit sink are the in-memory fakes of `switch_fakes`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from bot.domain.audit import Step
from bot.domain.errors import ConfigError
from bot.domain.retry import NO_WAIT
from bot.domain.rollback.models import RunInfo
from bot.domain.rollback.switches import SwitchEnding, SwitchOutcome, version_mark
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.switch import BlueGreenSwitches, SwitchRequest, SwitchStart
from bot.usecases.rollback.switch_ports import (
    BlueGreenClusters,
    SwitchMessages,
    SwitchReporters,
)
from tests.unit.usecases.rollback.switch_fakes import (
    ALICE,
    NOW,
    SERVER,
    THREAD,
    FakeCluster,
    Messages,
    OneCluster,
    Sink,
    Told,
    web_ref,
)

ME = "bot-7f9c-1"
LOCK = "service:web"


@dataclass
class World:
    cluster: FakeCluster
    told: Told
    messages: Messages
    sink: Sink
    switches: BlueGreenSwitches

    async def start(self, to: str = "blue", **extra: Any) -> SwitchStart:
        fields: dict[str, Any] = {
            "ref": web_ref(),
            "to_color": to,
            "actor": ALICE,
            "via": "Slack",
            "reason": "5xx after green",
            "thread": THREAD,
            "expected_live": "green",
            **extra,
        }
        return await self.switches.start(SwitchRequest(**fields))

    async def switch(self, to: str = "blue", **extra: Any) -> SwitchOutcome:
        result = await self.start(to, **extra)
        assert result.outcome == "started", result
        assert result.completion is not None
        return await asyncio.wait_for(result.completion, 5)


def world(
    cluster: FakeCluster | None = None,
    *,
    ready_timeout: float = 5.0,
    converge_timeout: float = 5.0,
) -> World:
    cluster = cluster or FakeCluster()
    told, messages, sink = Told(), Messages(), Sink()
    clusters: BlueGreenClusters = OneCluster(cluster)  # the Protocols, checked by mypy
    reporters: SwitchReporters = told
    shown: SwitchMessages = messages
    switches = BlueGreenSwitches(
        clusters,
        AuditTrail([sink]),
        reporters,
        replica_id=ME,
        messages=shown,
        ready_timeout=ready_timeout,
        converge_timeout=converge_timeout,
        now=lambda: NOW,
        conflict_backoff=NO_WAIT,
    )
    return World(cluster, told, messages, sink, switches)


# -- the view ----------------------------------------------------------------------------------


async def test_the_view_shows_the_live_colour_each_colour_and_the_switch_offered() -> None:
    w = world()
    view = await w.switches.view(web_ref(), ALICE)
    assert (view.service, view.namespace, view.cluster) == ("web", "shop", SERVER)
    assert view.routing.live_color == "green"
    blue, green = view.colors
    assert (blue.color, blue.version, blue.scaled_down, blue.endpoints) == (
        "blue",
        "4.1.0",
        True,
        0,
    )
    assert (green.color, green.available, green.endpoints, green.ready_endpoints) == (
        "green",
        True,
        3,
        3,
    )
    [(color, offer)] = view.offers
    assert color == "blue"
    assert offer.needs_scale_up and offer.scale_to == 3  # type: ignore[union-attr]
    assert view.running is None and view.taken_at == NOW and view.asked_by == ALICE


async def test_an_offer_is_recorded_as_asked() -> None:
    w = world()
    await w.switches.offer(web_ref(), ALICE, "C0SHOP")
    [asked] = w.sink.records
    assert (asked.step, asked.kind, asked.from_version, asked.channel) == (
        Step.ASKED,
        "BlueGreen",
        "green (4.2.0)",
        "C0SHOP",
    )


async def test_a_service_that_is_not_blue_green_is_no_switch() -> None:
    from bot.config.catalog import ServiceEntry, ServiceRef

    entry = ServiceEntry(namespace="shop", deployment="checkout")
    ref = ServiceRef("checkout", "shop", "checkout", None, entry)
    w = world()
    with pytest.raises(ConfigError, match="checkout is not a blue-green service"):
        await w.switches.view(ref, ALICE)
    assert w.switches.running(ref) is None


# -- refusals ----------------------------------------------------------------------------------


async def test_a_switch_to_the_live_colour_is_refused_with_the_plans_sentence() -> None:
    w = world()
    result = await w.start("green")
    assert (result.outcome, result.message) == (
        "refused",
        "web already routes to green (web-green): nothing to switch.",
    )
    assert w.sink.steps == ["refused"] and not w.cluster.locks and not w.told.said


async def test_a_switch_whose_service_moved_since_it_was_shown_is_stale() -> None:
    w = world(FakeCluster(live="blue", blue_replicas=3))
    result = await w.start("green", expected_live="green")
    assert result.outcome == "stale"
    assert result.message == "the Service web routes to blue now, not to green as shown"
    [refused] = w.sink.records
    assert refused.step is Step.REFUSED and refused.detail is not None
    assert refused.detail.startswith("stale: ")
    # the message clicked shows the state just read
    [(what, view)] = w.messages.shown
    assert what == "refresh" and view.routing.live_color == "blue"


async def test_a_switch_to_a_colour_redeployed_since_it_was_shown_is_stale() -> None:
    w = world()
    result = await w.start("blue", expected_version=version_mark("4.0.9"))
    assert result.outcome == "stale"
    assert result.message == "blue runs 4.1.0 now, not the version shown"
    assert not w.cluster.scales and not w.cluster.locks
    assert (await w.start("blue", expected_version=version_mark("4.1.0"))).outcome == "started"


async def test_a_reason_the_catalog_asks_for_is_required() -> None:
    w = world()
    result = await w.switches.start(
        SwitchRequest(web_ref(reason_required=True), "blue", ALICE, "CLI", reason="  ")
    )
    assert (result.outcome, result.message) == ("refused", "a reason is required to switch web")
    assert not w.cluster.scales and not w.cluster.locks


async def test_someone_elses_switch_holding_the_lock_is_said() -> None:
    w = world()
    theirs = RunInfo("web", "U0BOB", "green (4.2.0)", "blue (4.1.0)", 0, NOW, holder="cli@x")
    w.cluster.locks[LOCK] = ("cli@x", theirs)
    result = await w.start()
    assert result.outcome == "running" and result.run is theirs
    assert result.message == "U0BOB is already switching web to blue (4.1.0) since 04:05"
    assert w.sink.steps == ["busy"] and not w.cluster.scales


async def test_two_switches_at_once_start_one() -> None:
    w = world()
    first, second = await asyncio.gather(w.start(), w.start())
    assert sorted([first.outcome, second.outcome]) == ["running", "started"]
    started = first if first.outcome == "started" else second
    assert started.completion is not None
    assert (await started.completion).succeeded
    assert w.cluster.scales == [("web-blue", {"spec": {"replicas": 3}})]


# -- switching ---------------------------------------------------------------------------------


async def test_scale_up_then_switch_tells_each_step_and_the_times() -> None:
    clock = iter(float(n) for n in range(100))
    w = world()
    w.switches._clock = lambda: next(clock)  # one second a reading
    outcome = await w.switch()
    assert outcome.ending is SwitchEnding.SWITCHED and outcome.succeeded
    assert outcome.scaled_up and outcome.service_patched
    assert outcome.switch_seconds is not None and outcome.switch_seconds > 0
    assert outcome.total_seconds > outcome.switch_seconds
    assert outcome.endpoints is not None
    assert outcome.endpoints.message == "3 of 3 endpoints are blue's pods"
    # scaled first, the Service patched once blue was ready, with its precondition
    assert w.cluster.scales == [("web-blue", {"spec": {"replicas": 3}})]
    assert w.cluster.patches == [
        {
            "metadata": {"resourceVersion": "100"},
            "spec": {"selector": {"app": "web", "color": "blue"}},
        }
    ]
    assert w.told.steps[:3] == ["started", "scaling_up", "waiting"]
    assert w.told.steps[-3:] == ["ready", "patched", "finished"]
    assert w.sink.steps[:2] == ["confirmed", "started"]
    assert w.sink.steps[-1] == "succeeded"
    details = [r.detail for r in w.sink.records if r.step is Step.PROGRESS]
    assert details == [
        "scaled web-blue from 0 to 3 replicas",
        "blue ready: 3 available",
        "Service web patched: color=blue",
    ]
    last = w.sink.records[-1]
    assert (last.from_version, last.to_version, last.kind, last.deployment) == (
        "green (4.2.0)",
        "blue (4.1.0)",
        "BlueGreen",
        "web",
    )
    assert last.detail is not None and last.detail.startswith("switched web from green to blue in ")
    # the Events go to the colour's Deployment; the lock is the Service's, released
    assert set(w.sink.deployments[1:]) == {"web-blue"}
    assert w.cluster.released == [LOCK] and not w.cluster.locks
    # the message was locked while it ran, and shows blue live after
    assert [what for what, _ in w.messages.shown] == ["lock", "refresh"]
    assert w.messages.shown[0][1].running is not None
    assert w.messages.shown[-1][1].routing.live_color == "blue"
    assert w.switches.running(web_ref()) is None


async def test_a_colour_already_up_is_switched_without_scaling() -> None:
    w = world(FakeCluster(blue_replicas=3))
    outcome = await w.switch()
    assert outcome.succeeded and not outcome.scaled_up
    assert not w.cluster.scales
    assert "scaling_up" not in w.told.steps


async def test_a_conflict_reads_the_service_again_and_plans_again() -> None:
    # someone changed the Service meanwhile (its labels, say): a new resourceVersion
    w = world(FakeCluster(blue_replicas=3, conflicts=1))
    outcome = await w.switch()
    assert outcome.succeeded
    first, second = w.cluster.patches
    assert first["metadata"] == {"resourceVersion": "100"}
    assert second == {
        "metadata": {"resourceVersion": "101"},
        "spec": {"selector": {"app": "web", "color": "blue"}},
    }
    assert w.cluster.service_reads == 4  # shown, confirmed, and once per attempt


async def test_a_selector_changed_meanwhile_is_planned_again_and_refused_when_it_must() -> None:
    cluster = FakeCluster(blue_replicas=3, conflicts=1)

    def add_a_key(c: FakeCluster) -> None:
        c.selector["tier"] = "edge"  # blue's pods do not carry it

    cluster.on_conflict = add_a_key
    w = world(cluster)
    outcome = await w.switch()
    assert outcome.ending is SwitchEnding.REFUSED
    assert outcome.error is not None and "would not select web-blue's pods" in outcome.error
    assert len(cluster.patches) == 1 and cluster.selector["color"] == "green"


async def test_a_service_moved_to_the_other_colour_meanwhile_is_refused_and_said() -> None:
    cluster = FakeCluster(conflicts=1)

    def someone_switched(c: FakeCluster) -> None:
        c.selector["color"] = "blue"

    cluster.on_conflict = someone_switched
    w = world(cluster)
    outcome = await w.switch()
    assert outcome.ending is SwitchEnding.REFUSED
    assert outcome.error == (
        "the Service web changed since the switch was confirmed: it routes to blue, not green"
    )
    assert outcome.scaled_up and not outcome.service_patched
    assert w.sink.steps[-1] == "refused"
    assert w.cluster.released == [LOCK]


async def test_conflicts_that_go_on_end_the_switch_with_the_service_unchanged() -> None:
    w = world(FakeCluster(blue_replicas=3, conflicts=5))
    outcome = await w.switch()
    assert outcome.ending is SwitchEnding.ERROR
    assert len(w.cluster.patches) == 3
    assert "conflict" in (outcome.error or "")
    assert outcome.left == (
        "The Service web still routes to green (web-green): nothing was changed."
    )
    assert w.cluster.selector["color"] == "green"


async def test_a_colour_never_ready_times_out_scaled_up_with_the_service_unchanged() -> None:
    w = world(FakeCluster(ready_steps=None), ready_timeout=0.05)
    outcome = await w.switch()
    assert outcome.ending is SwitchEnding.NOT_READY and outcome.timed_out
    assert (
        outcome.error == "blue (web-blue) did not become ready within 0.1s: 0/3 ready, 0 available"
    )
    assert outcome.scaled_up and not outcome.service_patched
    assert not w.cluster.patches
    assert outcome.left == (
        "The Service web still routes to green (web-green); blue (web-blue) stays scaled up to "
        "3 replicas: nothing else was changed."
    )
    assert w.sink.steps[-1] == "timed_out"
    assert w.sink.records[-1].detail == f"{outcome.error}. {outcome.left}"
    assert w.told.outcome is outcome
    assert w.cluster.released == [LOCK]


async def test_a_colour_whose_rollout_fails_ends_the_switch() -> None:
    w = world(FakeCluster(ready_steps=None, deadline=True))
    outcome = await w.switch()
    assert outcome.ending is SwitchEnding.FAILED
    assert outcome.error == (
        "blue's Deployment web-blue exceeded its progress deadline (0/3 available)"
    )
    assert w.sink.steps[-1] == "failed" and not w.cluster.patches


async def test_slices_that_never_show_only_the_target_time_out_with_the_service_switched() -> None:
    w = world(FakeCluster(blue_replicas=3, slices_follow=False), converge_timeout=0.05)
    outcome = await w.switch()
    assert outcome.ending is SwitchEnding.NOT_CONVERGED
    assert outcome.service_patched and outcome.switch_seconds is None
    assert outcome.error == (
        "the Service web routes to blue, but its EndpointSlices did not show only blue's pods "
        "within 0.1s: waiting for blue: 0/3 ready, 3 other endpoints still ready"
    )
    assert outcome.left == "The Service web routes to blue (web-blue) now."
    assert ("converging" in w.told.steps) and w.sink.steps[-1] == "timed_out"


async def test_a_shutdown_stops_the_switch_and_says_so() -> None:
    w = world(FakeCluster(ready_steps=None), ready_timeout=60)
    result = await w.start()
    assert result.completion is not None
    await asyncio.sleep(0.01)
    await w.switches.shutdown(grace=0.01)
    outcome = result.completion.result()
    assert outcome.ending is SwitchEnding.STOPPED
    assert outcome.error == "the bot stopped before the switch ended"
    assert w.sink.steps[-1] == "unknown"
    assert w.cluster.released == [LOCK]
    refused = await w.start()
    assert refused.outcome == "refused"  # no new switch once stopping


async def test_a_lost_lock_stops_acting_and_leaves_the_lease_alone() -> None:
    w = world(FakeCluster(ready_steps=None), ready_timeout=60)
    w.switches._lease_seconds = 0  # renewed at once
    w.cluster.lost = True
    outcome = await w.switch()
    assert outcome.ending is SwitchEnding.STOPPED
    assert outcome.error is not None and "another replica holds the switch's lock" in outcome.error
    assert w.cluster.released == []
