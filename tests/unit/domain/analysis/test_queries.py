"""Query templates: placeholders like str.format, PromQL's braces doubled, hostile values refused
or escaped, and the presets rendering to the PromQL Prometheus is meant to receive."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.analysis.presets import (
    ERROR_RATIO_QUERY,
    P99_LATENCY_QUERY,
    PRESETS,
    REQUEST_RATE,
)
from bot.domain.analysis.queries import (
    TemplateError,
    escape_label_value,
    promql_duration,
    render_query,
    template_placeholders,
)

VALUES = {"namespace": "shop", "deployment": "checkout", "pod_template_hash": "5d8f7c9b4"}


def render(template: str, window_seconds: float = 60, /, **values: str) -> str:
    return render_query(template, **{**VALUES, **values}, window_seconds=window_seconds)


def test_the_error_ratio_preset_renders_to_its_promql() -> None:
    pods = 'namespace="shop",pod_template_hash="5d8f7c9b4"'
    assert render(ERROR_RATIO_QUERY) == (
        f'sum(rate(http_requests_total{{{pods},code=~"5.."}}[1m]))'
        f" / sum(rate(http_requests_total{{{pods}}}[1m]))"
    )


def test_the_latency_preset_and_the_volume_render_to_their_promql() -> None:
    pods = 'namespace="shop",pod_template_hash="5d8f7c9b4"'
    assert render(P99_LATENCY_QUERY, 120) == (
        "histogram_quantile(0.99, sum by (le) "
        f"(rate(http_request_duration_seconds_bucket{{{pods}}}[2m])))"
    )
    assert render(REQUEST_RATE) == f"sum(rate(http_requests_total{{{pods}}}[1m]))"


def test_presets_select_the_version_by_its_hash_label() -> None:
    for signal in PRESETS.values():
        assert "pod_template_hash" in template_placeholders(signal.query_template)
        assert 'pod_template_hash="5d8f7c9b4"' in render(signal.query_template)


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ('up{{pod=~"{deployment}-.*"}}', 'up{pod=~"checkout-.*"}'),
        ("{{{namespace}}}", "{shop}"),
        ("x[{window}] offset {window}", "x[1m] offset 1m"),
        ("no placeholders at all", "no placeholders at all"),
    ],
)
def test_placeholders_are_filled_and_doubled_braces_are_braces(
    template: str, rendered: str
) -> None:
    assert render(template) == rendered


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "30s"), (60, "1m"), (90, "1m30s"), (600, "10m"), (3600, "1h")]
)
def test_the_window_is_written_as_promql_writes_a_range(seconds: float, text: str) -> None:
    assert promql_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, -60, 1.5, float("nan"), float("inf"), 8 * 86400])
def test_a_window_that_is_not_whole_seconds_in_range_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="query window"):
        render(REQUEST_RATE, seconds)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('rate(x{job="a"}[5m])', r"unknown placeholder \{job=\"a\"\} at character 7"),
        ("rate(x[{range}])", r"unknown placeholder \{range\}.*\{namespace\}, \{deployment\}"),
        ("{namespace.__class__}", r"unknown placeholder \{namespace.__class__\}"),
        ("{namespace!r}", "unknown placeholder"),
        ("{namespace:>20}", "unknown placeholder"),
        ("{}", r"unknown placeholder \{\}"),
        ("{0}", "unknown placeholder"),
        ("rate(x{{a}[5m])", "stray '}' at character 10"),
        ('x{{a="b"}', "stray '}' at character 9"),
        ("x}", "stray '}' at character 2"),
        ("rate(x{namespace", "'{' at character 7 that is never closed"),
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 4001, "over 4000"),
    ],
)
def test_a_bad_template_is_refused_saying_where(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        template_placeholders(template)
    with pytest.raises(TemplateError):
        render(template)


def test_refusals_say_how_to_write_promql_braces() -> None:
    with pytest.raises(TemplateError, match=r"doubled, \{\{ and \}\}"):
        template_placeholders('up{job="a"}')


def test_the_placeholders_used_are_listed() -> None:
    assert template_placeholders(ERROR_RATIO_QUERY) == {"namespace", "pod_template_hash", "window"}
    assert template_placeholders("up") == frozenset()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("namespace", 'shop"} or vector(1) or up{a="'),
        ("namespace", "shop\n"),
        ("namespace", "Shop"),
        ("namespace", ""),
        ("namespace", "a" * 64),
        ("namespace", "shop.eu"),  # a namespace is a DNS label: no dots
        ("deployment", 'checkout",pod=~".*'),
        ("deployment", "checkout\\"),
        ("deployment", "-checkout"),
        ("deployment", "a" * 254),
        ("pod_template_hash", '5d8f"}'),
        ("pod_template_hash", "5d8f-7c"),
        ("pod_template_hash", "5D8F"),
        ("pod_template_hash", ""),
    ],
)
def test_hostile_or_invalid_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} .* is not a"):
        render(ERROR_RATIO_QUERY, **{field: value})


def test_valid_names_are_accepted_at_their_longest() -> None:
    deployment = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters
    assert len(deployment) == 253
    rendered = render("{namespace}/{deployment}", namespace="n" * 63, deployment=deployment)
    assert rendered == "n" * 63 + "/" + deployment


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\rb"),
        ('\\"', '\\\\\\"'),
        ("plain-name.0", "plain-name.0"),
    ],
)
def test_values_are_escaped_for_a_promql_double_quoted_string(value: str, escaped: str) -> None:
    assert escape_label_value(value) == escaped


@given(st.text(max_size=80), st.text(max_size=80))
def test_no_value_ever_leaves_its_string(namespace: str, pod_template_hash: str) -> None:
    template = 'up{{namespace="{namespace}",pod_template_hash="{pod_template_hash}"}}'
    try:
        rendered = render(template, namespace=namespace, pod_template_hash=pod_template_hash)
    except ValueError:
        return
    assert rendered == f'up{{namespace="{namespace}",pod_template_hash="{pod_template_hash}"}}'
    assert rendered.count('"') == 4
