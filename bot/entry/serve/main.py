"""`rollback-bot serve`: settings → catalog → the bot, with embedded defaults for a laptop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from pathlib import Path

from pydantic import SecretStr

from bot.config.catalog import Catalog
from bot.config.settings import Settings, load_settings
from bot.domain.errors import RollbackBotError
from bot.entry.serve.embedded import (
    cluster_configured,
    demo_catalog,
    embedded_cluster,
    embedded_slack,
    in_cluster,
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
    if not cluster_configured(settings.kubeconfig):
        kubeconfig = stack.enter_context(embedded_cluster())
        log.warning(
            "no Kubernetes cluster is configured (KUBECONFIG, --kubeconfig or in-cluster): "
            "using the embedded simulated cluster with demo data (%s)",
            kubeconfig,
        )
        settings = settings.model_copy(update={"kubeconfig": str(kubeconfig)})
        catalog = catalog or demo_catalog()
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
        print(f"\n  Open {local.url} and type: /rollback checkout\n", flush=True)
    return settings, catalog
