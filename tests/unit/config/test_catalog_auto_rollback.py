"""A catalog entry's `auto_rollback:` block: read into the domain's model, its mistakes named
with the file and the key like any other key's."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.catalog import Catalog
from bot.domain.errors import ConfigError

ENTRY = "services:\n  checkout:\n    namespace: shop\n    deployment: checkout\n"


def load(tmp_path: Path, block: str) -> Catalog:
    path = tmp_path / "catalog.yaml"
    path.write_text(ENTRY + block)
    return Catalog.load(path)


def test_an_entry_without_the_block_has_none(tmp_path: Path) -> None:
    assert load(tmp_path, "").services["checkout"].auto_rollback is None


def test_the_block_is_read_with_its_defaults(tmp_path: Path) -> None:
    catalog = load(
        tmp_path,
        "    auto_rollback:\n"
        "      prometheus: {url: 'http://prometheus:9090'}\n"
        "      window: 20s\n      interval: 2s\n      query_window: 5s\n      consecutive: 2\n",
    )
    block = catalog.resolve("checkout").entry
    assert block is not None and block.auto_rollback is not None
    config = block.auto_rollback
    assert (config.window, config.interval, config.query_window, config.consecutive) == (
        20,
        2,
        5,
        2,
    )
    assert config.mode == "dry-run"
    assert [s.name for s in config.signal_specs()] == ["error ratio", "p99 latency"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "{window: 1s, interval: 30s}",
            "key 'services.checkout.auto_rollback': window (1s) must be at least the interval",
        ),
        ("{mode: go}", "key 'services.checkout.auto_rollback.mode': Input should be"),
        (
            "{on_call_group: oncall}",
            "'oncall' is not a Slack user group id (S…)",
        ),
        (
            "{prometheus: {token: abc}}",
            "'token' is not accepted: a secret is never written in the catalog",
        ),
        ("{colour: red}", "key 'services.checkout.auto_rollback.colour' is not known"),
    ],
)
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, block: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"    auto_rollback: {block}\n")
    assert str(caught.value).startswith(f"service catalog {tmp_path / 'catalog.yaml'}: ")
    assert message in str(caught.value)


def test_a_token_given_inline_is_never_repeated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "    auto_rollback: {prometheus: {bearer_token: s3cr3t-prom}}\n")
    assert "s3cr3t-prom" not in str(caught.value)
