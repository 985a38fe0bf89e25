"""The audit trail's retention: a value of the chart, the bot's setting in its pod."""

from __future__ import annotations

import pytest

from bot.config.settings import Settings
from tests.helm.chart import MINIMAL, container, env_of, refusal, render


def test_the_default_retention_is_the_bots() -> None:
    env = env_of(container(render(MINIMAL)))
    days = env["ROLLBACK_BOT_AUDIT_RETENTION_DAYS"]["value"]
    assert days == "90" == str(Settings().audit_retention_days)


def test_a_retention_given_reaches_the_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_of(container(render(MINIMAL, sets=("settings.auditRetentionDays=30",))))
    monkeypatch.setenv(
        "ROLLBACK_BOT_AUDIT_RETENTION_DAYS", env["ROLLBACK_BOT_AUDIT_RETENTION_DAYS"]["value"]
    )
    assert Settings().audit_retention_days == 30


@pytest.mark.parametrize("days", ["0", "3651", "1.5"])
def test_a_retention_the_bot_would_refuse_is_refused_at_install(days: str) -> None:
    assert "auditRetentionDays" in refusal(MINIMAL, sets=(f"settings.auditRetentionDays={days}",))
