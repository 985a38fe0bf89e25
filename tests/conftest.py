"""Fixtures shared across the suite: the Slack stand-in and a running bot against the sandbox."""

from __future__ import annotations

import os

from hypothesis import settings

pytest_plugins = [
    "tests.slack_fixtures",
    "tests.cluster_fixtures",
    "tests.bot_fixtures",
    "tests.lease_fixtures",
    "tests.serve_fixtures",
]

# CI explores the same generated inputs on every run (a new finding belongs to a developer's run,
# not to a red main); developers' runs explore afresh.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
