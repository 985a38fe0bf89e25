"""Deploys into the simulated cluster as a CI would: a Deployment created, then its template
changed, over the API server's HTTP API; each new version makes a revision and a ReplicaSet."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import aiohttp

from bot.domain.times import parse_time
from rollback_sandbox.cluster.threaded import SandboxThread

FIRST_VERSION = "1.0.0"


def deployment(name: str, version: str, namespace: str) -> dict[str, Any]:
    """A two-replica Deployment of `name` at `version` (its image tag and version label)."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, "app.kubernetes.io/version": version}},
                "spec": {"containers": [{"name": "app", "image": f"example/{name}:{version}"}]},
            },
        },
    }


async def deploy(
    http: aiohttp.ClientSession, cluster: SandboxThread, namespace: str, name: str, version: str
) -> None:
    """Create `name` at FIRST_VERSION, or change its template to `version`."""
    base = f"{cluster.url}/apis/apps/v1/namespaces/{namespace}/deployments"
    if version == FIRST_VERSION:
        async with http.post(base, json=deployment(name, version, namespace)) as answer:
            assert answer.status == 201, await answer.text()
        return
    template = deployment(name, version, namespace)["spec"]["template"]
    headers = {"Content-Type": "application/strategic-merge-patch+json"}
    async with http.patch(
        f"{base}/{name}", json={"spec": {"template": template}}, headers=headers
    ) as answer:
        assert answer.status == 200, await answer.text()


async def replicaset_of(
    http: aiohttp.ClientSession, cluster: SandboxThread, namespace: str, name: str, version: str
) -> tuple[str, datetime]:
    """The pod-template-hash and creation time of `version`'s ReplicaSet, once the cluster made
    it."""
    url = f"{cluster.url}/apis/apps/v1/namespaces/{namespace}/replicasets"
    for _ in range(300):
        async with http.get(url) as answer:
            items = (await answer.json())["items"]
        for item in items:
            labels = item["spec"]["template"]["metadata"]["labels"]
            created = parse_time(item["metadata"].get("creationTimestamp"))
            if labels.get("app") == name and labels.get("app.kubernetes.io/version") == version:
                assert created is not None
                return labels["pod-template-hash"], created
        await asyncio.sleep(0.05)
    raise AssertionError(f"no ReplicaSet for {name} {version}")


async def deploy_services(cluster: SandboxThread, namespace: str, names: list[str]) -> None:
    """Each service at FIRST_VERSION, then 1.1.0 on top, rolled out: two revisions each."""
    async with aiohttp.ClientSession() as http:

        async def two_versions(name: str) -> None:
            await deploy(http, cluster, namespace, name, FIRST_VERSION)
            await deploy(http, cluster, namespace, name, "1.1.0")

        await asyncio.gather(*(two_versions(name) for name in names))
        base = f"{cluster.url}/apis/apps/v1/namespaces/{namespace}/deployments"
        for _ in range(300):
            async with http.get(base) as answer:
                items = (await answer.json())["items"]
            done = {
                d["metadata"]["name"]
                for d in items
                if d.get("status", {}).get("observedGeneration") == 2
                and d.get("status", {}).get("updatedReplicas") == 2
            }
            if set(names) <= done:
                return
            await asyncio.sleep(0.1)
    raise AssertionError("the services' deploys did not roll out")
