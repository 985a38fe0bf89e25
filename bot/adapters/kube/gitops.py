"""The GitOps objects that manage Deployments, through each cluster's client layer: Argo CD
Applications (argoproj.io/v1alpha1), Flux Kustomizations (kustomize.toolkit.fluxcd.io/v1) and
HelmReleases (helm.toolkit.fluxcd.io/v2). Read by name (get) and changed by a merge patch
conditional on the resourceVersion read (patch): no list, no watch. The decisions are
`bot.domain.rollback.gitops`'s.

Only the namespaces the bot is configured to look in (ROLLBACK_BOT_GITOPS_NAMESPACES, which the
chart's RBAC grants) are read; an empty list turns the GitOps check off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from bot.adapters.kube.client import MERGE_PATCH, KubeClient
from bot.domain.errors import ClusterError, Conflict, NotFound
from bot.domain.rollback.gitops import (
    GitopsRef,
    GitopsState,
    Kind,
    Managed,
    Suspension,
    managed_by,
    parse_state,
    reminded_patch,
    resume_patch,
    suspend_patch,
)
from bot.domain.rollback.models import JsonDict, Target, WorkloadKind

ARGO_CD_API = "/apis/argoproj.io/v1alpha1"
FLUX_KUSTOMIZE_API = "/apis/kustomize.toolkit.fluxcd.io/v1"
FLUX_HELM_API = "/apis/helm.toolkit.fluxcd.io/v2"
GITOPS_HINT = (
    "the bot's role needs get and patch on applications (argoproj.io), kustomizations and "
    "helmreleases (fluxcd.io) in the GitOps namespaces: set gitops.enabled in the chart"
)


class GitopsObjects:
    """One cluster's GitOps objects, by kind, namespace and name."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def labels_and_annotations(
        self, namespace: str, name: str, kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    ) -> tuple[dict[str, str], dict[str, str]]:
        obj = await self._kube.request(
            f"reading {kind.noun} {namespace}/{name}",
            "GET",
            f"{kind.api_path}/namespaces/{namespace}/{kind.plural}/{name}",
        )
        meta = obj.get("metadata") or {}
        return _strings(meta.get("labels")), _strings(meta.get("annotations"))

    async def get(self, kind: Kind, namespace: str, name: str) -> JsonDict:
        what = f"reading {kind} {namespace}/{name}"
        if kind == "Application":
            return await self._kube.request(
                what,
                "GET",
                f"{ARGO_CD_API}/namespaces/{namespace}/applications/{name}",
                forbidden_hint=GITOPS_HINT,
            )
        if kind == "Kustomization":
            return await self._kube.request(
                what,
                "GET",
                f"{FLUX_KUSTOMIZE_API}/namespaces/{namespace}/kustomizations/{name}",
                forbidden_hint=GITOPS_HINT,
            )
        return await self._kube.request(
            what,
            "GET",
            f"{FLUX_HELM_API}/namespaces/{namespace}/helmreleases/{name}",
            forbidden_hint=GITOPS_HINT,
        )

    async def patch(self, kind: Kind, namespace: str, name: str, patch: JsonDict) -> JsonDict:
        what = f"changing {kind} {namespace}/{name}"
        if kind == "Application":
            return await self._kube.request(
                what,
                "PATCH",
                f"{ARGO_CD_API}/namespaces/{namespace}/applications/{name}",
                patch,
                content_type=MERGE_PATCH,
                forbidden_hint=GITOPS_HINT,
            )
        if kind == "Kustomization":
            return await self._kube.request(
                what,
                "PATCH",
                f"{FLUX_KUSTOMIZE_API}/namespaces/{namespace}/kustomizations/{name}",
                patch,
                content_type=MERGE_PATCH,
                forbidden_hint=GITOPS_HINT,
            )
        return await self._kube.request(
            what,
            "PATCH",
            f"{FLUX_HELM_API}/namespaces/{namespace}/helmreleases/{name}",
            patch,
            content_type=MERGE_PATCH,
            forbidden_hint=GITOPS_HINT,
        )


class KubeGitOps:
    """The use cases' `GitOps` port over every cluster (by the Deployment's context)."""

    def __init__(self, clients: Callable[[str | None], KubeClient], namespaces: Sequence[str]):
        self._clients = clients
        self._namespaces = tuple(dict.fromkeys(namespaces))

    def _objects(self, target: Target) -> GitopsObjects:
        return GitopsObjects(self._clients(target.context))

    async def inspect(self, target: Target) -> Managed | None:
        if not self._namespaces:
            return None
        objects = self._objects(target)
        labels, annotations = await objects.labels_and_annotations(
            target.namespace, target.name, target.kind
        )
        kind = target.kind
        ref = managed_by(target.namespace, target.name, labels, annotations, kind.value, kind.group)
        if ref is None:
            return None
        places = (ref.namespace,) if ref.namespace is not None else self._namespaces
        for namespace in places:
            if namespace not in self._namespaces:
                return Managed(
                    ref,
                    problem=f"namespace {namespace} is not one the bot is configured to read "
                    "GitOps objects in (ROLLBACK_BOT_GITOPS_NAMESPACES)",
                )
            try:
                obj = await objects.get(ref.kind, namespace, ref.name)
            except NotFound:
                continue
            except ClusterError as exc:
                return Managed(ref, problem=str(exc))
            state = parse_state(
                ref.kind, obj, target.namespace, target.name, kind.value, kind.group
            )
            if not _counts(ref, state, target):
                return None
            return Managed(ref, state)
        return None  # named, but no such object: nothing manages it now

    async def _write(self, target: Target, managed: Managed, patch: JsonDict) -> Managed:
        state = _state(managed)
        obj = await self._objects(target).patch(state.kind, state.namespace, state.name, patch)
        return Managed(
            managed.ref,
            parse_state(
                state.kind,
                obj,
                target.namespace,
                target.name,
                target.kind.value,
                target.kind.group,
            ),
        )

    async def suspend(self, target: Target, managed: Managed, suspension: Suspension) -> Managed:
        return await self._write(target, managed, suspend_patch(_state(managed), suspension))

    async def resume(self, target: Target, managed: Managed) -> Managed:
        return await self._write(target, managed, resume_patch(_state(managed)))

    async def mark_reminded(self, target: Target, managed: Managed, at: datetime) -> bool:
        try:
            await self._write(target, managed, reminded_patch(_state(managed), at))
        except Conflict:
            return False
        return True


def _state(managed: Managed) -> GitopsState:
    if managed.state is None:
        raise ClusterError(f"{managed.label} could not be read: {managed.problem}")
    return managed.state


def _counts(ref: GitopsRef, state: GitopsState, target: Target) -> bool:
    """An Application found only by the common instance label manages the Deployment only if
    it deploys into the Deployment's namespace (a Helm release of the same name does not)."""
    if not ref.check_destination:
        return True
    return state.destination_namespace in (None, target.namespace)


def _strings(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
