"""Deploying new versions of the demo's shop/checkout through the official client, as a
pipeline would: a schema migration annotation, env vars from a Secret, a history limit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bot.domain.rollback.migrations import MIGRATION_ANNOTATION

REGISTRY = "registry.example.com/shop/checkout"
PLAIN_SECRET = "s3cr3t-plain-value"  # a token someone put in plain env: never shown
REVISION = "deployment.kubernetes.io/revision"


def deploy_checkout(
    kubeconfig: Path,
    version: str,
    *,
    migration: str | None = None,
    image: str | None = None,
    secret_env: bool = False,
    history_limit: int | None = None,
    timeout: float = 20.0,
) -> None:
    """Roll out `version` of checkout (a strategic merge patch, like `kubectl apply`) and wait
    until the controller has given it its revision."""
    from kubernetes import client, config

    api = config.new_client_from_config(str(kubeconfig))  # type: ignore[no-untyped-call]
    apps = client.AppsV1Api(api)

    def read() -> dict[str, Any]:
        found = apps.read_namespaced_deployment("checkout", "shop", _request_timeout=5)
        data: dict[str, Any] = api.sanitize_for_serialization(found)
        return data

    def revision_of(deployment: dict[str, Any]) -> int:
        return int(deployment["metadata"]["annotations"].get(REVISION, "0"))

    try:
        revision = revision_of(read())
        container: dict[str, Any] = {"name": "checkout", "image": image or f"{REGISTRY}:{version}"}
        if secret_env:
            container["env"] = [
                {"name": "API_TOKEN", "value": PLAIN_SECRET},
                {
                    "name": "DB_PASSWORD",
                    "valueFrom": {"secretKeyRef": {"name": "checkout-db", "key": "password"}},
                },
            ]
        template: dict[str, Any] = {
            "metadata": {"labels": {"app.kubernetes.io/version": version}},
            "spec": {"containers": [container]},
        }
        if migration is not None:
            template["metadata"]["annotations"] = {MIGRATION_ANNOTATION: migration}
        spec: dict[str, Any] = {"template": template}
        if history_limit is not None:
            spec["revisionHistoryLimit"] = history_limit
        body = {
            "metadata": {"annotations": {"kubernetes.io/change-cause": f"deploy {version}"}},
            "spec": spec,
        }
        apps.patch_namespaced_deployment("checkout", "shop", body, _request_timeout=5)
        deadline = time.monotonic() + timeout
        while True:  # the controller numbers the new ReplicaSet: wait for that event
            now = read()
            status = now.get("status") or {}
            if (
                revision_of(now) > revision
                and status.get("observedGeneration") == now["metadata"]["generation"]
                and status.get("updatedReplicas") == now["spec"]["replicas"]
            ):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"checkout {version} did not roll out in {timeout}s")
            time.sleep(0.05)
    finally:
        api.close()
