"""The Prometheus client's pure parts: answers parsed as data, outside text made one plain line,
and what the constructor and the queries refuse before anything is sent."""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.adapters.prometheus import PrometheusClient
from bot.adapters.prometheus.errors import plain, scrub
from bot.adapters.prometheus.results import (
    MAX_LABEL_CHARS,
    ResultError,
    parse_instant,
    parse_range,
    parse_value,
)

AT = 1_700_000_000.25


def vector(*items: Any) -> dict[str, Any]:
    return {"resultType": "vector", "result": list(items)}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.25", 0.25), ("-3", -3.0), ("1e+21", 1e21), (".5", 0.5), ("+Inf", math.inf)],
)
def test_values_are_prometheus_number_strings(raw: str, expected: float) -> None:
    assert parse_value(raw) == expected


def test_nan_and_negative_infinity_are_kept() -> None:
    assert math.isnan(parse_value("NaN"))
    assert parse_value("-Inf") == -math.inf


@pytest.mark.parametrize(
    "raw", ["1_000", " 7", "7 ", "infinity", "inf", "0x10", "", "1" * 401, 1.5, None, True]
)
def test_what_python_would_take_but_prometheus_never_sends_is_refused(raw: Any) -> None:
    with pytest.raises(ResultError, match="not a number"):
        parse_value(raw)


def test_a_vector_keeps_labels_as_data() -> None:
    hostile = "<!channel> *bold* \u202e\n" + "x" * (2 * MAX_LABEL_CHARS)
    (sample,) = parse_instant(
        vector({"metric": {"pod": "a", "note": hostile, "lone": "\ud800"}, "value": [AT, "2"]})
    )
    assert sample.labels["pod"] == "a"
    assert sample.labels["note"] == hostile[:MAX_LABEL_CHARS]  # kept as is, only clipped
    assert sample.labels["lone"] == "?"  # a lone surrogate would fail later, in a log or Slack
    assert sample.at == datetime.fromtimestamp(AT, UTC)
    assert sample.value == 2.0
    with pytest.raises(TypeError):
        sample.labels["pod"] = "b"  # type: ignore[index]


def test_a_scalar_is_one_sample_without_labels() -> None:
    (sample,) = parse_instant({"resultType": "scalar", "result": [AT, "NaN"]})
    assert dict(sample.labels) == {} and math.isnan(sample.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"resultType": "matrix", "result": []}, "range vector"),
        ({"resultType": "string", "result": [AT, "x"]}, "a string"),
        ({"resultType": "other", "result": []}, "none of Prometheus'"),
        ({"result": []}, "no resultType"),
        ([], "data is not an object"),
        (vector({"metric": {}, "value": [AT]}), "pair"),
        (vector({"metric": {}, "value": [True, "1"]}), "timestamp is not a number"),
        (vector({"metric": {}, "value": [1e300, "1"]}), "timestamp is out of range"),
        (vector({"metric": {"a": 1}, "value": [AT, "1"]}), "label value is not text"),
        (vector({"metric": [], "value": [AT, "1"]}), "labels are not an object"),
        (vector({"metric": {}, "histogram": [AT, {}]}), "native histograms"),
    ],
)
def test_instant_answers_that_are_not_values_are_refused(data: Any, reason: str) -> None:
    with pytest.raises(ResultError, match=reason):
        parse_instant(data)


def test_a_matrix_gives_series_with_their_points() -> None:
    data = {
        "resultType": "matrix",
        "result": [{"metric": {"a": "1"}, "values": [[AT, "1"], [AT + 15, "+Inf"]]}],
    }
    (series,) = parse_range(data)
    assert [p.value for p in series.points] == [1.0, math.inf]
    assert series.points[1].at - series.points[0].at == timedelta(seconds=15)


def test_sizes_are_bounded_before_anything_is_built() -> None:
    many = vector(*({"metric": {}, "value": [AT, "1"]} for _ in range(4)))
    with pytest.raises(ResultError, match="more than 3 series") as caught:
        parse_instant(many, max_series=3)
    assert caught.value.too_large
    matrix = {
        "resultType": "matrix",
        "result": [{"metric": {}, "values": [[AT, "1"]] * 6}, {"metric": {}, "values": []}],
    }
    with pytest.raises(ResultError, match="more than 5 points"):
        parse_range(matrix, max_points=5)
    with pytest.raises(ResultError, match="more than 128 labels"):
        parse_instant(vector({"metric": {str(i): "" for i in range(129)}, "value": [AT, "1"]}))


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["resultType", "result", "metric", "value", "values", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@given(
    st.fixed_dictionaries(
        {"resultType": st.sampled_from(["vector", "scalar", "matrix", "x"]), "result": json_values}
    )
    | json_values
)
def test_any_json_is_parsed_or_refused_as_a_result_error(data: Any) -> None:
    for parse in (parse_instant, parse_range):
        with contextlib.suppress(ResultError):
            parse(data)


def test_outside_text_becomes_one_clipped_line_without_the_secret() -> None:
    assert plain("a\nb\t\x1b[31mc\u202ed  e") == "a b [31mc d e"
    assert plain("x" * 500, 10) == "x" * 9 + "…"
    assert scrub("Bearer s3cret, again s3cret", "s3cret") == "Bearer [redacted], again [redacted]"
    assert scrub("nothing", None) == "nothing"


def test_the_constructor_refuses_what_the_catalog_refuses() -> None:
    with pytest.raises(ValueError, match="user or password"):
        PrometheusClient("https://user:pw@prometheus:9090")
    with pytest.raises(ValueError, match="not both"):
        PrometheusClient("https://prometheus:9090", ca_file="/ca.crt", insecure_skip_verify=True)
    with pytest.raises(ValueError, match="timeout"):
        PrometheusClient("https://prometheus:9090", timeout=0)
    assert PrometheusClient("http://prometheus:9090/prom/").url == "http://prometheus:9090/prom"


async def test_queries_refuse_naive_times_and_impossible_ranges() -> None:
    client = PrometheusClient("http://127.0.0.1:9")
    now = datetime.now(UTC)
    with pytest.raises(ValueError, match="aware"):
        await client.query("up", at=datetime(2026, 1, 1))  # naive: the point of the test
    with pytest.raises(ValueError, match="end is before its start"):
        await client.query_range("up", now, now - timedelta(seconds=1), 1)
    with pytest.raises(ValueError, match="step must be above 0"):
        await client.query_range("up", now, now, 0)
    with pytest.raises(ValueError, match="11000 points"):
        await client.query_range("up", now - timedelta(days=1), now, 1)
    await client.close()
