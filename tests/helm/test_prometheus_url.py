"""Automatic rollback's default Prometheus: a value of the chart, the bot's setting in its pod."""

from __future__ import annotations

import pytest

from bot.config.settings import Settings
from tests.helm.chart import MINIMAL, container, env_of, refusal, render

URL = "ROLLBACK_BOT_PROMETHEUS_URL"


def test_unset_by_default() -> None:
    assert URL not in env_of(container(render(MINIMAL)))


def test_a_url_given_reaches_the_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    given = "http://prometheus-operated.monitoring:9090"
    env = env_of(container(render(MINIMAL, sets=(f"settings.prometheusUrl={given}",))))
    monkeypatch.setenv(URL, env[URL]["value"])
    assert Settings().prometheus_url == given


@pytest.mark.parametrize(
    "value",
    ["prometheus:9090", "http://user:secret@prometheus:9090", "ftp://prometheus", "http://a b"],
)
def test_a_url_the_bot_would_refuse_is_refused_at_install(value: str) -> None:
    assert "prometheusUrl" in refusal(MINIMAL, sets=(f"settings.prometheusUrl={value}",))
