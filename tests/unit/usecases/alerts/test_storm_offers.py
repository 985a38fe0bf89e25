"""A storm through the alert use case: the channel's first groups get messages of their own, the
rest one digest, posted once and kept in step as groups arrive and resolve. The index is the
in-memory one; Slack and the cluster are the recording fakes of `test_offers`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.domain.alerts.webhook import WebhookMessage
from bot.domain.errors import ClusterError
from bot.usecases.alerts.offers import Handled
from tests.unit.usecases.alerts.test_offers import CHECKOUT_CHANNEL, World, webhook


def group(n: int, status: str = "firing", service: str = "checkout") -> WebhookMessage:
    def edit(body: dict[str, Any]) -> None:
        body["groupKey"] = f'{{}}:{{alertname="Alert{n}", service="{service}"}}'
        body["status"] = status
        for alert in body["alerts"]:
            alert["labels"]["alertname"] = f"Alert{n}"
            alert["labels"]["service"] = service
            alert["status"] = status
            if status == "resolved":
                alert["endsAt"] = "2026-11-27T04:04:00Z"

    return webhook("firing_single.json", edit)


async def test_past_the_channels_budget_the_groups_go_into_one_digest() -> None:
    world = World()
    results = [await world.offers.handle(group(n)) for n in range(12)]
    assert results[:4] == [Handled(posted=1)] * 4
    assert results[4:] == [Handled(digested=1)] * 8
    assert len(world.messages.posts) == 4  # messages of their own
    [(channel, _ts, first)] = world.messages.digests  # one digest, posted once
    assert channel == CHECKOUT_CHANNEL and first.groups == 1
    await world.digests.settle()
    last = world.messages.digest_updates[-1][2]
    assert last.groups == 8
    [line] = last.services  # every group is about checkout: one line
    assert line.service == "checkout" and line.summary.groups == 8
    assert line.service_view is not None and line.advice is not None
    assert sorted(name for name, _ in line.summary.alerts) == sorted(
        f"Alert{n}" for n in range(4, 12)
    )


async def test_resolving_a_digests_groups_updates_the_digest_not_the_channel() -> None:
    world = World()
    for n in range(8):
        await world.offers.handle(group(n))
    await world.digests.settle()
    for n in range(4, 8):
        assert await world.offers.handle(group(n, "resolved")) == Handled(digested=1)
    await world.digests.settle()
    last = world.messages.digest_updates[-1][2]
    assert [s.summary.firing for s in last.services] == [False]
    assert world.messages.notes == []  # no "resolved" thread notes for a digest's groups
    assert len(world.messages.digests) == 1 and len(world.messages.posts) == 4


async def test_a_group_with_its_own_message_keeps_it_during_the_storm() -> None:
    world = World()
    for n in range(10):
        await world.offers.handle(group(n))
    assert await world.offers.handle(group(0, "resolved")) == Handled(updated=1)
    group0_ts = world.messages.posts[0][1]
    assert world.messages.updates[-1][1] == group0_ts


async def test_a_digest_that_could_not_be_posted_is_posted_by_the_retry() -> None:
    world = World()
    for n in range(4):
        await world.offers.handle(group(n))
    world.messages.fail_next = RuntimeError("Slack is down")
    with pytest.raises(RuntimeError, match="Slack is down"):
        await world.offers.handle(group(4))  # the webhook answers 5xx: Alertmanager retries
    assert world.messages.digests == []
    assert await world.offers.handle(group(4)) == Handled(digested=1)
    assert len(world.messages.digests) == 1
    await world.offers.handle(group(5))
    await world.digests.settle()
    assert world.messages.digest_updates[-1][2].groups == 2
    assert len(world.messages.digests) == 1


async def test_a_digest_reads_each_service_once_however_many_groups_arrive() -> None:
    world = World()
    for n in range(30):
        await world.offers.handle(group(n))
    await world.digests.settle()
    own_messages = 4
    assert len(world.viewer.calls) <= own_messages + 1  # the digest's reads are cached


async def test_a_hostile_alert_name_fails_nothing_written_with_it() -> None:
    world = World()
    for n in range(4):
        await world.offers.handle(group(n))

    def lone_surrogate(body: dict[str, Any]) -> None:
        body["groupKey"] = '{}:{alertname="bad"}'
        for alert in body["alerts"]:
            alert["labels"]["alertname"] = "\ud800 bad"

    hostile = webhook("firing_single.json", lone_surrogate)
    results = await asyncio.gather(
        world.offers.handle(hostile), *(world.offers.handle(group(n)) for n in range(4, 9))
    )
    assert all(r == Handled(digested=1) for r in results)
    await world.digests.settle()
    [line] = world.messages.digest_updates[-1][2].services
    assert line.summary.groups == 6


async def test_a_digest_whose_record_failed_once_is_recorded_and_edited_not_posted_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    for n in range(4):
        await world.offers.handle(group(n))
    record = world.index.digest_posted
    failures = [ClusterError("the API server did not answer in 10s")]

    async def flaky(key: str, ts: str, token: str) -> bool:
        if failures:
            raise failures.pop()
        return await record(key, ts, token)

    monkeypatch.setattr(world.index, "digest_posted", flaky)
    assert await world.offers.handle(group(4)) == Handled(digested=1)
    assert await world.offers.handle(group(5)) == Handled(digested=1)
    await world.digests.settle()
    assert len(world.messages.digests) == 1
    assert world.messages.digest_updates[-1][2].groups == 2
