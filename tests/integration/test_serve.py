"""`rollback-bot serve` as an operator meets it: refusals that list what is wrong, readiness
that tells which dependency is down, JSON log lines."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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
    assert "services.checkout.deployment' is missing" in result.stderr


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
