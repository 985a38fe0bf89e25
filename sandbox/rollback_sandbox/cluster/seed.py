"""Starting states: `empty` (just the default namespace) and `demo` (shop/checkout with a
history 2.12.0 → 2.13.0 → 2.14.0, the last one bad but running, plus shop/cart)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rollback_sandbox.cluster import resources

if TYPE_CHECKING:
    from rollback_sandbox.cluster.server import Sandbox

JsonDict = dict[str, Any]
REGISTRY = "registry.example.com"


def _namespace(name: str) -> JsonDict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def checkout(version: str, pipeline: str) -> JsonDict:
    labels = {
        "app.kubernetes.io/name": "checkout",
        "app.kubernetes.io/part-of": "shop",
        "app.kubernetes.io/version": version,
    }
    env = [
        {"name": "PAYMENTS_URL", "value": "http://payments.shop.svc.cluster.local:8080"},
        {"name": "LOG_LEVEL", "value": "info"},
    ]
    if version >= "2.14.0":
        env.append({"name": "FEATURE_ONE_CLICK_CHECKOUT", "value": "true"})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "checkout",
            "namespace": "shop",
            "labels": labels,
            "annotations": {
                "kubernetes.io/change-cause": f"deploy checkout {version} (pipeline {pipeline})"
            },
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "checkout"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "checkout",
                            "image": f"{REGISTRY}/shop/checkout:{version}",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": env,
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                        },
                        {
                            "name": "log-shipper",
                            "image": f"{REGISTRY}/platform/log-shipper:1.4.2",
                            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                        },
                    ]
                },
            },
        },
    }


def cart(version: str, pipeline: str) -> JsonDict:
    labels = {"app.kubernetes.io/name": "cart", "app.kubernetes.io/part-of": "shop"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "cart",
            "namespace": "shop",
            "labels": {**labels, "app.kubernetes.io/version": version},
            "annotations": {
                "kubernetes.io/change-cause": f"deploy cart {version} (pipeline {pipeline})"
            },
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, "app.kubernetes.io/version": version}},
                "spec": {
                    "containers": [
                        {
                            "name": "cart",
                            "image": f"{REGISTRY}/shop/cart:{version}",
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def service(name: str) -> JsonDict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def settle(sb: Sandbox, limit: float = 3600.0) -> None:
    """Run the controllers on the frozen clock, jumping from timer to timer until all is quiet."""
    spent = 0.0
    while spent < limit:
        sb.reconcile()
        due = sb.next_timer()
        if due is None:
            return
        step = max(due, 0.0) + 0.001
        sb.clock.advance(step)
        spent += step


def _deploy(sb: Sandbox, obj: JsonDict) -> None:
    """Create, or replace the spec and annotations of, a Deployment, as `kubectl apply` would."""
    rt = resources.DEPLOYMENTS
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    live = sb.registry.find(rt, ns, name)
    if live is None:
        sb.registry.create(rt, ns, obj)
        return
    new = copy.deepcopy(live)
    new["spec"] = obj["spec"]
    new["metadata"]["labels"] = obj["metadata"]["labels"]
    kept = {
        k: v
        for k, v in (live["metadata"].get("annotations") or {}).items()
        if k.startswith("deployment.kubernetes.io/")
    }
    new["metadata"]["annotations"] = {**kept, **obj["metadata"]["annotations"]}
    sb.registry.update(rt, ns, name, new)


def _demo(sb: Sandbox) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    reg = sb.registry

    def ns_and_services() -> None:
        reg.create(resources.NAMESPACES, "", _namespace("shop"))
        reg.create(resources.SERVICES, "shop", service("checkout"))
        reg.create(resources.SERVICES, "shop", service("cart"))

    history: list[tuple[timedelta, Callable[[], None]]] = [
        (timedelta(days=6), ns_and_services),
        (timedelta(days=5, hours=3), lambda: _deploy(sb, checkout("2.12.0", "#4711"))),
        (timedelta(days=4, hours=7), lambda: _deploy(sb, cart("1.8.2", "#4733"))),
        (timedelta(days=2, hours=5), lambda: _deploy(sb, checkout("2.13.0", "#4790"))),
        (timedelta(days=1, hours=2), lambda: _deploy(sb, cart("1.8.3", "#4802"))),
        (timedelta(minutes=12), lambda: _deploy(sb, checkout("2.14.0", "#4821"))),
    ]
    for ago, step in history:
        sb.clock.freeze(now - ago)
        step()
        settle(sb)


def _empty(sb: Sandbox) -> None:
    pass


SEEDS: dict[str, Callable[[Sandbox], None]] = {"demo": _demo, "empty": _empty}


def seed_cluster(sb: Sandbox, name: str) -> None:
    sb.clock.freeze(datetime.now(UTC).replace(microsecond=0) - timedelta(days=30))
    sb.registry.create(resources.NAMESPACES, "", _namespace("default"))
    SEEDS[name](sb)
    sb.reconcile()
    sb.clock.resume()
