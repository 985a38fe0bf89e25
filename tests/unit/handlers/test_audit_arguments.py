"""`/rollback audit SERVICE [--since 7d]`: the words after `audit`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.commands import audit_arguments


@pytest.mark.parametrize(
    ("words", "service", "since"),
    [
        (["checkout"], "checkout", timedelta(days=7)),
        (["checkout", "--since", "36h"], "checkout", timedelta(hours=36)),
        (["--since=1d", "shop/checkout"], "shop/checkout", timedelta(days=1)),
    ],
)
def test_read(words: list[str], service: str, since: timedelta) -> None:
    assert audit_arguments(words) == (service, since)


@pytest.mark.parametrize(
    ("words", "error"),
    [
        ([], "which service"),
        (["--since", "7d"], "which service"),
        (["checkout", "cart"], "'cart' is not understood"),
        (["checkout", "--verbose"], "'--verbose' is not understood"),
        (["checkout", "--since"], "a few characters"),
        (["checkout", "--since", "forever"], "not a time back"),
    ],
)
def test_refused(words: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        audit_arguments(words)
