"""`rollback-bot serve` as an operator meets it: refusals that list what is wrong, readiness
that tells which dependency is down, JSON log lines."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from bot.config.catalog import Catalog
from bot.config.settings import Settings
from bot.entry.serve.wiring import build_bot
from rollback_sandbox.cluster.kubeconfig import write_kubeconfig
from rollback_sandbox.slack.web_api import FakeSlackWebApi


def serve(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KUBECONFIG": str(kubeconfig),
        "ROLLBACK_BOT_SECRETS_DIR": str(tmp_path / "no-secrets"),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_slack_settings_are_listed_at_once(tmp_path: Path) -> None:
    result = serve({"SLACK_SIGNING_SECRET": "s3cr3t-value"}, tmp_path)
    assert result.returncode == 1
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["level"] == "error"
    assert "SLACK_BOT_TOKEN is not set" in line["message"]
    assert "s3cr3t-value" not in result.stderr


def test_several_problems_in_one_refusal(tmp_path: Path) -> None:
    result = serve(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_APP_TOKEN": "xoxb-not-an-app-token",
            "ROLLBACK_BOT_ALERT_PATTERNS": '["(unclosed"]',
        },
        tmp_path,
    )
    assert result.returncode == 1
    message = json.loads(result.stderr.strip().splitlines()[-1])["message"]
    assert "SLACK_APP_TOKEN must be an app-level token" in message
    assert "ROLLBACK_BOT_ALERT_PATTERNS" in message


def test_a_bad_catalog_is_refused_naming_file_and_key(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("services:\n  checkout: {namespace: shop}\n")
    result = serve(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "x",
            "ROLLBACK_BOT_CONFIG": str(catalog),
        },
        tmp_path,
    )
    assert result.returncode == 1
    assert str(catalog) in result.stderr
    assert "services.checkout': key 'name' is missing" in result.stderr


async def test_readiness_names_the_unreachable_cluster_and_liveness_stays_up(
    slack_api: FakeSlackWebApi, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{closed}")
    settings = Settings(
        kubeconfig=str(kubeconfig),
        slack_bot_token=SecretStr(slack_api.bot_token),
        slack_signing_secret=SecretStr("x"),
        slack_api_url=slack_api.api_url,
        host="127.0.0.1",
        port=0,
        kube_request_timeout=1,
    )
    bot = build_bot(settings, Catalog.empty())
    await bot.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{bot.port}/healthz") as response:
                assert response.status == 200
            async with http.get(f"http://127.0.0.1:{bot.port}/readyz") as response:
                assert response.status == 503
                report = await response.json()
        assert report["checks"]["slack"] == "ok"
        assert "cannot reach the Kubernetes API" in report["checks"]["cluster:default"]
    finally:
        await bot.stop(grace=1)


def test_in_a_pod_missing_slack_settings_are_refused_not_replaced_by_the_demo(
    tmp_path: Path,
) -> None:
    result = serve({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, tmp_path)
    assert result.returncode == 1
    assert "SLACK_BOT_TOKEN is not set" in result.stderr
    assert "local Slack workspace" not in result.stderr


def test_without_the_simulated_world_installed_serve_says_what_to_do(tmp_path: Path) -> None:
    """The product's wheel does not hold the stand-ins: with nothing configured and no sandbox
    distribution (its path taken off sys.path, as in the image), serve refuses in one sentence."""
    without_sandbox = (
        "import sys; "
        "sys.path[:] = [p for p in sys.path if not p.rstrip('/').endswith('/sandbox')]; "
        "from bot.__main__ import main; sys.exit(main(['serve']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", without_sandbox],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),  # no ~/.kube/config
            "ROLLBACK_BOT_SECRETS_DIR": str(tmp_path / "no-secrets"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    message = json.loads(result.stderr.strip().splitlines()[-1])["message"]
    assert "rollback-bot-sandbox distribution, which is not installed" in message
    assert "KUBECONFIG" in message
    assert "Traceback" not in result.stderr


def test_an_empty_signing_secret_or_token_is_refused_at_start(tmp_path: Path) -> None:
    result = serve({"SLACK_BOT_TOKEN": " ", "SLACK_SIGNING_SECRET": ""}, tmp_path)
    assert result.returncode == 1
    message = json.loads(result.stderr.strip().splitlines()[-1])["message"]
    assert "SLACK_SIGNING_SECRET is empty" in message
    assert "SLACK_BOT_TOKEN is empty" in message


# -- `make run`: the banner says how to point the CLI at its simulated cluster ----------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class Served:
    """`rollback-bot serve` with nothing configured, as `make run` starts it (in `cwd`)."""

    stopped = False

    def __init__(self, cwd: Path, home: Path) -> None:
        self.port = _free_port()
        self.stdout: queue.Queue[str] = queue.Queue()
        with (home / f"serve-{self.port}.log").open("w") as log:  # its JSON log lines
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=cwd,
                env={
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "HOME": str(home),  # no ~/.kube/config
                    "ROLLBACK_BOT_SECRETS_DIR": str(home / "no-secrets"),
                    "ROLLBACK_BOT_PORT": str(self.port),
                    "ROLLBACK_BOT_LOCAL_SLACK_PORT": str(_free_port()),
                },
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,  # its simulated world in its process group, ended with it
            )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout.put(line.rstrip("\n"))

    def banner_exports(self, timeout: float = 60.0) -> dict[str, str]:
        """The `export NAME=VALUE` lines of the banner, read as a shell reads them."""
        exports: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while "ROLLBACK_BOT_CONFIG" not in exports:
            line = self.stdout.get(timeout=max(0.1, deadline - time.monotonic()))
            words = shlex.split(line)
            if words[:1] == ["export"]:
                name, _, value = words[1].partition("=")
                exports[name] = value
        return exports

    def banner_command(self) -> list[str]:
        """The line after the exports: the CLI, where it lives, with a command to try."""
        return shlex.split(self.stdout.get(timeout=10))

    def wait_serving(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                url = f"http://127.0.0.1:{self.port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.process.terminate()  # serve stops its simulated world on SIGTERM
        try:
            self.process.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):  # anything of its group left over
                os.killpg(self.process.pid, signal.SIGKILL)
            self.reader.join(timeout=10)
            assert self.process.stdout is not None
            self.process.stdout.close()


def run_pasted(exports: dict[str, str], home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """A command in a fresh shell where the banner's two lines were pasted."""
    return subprocess.run(
        list(argv),
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "COLUMNS": "200", **exports},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_banner_gives_the_two_lines_that_point_the_cli_at_the_simulated_cluster(
    tmp_path: Path,
) -> None:
    """Two at once in one checkout (started together, to wait once): the first to start takes
    the fixed path, the other a path of its own; neither breaks the other."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    run = checkout / ".run"
    both = [Served(checkout, tmp_path), Served(checkout, tmp_path)]
    try:
        banners = {served: (served.banner_exports(), served.banner_command()) for served in both}
        (first,) = [
            s for s, (e, _) in banners.items() if e["KUBECONFIG"] == str(run / "kubeconfig")
        ]
        (other,) = [s for s in both if s is not first]
        exports, command = banners[first]
        assert exports == {
            "KUBECONFIG": str(run / "kubeconfig"),  # fixed: `.run/` where `make run` runs
            "ROLLBACK_BOT_CONFIG": str(run / "catalog.yaml"),
        }
        assert command == [
            str(Path(sys.executable).with_name("rollback-bot")),
            "history",
            "checkout",
        ]
        assert banners[other][0] == {
            "KUBECONFIG": str(run / f"kubeconfig-{other.process.pid}"),
            "ROLLBACK_BOT_CONFIG": str(run / "catalog.yaml"),
        }
        assert banners[other][1] == command
        for served in both:
            served.wait_serving()
        tried = run_pasted(exports, tmp_path, *command)
        assert tried.returncode == 0, tried.stderr
        assert "2.14.0" in tried.stdout and "2.13.0" in tried.stdout
        also = run_pasted(banners[other][0], tmp_path, *command)
        assert also.returncode == 0, also.stderr

        other.stop()  # removes its own kubeconfig, not the first's
        assert not Path(banners[other][0]["KUBECONFIG"]).exists()
        status = run_pasted(exports, tmp_path, command[0], "status", "checkout", "-o", "json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["version"] == "2.14.0"
    finally:
        for served in both:
            served.stop()
    assert not (run / "kubeconfig").exists()  # its cluster is gone: so is its kubeconfig
