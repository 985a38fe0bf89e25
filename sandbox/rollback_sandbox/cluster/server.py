"""`Sandbox`: the simulated cluster, an API server plus controllers on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from rollback_sandbox.cluster.api import Api, ServerState
from rollback_sandbox.cluster.argo_rollouts import ArgoRolloutController
from rollback_sandbox.cluster.clock import Clock
from rollback_sandbox.cluster.controller import DeploymentController
from rollback_sandbox.cluster.daemonset import DaemonSetController
from rollback_sandbox.cluster.endpointslices import EndpointSliceController
from rollback_sandbox.cluster.events import Recorder
from rollback_sandbox.cluster.faults import Faults
from rollback_sandbox.cluster.registry import Registry
from rollback_sandbox.cluster.replicaset import ReplicaSetController
from rollback_sandbox.cluster.seed import SEEDS, seed_cluster
from rollback_sandbox.cluster.statefulset import StatefulSetController
from rollback_sandbox.cluster.store import Store

log = logging.getLogger(__name__)

# the loop never sleeps longer than this, so a missed wake-up costs at most this much
_MAX_SLEEP = 1.0


class Sandbox:
    """A Kubernetes API server with deployment, StatefulSet and DaemonSet controllers, for the
    demo and the tests.

    `speed` is simulated seconds per real second: pods take `ready_after` simulated seconds to
    become ready and `progressDeadlineSeconds` counts simulated seconds.
    """

    def __init__(
        self,
        seed: str = "demo",
        speed: float = 1.0,
        *,
        ready_after: float = 3.0,
        bookmark_interval: float = 5.0,
        history_limit: int = 20_000,
    ) -> None:
        if seed not in SEEDS:
            raise ValueError(f"unknown seed {seed!r}; choose one of {', '.join(SEEDS)}")
        self.clock = Clock(speed)
        self.store = Store(history_limit)
        self.registry = Registry(self.store, self.clock)
        self.recorder = Recorder(self.registry, self.clock)
        self.replicasets = ReplicaSetController(self.registry, self.clock, ready_after)
        self.deployments = DeploymentController(self.registry, self.clock, self.recorder)
        self.statefulsets = StatefulSetController(self.registry, self.recorder, self.replicasets)
        self.daemonsets = DaemonSetController(self.registry, self.recorder, self.replicasets)
        self.argo_rollouts = ArgoRolloutController(self.registry, self.clock, self.recorder)
        self.endpointslices = EndpointSliceController(self.registry)
        self.faults = Faults()
        self._state = ServerState(
            self.store, self.registry, self.clock, self.faults, bookmark_interval
        )
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._url = ""
        seed_cluster(self, seed)

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("the sandbox is not started")
        return self._url

    @property
    def bookmark_interval(self) -> float:
        return self._state.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, seconds: float) -> None:
        self._state.bookmark_interval = seconds

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        wake = self._wake
        self.store.listeners.append(lambda _event: wake.set())
        self.faults.bind(loop, self.store.drop_watchers, self.store.compact)
        app = Api(self._state).app()
        # watches stay open: give the shutdown a short grace instead of the default minute
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        bound = server.sockets[0].getsockname()[1] if isinstance(server, asyncio.Server) else port
        self._url = f"http://{host}:{bound}"
        self._task = asyncio.create_task(self._run(), name="sandbox-controllers")
        log.info("sandbox serving at %s", self._url)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(5):
                    await self._task
            self._task = None
        self.store.drop_watchers()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            try:
                # a client that never reads can keep a handler blocked; do not wait for ever
                await asyncio.wait_for(runner.cleanup(), timeout=5)
            except TimeoutError:
                log.warning("sandbox HTTP server did not shut down cleanly within 5 s")

    # ------------------------------------------------------------------ controllers

    def reconcile(self) -> None:
        """Run the controllers until a pass writes nothing (bounded, as a work queue would)."""
        for _ in range(50):
            before = self.store.rv
            self.replicasets.sync_all()
            self.deployments.sync_all()
            self.statefulsets.sync_all()
            self.daemonsets.sync_all()
            self.argo_rollouts.sync_all()
            # last: it lists the pods the workload controllers just made ready
            self.endpointslices.sync_all()
            if self.store.rv == before:
                return

    def next_timer(self) -> float | None:
        """Simulated seconds until something becomes due (a pod ready, a deadline)."""
        timers = [
            t
            for t in (
                self.replicasets.next_timer(),
                self.deployments.next_deadline(),
                self.statefulsets.next_timer(),
                self.daemonsets.next_timer(),
                self.argo_rollouts.next_timer(),
            )
            if t is not None
        ]
        return min(timers) if timers else None

    async def _run(self) -> None:
        wake = self._wake
        if wake is None:
            return
        while True:
            try:
                self.reconcile()
            except Exception:
                log.exception("controller pass failed")
            wake.clear()
            due = self.next_timer()
            delay = (
                _MAX_SLEEP if due is None else min(_MAX_SLEEP, self.clock.real_seconds(due) + 0.001)
            )
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancellation that
            # stop() sends, and this loop would then never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, 0.001)):
                    await wake.wait()
