"""Prometheus' HTTP API, as the automatic rollback's analysis asks it: instant and range queries
(`client`), their answers as the domain's values (`results` parses them into
`bot.domain.analysis.series`), and one error type (`errors`, a `MetricsUnavailable`)."""

from bot.adapters.prometheus.client import PrometheusClient
from bot.adapters.prometheus.errors import PrometheusError
from bot.adapters.prometheus.results import Sample
from bot.adapters.prometheus.sources import PrometheusClients
from bot.domain.analysis.series import Point, Series

__all__ = [
    "Point",
    "PrometheusClient",
    "PrometheusClients",
    "PrometheusError",
    "Sample",
    "Series",
]
