from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.settings import load_settings


def test_environment_names_of_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/a:/b")
    monkeypatch.setenv("ROLLBACK_BOT_CONFIG", "/etc/rollback-bot/catalog.yaml")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("ROLLBACK_BOT_PORT", "3001")
    settings = load_settings()
    assert settings.kubeconfig == "/a:/b"
    assert settings.config == Path("/etc/rollback-bot/catalog.yaml")
    assert settings.port == 3001
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-very-secret"


def test_secrets_never_show_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cr3t-signing")
    monkeypatch.setenv("ROLLBACK_BOT_ALERTMANAGER_TOKEN", "am-token-123")
    settings = load_settings()
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert "s3cr3t-signing" not in text
        assert "am-token-123" not in text


def test_cli_overrides_win_and_none_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/env")
    assert load_settings(kubeconfig="/flag").kubeconfig == "/flag"
    assert load_settings(kubeconfig=None).kubeconfig == "/env"


def test_secrets_dir_files_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    (tmp_path / "SLACK_BOT_TOKEN").write_text("xoxb-from-file")
    settings = load_settings(secrets_dir=tmp_path)
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-from-file"
