"""A catalog service's `auto_rollback:` block: its defaults, its bounds and its refusals."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain.analysis.config import AutoRollbackConfig, SignalConfig
from bot.domain.analysis.presets import ERROR_RATIO, P99_LATENCY, REQUEST_RATE
from bot.domain.analysis.signals import Rule, Signal

CUSTOM_QUERY = 'max(rate(job_seconds_sum{{pod_template_hash="{pod_template_hash}"}}[{window}]))'


def parse(**block: Any) -> AutoRollbackConfig:
    return AutoRollbackConfig.model_validate(block)


def refusal(**block: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        parse(**block)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    where = ".".join(str(part) for part in errors[0]["loc"])
    return f"{where}: {errors[0]['msg']}" if where else errors[0]["msg"]


def test_an_empty_block_has_the_issues_defaults() -> None:
    config = parse()
    assert config.mode == "dry-run" and not config.acts
    assert (config.window, config.interval, config.query_window) == (600, 30, 60)
    assert config.consecutive == 3
    assert config.signal_specs() == (ERROR_RATIO, P99_LATENCY)
    volume = config.volume_spec()
    assert (volume.query_template, volume.minimum_per_second) == (REQUEST_RATE, 1.0)
    assert config.on_call_group is None
    assert config.prometheus.url is None and not config.prometheus.insecure_skip_verify


def test_a_full_block() -> None:
    config = parse(
        mode="act",
        prometheus={
            "url": "https://prometheus.monitoring:9090/",
            "bearer_token_file": "/var/run/secrets/prometheus/token",
            "ca_file": "/var/run/secrets/prometheus/ca.crt",
        },
        window="15m",
        interval="20s",
        query_window="1m",
        consecutive=4,
        volume={"minimum_per_second": 0.5},
        signals=[
            {"preset": "error_ratio", "absolute": 0.02},
            {"preset": "p99_latency", "name": "slow requests", "ratio": 2},
            {
                "name": "job latency",
                "query": CUSTOM_QUERY,
                "unit": "seconds",
                "ratio": 2,
                "absolute": 5,
            },
        ],
        on_call_group="S0123ABCD",
    )
    assert config.acts
    assert (config.window, config.interval, config.consecutive) == (900, 20, 4)
    assert config.prometheus_url(None) == "https://prometheus.monitoring:9090"
    assert config.prometheus.bearer_token_file == "/var/run/secrets/prometheus/token"
    assert config.volume_spec().minimum_per_second == 0.5
    assert config.signal_specs() == (
        Signal("error ratio", ERROR_RATIO.query_template, Rule(3, 0.02), "ratio"),
        Signal("slow requests", P99_LATENCY.query_template, Rule(2, 0.3), "seconds"),
        Signal("job latency", CUSTOM_QUERY, Rule(2, 5), "seconds"),
    )
    assert config.on_call_group == "S0123ABCD"


def test_durations_are_typed_or_seconds() -> None:
    config = parse(window="1h30m", interval=45, query_window="90")
    assert (config.window, config.interval, config.query_window) == (5400, 45, 90)


def test_the_prometheus_url_falls_back_to_the_global_one() -> None:
    assert parse().prometheus_url("http://prometheus:9090/") == "http://prometheus:9090"
    assert parse(prometheus={"url": "http://own:9090"}).prometheus_url("http://g:1") == (
        "http://own:9090"
    )
    with pytest.raises(ValueError, match=r"give prometheus\.url .* or set ROLLBACK_BOT_PROMETHEUS"):
        parse().prometheus_url(None)
    with pytest.raises(ValueError, match="must be http:// or https://"):
        parse().prometheus_url("prometheus:9090")


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"interval": "0.5s"}, "interval is 0.5s: it must be at least 1s"),
        ({"interval": "0s"}, "interval: a duration must be above 0"),
        ({"window": "20s"}, "window (20s) must be at least the interval (30s)"),
        ({"window": "10 minutes"}, "window: '10 minutes' is not a duration (examples: 90s"),
        ({"window": True}, "window: a duration is text such as 90s"),
        ({"window": "10m0.5s"}, "window is 600.5s: it must be whole seconds"),
        ({"window": "8d"}, "window: '8d' is not a duration"),
        ({"window": "200h"}, "window is 720000s: it must be 7 days at most"),
        ({"query_window": "10s"}, "query_window (10s) must be from the interval (30s)"),
        ({"query_window": "20m"}, "query_window (1200s) must be from the interval"),
        ({"consecutive": 0}, "consecutive: Input should be greater than or equal to 1"),
        ({"mode": "yes"}, "mode: Input should be 'dry-run' or 'act'"),
        ({"on_call_group": "U0123ABCD"}, "on_call_group: String should match pattern"),
        ({"signals": []}, "signals: signals must list at least one"),
        ({"volume": {"minimum_per_second": -1}}, "greater than or equal to 0"),
        ({"autorollback": True}, "autorollback: Extra inputs are not permitted"),
    ],
)
def test_bounds_are_refused_with_what_is_wrong(block: dict[str, Any], message: str) -> None:
    assert message in refusal(**block)


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        ({"preset": "error_ratio", "ratio": 1}, "ratio: Input should be greater than 1"),
        ({"preset": "error_ratio", "ratio": 0.5}, "ratio: Input should be greater than 1"),
        ({"preset": "error_ratio", "absolute": -0.01}, "greater than or equal to 0"),
        ({"preset": "error_ratio", "ratio": "nan"}, "ratio: Input should be a finite number"),
        ({"preset": "apdex"}, "preset: Input should be 'error_ratio' or 'p99_latency'"),
        (
            {"preset": "error_ratio", "query": CUSTOM_QUERY},
            "preset error_ratio has its own query and unit",
        ),
        ({"name": "x", "unit": "ratio"}, "a signal is a preset (error_ratio or p99_latency)"),
        ({"query": CUSTOM_QUERY, "ratio": 2}, "needs name, unit, absolute too"),
        (
            {"name": "x", "query": 'up{job="a"}', "unit": "ratio", "ratio": 2, "absolute": 0},
            'the signal\'s query: the query has an unknown placeholder {job="a"}',
        ),
        (
            {"name": "x", "query": "up{{}}[{window}]", "unit": "ratio", "ratio": 2, "absolute": 0},
            "the signal's query must select a version by {pod_template_hash}",
        ),
        (
            {"name": "x", "query": CUSTOM_QUERY, "unit": "percent", "ratio": 2, "absolute": 0},
            "unit: Input should be 'ratio' or 'seconds'",
        ),
        (
            {"name": "x\ny", "query": CUSTOM_QUERY, "unit": "ratio", "ratio": 2, "absolute": 0},
            "name: String should match pattern",
        ),
    ],
)
def test_a_bad_signal_is_refused_with_what_is_wrong(signal: dict[str, Any], message: str) -> None:
    assert message in refusal(signals=[signal])


def test_two_signals_of_one_name_are_refused() -> None:
    message = refusal(signals=[{"preset": "error_ratio"}, {"preset": "error_ratio"}])
    assert message == "signal names must differ: error ratio appear twice"


def test_the_volume_query_must_select_a_version_too() -> None:
    message = refusal(volume={"query": "sum(rate(http_requests_total[{window}]))"})
    assert "the volume's query must select a version by {pod_template_hash}" in message


@pytest.mark.parametrize("key", ["bearer_token", "token", "password", "basic_auth"])
def test_a_secret_is_never_accepted_inline(key: str) -> None:
    message = refusal(prometheus={"url": "http://prom:9090", key: "s3cr3t"})
    assert message.startswith(f"prometheus: {key!r} is not accepted: a secret is never written")
    assert "give its file as bearer_token_file" in message
    assert "s3cr3t" not in message


@pytest.mark.parametrize(
    ("prometheus", "message"),
    [
        ({"url": "https://user:pw@prom:9090"}, "must not hold a user or password"),
        ({"url": "file:///etc/passwd"}, "must be http:// or https://"),
        ({"bearer_token_file": "token"}, "'token' is not an absolute path"),
        ({"ca_file": "../ca.crt"}, "is not an absolute path"),
        ({"ca_file": "/ca.crt", "insecure_skip_verify": True}, "contradict each other"),
        (
            {"insecure_skip_verify": "maybe"},
            "insecure_skip_verify: Input should be a valid boolean",
        ),
    ],
)
def test_prometheus_access_is_checked(prometheus: dict[str, Any], message: str) -> None:
    assert message in refusal(prometheus=prometheus)


def test_credentials_in_the_url_are_not_repeated_in_the_refusal() -> None:
    message = refusal(prometheus={"url": "https://admin:hunter2@prom:9090"})
    assert "hunter2" not in message


def test_a_signal_config_gives_the_preset_it_names() -> None:
    assert SignalConfig(preset="p99_latency").signal() == P99_LATENCY


def test_the_block_is_frozen() -> None:
    config = parse()
    with pytest.raises(ValidationError):
        config.mode = "act"
