"""`make run`'s automatic rollback demo: `rollback-bot serve` with nothing configured, where
Prometheus is installed, starts the simulated cluster's metrics source and a Prometheus of its
own scraping it, watches the demo's `search` against it, and its banner says how to deploy a bad
version; the banner's own command then makes the bot post "Watching search" in the local
Slack's #incidents. Without Prometheus, the demo runs as before and the banner says how to get
it. (The whole catch, breach to rollback, is `test_auto_rollback`'s.)"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.integration.prometheus import PROMETHEUS_BINARY, require_binary, requires_prometheus
from tests.integration.test_serve import Served, _free_port

T = TypeVar("T")
CHANNEL = "C0INCIDENT"  # the local Slack's #incidents


class Demo(Served):
    """`rollback-bot serve` as `make run` starts it, with `env` added to its environment."""

    def __init__(self, cwd: Path, home: Path, **env: str) -> None:
        self.port = _free_port()
        self.stdout: queue.Queue[str] = queue.Queue()
        with (home / f"serve-{self.port}.log").open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=cwd,
                env={
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "HOME": str(home),
                    "ROLLBACK_BOT_SECRETS_DIR": str(home / "no-secrets"),
                    "ROLLBACK_BOT_PORT": str(self.port),
                    "ROLLBACK_BOT_LOCAL_SLACK_PORT": str(_free_port()),
                    **env,
                },
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,  # its world in its process group, ended with it
            )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def banner_until(self, marker: str, timeout: float = 60.0) -> list[str]:
        """The banner's lines up to the one holding `marker`."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while not lines or marker not in lines[-1]:
            lines.append(self.stdout.get(timeout=max(0.1, deadline - time.monotonic())))
        return lines


def poll(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g}s"
        time.sleep(0.2)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except OSError:
        return False


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, f"{pattern!r} not in:\n{text}"
    return match.group(1)


@requires_prometheus
def test_make_run_watches_search_against_a_prometheus_of_its_own(tmp_path: Path) -> None:
    require_binary()
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    demo = Demo(checkout, tmp_path, ROLLBACK_BOT_DEMO_PROMETHEUS=str(PROMETHEUS_BINARY))
    try:
        lines = demo.banner_until("docs/demo-auto-rollback.md")
        banner = "\n".join(lines)
        slack = found(r"Open (http://127\.0\.0\.1:\d+) and type", banner)
        prometheus = found(r"watched against Prometheus \((http://127\.0\.0\.1:\d+)\)", banner)
        (patch,) = [shlex.split(line) for line in lines if "patch deployment search" in line]
        kubeconfig = checkout / ".run" / "kubeconfig"
        assert patch[1:7] == ["--kubeconfig", str(kubeconfig), "-n", "shop", "patch", "deployment"]
        catalog = yaml.safe_load((checkout / ".run" / "catalog.yaml").read_text())
        watched = catalog["services"]["search"]
        assert watched["channel"] == CHANNEL and watched["auto_rollback"]["mode"] == "act"
        demo.wait_serving()
        assert answers(f"{prometheus}/-/ready")

        # Prometheus scrapes the metrics source: search's pods, at the default 0.5 % errors.
        ratio = (
            'sum(rate(http_requests_total{namespace="shop",deployment="search",code="500"}[10s]))'
            ' / sum(rate(http_requests_total{namespace="shop",deployment="search"}[10s]))'
        )

        def baseline() -> float | None:
            query = urllib.parse.urlencode({"query": ratio})
            result = get_json(f"{prometheus}/api/v1/query?{query}")["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        assert abs(poll(baseline, "search's error ratio in Prometheus") - 0.005) < 1e-6

        # The banner's command deploys a bad version; the bot watches it in #incidents.
        deployed = subprocess.run(
            patch,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert deployed.returncode == 0, deployed.stderr

        def watching() -> dict[str, Any] | None:
            state = get_json(f"{slack}/ui/api/state?channel={CHANNEL}")["state"]
            return next(
                (m for m in state["messages"] if m["text"].startswith("Watching search")), None
            )

        message = poll(watching, '"Watching search" in #incidents')
        assert "for 2 minutes" in message["text"]
        assert "act: a confirmed breach rolls it back" in json.dumps(message["blocks"])

        demo.process.terminate()  # serve stops its world, Prometheus cleanly, before it exits
        demo.process.wait(timeout=30)
        assert not answers(f"{prometheus}/-/ready")
    finally:
        demo.stop()


def test_without_prometheus_the_demo_runs_as_before_and_says_how_to_get_it(
    tmp_path: Path,
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    demo = Demo(checkout, tmp_path, ROLLBACK_BOT_DEMO_PROMETHEUS=str(tmp_path / "no-prometheus"))
    try:
        lines = demo.banner_until("Automatic rollback")
        assert "make tools" in lines[-1] and "ROLLBACK_BOT_DEMO_PROMETHEUS" in lines[-1]
        assert not any("Prometheus (http" in line for line in lines)
        demo.wait_serving()
        catalog = yaml.safe_load((checkout / ".run" / "catalog.yaml").read_text())
        assert catalog["services"]["search"] == {"namespace": "shop", "deployment": "search"}
    finally:
        demo.stop()
