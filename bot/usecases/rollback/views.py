"""Reading a service's state into the view the renderers take (shared by the handlers)."""

from __future__ import annotations

from bot.config.catalog import ServiceRef
from bot.adapters.slack.blocks import ServiceView
from handlers.deps import Deps


async def service_view(deps: Deps, ref: ServiceRef, asked_by: str) -> ServiceView:
    target = deps.target(ref)
    history = await deps.engine.history(target)
    return ServiceView(
        service=ref.name,
        namespace=ref.namespace,
        cluster=deps.cluster_name(ref),
        history=history,
        asked_by=asked_by,
        taken_at=deps.now(),
        limit=ref.entry.history_limit if ref.entry else 5,
        running=deps.runner.running(target),
    )
