"""The rollback's thread: the start, one progress message edited at most once per interval
(an injected clock decides), and the outcome with the final counts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.kube.parsing import parse_history
from bot.adapters.slack.reporter import ThreadReporter, ThreadReporters
from bot.domain.rollback.models import RunInfo, Target, Thread
from bot.domain.rollback.planning import RollbackPlan, plan_rollback
from bot.domain.rollback.progress import Phase, Progress
from tests.builders import deployment, replicaset, template

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


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeSlack:
    """The two Web API methods the reporter calls, recorded in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.updated = asyncio.Event()
        self.fail_updates = False
        self._posts = 0

    async def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        self._posts += 1
        ts = f"1764216001.{self._posts:06d}"
        self.calls.append(("post", {**kwargs, "ts": ts}))
        return {"ok": True, "ts": ts}

    async def chat_update(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail_updates:
            raise ConnectionError("slack is down")
        self.calls.append(("update", kwargs))
        self.updated.set()
        return {"ok": True, "ts": kwargs["ts"]}

    @property
    def texts(self) -> list[tuple[str, str]]:
        return [(kind, str(call["text"])) for kind, call in self.calls]

    def updates(self) -> list[dict[str, Any]]:
        return [call for kind, call in self.calls if kind == "update"]

    async def next_update(self) -> dict[str, Any]:
        self.updated.clear()
        await asyncio.wait_for(self.updated.wait(), timeout=2.0)
        return self.updates()[-1]


def reporter(slack: FakeSlack, clock: Clock, min_interval: float = 1.0) -> ThreadReporter:
    return ThreadReporter(
        cast(AsyncWebClient, slack),
        channel=CHANNEL,
        thread_ts=THREAD,
        namespace="shop",
        deployment="checkout",
        min_interval=min_interval,
        clock=clock,
    )


async def others_done() -> None:
    """Wait until every task but this one has finished (a throttled edit, if any)."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if others:
        await asyncio.wait(others)


def counts_text(p: Progress) -> str:
    return f"Rolling out 1.1: {p.counts}"


async def test_the_start_is_posted_in_the_thread() -> None:
    slack = FakeSlack()
    await reporter(slack, Clock()).started(RUN, plan(), "5xx after the deploy")
    [(kind, call)] = slack.calls
    assert kind == "post"
    assert (call["channel"], call["thread_ts"]) == (CHANNEL, THREAD)
    assert call["text"] == "checkout: rolling back to 1.1"
    body = call["blocks"][0]["text"]["text"]
    assert "(revision 3)" in body and "5xx after the deploy" in body and "<@U0ALICE>" in body


async def test_the_first_progress_is_posted_at_once() -> None:
    slack, clock = FakeSlack(), Clock()
    r = reporter(slack, clock)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 2.0)
    await others_done()  # in the background: following the rollout never waits for Slack
    assert slack.texts[1:] == [("post", counts_text(progress(1)))]
    assert slack.calls[1][1]["thread_ts"] == THREAD


async def test_edits_within_the_interval_become_one_later_edit_with_the_latest_progress() -> None:
    slack, clock = FakeSlack(), Clock(100.0)
    r = reporter(slack, clock, min_interval=1.0)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    await others_done()
    progress_ts = slack.calls[-1][1]["ts"]

    clock.now = 100.97  # 0.97s after the post: too early for an edit
    await r.progress(progress(2, ready=1), 1.97)
    clock.now = 100.98
    await r.progress(progress(2, ready=2), 1.98)
    assert len(slack.calls) == 2  # nothing sent yet: both are waiting for the interval

    edit = await slack.next_update()
    assert (edit["channel"], edit["ts"]) == (CHANNEL, progress_ts)
    assert edit["text"] == counts_text(progress(2, ready=2))
    await others_done()
    assert len(slack.updates()) == 1  # one edit for both, not one each

    clock.now = 102.5  # more than the interval since that edit: the next goes out at once
    await r.progress(progress(3, ready=2), 3.5)
    await others_done()
    assert [u["text"] for u in slack.updates()] == [
        counts_text(progress(2, ready=2)),
        counts_text(progress(3, ready=2)),
    ]
    assert all(u["ts"] == progress_ts for u in slack.updates())
    assert [kind for kind, _ in slack.calls].count("post") == 2  # the start and one progress


async def test_finished_shows_the_final_counts_at_once_and_then_the_outcome() -> None:
    slack, clock = FakeSlack(), Clock(100.0)
    r = reporter(slack, clock, min_interval=1.0)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    await others_done()
    clock.now = 100.3
    await r.progress(progress(2), 1.3)  # throttled: due 0.7s later
    clock.now = 100.4
    await r.finished(DONE, 42.0, None)

    final = f"Rolled out 1.1 in 42s: {DONE.counts}"
    assert slack.texts == [
        ("post", "checkout: rolling back to 1.1"),
        ("post", counts_text(progress(1))),
        ("update", final),
        ("post", "checkout rolled back to 1.1 in 42s"),
    ]
    await others_done()  # the throttled edit was dropped, not sent after the outcome
    assert [u["text"] for u in slack.updates()] == [final]


async def test_a_failed_rollout_ends_with_the_error_and_its_counts() -> None:
    slack, clock = FakeSlack(), Clock()
    r = reporter(slack, clock)
    await r.started(RUN, plan(), None)
    last = progress(1)
    await r.progress(last, 5.0)
    clock.now += 5
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
    slack, clock = FakeSlack(), Clock()
    r = reporter(slack, clock)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    await others_done()
    progress_ts = slack.calls[-1][1]["ts"]
    clock.now += 5
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
    slack = FakeSlack()
    r = reporter(slack, Clock())
    await r.started(RUN, plan(), None)
    await r.finished(DONE, 12.0, None)
    assert slack.texts[1:] == [
        ("post", f"Rolled out 1.1 in 12s: {DONE.counts}"),
        ("post", "checkout rolled back to 1.1 in 12s"),
    ]


async def test_finished_without_progress_posts_only_the_outcome() -> None:
    slack = FakeSlack()
    r = reporter(slack, Clock())
    await r.started(RUN, plan(), None)
    await r.finished(None, 0.4, "could not patch: forbidden")
    assert slack.texts[1:] == [
        ("post", "Rollback of checkout to 1.1 failed: could not patch: forbidden")
    ]


async def test_the_outcome_is_posted_even_when_the_final_edit_fails() -> None:
    slack, clock = FakeSlack(), Clock()
    r = reporter(slack, clock)
    await r.started(RUN, plan(), None)
    await r.progress(progress(1), 1.0)
    slack.fail_updates = True
    clock.now += 10
    await r.finished(DONE, 11.0, None)
    assert slack.texts[-1] == ("post", "checkout rolled back to 1.1 in 11s")


async def test_reporters_tell_each_rollback_in_its_thread() -> None:
    slack = FakeSlack()
    reporters = ThreadReporters(cast(AsyncWebClient, slack), min_interval=0.0)
    r = reporters.reporter(Thread("C0OTHER", "1764216999.000200"), Target("shop", "checkout"))
    await r.started(RUN, plan(), None)
    assert (slack.calls[0][1]["channel"], slack.calls[0][1]["thread_ts"]) == (
        "C0OTHER",
        "1764216999.000200",
    )
    with pytest.raises(ValueError, match="thread"):
        reporters.reporter(None, Target("shop", "checkout"))


async def test_progress_never_waits_for_slack() -> None:
    # A rate-limited Slack (a Retry-After sleep inside the client) must not hold up following.
    slack, clock = FakeSlack(), Clock()
    gate = asyncio.Event()
    original = slack.chat_postMessage

    async def slow_post(**kwargs: Any) -> dict[str, Any]:
        if kwargs.get("text", "").startswith("Rolling out"):
            await gate.wait()
        return await original(**kwargs)

    slack.chat_postMessage = slow_post  # type: ignore[method-assign]
    r = reporter(slack, clock)
    await r.started(RUN, plan(), None)
    await asyncio.wait_for(r.progress(progress(1), 1.0), timeout=1.0)
    await asyncio.wait_for(r.progress(progress(2), 2.0), timeout=1.0)
    gate.set()
    await r.finished(DONE, 3.0, None)
    assert slack.texts[-1] == ("post", "checkout rolled back to 1.1 in 3.0s")


async def test_the_edits_of_all_rollbacks_share_one_budget() -> None:
    from bot.adapters.slack.reporter import EditBudget

    clock = Clock(100.0)
    budget = EditBudget(per_minute=3, clock=clock)
    for _ in range(3):
        assert budget.wait() == 0.0
        budget.spend()
    assert budget.wait() == pytest.approx(60.0)
    clock.now = 130.0
    assert budget.wait() == pytest.approx(30.0)
    clock.now = 160.0
    assert budget.wait() == 0.0
