"""The rollback's thread: the start, one progress message kept up to date through the Slack
scheduler (an injected clock decides when its budget allows an edit), and the outcome with the
final counts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from bot.adapters.kube.parsing import parse_history
from bot.adapters.slack.reporter import ThreadReporter, ThreadReporters
from bot.adapters.slack.scheduled_client import ScheduledWebClient
from bot.adapters.slack.scheduler import Pace, Priority, SlackScheduler, current_priority
from bot.domain.rollback.models import RunInfo, Target, Thread
from bot.domain.rollback.planning import RollbackPlan, plan_rollback
from bot.domain.rollback.progress import Phase, Progress
from tests.builders import deployment, replicaset, template
from tests.unit.adapters.slack.test_scheduler import FakeTime

CHANNEL, THREAD = "C0SHOP", "1764216000.000100"

RUN = RunInfo(
    service="checkout",
    actor="U0ALICE",
    from_version="1.2",
    to_version="1.1",
    to_revision=2,
    started_at=datetime(2026, 11, 27, 4, 0, tzinfo=UTC),
)


def plan() -> RollbackPlan:
    rss = [
        replicaset(template(f"1.{n}"), revision=n, pod_hash=f"h{n}", created=f"2026-11-2{n}T00:00Z")
        for n in (1, 2, 3)
    ]
    return plan_rollback(parse_history(deployment(template("1.2"), revision=3), rss), 2)


def progress(updated: int, ready: int | None = None, phase: Phase = Phase.UPDATING) -> Progress:
    ready = updated if ready is None else ready
    return Progress(
        phase=phase,
        message=f"Waiting for rollout to finish: {updated} out of 3 new replicas have been updated",
        desired=3,
        updated=updated,
        ready=ready,
        available=ready,
        total=3,
        revision=4,
    )


DONE = Progress(
    phase=Phase.COMPLETE,
    message='deployment "checkout" successfully rolled out',
    desired=3,
    updated=3,
    ready=3,
    available=3,
    total=3,
    revision=4,
)


class FakeSlack:
    """The two Web API methods the reporter calls, going through a `SlackScheduler` as
    `ScheduledWebClient`'s do; recorded in the order they reach Slack, with their priority."""

    def __init__(self, scheduler: SlackScheduler) -> None:
        self.scheduler = scheduler
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.priorities: list[Priority] = []
        self.fail_updates = False
        self.post_gate: asyncio.Event | None = None  # holds the progress message's post
        self._posts = 0

    async def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        return await self.scheduler.send(
            "chat.postMessage", lambda: self._post(kwargs), channel=kwargs["channel"]
        )

    async def chat_update(self, **kwargs: Any) -> dict[str, Any]:
        return await self.scheduler.send(
            "chat.update", lambda: self._update(kwargs), channel=kwargs["channel"], ts=kwargs["ts"]
        )

    async def _post(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.post_gate is not None and str(kwargs["text"]).startswith("Rolling out"):
            await self.post_gate.wait()
        self._posts += 1
        ts = f"1764216001.{self._posts:06d}"
        self.calls.append(("post", {**kwargs, "ts": ts}))
        self.priorities.append(current_priority())
        return {"ok": True, "ts": ts}

    async def _update(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.fail_updates:
            raise ConnectionError("slack is down")
        self.calls.append(("update", kwargs))
        self.priorities.append(current_priority())
        return {"ok": True, "ts": kwargs["ts"]}

    @property
    def texts(self) -> list[tuple[str, str]]:
        return [(kind, str(call["text"])) for kind, call in self.calls]

    def updates(self) -> list[dict[str, Any]]:
        return [call for kind, call in self.calls if kind == "update"]


def slack_with(time: FakeTime, update_pace: Pace | None = None) -> FakeSlack:
    """Room for every post of a test in the channel; chat.update as Slack's, or `update_pace`
    (one a second and no burst: the second edit in a second has to wait)."""
    return FakeSlack(
        SlackScheduler(
            clock=time,
            sleep=time.sleep,
            post_pace=Pace(per_second=1.0, burst=20),
            update_pace=update_pace or Pace(per_second=45 / 60, burst=5),
        )
    )


ONE_A_SECOND = Pace(per_second=1.0, burst=1)


def reporter(slack: FakeSlack, channel: str = CHANNEL) -> ThreadReporter:
    return ThreadReporter(
        cast(ScheduledWebClient, slack),
        channel=channel,
        thread_ts=THREAD,
        namespace="shop",
        deployment="checkout",
    )


def counts_text(p: Progress) -> str:
    return f"Rolling out 1.1: {p.counts}"


async def test_the_start_is_posted_in_the_thread() -> None:
    slack = slack_with(FakeTime())
    await reporter(slack).started(RUN, plan(), "5xx after the deploy")
    [(kind, call)] = slack.calls
    assert kind == "post"
    assert (call["channel"], call["thread_ts"]) == (CHANNEL, THREAD)
    assert call["text"] == "checkout: rolling back to 1.1"
    body = call["blocks"][0]["text"]["text"]
    assert "(revision 3)" in body and "5xx after the deploy" in body and "<@U0ALICE>" in body
    assert slack.priorities == [Priority.ROLLBACK]


async def test_the_first_progress_is_posted_at_once() -> None:
    time = FakeTime()
    slack = slack_with(time)
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 2.0)
    assert len(slack.calls) == 1  # in the background: following the rollout never waits
    await time.advance(0)
    assert slack.texts[1:] == [("post", counts_text(progress(1)))]
    assert slack.calls[1][1]["thread_ts"] == THREAD
    assert slack.priorities[1:] == [Priority.PROGRESS]


async def test_edits_waiting_for_slacks_budget_become_one_edit_with_the_latest_progress() -> None:
    time = FakeTime()
    slack = slack_with(time, ONE_A_SECOND)
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    await time.advance(0)
    progress_ts = slack.calls[-1][1]["ts"]

    await r.progress(progress(2, ready=1), 1.1)  # the budget has room: at once
    await time.advance(0)
    await r.progress(progress(2, ready=2), 1.2)  # these two wait for the next edit's turn
    await r.progress(progress(3, ready=2), 1.3)
    await time.advance(0.9)
    assert [u["text"] for u in slack.updates()] == [counts_text(progress(2, ready=1))]

    await time.advance(0.1)  # one edit for both, with the latest progress, not one each
    assert [u["text"] for u in slack.updates()] == [
        counts_text(progress(2, ready=1)),
        counts_text(progress(3, ready=2)),
    ]
    await time.advance(5)
    assert len(slack.updates()) == 2
    assert all(u["ts"] == progress_ts and u["channel"] == CHANNEL for u in slack.updates())
    assert slack.priorities[1:] == [Priority.PROGRESS] * 3
    assert [kind for kind, _ in slack.calls].count("post") == 2  # the start and one progress


async def test_finished_shows_the_final_counts_first_and_then_the_outcome() -> None:
    time = FakeTime()
    slack = slack_with(time, ONE_A_SECOND)
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    await time.advance(0)
    await r.progress(progress(2), 1.3)  # sent: the budget had room
    await time.advance(0)
    await r.progress(progress(3, ready=2), 1.4)  # waits for the budget
    finishing = asyncio.ensure_future(r.finished(DONE, 42.0, None))
    await time.advance(1)
    assert finishing.done()

    final = f"Rolled out 1.1 in 42s: {DONE.counts}"
    assert slack.texts == [
        ("post", "checkout: rolling back to 1.1"),
        ("post", counts_text(progress(1))),
        ("update", counts_text(progress(2))),
        ("update", final),
        ("post", "checkout rolled back to 1.1 in 42s"),
    ]
    # The final state went as the rollback's, in place of the waiting edit: never after it.
    assert slack.priorities[-2:] == [Priority.ROLLBACK, Priority.ROLLBACK]
    await time.advance(5)
    assert [u["text"] for u in slack.updates()][-1] == final
    assert len(slack.updates()) == 2


async def test_a_failed_rollout_ends_with_the_error_and_its_counts() -> None:
    time = FakeTime()
    slack = slack_with(time)
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    last = progress(1)
    await r.progress(last, 5.0)
    await time.advance(5)
    await r.finished(last, 600.0, "deployment exceeded its progress deadline")
    kind, text = slack.texts[-1]
    assert kind == "post"
    assert text == ("Rollback of checkout to 1.1 failed: deployment exceeded its progress deadline")
    assert "1/3 updated to 1.1" in slack.calls[-1][1]["blocks"][0]["text"]["text"]


@pytest.mark.parametrize(
    ("last", "error", "unknown", "shown"),
    [
        (DONE, None, False, ":white_check_mark: Rolled out *1.1*"),
        (progress(1), "deployment exceeded its progress deadline", False, ":x: Rollout of *1.1*"),
        (progress(1), "the API did not answer", True, ":grey_question: Lost sight of the rollout"),
    ],
)
async def test_the_progress_message_ends_showing_the_outcome_not_rolling_out(
    last: Progress, error: str | None, unknown: bool, shown: str
) -> None:
    time = FakeTime()
    slack = slack_with(time)
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    await time.advance(0)
    progress_ts = slack.calls[-1][1]["ts"]
    await time.advance(5)
    await r.finished(last, 65.0, error, unknown=unknown)
    [edit] = slack.updates()
    assert edit["ts"] == progress_ts
    body = edit["blocks"][0]["text"]["text"]
    assert body.startswith(shown)
    assert "Rolling out" not in body and "Rolling out" not in edit["text"]
    assert "1m05s" in body  # how long it took
    if unknown:  # the bot does not know how it ended: neither a success nor a failure
        assert ":white_check_mark:" not in body and ":x:" not in body
    assert slack.calls[-1][0] == "post"  # and the outcome is still told below it


async def test_finished_posts_the_progress_message_when_none_was_posted_yet() -> None:
    slack = slack_with(FakeTime())
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await r.finished(DONE, 12.0, None)
    assert slack.texts[1:] == [
        ("post", f"Rolled out 1.1 in 12s: {DONE.counts}"),
        ("post", "checkout rolled back to 1.1 in 12s"),
    ]


async def test_finished_without_progress_posts_only_the_outcome() -> None:
    slack = slack_with(FakeTime())
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await r.finished(None, 0.4, "could not patch: forbidden")
    assert slack.texts[1:] == [
        ("post", "Rollback of checkout to 1.1 failed: could not patch: forbidden")
    ]


async def test_finished_without_a_last_state_drops_the_edits_still_waiting() -> None:
    time = FakeTime()
    slack = slack_with(time, ONE_A_SECOND)
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    await time.advance(0)
    await r.progress(progress(2), 2.0)
    await time.advance(0)
    await r.progress(progress(3), 3.0)  # waiting for the budget
    await r.finished(None, 3.5, "lost the lease")
    await time.advance(5)
    assert [u["text"] for u in slack.updates()] == [counts_text(progress(2))]
    assert slack.texts[-1] == ("post", "Rollback of checkout to 1.1 failed: lost the lease")


async def test_the_outcome_is_posted_even_when_the_final_edit_fails() -> None:
    time = FakeTime()
    slack = slack_with(time)
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    await time.advance(0)
    slack.fail_updates = True
    await time.advance(10)
    await r.finished(DONE, 11.0, None)
    assert slack.texts[-1] == ("post", "checkout rolled back to 1.1 in 11s")


async def test_reporters_tell_each_rollback_in_its_thread() -> None:
    slack = slack_with(FakeTime())
    reporters = ThreadReporters(cast(ScheduledWebClient, slack))
    r = reporters.reporter(Thread("C0OTHER", "1764216999.000200"), Target("shop", "checkout"))
    await r.started(RUN, plan(), None)
    assert (slack.calls[0][1]["channel"], slack.calls[0][1]["thread_ts"]) == (
        "C0OTHER",
        "1764216999.000200",
    )
    with pytest.raises(ValueError, match="thread"):
        reporters.reporter(None, Target("shop", "checkout"))


async def test_progress_never_waits_for_slack() -> None:
    # Slack slow to take the progress message must not hold up following the rollout.
    time = FakeTime()
    slack = slack_with(time)
    slack.post_gate = asyncio.Event()
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await asyncio.wait_for(r.progress(progress(1), 1.0), timeout=1.0)
    await time.advance(0)
    await asyncio.wait_for(r.progress(progress(2), 2.0), timeout=1.0)
    await asyncio.wait_for(r.progress(progress(3), 2.5), timeout=1.0)
    slack.post_gate.set()
    await time.advance(0)
    # Once the message is there, the progress given meanwhile is edited in: only the newest.
    assert slack.texts[1:] == [
        ("post", counts_text(progress(1))),
        ("update", counts_text(progress(3))),
    ]
    await r.finished(DONE, 3.0, None)
    assert slack.texts[-1] == ("post", "checkout rolled back to 1.1 in 3.0s")


async def test_finished_during_the_first_post_ends_that_message() -> None:
    time = FakeTime()
    slack = slack_with(time)
    slack.post_gate = asyncio.Event()
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    await time.advance(0)
    finishing = asyncio.ensure_future(r.finished(DONE, 4.0, None))
    await time.advance(0)
    slack.post_gate.set()
    await time.advance(0)
    assert finishing.done()
    kind, posted = slack.calls[1]
    [final] = slack.updates()
    assert kind == "post" and final["ts"] == posted["ts"]
    assert final["text"].startswith("Rolled out 1.1")
    # One progress message, ended: not a second one posted with the final state.
    assert [kind for kind, _ in slack.calls] == ["post", "post", "update", "post"]


async def test_handing_over_drops_the_edits_still_waiting() -> None:
    time = FakeTime()
    slack = slack_with(time, ONE_A_SECOND)
    r = reporter(slack)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    await time.advance(0)
    await r.progress(progress(2), 2.0)
    await time.advance(0)
    await r.progress(progress(3), 3.0)  # waiting for the budget
    await r.handed_over(RUN, "rollback-bot-0")
    await time.advance(5)
    assert [u["text"] for u in slack.updates()] == [counts_text(progress(2))]
    assert slack.calls[-1][0] == "post"
    await r.progress(progress(3), 4.0)  # too late: another replica tells the rest
    await time.advance(5)
    assert len(slack.updates()) == 1


async def test_the_edits_of_all_rollbacks_share_one_budget() -> None:
    time = FakeTime()
    slack = slack_with(time, ONE_A_SECOND)
    shop, other = reporter(slack), reporter(slack, channel="C0OTHER")
    for r in (shop, other):
        await r.started(RUN, plan(), None)
        await r.progress(progress(1), 1.0)
    await time.advance(0)
    await shop.progress(progress(2), 2.0)
    await other.progress(progress(2), 2.0)  # another channel, the same chat.update budget
    await time.advance(0)
    assert [u["channel"] for u in slack.updates()] == [CHANNEL]
    await time.advance(1)
    assert [u["channel"] for u in slack.updates()] == [CHANNEL, "C0OTHER"]
