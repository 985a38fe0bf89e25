"""Embedded defaults for `rollback-bot serve` on a machine with nothing configured: the simulated
cluster (demo data) and a local Slack workspace, each a separate process the bot only speaks
HTTP to, exactly as it would to a real cluster and to Slack.

They come from the `rollback-bot-sandbox` distribution (`sandbox/` in the repository), which
`make run` installs beside the product and the product's wheel and image never contain: it is
started by module name, never imported."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.config.catalog import Catalog, ServiceEntry

START_TIMEOUT = 30.0
LOCAL_SLACK_PORT = int(os.environ.get("ROLLBACK_BOT_LOCAL_SLACK_PORT", "3100"))


SANDBOX_PACKAGE = "rollback_sandbox"


class SandboxMissing(RuntimeError):
    """The simulated world is not installed, so there is nothing to fall back on."""


def sandbox_installed() -> bool:
    return importlib.util.find_spec(SANDBOX_PACKAGE) is not None


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def cluster_configured(kubeconfig: str | None) -> bool:
    """A kubeconfig given or at its default place, or running inside a cluster."""
    return bool(
        kubeconfig
        or os.environ.get("KUBECONFIG")
        or Path("~/.kube/config").expanduser().exists()
        or in_cluster()
    )


def demo_catalog() -> Catalog:
    return Catalog(
        services={
            "checkout": ServiceEntry(namespace="shop", deployment="checkout"),
            "cart": ServiceEntry(namespace="shop", deployment="cart"),
            # GitOps-managed in the simulated cluster: Argo CD (self-heal) and Flux.
            "payments": ServiceEntry(namespace="shop", deployment="payments", gitops="suspend"),
            "search": ServiceEntry(namespace="shop", deployment="search"),
        },
        source="embedded demo",
    )


@contextlib.contextmanager
def _process(
    argv: list[str],
    ready: Callable[[], bool],
    what: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Run `argv` (with `env` added to this process's environment) until the block ends; wait
    (bounded) until `ready()` before entering it."""
    if not sandbox_installed():
        raise SandboxMissing(
            f"{what} is part of the rollback-bot-sandbox distribution, which is not installed "
            "here: `pip install ./sandbox` from the repository (or `make run`), or configure a "
            "real cluster (KUBECONFIG) and Slack app (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET)"
        )
    environment = {**os.environ, **env} if env is not None else None
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=environment)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited at start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start in time")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def embedded_cluster(speed: float = 2.0, kubeconfig_out: Path | None = None) -> Iterator[Path]:
    """Run the simulated cluster (demo seed, a free port) and yield its kubeconfig path:
    `kubeconfig_out` when given (a file left there by an earlier run is removed first, so the
    cluster counts as started only once its own is written; and removed when the cluster stops,
    as it names a port nothing answers on any more), else one in a temporary directory.
    """
    with tempfile.TemporaryDirectory(prefix="rollback-bot-") as tmp:
        kubeconfig = kubeconfig_out or Path(tmp) / "sandbox.kubeconfig"
        kubeconfig.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "rollback_sandbox.cluster", "--port", "0", "--seed", "demo",
            "--speed", str(speed), "--kubeconfig-out", str(kubeconfig),
        ]  # fmt: skip
        try:
            with _process(argv, lambda: _readable(kubeconfig), "the embedded simulated cluster"):
                yield kubeconfig
        finally:
            kubeconfig.unlink(missing_ok=True)


@dataclass(frozen=True)
class LocalSlack:
    url: str
    api_url: str
    bot_token: str
    signing_secret: str


def slack_configured(bot_token: object, app_token: object, signing_secret: object) -> bool:
    return any(v is not None for v in (bot_token, app_token, signing_secret))


#: Where the local Slack workspace takes its credentials from (rollback_sandbox.slack.main): the
#: environment, which only this user can read, never the command line, which `ps` shows anyone.
LOCAL_SLACK_BOT_TOKEN_VARIABLE = "ROLLBACK_SANDBOX_SLACK_BOT_TOKEN"  # noqa: S105 - a name
LOCAL_SLACK_SIGNING_SECRET_VARIABLE = "ROLLBACK_SANDBOX_SLACK_SIGNING_SECRET"  # noqa: S105 - a name


@contextlib.contextmanager
def embedded_slack(bot_events_url: str, port: int = LOCAL_SLACK_PORT) -> Iterator[LocalSlack]:
    """Run the local Slack workspace (a browser UI speaking Slack's protocols to the bot), with
    a bot token and signing secret made for this run and passed in its environment."""
    token = f"xoxb-local-{secrets.token_hex(8)}"
    secret = secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable, "-m", "rollback_sandbox.slack", "--port", str(port),
        "--bot-events-url", bot_events_url,
    ]  # fmt: skip
    env = {LOCAL_SLACK_BOT_TOKEN_VARIABLE: token, LOCAL_SLACK_SIGNING_SECRET_VARIABLE: secret}
    what = f"the local Slack workspace (port {port} busy?)"
    with _process(argv, lambda: _answers(f"{url}/api/auth.test", token), what, env):
        yield LocalSlack(url, f"{url}/api/", token, secret)


def _answers(url: str, token: str) -> bool:
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL we built
        url, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310 - loopback only
            return bool(json.loads(response.read()).get("ok"))
    except (OSError, ValueError):
        return False


def _readable(path: Path) -> bool:
    try:
        return bool(yaml.safe_load(path.read_text()).get("clusters"))
    except (OSError, AttributeError, yaml.YAMLError):
        return False
