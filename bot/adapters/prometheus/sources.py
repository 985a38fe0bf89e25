"""The `MetricsSources` port: one client per Prometheus (and its token and TLS settings), made
when first asked and kept, all closed together."""

from __future__ import annotations

from bot.adapters.prometheus.client import PrometheusClient
from bot.domain.analysis.config import PrometheusConfig


class PrometheusClients:
    def __init__(self) -> None:
        self._clients: dict[tuple[str, PrometheusConfig], PrometheusClient] = {}

    def metrics(self, url: str, prometheus: PrometheusConfig) -> PrometheusClient:
        key = (url, prometheus)
        if key not in self._clients:
            self._clients[key] = PrometheusClient.from_config(prometheus, url)
        return self._clients[key]

    async def close(self, _grace: float = 0.0) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.close()
