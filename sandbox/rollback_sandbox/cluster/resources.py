"""The resource types the sandbox serves, as discovery describes them."""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    # field selector labels the real apiserver accepts beyond metadata.name/namespace
    field_labels: tuple[str, ...] = ()
    # whether spec changes bump metadata.generation (workload strategies do)
    tracks_generation: bool = False
    # whether a DELETE answers with the object (pods) rather than a Success Status
    returns_deleted: bool = False
    verbs: tuple[str, ...] = field(default=ALL_VERBS)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key: resources are shared across versions in a real server; here one each."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


DEPLOYMENTS = ResourceType(
    "apps", "v1", "deployments", "deployment", "Deployment", True,
    short_names=("deploy",), categories=("all",), subresources=("scale", "status"),
    tracks_generation=True,
)  # fmt: skip
REPLICASETS = ResourceType(
    "apps", "v1", "replicasets", "replicaset", "ReplicaSet", True,
    short_names=("rs",), categories=("all",), subresources=("scale", "status"),
    tracks_generation=True,
)  # fmt: skip
STATEFULSETS = ResourceType(
    "apps", "v1", "statefulsets", "statefulset", "StatefulSet", True,
    short_names=("sts",), categories=("all",), subresources=("scale", "status"),
    tracks_generation=True,
)  # fmt: skip
DAEMONSETS = ResourceType(
    "apps", "v1", "daemonsets", "daemonset", "DaemonSet", True,
    short_names=("ds",), categories=("all",), subresources=("status",),
    tracks_generation=True,
)  # fmt: skip
# the history StatefulSets and DaemonSets keep: immutable data plus a renumberable revision
CONTROLLERREVISIONS = ResourceType(
    "apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", True
)
PODS = ResourceType(
    "", "v1", "pods", "pod", "Pod", True,
    short_names=("po",), categories=("all",), subresources=("status",),
    field_labels=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                  "spec.serviceAccountName", "status.phase", "status.podIP",
                  "status.nominatedNodeName"),
    returns_deleted=True,
)  # fmt: skip
NAMESPACES = ResourceType(
    "", "v1", "namespaces", "namespace", "Namespace", False,
    short_names=("ns",), subresources=("status",), field_labels=("status.phase",),
    returns_deleted=True,
    verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
)  # fmt: skip
SERVICES = ResourceType(
    "", "v1", "services", "service", "Service", True,
    short_names=("svc",), categories=("all",), subresources=("status",),
    returns_deleted=True,
)  # fmt: skip
EVENTS = ResourceType(
    "", "v1", "events", "event", "Event", True,
    short_names=("ev",),
    field_labels=("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                  "involvedObject.uid", "involvedObject.apiVersion",
                  "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                  "reportingComponent", "source", "type"),
)  # fmt: skip
CONFIGMAPS = ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",))
# which pods back a Service, written by the EndpointSlice controller (endpointslices.py)
ENDPOINTSLICES = ResourceType(
    "discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", True
)
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True)
# GitOps custom resources, served generically (no controller): an Argo CD Application (its CRD
# has no status subresource) and Flux's Kustomization and HelmRelease (theirs have one).
APPLICATIONS = ResourceType(
    "argoproj.io", "v1alpha1", "applications", "application", "Application", True,
    short_names=("app", "apps"), categories=("argoproj",),
)  # fmt: skip
# An Argo Rollouts Rollout, as its CRD serves it (status and scale subresources, no category),
# driven by the sandbox's Rollout controller (argo_rollouts.py)
ROLLOUTS = ResourceType(
    "argoproj.io", "v1alpha1", "rollouts", "rollout", "Rollout", True,
    short_names=("ro",), subresources=("scale", "status"), tracks_generation=True,
)  # fmt: skip
KUSTOMIZATIONS = ResourceType(
    "kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "kustomization", "Kustomization",
    True, short_names=("ks",), categories=("all",), subresources=("status",),
)  # fmt: skip
HELMRELEASES = ResourceType(
    "helm.toolkit.fluxcd.io", "v2", "helmreleases", "helmrelease", "HelmRelease", True,
    short_names=("hr",), categories=("all",), subresources=("status",),
)  # fmt: skip

ALL: tuple[ResourceType, ...] = (
    NAMESPACES, PODS, SERVICES, EVENTS, CONFIGMAPS, DEPLOYMENTS, REPLICASETS, STATEFULSETS,
    DAEMONSETS, CONTROLLERREVISIONS, LEASES, APPLICATIONS, KUSTOMIZATIONS, HELMRELEASES,
    ENDPOINTSLICES, ROLLOUTS,
)  # fmt: skip

SUBRESOURCE_VERBS = ("get", "patch", "update")


def group_versions() -> dict[str, list[ResourceType]]:
    """apiVersion -> its resources, in a stable order."""
    out: dict[str, list[ResourceType]] = {}
    for rt in ALL:
        out.setdefault(rt.api_version, []).append(rt)
    return out


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in ALL:
        if rt.group == group and rt.version == version and rt.plural == plural:
            return rt
    return None


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    for rt in ALL:
        if rt.api_version == api_version and rt.kind == kind:
            return rt
    return None
