"""Links to Prometheus' graph page: the query URL-encoded, the window as its range, and only
http(s) Prometheus bases without credentials."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.domain.analysis.links import check_prometheus_url, graph_link

QUERY = 'sum(rate(http_requests_total{namespace="shop",code=~"5.."}[1m])) / 2 + 1 & #x'


def test_the_link_opens_the_graph_of_the_query_over_the_window() -> None:
    link = graph_link("http://prometheus.monitoring:9090", QUERY, 600)
    assert link.startswith("http://prometheus.monitoring:9090/graph?g0.expr=sum%28rate%28")
    parts = urlsplit(link)
    assert parse_qs(parts.query) == {
        "g0.expr": [QUERY],
        "g0.tab": ["0"],
        "g0.range_input": ["10m"],
    }
    assert parts.fragment == ""  # the "#" of the query is encoded, not a fragment
    for raw in ' "{}[]&#+':
        assert raw not in parts.query.split("=", 1)[1].split("&")[0]


def test_a_prometheus_under_a_path_keeps_it() -> None:
    link = graph_link("https://example.com/prometheus/", "up", 90)
    assert link == "https://example.com/prometheus/graph?g0.expr=up&g0.tab=0&g0.range_input=1m30s"


def test_the_end_is_written_in_utc() -> None:
    end = datetime(2026, 11, 27, 5, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    link = graph_link("http://prom:9090", "up", 600, end=end)
    assert parse_qs(urlsplit(link).query)["g0.end_input"] == ["2026-11-27 04:10:30"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("javascript:alert(1)", "must be http:// or https://"),
        ("file:///etc/passwd", "must be http:// or https://"),
        ("ftp://prom:21", "must be http:// or https://"),
        ("prometheus:9090", "must be http:// or https://"),
        ("http://", "must be http:// or https://"),
        ("", "spaces or control characters"),
        (" http://prom:9090", "spaces or control characters"),
        ("http://prom:9090/\nx", "spaces or control characters"),
        ("http://prom:port", "is not a URL"),
        ("https://admin:secret@prom:9090", "must not hold a user or password"),
        ("https://token@prom:9090", "must not hold a user or password"),
        ("http://prom:9090/?x=1", "must not have a query or fragment"),
        ("http://prom:9090/#graph", "must not have a query or fragment"),
    ],
)
def test_other_bases_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        graph_link(url, "up", 600)


def test_a_good_base_loses_its_trailing_slash() -> None:
    assert check_prometheus_url("https://prom.example/") == "https://prom.example"
    assert check_prometheus_url("http://10.0.0.1:9090") == "http://10.0.0.1:9090"


def test_a_refused_url_never_quotes_what_may_be_a_password() -> None:
    with pytest.raises(ValueError) as refused:
        check_prometheus_url("https://u:hunter2@h /x")
    assert "hunter2" not in str(refused.value)
