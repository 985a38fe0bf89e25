"""Prometheus' query answers (`data` of `/api/v1/query` and `/api/v1/query_range`) as plain values.

Everything here came from outside: shapes are checked, not assumed; label names and values are
kept as data (never interpreted), clipped, and made encodable; the numbers of series and points
are bounded before anything is built. Values are Prometheus' strings parsed to floats, "NaN",
"+Inf" and "-Inf" included: the domain (`bot.domain.analysis.checks.usable`) treats those as no
data, so they are kept rather than dropped here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from bot.domain.analysis.series import InstantSample, Point, Series

MAX_SERIES = 5_000
# Prometheus itself refuses a range query of more than 11,000 points per series; this bounds the
# sum over all series, which the body's size limit bounds only loosely (~10 bytes a point). A
# 10-minute window every second over 150 series fits; building each point costs microseconds.
MAX_POINTS = 100_000
MAX_LABELS = 128  # per series; Kubernetes pods carry a few dozen at most
MAX_LABEL_CHARS = 1_024
# Go's shortest float formatting of the largest float64 is 309 digits; more is not a number.
_MAX_VALUE_CHARS = 400
_NUMBER = re.compile(r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|Inf|NaN)")


class ResultError(ValueError):
    """The answer is not what Prometheus sends for a query; `too_large` when it is only too big."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


# The answers are the domain's values (`bot.domain.analysis.series`): what the analysis' port
# promises. `Sample` is this client's name for an instant query's element.
Sample = InstantSample


def parse_value(raw: Any) -> float:
    """A sample's value: Prometheus sends a string ("0.25", "NaN", "+Inf", "-Inf"). Python's
    float() alone would also take "1_000", " 7 " or "infinity": the pattern keeps it to numbers."""
    if not isinstance(raw, str) or len(raw) > _MAX_VALUE_CHARS or not _NUMBER.fullmatch(raw):
        raise ResultError("a sample's value is not a number")
    return float(raw)


def parse_time(raw: Any) -> datetime:
    """A sample's timestamp: Unix seconds as a JSON number."""
    # bool is an int in Python; JSON true is no timestamp.
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ResultError("a sample's timestamp is not a number")
    try:
        return datetime.fromtimestamp(raw, UTC)
    except (OverflowError, OSError, ValueError):
        raise ResultError("a sample's timestamp is out of range") from None


def _text(raw: Any, what: str) -> str:
    if not isinstance(raw, str):
        raise ResultError(f"a {what} is not text")
    clipped = raw[:MAX_LABEL_CHARS]
    try:
        clipped.encode("utf-8")
    except UnicodeEncodeError:
        # JSON may carry lone surrogates ("\ud800"); they would fail later, in a log line or a
        # Slack message, far from here.
        clipped = clipped.encode("utf-8", "replace").decode("utf-8")
    return clipped


def parse_labels(raw: Any) -> Mapping[str, str]:
    if not isinstance(raw, dict):
        raise ResultError("a series' labels are not an object")
    if len(raw) > MAX_LABELS:
        raise ResultError(f"a series has more than {MAX_LABELS} labels", too_large=True)
    labels = {_text(name, "label name"): _text(value, "label value") for name, value in raw.items()}
    return MappingProxyType(labels)


def _pair(raw: Any) -> tuple[datetime, float]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise ResultError("a sample is not a [timestamp, value] pair")
    return parse_time(raw[0]), parse_value(raw[1])


def _no_histograms(item: dict[str, Any]) -> None:
    if "histogram" in item or "histograms" in item:
        raise ResultError(
            "the query gives native histograms, not numbers: "
            "take histogram_quantile() or histogram_count() of them"
        )


def _data(data: Any) -> tuple[str, Any]:
    if not isinstance(data, dict):
        raise ResultError("its data is not an object")
    kind, result = data.get("resultType"), data.get("result")
    if not isinstance(kind, str):
        raise ResultError("its data has no resultType")
    return kind, result


def _list(result: Any, max_series: int) -> list[Any]:
    if not isinstance(result, list):
        raise ResultError("its result is not a list")
    if len(result) > max_series:
        raise ResultError(
            f"the query gives more than {max_series} series: aggregate it (sum by …)",
            too_large=True,
        )
    return result


def parse_instant(data: Any, *, max_series: int = MAX_SERIES) -> list[Sample]:
    """An instant query's `data`: a vector's samples, or a scalar as one sample without labels.

    A range vector (`metric[5m]`) or a string is refused: neither is a value to compare."""
    kind, result = _data(data)
    if kind == "scalar":
        at, value = _pair(result)
        return [Sample(MappingProxyType({}), value, at)]
    if kind == "matrix":
        raise ResultError(
            "the query gives a range vector: an instant query needs an instant vector "
            "(rate(…[5m]), not …[5m])"
        )
    if kind == "string":
        raise ResultError("the query gives a string, not a number")
    if kind != "vector":
        raise ResultError("its resultType is none of Prometheus'")
    samples = []
    for item in _list(result, max_series):
        if not isinstance(item, dict):
            raise ResultError("a vector's element is not an object")
        _no_histograms(item)
        at, value = _pair(item.get("value"))
        samples.append(Sample(parse_labels(item.get("metric", {})), value, at))
    return samples


def parse_range(
    data: Any, *, max_series: int = MAX_SERIES, max_points: int = MAX_POINTS
) -> list[Series]:
    """A range query's `data`: a matrix (Prometheus gives one for any expression, scalars too)."""
    kind, result = _data(data)
    if kind != "matrix":
        raise ResultError("a range query's result is not a matrix")
    series = []
    points_left = max_points
    for item in _list(result, max_series):
        if not isinstance(item, dict):
            raise ResultError("a matrix's element is not an object")
        _no_histograms(item)
        values = item.get("values")
        if not isinstance(values, list):
            raise ResultError("a series has no values")
        points_left -= len(values)
        if points_left < 0:
            raise ResultError(
                f"the query gives more than {max_points} points: a longer step or fewer series",
                too_large=True,
            )
        points = tuple(Point(*_pair(value)) for value in values)
        series.append(Series(parse_labels(item.get("metric", {})), points))
    return series
