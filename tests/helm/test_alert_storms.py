"""The alert storm threshold: values of the chart, the bot's settings in its pod."""

from __future__ import annotations

import pytest

from bot.config.settings import Settings
from tests.helm.chart import MINIMAL, container, env_of, refusal, render

MESSAGES, WINDOW = "ROLLBACK_BOT_ALERT_STORM_MESSAGES", "ROLLBACK_BOT_ALERT_STORM_WINDOW_SECONDS"


def test_the_defaults_are_the_bots() -> None:
    env = env_of(container(render(MINIMAL)))
    assert env[MESSAGES]["value"] == "5" == str(Settings().alert_storm_messages)
    assert float(env[WINDOW]["value"]) == Settings().alert_storm_window_seconds == 60


def test_values_given_reach_the_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    sets = ("settings.alertStormMessages=3", "settings.alertStormWindowSeconds=120")
    env = env_of(container(render(MINIMAL, sets=sets)))
    monkeypatch.setenv(MESSAGES, env[MESSAGES]["value"])
    monkeypatch.setenv(WINDOW, env[WINDOW]["value"])
    settings = Settings()
    assert (settings.alert_storm_messages, settings.alert_storm_window_seconds) == (3, 120)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("alertStormMessages=1", "alertStormMessages"),
        ("alertStormMessages=2.5", "alertStormMessages"),
        ("alertStormWindowSeconds=0", "alertStormWindowSeconds"),
        ("alertStormWindowSeconds=90000", "alertStormWindowSeconds"),
    ],
)
def test_a_value_the_bot_would_refuse_is_refused_at_install(value: str, name: str) -> None:
    assert name in refusal(MINIMAL, sets=(f"settings.{value}",))
