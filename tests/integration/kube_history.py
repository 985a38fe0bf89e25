"""Building a Deployment's history through the real kubectl, as people do."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

import yaml

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

# Revision by revision: two containers, env changes, a version label, change causes.
VERSIONS: tuple[dict[str, Any], ...] = (
    {"version": "1.0.0", "env": {"MODE": "safe"}, "proxy": "envoy:1.29"},
    {"version": "1.1.0", "env": {"MODE": "safe", "CACHE": "on"}, "proxy": "envoy:1.29"},
    {"version": "1.2.0", "env": {"MODE": "fast", "CACHE": "on"}, "proxy": "envoy:1.30"},
    {"version": "1.3.0", "env": {"MODE": "fast"}, "proxy": "envoy:1.30"},
)


def manifest(
    name: str, namespace: str, version: str, env: dict[str, str], proxy: str, **spec: Any
) -> str:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"kubernetes.io/change-cause": f"deploy {version}"},
            "labels": {"app": name},
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "app.kubernetes.io/version": version}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": f"registry.example.com/{name}:{version}",
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                            "ports": [{"containerPort": 8080}],
                        },
                        {"name": "proxy", "image": proxy},
                    ]
                },
            },
            **spec,
        },
    }
    return yaml.safe_dump(deployment)


def apply(kubectl: Kubectl, text: str) -> None:
    kubectl("apply", "--validate=false", "-f", "-", stdin=text)


def create_namespace(kubectl: Kubectl, namespace: str) -> None:
    apply(
        kubectl,
        yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
    )


def build_history(
    kubectl: Kubectl,
    namespace: str,
    name: str = "web",
    versions: Sequence[dict[str, Any]] = VERSIONS,
    **spec: Any,
) -> None:
    """Create the namespace and roll out each version in turn, each one to completion."""
    create_namespace(kubectl, namespace)
    for v in versions:
        apply(kubectl, manifest(name, namespace, v["version"], v["env"], v["proxy"], **spec))
        kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=60s")


def get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
    )
    return data
