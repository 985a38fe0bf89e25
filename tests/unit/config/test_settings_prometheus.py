"""ROLLBACK_BOT_PROMETHEUS_URL: the Prometheus of services whose auto_rollback block names none.
A bad one is refused naming the variable, never echoing a value that may hold a password."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config.settings import describe_invalid, load_settings


def test_the_url_is_read_and_kept_without_its_trailing_slash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROLLBACK_BOT_PROMETHEUS_URL", "https://prometheus.monitoring:9090/")
    assert load_settings().prometheus_url == "https://prometheus.monitoring:9090"
    monkeypatch.setenv("ROLLBACK_BOT_PROMETHEUS_URL", " ")
    assert load_settings().prometheus_url is None


@pytest.mark.parametrize(
    "url", ["https://admin:hunter2@prom:9090", "https://admin:hunter2@prom /x", "admin:hunter2@p"]
)
def test_a_url_with_a_password_is_refused_without_repeating_it(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("ROLLBACK_BOT_PROMETHEUS_URL", url)
    with pytest.raises(ValidationError) as caught:
        load_settings()
    for text in (
        str(caught.value),
        describe_invalid(caught.value),
        repr(caught.value.errors(include_input=False)),
    ):
        assert "hunter2" not in text
    assert describe_invalid(caught.value) == (
        "ROLLBACK_BOT_PROMETHEUS_URL: the Prometheus URL must not hold a user or password: give "
        "the service's auto_rollback.prometheus.bearer_token_file"
    )


def test_a_url_that_is_not_one_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROLLBACK_BOT_PROMETHEUS_URL", "ftp://prom")
    with pytest.raises(ValidationError) as caught:
        load_settings()
    assert describe_invalid(caught.value).startswith("ROLLBACK_BOT_PROMETHEUS_URL: the Prometheus")
