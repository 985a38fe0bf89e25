"""In-memory fakes of the blue-green switch's ports: a cluster holding the Service web (selector
app=web,color=…), the Deployments web-blue and web-green and the Service's EndpointSlices as the
API server's JSON, kept as a real controller would keep them (unless told not to); a reporter,
the switch message and an audit sink that record what they were told."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from bot.adapters.kube.parsing import parse_deployment
from bot.config.catalog import ServiceEntry, ServiceRef
from bot.domain.audit import AuditRecord
from bot.domain.errors import Conflict, NotFound
from bot.domain.rollback.blue_green import ColorState, SwitchPlan, SwitchProgress
from bot.domain.rollback.locks import LockLost
from bot.domain.rollback.models import Deployment, JsonDict, RunInfo, Thread
from bot.domain.rollback.switches import SwitchOutcome, SwitchView

NOW = datetime(2026, 11, 27, 4, 5, tzinfo=UTC)
SERVER = "https://k8s.example.com"
THREAD = Thread("C0SHOP", "1795752000.000100", message_ts="1795752000.000100")
REPLICASETS = {"web-blue": "web-blue-6d8f9", "web-green": "web-green-7c4b2"}
ALICE = "U0ALICE01"


def web_ref(**extra: Any) -> ServiceRef:
    entry = ServiceEntry.model_validate(
        {
            "kind": "BlueGreen",
            "namespace": "shop",
            "service": "web",
            "selector_key": "color",
            "blue": "web-blue",
            "green": "web-green",
            **extra,
        }
    )
    return ServiceRef("web", "shop", entry.deployment, None, entry, entry.workload_kind)


def deployment_json(
    name: str, version: str, *, replicas: int, available: int, deadline: bool = False
) -> JsonDict:
    color = name.removeprefix("web-")
    conditions = [
        {
            "type": "Available",
            "status": "True" if available >= replicas > 0 else "False",
            "reason": "MinimumReplicasAvailable",
        }
    ]
    if deadline:
        conditions.append(
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        )
    return {
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "generation": 2,
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web", "color": color}},
            "template": {
                "metadata": {
                    "labels": {"app": "web", "color": color, "app.kubernetes.io/version": version}
                },
                "spec": {"containers": [{"name": "web", "image": f"web:{version}"}]},
            },
        },
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "conditions": conditions,
        },
    }


class FakeCluster:
    """The blue-green cluster. `ready_steps`: how many watch events a scaled-up colour takes to
    become available (None: never); `slices_follow`: whether the EndpointSlices follow the
    Service's selector; `conflicts`: how many Service patches fail with 409 first, each after
    `on_conflict` (if any) changed the Service."""

    def __init__(
        self,
        *,
        live: str = "green",
        blue_replicas: int = 0,
        ready_steps: int | None = 3,
        slices_follow: bool = True,
        conflicts: int = 0,
        deadline: bool = False,
    ) -> None:
        self.server = SERVER
        self.selector = {"app": "web", "color": live}
        self.resource_version = 100
        self.replicas = {"web-blue": blue_replicas, "web-green": 3}
        self.available = {"web-blue": blue_replicas, "web-green": 3}
        self.versions = {"web-blue": "4.1.0", "web-green": "4.2.0"}
        self.ready_steps = ready_steps
        self.slices_follow = slices_follow
        self.conflicts = conflicts
        self.deadline = deadline
        self.on_conflict: Any = None
        self.patches: list[JsonDict] = []
        self.scales: list[tuple[str, JsonDict]] = []
        self.service_reads = 0
        self.locks: dict[str, tuple[str, RunInfo]] = {}
        self.released: list[str] = []
        self.lost = False
        self._routed = live  # what the slices show

    # -- the Service
    def service_json(self) -> JsonDict:
        return {
            "kind": "Service",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "resourceVersion": str(self.resource_version),
            },
            "spec": {"type": "ClusterIP", "selector": dict(self.selector)},
        }

    async def read_service(self, namespace: str, name: str) -> JsonDict:
        self.service_reads += 1
        return self.service_json()

    async def patch_service(self, namespace: str, name: str, patch: JsonDict) -> JsonDict:
        self.patches.append(copy.deepcopy(patch))
        if self.conflicts:
            self.conflicts -= 1
            if self.on_conflict is not None:
                self.on_conflict(self)
            self.resource_version += 1
            raise Conflict("patching service shop/web: conflict (the object has been modified)")
        if patch["metadata"]["resourceVersion"] != str(self.resource_version):
            raise Conflict("patching service shop/web: conflict (the object has been modified)")
        self.selector.update(patch["spec"]["selector"])
        self.resource_version += 1
        if self.slices_follow:
            self._routed = self.selector["color"]
        return self.service_json()

    # -- the slices
    def pods(self, deployment: str) -> list[str]:
        rs = REPLICASETS[deployment]
        return [f"{rs}-p{i:04d}" for i in range(self.available[deployment])]

    def slices(self) -> list[JsonDict]:
        endpoints = [
            {
                "addresses": [f"10.0.0.{i}"],
                "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": pod},
            }
            for i, pod in enumerate(self.pods(f"web-{self._routed}"))
        ]
        return [
            {
                "kind": "EndpointSlice",
                "metadata": {"name": "web-x1", "labels": {"kubernetes.io/service-name": "web"}},
                "endpoints": endpoints or None,
            }
        ]

    async def endpoint_slices(self, namespace: str, service: str) -> JsonDict:
        return {"items": self.slices()}

    async def watch_endpoint_slices(
        self, namespace: str, service: str
    ) -> AsyncGenerator[list[JsonDict], None]:
        yield self.slices()
        await asyncio.Event().wait()  # nothing else changes

    # -- the Deployments
    def deployment(self, name: str) -> Deployment:
        if name not in self.replicas:
            raise NotFound(f"reading deployment shop/{name}: not found")
        return parse_deployment(
            deployment_json(
                name,
                self.versions[name],
                replicas=self.replicas[name],
                available=self.available[name],
                deadline=self.deadline and self.available[name] < self.replicas[name],
            )
        )

    async def read_deployment(self, namespace: str, name: str) -> Deployment:
        return self.deployment(name)

    async def watch_deployment(self, namespace: str, name: str) -> AsyncGenerator[Deployment, None]:
        yield self.deployment(name)
        steps = 0
        while self.available[name] < self.replicas[name]:
            needed = self.ready_steps
            if needed is None:
                await asyncio.Event().wait()
                return
            await asyncio.sleep(0)
            steps += 1
            if steps >= needed:
                self.available[name] = self.replicas[name]
            yield self.deployment(name)

    async def scale_deployment(self, namespace: str, name: str, patch: JsonDict) -> Deployment:
        self.scales.append((name, copy.deepcopy(patch)))
        self.replicas[name] = patch["spec"]["replicas"]
        return self.deployment(name)

    async def replicaset_names(self, deployment: Deployment) -> frozenset[str]:
        return frozenset({REPLICASETS[deployment.name]})

    # -- the Leases
    async def acquire_lock(
        self, namespace: str, deployment: str, me: str, run: RunInfo, seconds: int
    ) -> RunInfo | None:
        held = self.locks.get(deployment)
        if held is not None and held[0] != me:
            return held[1]
        self.locks[deployment] = (me, run)
        return None

    async def renew_lock(self, namespace: str, deployment: str, me: str) -> None:
        if self.lost:
            raise LockLost("renewing the lock of web", None)

    async def release_lock(self, namespace: str, deployment: str, me: str) -> None:
        self.released.append(deployment)
        self.locks.pop(deployment, None)


class OneCluster:
    def __init__(self, cluster: FakeCluster) -> None:
        self.the = cluster

    def cluster(self, context: str | None) -> FakeCluster:
        return self.the


class Told:
    """The reporter, and its `SwitchReporters`: what was told, in order."""

    def __init__(self) -> None:
        self.said: list[tuple[str, Any]] = []
        self.outcome: SwitchOutcome | None = None
        self.done = asyncio.Event()

    def reporter(self, thread: Thread | None, namespace: str) -> Told:
        return self

    @property
    def steps(self) -> list[str]:
        return [what for what, _ in self.said]

    async def started(self, run: RunInfo, plan: SwitchPlan, reason: str | None) -> None:
        self.said.append(("started", (run, plan, reason)))

    async def scaling_up(self, plan: SwitchPlan, current: ColorState) -> None:
        self.said.append(("scaling_up", current))

    async def waiting(self, plan: SwitchPlan, target: ColorState, elapsed: float) -> None:
        self.said.append(("waiting", target))

    async def ready(self, plan: SwitchPlan, target: ColorState, elapsed: float) -> None:
        self.said.append(("ready", target))

    async def patched(self, plan: SwitchPlan) -> None:
        self.said.append(("patched", plan))

    async def converging(self, plan: SwitchPlan, progress: SwitchProgress, elapsed: float) -> None:
        self.said.append(("converging", progress))

    async def finished(self, outcome: SwitchOutcome) -> None:
        self.said.append(("finished", outcome))
        self.outcome = outcome
        self.done.set()


class Messages:
    def __init__(self) -> None:
        self.shown: list[tuple[str, SwitchView]] = []

    async def lock(self, thread: Thread, view: SwitchView) -> None:
        self.shown.append(("lock", view))

    async def refresh(self, thread: Thread, view: SwitchView) -> None:
        self.shown.append(("refresh", view))


class Sink:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self.deployments: list[str | None] = []

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        self.records.append(record)
        self.deployments.append(deployment.name if deployment is not None else None)

    @property
    def steps(self) -> list[str]:
        return [r.step.value for r in self.records]
