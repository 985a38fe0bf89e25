"""Kubernetes objects as the API server returns them, for tests of the pure code."""

from __future__ import annotations

import copy
from typing import Any

from bot.usecases.rollback.ports import Cluster

JsonDict = dict[str, Any]

DEPLOYMENT_UID = "d0c4e0e5-0000-4000-8000-000000000001"


def template(
    version: str,
    *,
    image: str | None = None,
    env: dict[str, str] | None = None,
    sidecar: str | None = "envoy:1.30",
    pod_hash: str | None = None,
) -> JsonDict:
    labels = {"app": "checkout", "app.kubernetes.io/version": version}
    if pod_hash:
        labels["pod-template-hash"] = pod_hash
    containers: list[JsonDict] = [
        {
            "name": "checkout",
            "image": image or f"registry.example.com/shop/checkout:{version}",
            "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        }
    ]
    if sidecar:
        containers.append({"name": "proxy", "image": sidecar})
    return {"metadata": {"labels": labels}, "spec": {"containers": containers}}


def deployment(
    tpl: JsonDict,
    *,
    revision: int,
    annotations: dict[str, str] | None = None,
    paused: bool = False,
    generation: int = 5,
    observed: int = 5,
    replicas: int = 3,
    status: JsonDict | None = None,
) -> JsonDict:
    notes = {"deployment.kubernetes.io/revision": str(revision), **(annotations or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "checkout",
            "namespace": "shop",
            "uid": DEPLOYMENT_UID,
            "resourceVersion": "1042",
            "generation": generation,
            "creationTimestamp": "2026-11-20T10:00:00Z",
            "annotations": notes,
        },
        "spec": {
            "replicas": replicas,
            "paused": paused,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": copy.deepcopy(tpl),
        },
        "status": status
        if status is not None
        else {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


def replicaset(
    tpl: JsonDict,
    *,
    revision: int,
    pod_hash: str,
    created: str,
    annotations: dict[str, str] | None = None,
    owner: str = DEPLOYMENT_UID,
    replicas: int = 0,
) -> JsonDict:
    t = copy.deepcopy(tpl)
    t["metadata"].setdefault("labels", {})["pod-template-hash"] = pod_hash
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"checkout-{pod_hash}",
            "namespace": "shop",
            "creationTimestamp": created,
            "annotations": {
                "deployment.kubernetes.io/revision": str(revision),
                "deployment.kubernetes.io/desired-replicas": "3",
                "deployment.kubernetes.io/max-replicas": "4",
                **(annotations or {}),
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "checkout",
                    "uid": owner,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"replicas": replicas, "template": t},
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


class OneCluster:
    """The `Clusters` port over one cluster, whatever the context."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def cluster(self, context: str | None) -> Cluster:
        return self._cluster
