"""The rendered manifests accepted by the simulated API server through the real kubectl."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.helm.chart import FULLNAME, MINIMAL, NAMESPACE, Manifest, one, render
from tests.integration.kube_history import Kubectl


def served_kinds(kubectl: Kubectl) -> set[tuple[str, str]]:
    """(apiVersion, kind) the API server serves, from its discovery."""
    out = kubectl("api-resources", "--no-headers").stdout
    return {(f[-3], f[-1]) for f in (line.split() for line in out.splitlines()) if len(f) >= 4}


def apply(kubectl: Kubectl, manifests: list[Manifest]) -> str:
    return kubectl(
        "apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump_all(manifests)
    ).stdout


@pytest.mark.kubectl
def test_the_simulated_api_server_accepts_and_rolls_out_the_chart(kubectl: Kubectl) -> None:
    """Apply the default render with the real kubectl (the `kubectl` fixture's fresh simulated
    cluster), as `helm install` would, and roll it.

    The simulated server serves only what the bot itself uses (Namespaces, Deployments,
    ReplicaSets, Pods, Services, ConfigMaps, Events, Leases), not ServiceAccounts, Secrets, RBAC,
    NetworkPolicies, PodDisruptionBudgets or ServiceMonitors: those are applied only if its
    discovery lists them, and are checked against the Kubernetes schemas instead
    (test_kubernetes_schemas.py). What this proves beyond the schemas: the Deployment passes the
    server's validation and defaulting, its selector matches its pod labels so the controller rolls
    it out, the Service and the catalog ConfigMap are accepted and read back unchanged, and a
    changed catalog (its checksum annotation) makes a new revision, i.e. rolls the pods.
    """
    served = served_kinds(kubectl)
    manifests = render(MINIMAL)
    applicable = [m for m in manifests if (m["apiVersion"], m["kind"]) in served]
    assert {m["kind"] for m in applicable} >= {"Deployment", "Service", "ConfigMap"}
    skipped = {m["kind"] for m in manifests} - {m["kind"] for m in applicable}
    assert skipped <= {"ServiceAccount", "Secret", "Role", "RoleBinding"}, skipped

    namespaces = sorted({m["metadata"]["namespace"] for m in manifests})
    apply(
        kubectl,
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces],
    )
    out = apply(kubectl, applicable)
    assert f"deployment.apps/{FULLNAME} created" in out
    kubectl("rollout", "status", f"deployment/{FULLNAME}", "-n", NAMESPACE, "--timeout=60s")

    def get(kind: str, name: str) -> Manifest:
        text = kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json").stdout
        data: Manifest = json.loads(text)
        return data

    live = get("deployment", FULLNAME)
    rendered = one(manifests, "Deployment")
    assert live["spec"]["selector"] == rendered["spec"]["selector"]
    live_pod, rendered_pod = live["spec"]["template"]["spec"], rendered["spec"]["template"]["spec"]
    for key in ("securityContext", "volumes", "serviceAccountName", "automountServiceAccountToken"):
        assert _subset(rendered_pod[key], live_pod[key]), key
    assert _subset(rendered_pod["containers"][0], live_pod["containers"][0])
    assert live["status"]["availableReplicas"] == 1
    assert get("configmap", f"{FULLNAME}-catalog")["data"] == one(manifests, "ConfigMap")["data"]
    assert (
        get("service", FULLNAME)["spec"]["selector"] == rendered["spec"]["selector"]["matchLabels"]
    )

    changed = render(MINIMAL, sets=("catalog.services.checkout.deployment=checkout-v2",))
    apply(kubectl, [m for m in changed if (m["apiVersion"], m["kind"]) in served])
    kubectl("rollout", "status", f"deployment/{FULLNAME}", "-n", NAMESPACE, "--timeout=60s")
    annotations = get("deployment", FULLNAME)["metadata"]["annotations"]
    assert annotations["deployment.kubernetes.io/revision"] == "2"


def _subset(expected: Any, actual: Any) -> bool:
    """`expected` is in `actual`, which may carry server defaults besides."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)
