"""The backoff schedule (pure) and the retry loop, with the randomness and the sleep injected."""

from __future__ import annotations

import pytest

from bot.domain.retry import NO_WAIT, Backoff, retry


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


class Script:
    """An attempt that raises the scripted errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.numbers: list[int] = []

    async def __call__(self, number: int) -> str:
        self.numbers.append(number)
        if self.errors:
            raise self.errors.pop(0)
        return f"ok at {number}"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Fixed:
    """A random source that always draws the same share."""

    def __init__(self, share: float) -> None:
        self.share = share

    def __call__(self) -> float:
        return self.share


STEADY = Backoff(first=0.1, factor=2.0, cap=1.0, jitter=0.0)


# -- Backoff.delay ------------------------------------------------------------------------


def test_delays_grow_by_the_factor_and_stop_at_the_cap() -> None:
    delays = [STEADY.delay(n) for n in range(1, 8)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


def test_an_attempt_below_one_gets_the_first_delay() -> None:
    assert STEADY.delay(0) == pytest.approx(0.1)
    assert STEADY.delay(-3) == pytest.approx(0.1)


def test_full_jitter_spans_zero_to_the_delay() -> None:
    backoff = Backoff(first=0.4, factor=2.0, cap=5.0, jitter=1.0)
    assert backoff.delay(2, rng=lambda: 0.0) == pytest.approx(0.8)
    assert backoff.delay(2, rng=lambda: 0.5) == pytest.approx(0.4)
    assert backoff.delay(2, rng=lambda: 0.999) == pytest.approx(0.0008)
    assert backoff.delay(10, rng=lambda: 0.0) == pytest.approx(5.0)  # the cap, before jitter


def test_partial_jitter_keeps_the_rest_of_the_delay() -> None:
    backoff = Backoff(first=1.0, factor=2.0, cap=10.0, jitter=0.25)
    low = backoff.delay(1, rng=lambda: 0.9999999)
    high = backoff.delay(1, rng=lambda: 0.0)
    assert low == pytest.approx(0.75)
    assert high == pytest.approx(1.0)
    for share in (0.1, 0.3, 0.6, 0.9):
        assert 0.75 <= backoff.delay(1, rng=Fixed(share)) <= 1.0


def test_jitter_with_the_real_random_source_stays_within_bounds() -> None:
    backoff = Backoff(first=0.3, factor=3.0, cap=2.0, jitter=1.0)
    for attempt in range(1, 6):
        base = min(2.0, 0.3 * 3.0 ** (attempt - 1))
        for _ in range(50):
            assert 0.0 <= backoff.delay(attempt) <= base


def test_no_wait_never_waits() -> None:
    assert [NO_WAIT.delay(n, rng=lambda: 0.5) for n in range(1, 5)] == [0.0] * 4


# -- retry ----------------------------------------------------------------------------------


async def test_the_first_success_is_returned_without_sleeping() -> None:
    attempt, sleeps = Script(), Sleeps()
    assert await retry(attempt, retry_on=Flaky, attempts=3, sleep=sleeps) == "ok at 1"
    assert attempt.numbers == [1]
    assert sleeps.delays == []


async def test_retried_errors_are_retried_until_a_success() -> None:
    attempt, sleeps = Script(Flaky("one"), Flaky("two")), Sleeps()
    result = await retry(attempt, retry_on=Flaky, attempts=5, backoff=STEADY, sleep=sleeps)
    assert result == "ok at 3"
    assert attempt.numbers == [1, 2, 3]
    assert sleeps.delays == pytest.approx([0.1, 0.2])


async def test_other_errors_are_raised_at_once() -> None:
    attempt, sleeps = Script(Fatal("broken"), Flaky("never reached")), Sleeps()
    with pytest.raises(Fatal, match="broken"):
        await retry(attempt, retry_on=Flaky, attempts=5, sleep=sleeps)
    assert attempt.numbers == [1]
    assert sleeps.delays == []


async def test_a_tuple_of_error_types_is_retried() -> None:
    attempt, sleeps = Script(Flaky("a"), Fatal("b")), Sleeps()
    result = await retry(attempt, retry_on=(Flaky, Fatal), attempts=3, sleep=sleeps)
    assert result == "ok at 3"


async def test_it_gives_up_after_the_attempts_raising_the_last_error() -> None:
    errors = [Flaky("first"), Flaky("second"), Flaky("third"), Flaky("fourth")]
    attempt, sleeps = Script(*errors), Sleeps()
    with pytest.raises(Flaky) as raised:
        await retry(attempt, retry_on=Flaky, attempts=3, backoff=STEADY, sleep=sleeps)
    assert raised.value is errors[2]
    assert attempt.numbers == [1, 2, 3]
    assert sleeps.delays == pytest.approx([0.1, 0.2])  # no pause after the last failure


async def test_one_attempt_means_no_retry() -> None:
    attempt, sleeps = Script(Flaky("only")), Sleeps()
    with pytest.raises(Flaky, match="only"):
        await retry(attempt, retry_on=Flaky, attempts=1, sleep=sleeps)
    assert attempt.numbers == [1]
    assert sleeps.delays == []


async def test_no_limit_retries_until_it_works() -> None:
    attempt, sleeps = Script(*(Flaky(str(n)) for n in range(12))), Sleeps()
    result = await retry(attempt, retry_on=Flaky, attempts=None, backoff=STEADY, sleep=sleeps)
    assert result == "ok at 13"
    assert len(sleeps.delays) == 12
    assert max(sleeps.delays) == pytest.approx(1.0)


async def test_on_retry_hears_each_retried_failure_with_its_delay() -> None:
    errors = [Flaky("a"), Flaky("b"), Flaky("c")]
    attempt, sleeps = Script(*errors), Sleeps()
    heard: list[tuple[int, BaseException, float]] = []
    with pytest.raises(Flaky):
        await retry(
            attempt,
            retry_on=Flaky,
            attempts=3,
            backoff=STEADY,
            on_retry=lambda n, exc, delay: heard.append((n, exc, delay)),
            sleep=sleeps,
        )
    assert [(n, exc) for n, exc, _ in heard] == [(1, errors[0]), (2, errors[1])]
    assert [delay for _, _, delay in heard] == sleeps.delays  # what it heard is what it slept
