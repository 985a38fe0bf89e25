"""Automatic rollback's Block Kit: the watch message in every phase (with "Stop watching" only
while it watches), the verdict's evidence and rollback button, the notices; hostile text from
the cluster, the catalog and Prometheus escaped; Slack's limits kept, as the stand-in checks."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.adapters.slack import action_ids
from bot.adapters.slack.analysis_blocks import (
    LINK_TEXT,
    QUERY_TEXT,
    notice_message,
    stop_answer,
    verdict_message,
    watch_message,
)
from bot.adapters.slack.payloads import BadPayload, RollbackButton, StopWatchButton
from bot.adapters.slack.render import MAX_BLOCKS, SECTION_TEXT, TEXT_BUDGET, Message
from bot.domain.analysis.checks import Outcome, Sample, judge
from bot.domain.analysis.evidence import evidence
from bot.domain.analysis.presets import DEFAULT_VOLUME, ERROR_RATIO, P99_LATENCY
from bot.domain.analysis.report import Baseline, Report, SignalReport
from bot.domain.analysis.signals import Signal
from bot.domain.analysis.verdict import Tally, VerdictKind
from bot.domain.analysis.watching import Phase, WatchStatus
from bot.domain.rollback.models import History, RunInfo
from bot.domain.rollback.views import ServiceView
from rollback_sandbox.slack.blockkit import validate_blocks
from tests.unit.adapters.slack.test_alert_blocks import history, texts
from tests.unit.test_hostile_inputs import json_values

NOW = datetime(2026, 11, 27, 4, 5, tzinfo=UTC)
DEPLOYED = datetime(2026, 11, 27, 3, 46, tzinfo=UTC)
PROMETHEUS = "http://prometheus.monitoring:9090"
HOSTILE = ["<!channel>", "*bold* <https://evil.example|click>", "&" * 500, "x" * 500]


def status(phase: Phase = Phase.WATCHING, detail: str | None = None, **changes: Any) -> WatchStatus:
    """Revision 3 (2.14.0) of checkout, against revision 2 (2.13.0): `history()`'s."""
    watched = WatchStatus(
        service="checkout",
        namespace="shop",
        deployment="checkout",
        context=None,
        revision=3,
        version="2.14.0",
        baseline_revision=2,
        baseline_version="2.13.0",
        window_seconds=600,
        mode="act",
    )
    return replace(watched, phase=phase, detail=detail, **changes)


def signal_report(
    signal: Signal = ERROR_RATIO, new: float = 0.2, query: str | None = None
) -> SignalReport:
    base = 0.005 if signal.unit == "ratio" else 0.1
    check = judge(signal, Sample(new, base, 50, 50), DEFAULT_VOLUME)
    promql = (
        query
        if query is not None
        else f'sum(rate(x{{pod_template_hash="h3"}}[1m])) # {signal.name}'
    )
    return SignalReport(
        signal=signal,
        evidence=evidence(check, query=promql, prometheus_url=PROMETHEUS, window_seconds=600),
        threshold=0.015 if signal.unit == "ratio" else 0.3,
        baseline_query="old",
        before_deploy_query=None,
        new_points=((30.0, math.nan), (60.0, new)),
        baseline_points=((30.0, base), (60.0, base)),
    )


def report(*signals: SignalReport) -> Report:
    return Report(
        service="checkout",
        namespace="shop",
        deployment="checkout",
        revision=3,
        version="2.14.0",
        pod_template_hash="h3",
        deployed_at=DEPLOYED,
        prometheus_url=PROMETHEUS,
        window_seconds=600,
        interval_seconds=30,
        consecutive=2,
        analysed_seconds=120,
        verdict=VerdictKind.BREACH,
        reason="breach confirmed: 2 intervals in a row breached",
        baseline=Baseline(2, "h2", alongside=4),
        signals=signals or (signal_report(), signal_report(P99_LATENCY, 0.12)),
        tally=Tally(breach=2, passed=2),
        at_seconds=120,
    )


def offer(h: History | None = None, running: RunInfo | None = None) -> ServiceView:
    return ServiceView(
        service="checkout",
        namespace="shop",
        cluster="prod-eu",
        history=h or history(),
        asked_by="rollback-bot",
        taken_at=NOW,
        running=running,
    )


def mrkdwn(message: Message) -> str:
    """The texts Slack formats (links, mentions): what escaping protects."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks)
    return "\n".join(found)


def text_size(message: Message) -> int:
    def walk(node: Any) -> int:
        if isinstance(node, dict):
            return sum(
                len(v) if k == "text" and isinstance(v, str) else walk(v) for k, v in node.items()
            )
        if isinstance(node, list):
            return sum(walk(v) for v in node)
        return 0

    return walk(message.blocks)


def assert_valid(message: Message) -> None:
    """As Slack checks it: Block Kit's limits, unique block_ids, within the text Slack accepts
    in one message's blocks, and a plain fallback text."""
    assert validate_blocks(message.blocks) == []
    ids = [b["block_id"] for b in message.blocks if "block_id" in b]
    assert len(ids) == len(set(ids))
    assert len(message.blocks) <= MAX_BLOCKS
    assert text_size(message) <= TEXT_BUDGET
    assert message.text and "<!" not in message.text and "<@" not in message.text


def actions(message: Message) -> list[dict[str, Any]]:
    return [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def sections(message: Message) -> list[str]:
    return [b["text"]["text"] for b in message.blocks if b["type"] == "section"]


# -- the watch message ----------------------------------------------------------------------


def test_while_watching_it_says_what_against_what_for_how_long_and_offers_to_stop() -> None:
    message = watch_message(status())
    assert_valid(message)
    assert sections(message)[0] == (
        ":eyes: Watching *checkout* `2.14.0` (revision 3) for 10 minutes against `2.13.0` "
        "(revision 2)"
    )
    assert message.text == (
        "Watching checkout 2.14.0 (revision 3) for 10 minutes against 2.13.0 (revision 2)"
    )
    assert "act: a confirmed breach rolls it back" in texts(message)
    assert "`shop/checkout`" in texts(message)
    (button,) = actions(message)
    assert (button["action_id"], button["text"]["text"]) == (
        action_ids.ANALYSIS_STOP,
        "Stop watching",
    )
    assert StopWatchButton.decode(button["value"]) == StopWatchButton(
        service="checkout", namespace="shop", deployment="checkout", revision=3
    )


def test_dry_run_and_no_baseline_revision_are_said() -> None:
    message = watch_message(
        status(mode="dry-run", baseline_revision=None, baseline_version=None, context="prod-eu")
    )
    assert_valid(message)
    assert sections(message)[0].endswith("for 10 minutes against the window before the deploy")
    assert "dry-run: it will only say what it would do" in texts(message)
    assert "`shop/checkout` on `prod-eu`" in texts(message)


@pytest.mark.parametrize(
    ("phase", "detail", "headline", "fallback"),
    [
        (
            Phase.HEALTHY,
            "looks healthy after 10m00s",
            ":white_check_mark: *checkout* `2.14.0` looks healthy after 10 minutes",
            "checkout 2.14.0 looks healthy after 10 minutes",
        ),
        (
            Phase.NO_VERDICT,
            "no interval could be judged",
            ":grey_question: *checkout*: no verdict on `2.14.0`: no interval could be judged",
            "checkout: no verdict on 2.14.0: no interval could be judged",
        ),
        (
            Phase.ROLLED_BACK,
            "rolling back to 2.13.0 (revision 2)",
            ":rotating_light: *checkout* `2.14.0` breached: rolled back to `2.13.0` (revision 2)",
            "checkout 2.14.0 breached: rolled back to 2.13.0 (revision 2)",
        ),
        (
            Phase.WOULD_ROLL_BACK,
            "dry-run: would have rolled back to 2.13.0 (revision 2)",
            ":rotating_light: *checkout* `2.14.0` breached: would have rolled back to `2.13.0` "
            "(revision 2) (dry-run)",
            "checkout 2.14.0 breached: would have rolled back to 2.13.0 (revision 2) (dry-run)",
        ),
        (
            Phase.NOT_ROLLED_BACK,
            "rolling checkout back needs 2 approvals",
            ":rotating_light: *checkout* `2.14.0` breached, NOT rolled back: rolling checkout "
            "back needs 2 approvals",
            "checkout 2.14.0 breached, NOT rolled back: rolling checkout back needs 2 approvals",
        ),
        (
            Phase.STOPPED,
            "stopped by <@U0BOB0001>",
            ":octagonal_sign: Stopped watching *checkout* `2.14.0`: stopped by <@U0BOB0001>",
            "Stopped watching checkout 2.14.0: stopped by @U0BOB0001",
        ),
        (
            Phase.SUPERSEDED,
            "the deployment moved on: 2.15.0 runs now",
            ":fast_forward: Stopped watching *checkout* `2.14.0`: the deployment moved on: "
            "2.15.0 runs now",
            "Stopped watching checkout 2.14.0: the deployment moved on: 2.15.0 runs now",
        ),
    ],
)
def test_every_end_is_shown_without_the_button(
    phase: Phase, detail: str, headline: str, fallback: str
) -> None:
    message = watch_message(status(phase, detail))
    assert_valid(message)
    assert actions(message) == []
    assert sections(message) == [headline]
    assert message.text == fallback
    context = message.blocks[-1]["elements"][0]["text"]
    # The detail not in the headline is under it.
    if phase in (Phase.HEALTHY, Phase.ROLLED_BACK, Phase.WOULD_ROLL_BACK):
        assert context.startswith(detail)
    else:
        assert context == "`shop/checkout`"


def test_a_stop_by_a_bare_user_id_is_a_mention() -> None:
    message = watch_message(status(Phase.STOPPED, "U0BOB0001"))
    assert sections(message)[0].endswith(": stopped by <@U0BOB0001>")


def test_every_phase_renders() -> None:
    for phase in Phase:
        for detail in (None, "why"):
            message = watch_message(status(phase, detail))
            assert_valid(message)
            assert bool(actions(message)) is (phase is Phase.WATCHING)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_escaped_and_clipped(text: str) -> None:
    hostile = status(
        service=text,
        version=text,
        baseline_version=f"`{text}`",
        namespace=text[:63],
        context="<!here>",
    )
    detail = f"{text} <!here> <@U0EVE0001>"
    messages = {phase: watch_message(hostile.ended(phase, detail)) for phase in Phase}
    for phase, message in [*messages.items(), (None, notice_message(hostile, detail))]:
        assert_valid(message)
        shown = mrkdwn(message)
        assert "<!channel>" not in shown and "<!here>" not in shown
        assert "<https://evil" not in shown
        assert all(len(s) <= SECTION_TEXT for s in sections(message))
        if phase is not Phase.STOPPED:  # only a stop's detail is the bot's, naming who
            assert "<@U0EVE0001>" not in shown
    if text.startswith("*bold*"):
        # A version is a code span: Slack shows it as it is, bold and link markup inert.
        assert "`*bold* &lt;https://evil.example|click&gt;`" in sections(watch_message(hostile))[0]


def test_a_mention_outside_a_stop_is_not_kept() -> None:
    message = watch_message(status(Phase.NOT_ROLLED_BACK, "refused by <@U0EVE0001>"))
    assert "<@U0EVE0001>" not in mrkdwn(message)
    assert "&lt;@U0EVE0001&gt;" in mrkdwn(message)


def test_a_name_too_long_for_the_button_says_so() -> None:
    message = watch_message(status(service="s" * 301))
    assert_valid(message)
    assert actions(message) == []
    assert "too long for a button" in texts(message)


def test_the_buttons_value_round_trips_and_refuses_anything_else() -> None:
    value = StopWatchButton(service="checkout", namespace="shop", deployment="co", revision=7)
    assert StopWatchButton.decode(value.encode()) == value
    for bad in (
        None,
        42,
        "",
        "{}",
        '{"s":"checkout","n":"shop","d":"co","r":"7"}',  # a revision as text
        '{"s":"checkout","n":"shop","d":"co","r":0}',
        '{"s":"checkout","n":"shop","d":"co","r":1000000000000000000}',
        '{"s":"checkout","n":"shop","d":"co","r":7,"x":1}',
        '{"s":"","n":"shop","d":"co","r":7}',
        '{"s":"checkout","n":"' + "n" * 64 + '","d":"co","r":7}',
        "x" * 3000,
    ):
        with pytest.raises(BadPayload):
            StopWatchButton.decode(bad)


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=200)
    | json_values.map(json.dumps)
    | st.fixed_dictionaries(
        {"s": json_values, "n": json_values, "d": json_values, "r": json_values}
    ).map(json.dumps)
)
def test_stop_button_values_parse_or_are_refused(raw: str) -> None:
    try:
        value = StopWatchButton.decode(raw)
    except BadPayload as exc:
        assert "rollback-bot" in str(exc)
    else:
        assert StopWatchButton.decode(value.encode()) == value


def test_a_notice_is_one_warning_line() -> None:
    message = notice_message(status(), "not enough traffic to judge <!channel>")
    assert_valid(message)
    assert sections(message) == [":warning: not enough traffic to judge &lt;!channel&gt;"]
    assert message.text == "checkout 2.14.0: not enough traffic to judge &lt;!channel&gt;"
    unknown = notice_message(None, "Prometheus unreachable")
    assert unknown.text == "Prometheus unreachable"


def test_the_answer_to_stop_keeps_the_watchs_mention_only() -> None:
    message = stop_answer("<@U0ALICE01> has already asked to stop watching <!channel>.")
    assert sections(message) == [
        ":octagonal_sign: <@U0ALICE01> has already asked to stop watching &lt;!channel&gt;."
    ]


# -- the verdict -----------------------------------------------------------------------------


def test_the_verdict_shows_what_was_done_the_on_call_group_and_each_signals_evidence() -> None:
    done = status(
        Phase.ROLLED_BACK, "rolling back to 2.13.0 (revision 2)", on_call_group="S0ONCALL01"
    )
    message = verdict_message(done, report(), offer=None)
    assert_valid(message)
    head, *signals = sections(message)
    assert head == (
        ":rotating_light: *checkout* `2.14.0` breached: rolled back to `2.13.0` (revision 2)\n"
        "<!subteam^S0ONCALL01>"
    )
    assert message.text == "checkout 2.14.0 breached: rolled back to 2.13.0 (revision 2)"
    context = message.blocks[1]["elements"][0]["text"]
    assert context.startswith("breach confirmed: 2 intervals in a row breached · rolling back")
    assert "baseline revision 2 (pod-template-hash h2)" in context
    errors, latency = signals
    lines = errors.split("\n")
    assert lines[0].startswith("*error ratio* · :red_circle: breach · <http://prometheus")
    assert lines[0].endswith("|graph>")
    assert lines[1] == (
        "baseline 0.5% → new 20% (rule: new &gt; 3× baseline and &gt; 1%; it had to stay under "
        "1.5%)"
    )
    assert lines[-1] == '```sum(rate(x{pod_template_hash="h3"}[1m])) # error ratio```'
    assert latency.startswith("*p99 latency* · :large_green_circle: pass")
    assert "it had to stay under 0.3s" in latency
    assert actions(message) == []


def test_the_breaching_signals_come_first() -> None:
    message = verdict_message(
        status(Phase.WOULD_ROLL_BACK),
        report(signal_report(P99_LATENCY, 0.12), signal_report()),
        offer=None,
    )
    assert sections(message)[1].startswith("*error ratio* · :red_circle: breach")


def test_an_on_call_group_that_is_no_group_id_is_not_a_mention() -> None:
    message = verdict_message(status(on_call_group="<!channel>"), report(), offer=None)
    assert "<!" not in mrkdwn(message)


def test_a_breach_not_rolled_back_offers_the_baselines_button() -> None:
    refused = status(Phase.NOT_ROLLED_BACK, "rolling checkout back needs 2 approvals")
    message = verdict_message(refused, report(), offer=offer())
    assert_valid(message)
    (button,) = actions(message)
    value = RollbackButton.decode(button["value"])
    assert (value.service, value.target_revision, value.target_version, value.source) == (
        "checkout",
        2,
        "2.13.0",
        "alert",
    )
    assert button["action_id"] == action_ids.rollback_button_id(2)
    assert "A click asks to confirm and re-checks the cluster first." in texts(message)


def test_no_button_when_the_deployment_moved_on_or_a_rollback_runs() -> None:
    moved = verdict_message(status(Phase.NOT_ROLLED_BACK, revision=4), report(), offer=offer())
    assert actions(moved) == []
    assert "moved on since (revision 3 runs now)" in texts(moved)
    run = RunInfo(
        service="checkout",
        actor="U0BOB0001",
        from_version="2.14.0",
        to_version="2.13.0",
        to_revision=2,
        started_at=NOW,
    )
    running = verdict_message(status(Phase.NOT_ROLLED_BACK), report(), offer=offer(running=run))
    assert actions(running) == []
    assert "already" in texts(running) or "rolling" in texts(running)
    alone = verdict_message(
        status(Phase.NOT_ROLLED_BACK, revision=1), report(), offer=offer(history(1))
    )
    assert actions(alone) == []
    assert "nothing to roll back to" in texts(alone)


def test_hostile_evidence_is_escaped_and_a_link_that_is_not_http_is_left_out() -> None:
    item = signal_report(query="up{a=`x```y`} <!channel> <https://evil.example|click>")
    hostile = replace(
        item,
        evidence=replace(
            item.evidence,
            signal="<!here> *errors*",
            baseline="<!channel>",
            new="&",
            rule="<@U0EVE0001>",
            reason="<https://evil.example|click>",
            link="javascript:alert(1)",
        ),
    )
    message = verdict_message(
        status(Phase.WOULD_ROLL_BACK, version="<!channel>"), report(hostile), offer=offer()
    )
    assert_valid(message)
    shown = mrkdwn(message)
    assert "<!channel>" not in shown and "<!here>" not in shown and "<@U0EVE" not in shown
    assert "<https://evil" not in shown and "javascript:" not in shown
    section = sections(message)[1]
    assert "graph>" not in section
    # The code block holds the whole query but never three backticks in a row inside it.
    block = section[section.index("```") + 3 : section.rindex("```")]
    assert "```" not in block and "&lt;!channel&gt;" in block


def test_twenty_signals_and_long_promql_stay_within_slacks_limits() -> None:
    signals = tuple(
        signal_report(
            replace(ERROR_RATIO, name=f"signal {n:02d} <!channel>"),
            new=0.2 if n % 3 else 0.001,
            query=f'sum(rate(http_requests_total{{n="{n}"}}[1m])) ' + "or vector(0) " * 230,
        )
        for n in range(20)
    )
    assert all(len(s.evidence.query) >= 3000 for s in signals)
    assert all(len(s.evidence.link) > LINK_TEXT for s in signals)
    done = status(Phase.NOT_ROLLED_BACK, "d" * 5000, on_call_group="S0ONCALL01")
    message = verdict_message(done, report(*signals), offer=offer())
    assert_valid(message)
    assert all(len(s) <= SECTION_TEXT for s in sections(message))
    full = [s for s in sections(message) if "```" in s]
    assert 1 <= len(full) < 20
    for section in full:
        block = section[section.index("```") + 3 : section.rindex("```")]
        assert len(block) <= QUERY_TEXT
        # The link is too long to go beside it: `rollback-bot analyze` prints it.
        assert "graph>" not in section and "graph link too long for Slack" in section
    rest = next(s for s in sections(message) if "rollback-bot analyze checkout" in s)
    shown_as_lines = rest.count("\n• ") + rest.startswith("• ")
    assert len(full) + shown_as_lines + _left_out(rest) == 20
    assert len(actions(message)) == 1  # the button still comes last


def _left_out(text: str) -> int:
    marker = "…and "
    if marker not in text:
        return 0
    return int(text[text.index(marker) + len(marker) :].split(" ")[0])


def test_signals_that_fit_get_a_section_each() -> None:
    signals = tuple(
        signal_report(replace(ERROR_RATIO, name=f"signal {n:02d}"), new=0.2) for n in range(10)
    )
    message = verdict_message(status(Phase.WOULD_ROLL_BACK), report(*signals), offer=offer())
    assert_valid(message)
    assert sum("```" in s for s in sections(message)) == 10
    assert "rollback-bot analyze" not in texts(message)


def test_the_signals_that_passed_too_are_shown() -> None:
    message = verdict_message(status(Phase.ROLLED_BACK), report(), offer=None)
    outcomes = [s.split("\n")[0].split(" · ")[1] for s in sections(message)[1:]]
    assert outcomes == [":red_circle: breach", ":large_green_circle: pass"]


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_has_its_words(outcome: Outcome) -> None:
    item = signal_report()
    shown = replace(item, evidence=replace(item.evidence, outcome=outcome))
    message = verdict_message(status(Phase.WOULD_ROLL_BACK), report(shown), offer=None)
    assert_valid(message)
