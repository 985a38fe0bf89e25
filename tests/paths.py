"""Where the suite's files are, from wherever a test module sits."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
ALERTMANAGER_FIXTURES = FIXTURES / "alertmanager"
