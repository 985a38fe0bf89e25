"""Fixtures shared across the suite: the Slack stand-in and a running bot against the sandbox."""

from __future__ import annotations

pytest_plugins = ["tests.slack_fixtures", "tests.cluster_fixtures", "tests.bot_fixtures"]
