"""`rollback-bot serve`: settings → catalog → the bot, with embedded defaults for a laptop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shlex
import shutil
import sys
from pathlib import Path

import yaml
from pydantic import SecretStr

from bot.config.catalog import Catalog, ServiceEntry
from bot.config.settings import Settings, load_settings
from bot.domain.errors import RollbackBotError
from bot.entry.serve.embedded import (
    AUTO_ROLLBACK_SERVICE,
    DEMO_ERROR_ANNOTATION,
    DEMO_PROMETHEUS_VARIABLE,
    DemoMetrics,
    cluster_configured,
    demo_catalog,
    demo_prometheus_binary,
    embedded_cluster,
    embedded_metrics,
    embedded_slack,
    in_cluster,
    sandbox_installed,
    slack_configured,
)
from bot.entry.serve.wiring import serve
from bot.observability.logs import configure_logging

log = logging.getLogger(__name__)

DEFAULT_SECRETS_DIR = Path("/var/run/secrets/rollback-bot")


def run_serve(args: argparse.Namespace) -> int:
    secrets_dir = Path(os.environ.get("ROLLBACK_BOT_SECRETS_DIR") or DEFAULT_SECRETS_DIR)
    try:
        settings = load_settings(
            secrets_dir,
            kubeconfig=args.kubeconfig,
            kube_context=args.context,
            config=args.config,
            kube_request_timeout=args.request_timeout,
        )
    except ValueError as exc:  # pydantic's ValidationError names each bad setting
        configure_logging("INFO")
        log.error("cannot start: invalid settings: %s", exc)
        return 1
    configure_logging(settings.log_level)
    try:
        catalog = Catalog.load(settings.config) if settings.config else None
    except RollbackBotError as exc:
        log.error("cannot start: %s", exc)
        return 1
    with contextlib.ExitStack() as stack:
        try:
            settings, catalog = _embedded_defaults(stack, settings, catalog)
        except RuntimeError as exc:  # the simulated world missing, or not starting
            log.error("cannot start: %s", exc)
            return 1
        if catalog is None:
            log.warning("no service catalog (ROLLBACK_BOT_CONFIG): only NAMESPACE/DEPLOYMENT works")
            catalog = Catalog.empty()
        try:
            return asyncio.run(serve(settings, catalog))
        except KeyboardInterrupt:
            return 130


def _embedded_defaults(
    stack: contextlib.ExitStack[bool | None], settings: Settings, catalog: Catalog | None
) -> tuple[Settings, Catalog | None]:
    """The simulated cluster and the local Slack workspace where nothing real is configured."""
    banner: list[str] = []
    own = not in_cluster() and _names_run_kubeconfig(settings.kubeconfig)
    if own or not cluster_configured(settings.kubeconfig):
        out = _run_kubeconfig(stack) if sandbox_installed() else None  # else: refused below
        kubeconfig = stack.enter_context(embedded_cluster(kubeconfig_out=out))
        log.warning(
            "%s: using the embedded simulated cluster with demo data (%s)",
            "KUBECONFIG names the embedded simulated cluster's own kubeconfig, from an earlier run"
            if own
            else "no Kubernetes cluster is configured (KUBECONFIG, --kubeconfig or in-cluster)",
            kubeconfig,
        )
        settings = settings.model_copy(update={"kubeconfig": str(kubeconfig)})
        metrics, off = _embedded_metrics(stack, kubeconfig)
        demo = catalog is None
        if catalog is None:
            catalog = demo_catalog(auto_rollback=metrics is not None)
            catalog_file = _write_catalog(catalog, kubeconfig.parent / "catalog.yaml")
        else:
            catalog_file = Path(catalog.source or "").absolute()
        if metrics is not None and (demo or settings.prometheus_url is None):
            # The demo's services are watched against the Prometheus that has their metrics.
            settings = settings.model_copy(update={"prometheus_url": metrics.prometheus_url})
        banner += _cli_banner(kubeconfig, catalog_file)
        banner += _auto_rollback_banner(metrics, off, kubeconfig, demo)
    # In a pod, missing Slack settings are a mistake to report, never a cue for the demo.
    if not in_cluster() and not slack_configured(
        settings.slack_bot_token, settings.slack_app_token, settings.slack_signing_secret
    ):
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
        local = stack.enter_context(embedded_slack(f"http://{host}:{settings.port}/slack/events"))
        settings = settings.model_copy(
            update={
                "slack_bot_token": SecretStr(local.bot_token),
                "slack_signing_secret": SecretStr(local.signing_secret),
                "slack_api_url": local.api_url,
            }
        )
        log.warning(
            "no Slack app is configured (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET): "
            "using the local Slack workspace — open %s and type /rollback checkout",
            local.url,
        )
        banner = [f"  Open {local.url} and type: /rollback checkout", "", *banner]
    if banner:
        print("", *banner, sep="\n", flush=True)
    return settings, catalog


def _embedded_metrics(
    stack: contextlib.ExitStack[bool | None], kubeconfig: Path
) -> tuple[DemoMetrics | None, str]:
    """The simulated cluster's metrics and a Prometheus scraping them, where Prometheus is
    installed; else None (the demo goes on without the automatic rollback) and why."""
    binary = demo_prometheus_binary()
    if binary is None:
        configured = os.environ.get(DEMO_PROMETHEUS_VARIABLE)
        if configured:
            log.warning("%s=%s is not an executable file", DEMO_PROMETHEUS_VARIABLE, configured)
        return None, (
            f"no Prometheus here (`make tools` installs it, or set {DEMO_PROMETHEUS_VARIABLE} "
            "to its binary)"
        )
    try:
        metrics = stack.enter_context(embedded_metrics(kubeconfig, binary))
    except RuntimeError as exc:
        log.warning("the automatic rollback demo is off: %s", exc)
        return None, "its Prometheus did not start (the log says why)"
    log.warning(
        "Prometheus for the embedded simulated cluster at %s (scraping %s)",
        metrics.prometheus_url,
        metrics.metrics_url,
    )
    return metrics, ""


def _auto_rollback_banner(
    metrics: DemoMetrics | None, off: str, kubeconfig: Path, demo: bool
) -> list[str]:
    """How to see the automatic rollback: the command that deploys a bad version of the watched
    demo service, and what to watch for; or one line saying why it is off."""
    if metrics is None:
        return [f"  Automatic rollback demo: off, {off}", ""]
    if not demo:
        return [f"  Prometheus of the simulated cluster: {metrics.prometheus_url}", ""]
    # A version of its own (label and image), serving 30 % errors in the simulated cluster.
    bad = "3.3.0"
    patch = {
        "spec": {
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/version": bad},
                    "annotations": {DEMO_ERROR_ANNOTATION: "0.3"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": AUTO_ROLLBACK_SERVICE,
                            "image": f"registry.example.com/shop/{AUTO_ROLLBACK_SERVICE}:{bad}",
                        }
                    ]
                },
            }
        }
    }
    kubectl = shutil.which("kubectl") or "kubectl"  # under `make run`: the pinned one
    command = [
        kubectl, "--kubeconfig", str(kubeconfig), "-n", "shop", "patch", "deployment",
        AUTO_ROLLBACK_SERVICE, "-p", json.dumps(patch, separators=(",", ":")),
    ]  # fmt: skip
    return [
        f"  Automatic rollback: new versions of {AUTO_ROLLBACK_SERVICE} are watched against "
        f"Prometheus ({metrics.prometheus_url}).",
        "  Give it 15 s to learn the current version, then deploy a bad one (30 % errors):",
        "",
        f"    {shlex.join(command)}",
        "",
        f'  and watch #incidents: "Watching {AUTO_ROLLBACK_SERVICE} …", then about 30 s later '
        "the rollback, its evidence and chart in the thread (docs/demo-auto-rollback.md).",
        "",
    ]


# -- the CLI beside `make run` ---------------------------------------------------------------
#
# The embedded cluster's kubeconfig and the demo catalog go to `.run/` in the current directory
# (under `make run`: the checkout, where `.run/` is ignored by git), and the banner says the two
# lines to paste. The first `serve` there holds `.run/serve.lock` and writes `.run/kubeconfig`;
# another one running at the same time writes `.run/kubeconfig-PID`, so neither overwrites, nor
# on stopping removes, the other's.

RUN_DIR = ".run"
RUN_KUBECONFIG = "kubeconfig"


def _run_kubeconfig(stack: contextlib.ExitStack[bool | None]) -> Path | None:
    """Where this process writes its embedded cluster's kubeconfig; None (a temporary file)
    when the current directory cannot take `.run/`."""
    directory = Path.cwd() / RUN_DIR
    try:
        directory.mkdir(exist_ok=True)
        lock = stack.enter_context((directory / "serve.lock").open("a"))
    except OSError as exc:
        log.warning("cannot use %s (%s): the kubeconfig goes to a temporary file", directory, exc)
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the process ends
    except OSError:
        return directory / f"{RUN_KUBECONFIG}-{os.getpid()}"
    return directory / RUN_KUBECONFIG


def _names_run_kubeconfig(kubeconfig: str | None) -> bool:
    """Whether `kubeconfig` is the file an embedded cluster of this directory writes (pasted from
    a banner, then `make run` again in that shell): it names a cluster that is not running."""
    if not kubeconfig or os.pathsep in kubeconfig:
        return False
    path = Path(kubeconfig).expanduser().absolute()
    return path.parent == Path.cwd() / RUN_DIR and (
        path.name == RUN_KUBECONFIG or path.name.startswith(f"{RUN_KUBECONFIG}-")
    )


def _as_written(entry: ServiceEntry) -> dict[str, object]:
    """An entry as a catalog file names it: `deployment:` for a Deployment, `name:` for the
    other workloads, neither for a blue-green service (its `service:` names it)."""
    written: dict[str, object] = entry.model_dump(mode="json", exclude_defaults=True)
    if entry.kind == "BlueGreen":
        written.pop("deployment", None)
    elif entry.kind != "Deployment":
        written["name"] = written.pop("deployment")
    return written


def _write_catalog(catalog: Catalog, path: Path) -> Path:
    """The demo catalog as a file the CLI reads (replaced whole: a reader never sees half)."""
    services = {name: _as_written(entry) for name, entry in catalog.services.items()}
    text = "# The embedded demo's service catalog, written by `rollback-bot serve` for the CLI.\n"
    text += yaml.safe_dump({"services": services}, sort_keys=False)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def _cli_banner(kubeconfig: Path, catalog: Path) -> list[str]:
    command = Path(sys.executable).with_name("rollback-bot")
    shown = shlex.quote(str(command)) if command.exists() else "rollback-bot"
    return [
        "  The CLI against the simulated cluster: in another terminal, paste",
        "",
        f"    export KUBECONFIG={shlex.quote(str(kubeconfig))}",
        f"    export ROLLBACK_BOT_CONFIG={shlex.quote(str(catalog))}",
        f"    {shown} history checkout",
        "",
    ]
