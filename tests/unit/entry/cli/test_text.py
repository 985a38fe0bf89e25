"""Outside text as the CLI shows it: visible, one line, capped, and literal through Rich."""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.text import Text

from bot.entry.cli.text import LIMIT, plain


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("deploy 2.14.0", "deploy 2.14.0"),
        ("\x1b[2Jclear", "^[[2Jclear"),
        ("\x1b]8;;https://evil.example\x1b\\link", "^[]8;;https://evil.example^[\\link"),
        ("over\rwrite", "over^Mwrite"),
        ("two\nlines\ttab", "two^Jlines^Itab"),
        ("nul\x00 bell\x07 del\x7f", "nul^@ bell^G del^?"),
        ("c1 csi\x9b31m osc\x9d", "c1 csi\ufffd31m osc\ufffd"),
        ("bidi \u202egnp.exe line\u2028sep", "bidi \ufffdgnp.exe line\ufffdsep"),
        ("ünïcødé ✓ 🚀", "ünïcødé ✓ 🚀"),
    ],
)
def test_plain_makes_every_control_visible(raw: str, shown: str) -> None:
    assert plain(raw) == shown


def test_plain_caps_long_values_with_an_ellipsis() -> None:
    assert plain("x" * LIMIT) == "x" * LIMIT
    assert plain("x" * (LIMIT + 1)) == "x" * (LIMIT - 1) + "…"
    assert plain("abcdef", 4) == "abc…"
    assert plain("x" * 5000, None) == "x" * 5000


def _rendered(text: Text) -> str:
    console = Console(width=400, highlight=False, emoji=False, force_terminal=True)
    with console.capture() as captured:
        console.print(text)
    return captured.get().rstrip("\n")


@pytest.mark.parametrize(
    "raw",
    [
        "deploy [/bold]",
        "[link=https://evil.example]click[/link]",
        "[bold red]loud[/]",
        "trailing backslash \\",
        "escaped \\[bold] already",
        ":smiley: stays",
    ],
)
def test_plain_text_is_shown_literally_by_rich_even_on_a_terminal(raw: str) -> None:
    assert _rendered(Text(plain(raw))) == raw
    assert _rendered(Text.assemble(("name", "bold"), f" {plain(raw)}")) == (
        f"\x1b[1mname\x1b[0m {raw}"
    )
