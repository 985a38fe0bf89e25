"""Starting states: `empty` (just the default namespace) and `demo` (shop/checkout with a
history 2.12.0 → 2.13.0 → 2.14.0, the last one bad but running, plus shop/cart; and two services
deployed by GitOps, 1.4.0 → 1.5.0 of shop/payments by the Argo CD Application argocd/shop-payments
with self-heal on, 3.1.0 → 3.2.0 of shop/search by the Flux Kustomization flux-system/search;
and two workloads with ControllerRevision histories: the StatefulSet shop/orders-db, 15.4 → 15.6,
and the DaemonSet shop/log-agent, 3.1.0 → 3.2.0, both rolled out and healthy)."""

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


# GitOps-managed services: payments by an Argo CD Application with self-heal (tracking-id
# annotation), search by a Flux Kustomization (its labels). Git's commits, made up.
PAYMENTS_APP = "shop-payments"
PAYMENTS_COMMITS = {"1.4.0": "4c1d2a7e9b0f", "1.5.0": "9e8f7a6b5c4d"}
SEARCH_COMMITS = {"3.1.0": "main@sha1:0a1b2c3d", "3.2.0": "main@sha1:5e6f7a8b"}


def gitops_managed(
    name: str, version: str, replicas: int, labels: dict[str, str], annotations: dict[str, str]
) -> JsonDict:
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop"}
    pod_labels = {**selector, "app.kubernetes.io/version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {**pod_labels, **labels},
            "annotations": {
                "kubernetes.io/change-cause": f"sync {name} {version} from Git",
                **annotations,
            },
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": f"{REGISTRY}/shop/{name}:{version}",
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def payments(version: str) -> JsonDict:
    return gitops_managed(
        "payments",
        version,
        2,
        {"app.kubernetes.io/instance": PAYMENTS_APP},
        {"argocd.argoproj.io/tracking-id": f"{PAYMENTS_APP}:apps/Deployment:shop/payments"},
    )


def search(version: str) -> JsonDict:
    return gitops_managed(
        "search",
        version,
        1,
        {
            "kustomize.toolkit.fluxcd.io/name": "search",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        },
        {},
    )


def payments_application(version: str) -> JsonDict:
    """What Argo CD shows once it synced `version` from Git, auto-sync with self-heal on."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": PAYMENTS_APP, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://git.example.com/shop/deploy.git",
                "path": "payments",
                "targetRevision": "main",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
        "status": {
            "sync": {"status": "Synced", "revision": PAYMENTS_COMMITS[version]},
            "health": {"status": "Healthy"},
            "resources": [
                {
                    "group": "apps",
                    "version": "v1",
                    "kind": "Deployment",
                    "namespace": "shop",
                    "name": "payments",
                    "status": "Synced",
                }
            ],
            "summary": {"images": [f"{REGISTRY}/shop/payments:{version}"]},
        },
    }


def search_kustomization(version: str) -> JsonDict:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "search", "namespace": "flux-system"},
        "spec": {
            "interval": "10m",
            "path": "./search",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "shop"},
        },
        "status": {
            "lastAppliedRevision": SEARCH_COMMITS[version],
            "lastAttemptedRevision": SEARCH_COMMITS[version],
        },
    }


def _gitops_objects(sb: Sandbox, app_version: str, search_version: str) -> None:
    reg = sb.registry
    for rt, obj in (
        (resources.APPLICATIONS, payments_application(app_version)),
        (resources.KUSTOMIZATIONS, search_kustomization(search_version)),
    ):
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if reg.find(rt, namespace, name) is None:
            reg.create(rt, namespace, obj)
        else:  # what the GitOps controller writes after a sync, status included
            live = reg.get(rt, namespace, name)
            live["spec"], live["status"] = obj["spec"], obj["status"]
            reg.store.put(rt.key, live)


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


# A blue-green pair: the Service shop/web routes by the `color` key of its selector to one of
# the Deployments web-blue and web-green; the idle colour stays, scaled to 0, ready to take the
# traffic back. The demo ends with 4.1.0 on blue (idle) and 4.2.0 on green (live).
WEB_COLOR_KEY = "color"


def web_color(color: str, version: str, replicas: int, pipeline: str) -> JsonDict:
    selector = {"app": "web", WEB_COLOR_KEY: color}
    labels = {**selector, "app.kubernetes.io/version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"web-{color}",
            "namespace": "shop",
            "labels": labels,
            "annotations": {
                "kubernetes.io/change-cause": f"deploy web {version} to {color} "
                f"(pipeline {pipeline})"
            },
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": f"{REGISTRY}/shop/web:{version}",
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def web_service(color: str) -> JsonDict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "selector": {"app": "web", WEB_COLOR_KEY: color},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }


def _web_release(sb: Sandbox, color: str, version: str, pipeline: str) -> None:
    """A blue-green release: `version` on `color`, ready before the Service is switched to it;
    then the other colour, if any, is scaled down (its ReplicaSet and template stay)."""
    reg = sb.registry
    _deploy(sb, web_color(color, version, 3, pipeline))
    settle(sb)
    live = reg.find(resources.SERVICES, "shop", "web")
    if live is None:
        reg.create(resources.SERVICES, "shop", web_service(color))
    else:
        live["spec"]["selector"] = web_service(color)["spec"]["selector"]
        reg.update(resources.SERVICES, "shop", "web", live)
    other = "green" if color == "blue" else "blue"
    idle = reg.find(resources.DEPLOYMENTS, "shop", f"web-{other}")
    if idle is not None:
        idle["spec"]["replicas"] = 0
        reg.update(resources.DEPLOYMENTS, "shop", f"web-{other}", idle)


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


def orders_db(version: str) -> JsonDict:
    """The orders database: a StatefulSet of three, rolled pod by pod from the highest ordinal."""
    selector = {"app.kubernetes.io/name": "orders-db", "app.kubernetes.io/part-of": "shop"}
    labels = {**selector, "app.kubernetes.io/version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "orders-db", "namespace": "shop", "labels": labels},
        "spec": {
            "replicas": 3,
            "serviceName": "orders-db",
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "postgres",
                            "image": f"{REGISTRY}/shop/orders-db:{version}",
                            "ports": [{"name": "postgres", "containerPort": 5432}],
                            "env": [{"name": "PGDATA", "value": "/var/lib/postgresql/data"}],
                            "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
                        }
                    ]
                },
            },
        },
    }


def log_agent(version: str, pipeline: str) -> JsonDict:
    """The node log agent: a DaemonSet, one pod per simulated node; its change-cause
    annotation is copied to each ControllerRevision, so `rollout history` shows it."""
    selector = {"app.kubernetes.io/name": "log-agent", "app.kubernetes.io/part-of": "shop"}
    labels = {**selector, "app.kubernetes.io/version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "log-agent",
            "namespace": "shop",
            "labels": labels,
            "annotations": {
                "kubernetes.io/change-cause": f"deploy log-agent {version} (pipeline {pipeline})"
            },
        },
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "log-agent",
                            "image": f"{REGISTRY}/platform/log-agent:{version}",
                            "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}},
                        }
                    ]
                },
            },
        },
    }


def _apply(sb: Sandbox, obj: JsonDict) -> None:
    """Create a StatefulSet or DaemonSet, or replace its spec, labels and annotations."""
    rt = resources.STATEFULSETS if obj["kind"] == "StatefulSet" else resources.DAEMONSETS
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    live = sb.registry.find(rt, ns, name)
    if live is None:
        sb.registry.create(rt, ns, obj)
        return
    new = copy.deepcopy(live)
    new["spec"] = obj["spec"]
    new["metadata"]["labels"] = obj["metadata"]["labels"]
    if "annotations" in obj["metadata"]:
        new["metadata"]["annotations"] = obj["metadata"]["annotations"]
    sb.registry.update(rt, ns, name, new)


# An Argo Rollouts canary (argo_rollouts.py): shop/payments-canary, 2.1.0 → 2.2.0 → 2.3.0, each
# through the steps 20% → 30 s pause → 50% → 30 s pause → 100%, settled at 2.3.0.
CANARY_STEPS = (
    {"setWeight": 20},
    {"pause": {"duration": "30s"}},
    {"setWeight": 50},
    {"pause": {"duration": "30s"}},
)


def payments_canary(version: str, pipeline: str) -> JsonDict:
    selector = {"app.kubernetes.io/name": "payments-canary", "app.kubernetes.io/part-of": "shop"}
    labels = {**selector, "app.kubernetes.io/version": version}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "payments-canary",
            "namespace": "shop",
            "labels": labels,
            "annotations": {
                "kubernetes.io/change-cause": f"deploy payments-canary {version} "
                f"(pipeline {pipeline})"
            },
        },
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": selector},
            "strategy": {"canary": {"steps": [copy.deepcopy(s) for s in CANARY_STEPS]}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "payments",
                            "image": f"{REGISTRY}/shop/payments-canary:{version}",
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def _rollout(sb: Sandbox, obj: JsonDict) -> None:
    """Create a Rollout, or replace its spec, labels and annotations (the controller's
    `rollout.argoproj.io/` annotations kept), as `kubectl apply` would."""
    rt = resources.ROLLOUTS
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
        if k.startswith("rollout.argoproj.io/")
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
        reg.create(resources.NAMESPACES, "", _namespace("argocd"))
        reg.create(resources.NAMESPACES, "", _namespace("flux-system"))

    def gitops(app_version: str, search_version: str) -> None:
        _deploy(sb, payments(app_version))
        _deploy(sb, search(search_version))
        _gitops_objects(sb, app_version, search_version)

    history: list[tuple[timedelta, Callable[[], None]]] = [
        (timedelta(days=6), ns_and_services),
        (timedelta(days=5, hours=3), lambda: _deploy(sb, checkout("2.12.0", "#4711"))),
        (timedelta(days=4, hours=7), lambda: _deploy(sb, cart("1.8.2", "#4733"))),
        (timedelta(days=3, hours=4), lambda: _apply(sb, orders_db("15.4"))),
        (timedelta(days=3), lambda: _apply(sb, log_agent("3.1.0", "#4751"))),
        (timedelta(days=2, hours=5), lambda: _deploy(sb, checkout("2.13.0", "#4790"))),
        (timedelta(days=1, hours=2), lambda: _deploy(sb, cart("1.8.3", "#4802"))),
        (timedelta(days=1, hours=1), lambda: _web_release(sb, "blue", "4.1.0", "#4806")),
        (timedelta(hours=6), lambda: _apply(sb, orders_db("15.6"))),
        (timedelta(hours=4), lambda: _apply(sb, log_agent("3.2.0", "#4815"))),
        (timedelta(hours=3), lambda: _web_release(sb, "green", "4.2.0", "#4818")),
        (timedelta(days=2, hours=2), lambda: _rollout(sb, payments_canary("2.1.0", "#4795"))),
        (timedelta(days=1, hours=4), lambda: _rollout(sb, payments_canary("2.2.0", "#4805"))),
        (timedelta(hours=2), lambda: _rollout(sb, payments_canary("2.3.0", "#4819"))),
        (timedelta(days=1), lambda: gitops("1.4.0", "3.1.0")),
        (timedelta(minutes=20), lambda: gitops("1.5.0", "3.2.0")),
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
