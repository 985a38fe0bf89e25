"""Embedded defaults for `rollback-bot serve` on a machine with nothing configured: the simulated
cluster (demo data) and a local Slack workspace, each a separate process the bot only speaks
HTTP to, exactly as it would to a real cluster and to Slack.

They come from the `rollback-bot-sandbox` distribution (`sandbox/` in the repository), which
`make run` installs beside the product and the product's wheel and image never contain: it is
started by module name, never imported.

Where Prometheus is installed (Debian's `/usr/bin/prometheus`, `make tools`; or the binary
`ROLLBACK_BOT_DEMO_PROMETHEUS` names), the simulated cluster also gets metrics: the sandbox's
metrics source (`rollback_sandbox.metrics`, what each pod serves as its template's annotations
say) and a Prometheus of its own scraping it (its configuration and TSDB in a temporary
directory, a free loopback port), so the demo can show the automatic rollback
(`embedded_metrics`, `demo_catalog(auto_rollback=True)`)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml

from bot.config.catalog import Catalog, ServiceEntry
from bot.domain.analysis.config import AutoRollbackConfig

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


#: The local Slack's #incidents (`rollback_sandbox.slack.requests.DEFAULT_CHANNEL_ID`, written
#: out here: the product never imports the sandbox), where the demo's commands are typed.
DEMO_CHANNEL_ID = "C0INCIDENT"
#: The demo service whose new rollouts are watched and rolled back when they breach.
AUTO_ROLLBACK_SERVICE = "search"
#: The pod template annotation the sandbox's metrics source reads a pod's share of 500s from
#: (`rollback_sandbox.metrics`): a bad version is one `kubectl patch` away.
DEMO_ERROR_ANNOTATION = "sandbox.rollback-bot.io/error-ratio"
#: A short analysis, fit for a demo: a breach is confirmed about 30 s after the deploy.
DEMO_AUTO_ROLLBACK = AutoRollbackConfig(
    mode="act", window=120, interval=10, query_window=30, consecutive=3
)


def demo_catalog(*, auto_rollback: bool = False) -> Catalog:
    """The demo's services; with `auto_rollback`, `search`'s new rollouts are watched against
    the embedded Prometheus (told in the local Slack's #incidents) and rolled back."""
    search = ServiceEntry(namespace="shop", deployment=AUTO_ROLLBACK_SERVICE)
    if auto_rollback:
        search = ServiceEntry(
            namespace="shop",
            deployment=AUTO_ROLLBACK_SERVICE,
            channel=DEMO_CHANNEL_ID,
            auto_rollback=DEMO_AUTO_ROLLBACK,
        )
    return Catalog(
        services={
            "checkout": ServiceEntry(namespace="shop", deployment="checkout"),
            "cart": ServiceEntry(namespace="shop", deployment="cart"),
            # GitOps-managed in the simulated cluster: Argo CD (self-heal) and Flux.
            "payments": ServiceEntry(namespace="shop", deployment="payments", gitops="suspend"),
            AUTO_ROLLBACK_SERVICE: search,
            # The other kinds the bot rolls back, as the simulated cluster's seed has them.
            "orders-db": ServiceEntry.model_validate(
                {"namespace": "shop", "kind": "StatefulSet", "name": "orders-db"}
            ),
            "log-agent": ServiceEntry.model_validate(
                {"namespace": "shop", "kind": "DaemonSet", "name": "log-agent"}
            ),
            "payments-canary": ServiceEntry.model_validate(
                {"namespace": "shop", "kind": "Rollout", "name": "payments-canary"}
            ),
            "web": ServiceEntry.model_validate(
                {
                    "namespace": "shop",
                    "kind": "BlueGreen",
                    "service": "web",
                    "selector_key": "color",
                    "blue": "web-blue",
                    "green": "web-green",
                }
            ),
        },
        source="embedded demo",
    )


@contextlib.contextmanager
def _process(
    argv: list[str],
    ready: Callable[[], bool],
    what: str,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[None]:
    """Run `argv` (with `env` added to this process's environment) until the block ends; wait
    (bounded) until `ready()` before entering it. `log`: where its output goes (its last lines
    quoted when it fails to start); else its stdout is dropped and its stderr is this one's."""
    if not sandbox_installed():
        raise SandboxMissing(
            f"{what} is part of the rollback-bot-sandbox distribution, which is not installed "
            "here: `pip install ./sandbox` from the repository (or `make run`), or configure a "
            "real cluster (KUBECONFIG) and Slack app (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET)"
        )
    environment = {**os.environ, **env} if env is not None else None
    with contextlib.ExitStack() as files:
        output = files.enter_context(log.open("ab")) if log is not None else None
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output or subprocess.DEVNULL,
            stderr=output,  # None: this process's
            env=environment,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited at start{_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start in time{_tail(log)}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()  # Prometheus, too, stops cleanly on SIGTERM
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _tail(log: Path | None, lines: int = 5) -> str:
    if log is None:
        return ""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    last = [line for line in text.splitlines() if line.strip()][-lines:]
    return (" (" + " | ".join(last)[-1000:] + ")") if last else ""


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


# -- metrics for the automatic rollback demo ---------------------------------------------------

#: The Prometheus binary of the demo, when not Debian's.
DEMO_PROMETHEUS_VARIABLE = "ROLLBACK_BOT_DEMO_PROMETHEUS"
DEFAULT_PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
PROMETHEUS_PORT = 9090  # the packaged service's port: never the demo's
SCRAPE_INTERVAL = "2s"
PROMETHEUS_ATTEMPTS = 3  # a free port taken by someone else between the pick and the start


def demo_prometheus_binary(environ: Mapping[str, str] | None = None) -> Path | None:
    """The Prometheus to run for the demo: the binary `ROLLBACK_BOT_DEMO_PROMETHEUS` names,
    else Debian's; None when it is not an executable file."""
    configured = (os.environ if environ is None else environ).get(DEMO_PROMETHEUS_VARIABLE)
    binary = Path(configured).expanduser() if configured else DEFAULT_PROMETHEUS_BINARY
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


@dataclass(frozen=True)
class DemoMetrics:
    """The embedded metrics: Prometheus' base URL, and what it scrapes."""

    prometheus_url: str
    metrics_url: str


def prometheus_config(target: str, scrape_interval: str = SCRAPE_INTERVAL) -> str:
    """A Prometheus configuration scraping the metrics source at `target` (`host:port`)."""
    config = {
        "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval},
        "scrape_configs": [
            {
                "job_name": "rollback-sandbox",
                # The source's namespace/pod/pod_template_hash labels stand for the pods' own,
                # as a Kubernetes service discovery would set them: kept as they are.
                "honor_labels": True,
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    return json.dumps(config, indent=2)  # JSON is YAML


@contextlib.contextmanager
def embedded_metrics(kubeconfig: Path, prometheus: Path) -> Iterator[DemoMetrics]:
    """Run the simulated cluster's metrics source and a Prometheus scraping it every 2 s (its
    configuration, TSDB and log in a temporary directory, a free port on 127.0.0.1); yield
    their URLs once both answer. RuntimeError when either does not start."""
    with (
        tempfile.TemporaryDirectory(prefix="rollback-bot-metrics-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        port_file = work / "metrics.port"
        argv = [
            sys.executable, "-m", "rollback_sandbox.metrics", "--kubeconfig", str(kubeconfig),
            "--port", "0", "--port-out", str(port_file),
        ]  # fmt: skip
        what = "the simulated cluster's metrics source"
        stack.enter_context(_process(argv, lambda: _source_ready(port_file), what))
        target = f"127.0.0.1:{_port(port_file)}"
        config = work / "prometheus.yml"
        config.write_text(prometheus_config(target), encoding="utf-8")
        storage = work / "tsdb"
        storage.mkdir()
        failure: RuntimeError | None = None
        for attempt in range(1, PROMETHEUS_ATTEMPTS + 1):
            port = _free_port(avoid=PROMETHEUS_PORT)
            url = f"http://127.0.0.1:{port}"
            argv = [
                str(prometheus), f"--config.file={config}", f"--storage.tsdb.path={storage}",
                "--storage.tsdb.retention.time=1d", f"--web.listen-address=127.0.0.1:{port}",
            ]  # fmt: skip
            log = work / f"prometheus-{attempt}.log"
            what = f"Prometheus ({prometheus})"
            try:
                stack.enter_context(_process(argv, partial(_ok, f"{url}/-/ready"), what, log=log))
            except RuntimeError as exc:
                failure = exc
                continue
            yield DemoMetrics(url, f"http://{target}/metrics")
            return
        assert failure is not None
        raise failure


def _free_port(avoid: int) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != avoid:
            return port


def _port(path: Path) -> int | None:
    try:
        port = int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return port if 0 < port < 65536 else None


def _source_ready(port_file: Path) -> bool:
    port = _port(port_file)
    return port is not None and _ok(f"http://127.0.0.1:{port}/-/ready")


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except OSError:
        return False
