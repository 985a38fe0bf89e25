"""The README's links lead somewhere: a file of this repository, a heading of its own, or a public
https address (never a path on someone's machine or another checkout)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from tests.paths import REPO

README = REPO / "README.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_of_the_readme_is_in_the_repository_or_public() -> None:
    text = README.read_text(encoding="utf-8")
    anchors = {anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}
    links = LINK.findall(text)
    assert links, "no links found: the pattern is wrong"
    for target in links:
        if target.startswith("#"):
            assert target[1:] in anchors, f"{target}: no such heading"
            continue
        url = urlparse(target)
        if url.scheme:
            assert url.scheme == "https", f"{target}: not a public https address"
            assert url.hostname and "." in url.hostname, f"{target}: not a public host"
            assert url.hostname not in ("localhost", "127.0.0.1"), target
            continue
        path = (REPO / url.path).resolve()
        assert path.is_relative_to(REPO.resolve()), f"{target}: outside the repository"
        assert path.exists(), f"{target}: no such file in the repository"
        if url.fragment and path.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
            assert url.fragment in {anchor(h) for h in headings}, f"{target}: no such heading"
