"""Text from outside (the cluster's objects, the catalog, the kubeconfig, errors carrying them) as
the terminal may show it: plain, never markup or terminal controls.

Anyone who can deploy sets a change-cause; an image, a condition message, a Lease holder come
from the cluster too. `plain` makes such a value one line of visible characters: each control
character (C0, DEL, C1, and the Unicode line separators and bidirectional overrides) becomes a
visible form (`^[` for ESC, `^M` for a carriage return, U+FFFD for the rest), and a long value
is cut (with "…"). The CLI prints it as Rich `Text` or with `markup=False`, never inside
markup, so `[/bold]` or `[link=…]` stay literal. `-o json` never uses it: JSON escapes the
controls itself and scripts get the values exactly.
"""

from __future__ import annotations

from typing import Final

LIMIT: Final = 300
"""The most characters of one outside value a person is shown (the JSON output has them all)."""

REPLACEMENT: Final = "\ufffd"

_OTHER_CONTROLS: Final = frozenset(
    [
        *range(0x80, 0xA0),  # C1, CSI (0x9b) and OSC (0x9d) among them
        0x2028,  # line separator
        0x2029,  # paragraph separator
        *range(0x202A, 0x202F),  # bidirectional embeddings and overrides
        *range(0x2066, 0x206A),  # bidirectional isolates
    ]
)

_VISIBLE: Final[dict[int, str]] = {
    **{code: f"^{chr(code + 0x40)}" for code in range(0x20)},  # ESC → ^[, CR → ^M, LF → ^J
    0x7F: "^?",
    **dict.fromkeys(_OTHER_CONTROLS, REPLACEMENT),
}


def plain(value: object, limit: int | None = LIMIT) -> str:
    """`value` as one line of visible characters, at most `limit` long (None: whole). Pure."""
    text = str(value).translate(_VISIBLE)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text
