"""Generated hostile inputs for every parser of outside data: each either parses or is refused
with the parser's own error (a clear sentence), never anything else."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.adapters.slack.payloads import BadPayload, ConfirmContext, RollbackButton
from bot.domain.alerts.mapping import BadPattern, compile_patterns
from bot.domain.alerts.webhook import BadWebhook, parse_webhook
from bot.domain.rollback.locks import lease_state
from bot.domain.times import parse_duration, parse_time, slack_ts_time

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)

# Webhook-shaped bodies: the known keys, each with any value, so the checks deep inside are hit.
WEBHOOK_KEYS = ["groupKey", "status", "truncatedAlerts", "commonLabels", "externalURL"]
ALERT_KEYS = ["status", "labels", "annotations", "startsAt", "endsAt", "fingerprint"]
alerts = st.lists(st.fixed_dictionaries({}, optional=dict.fromkeys(ALERT_KEYS, json_values)))
webhooks = st.fixed_dictionaries(
    {"version": st.sampled_from(["4", "3", 4, ""]), "alerts": alerts | json_values},
    optional=dict.fromkeys(WEBHOOK_KEYS, json_values),
)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | webhooks.map(lambda v: json.dumps(v).encode()))
def test_the_webhook_parser_parses_or_refuses(body: bytes) -> None:
    try:
        parse_webhook(body, max_bytes=4096)
    except BadWebhook as exc:
        assert exc.status in (400, 413) and exc.message


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_button_values_and_modal_metadata_parse_or_are_refused(raw: str) -> None:
    for decode in (RollbackButton.decode, ConfirmContext.decode):
        try:
            decode(raw)
        except BadPayload as exc:
            assert "rollback-bot" in str(exc)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_lease_text_written_by_anyone_is_read_without_an_exception(obj: Any) -> None:
    lease = {"metadata": {"annotations": obj}, "spec": obj} if isinstance(obj, dict) else obj
    lease_state(lease if isinstance(lease, dict) else {"spec": lease})


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_times_and_durations_from_outside_parse_or_say_no(text: str) -> None:
    parse_time(text)
    slack_ts_time(text)
    try:
        assert parse_duration(text) >= 0
    except ValueError as exc:
        assert "duration" in str(exc)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=3))
def test_alert_patterns_compile_or_are_refused_in_a_sentence(patterns: list[str]) -> None:
    try:
        compile_patterns(patterns)
    except BadPattern as exc:
        assert str(exc)
