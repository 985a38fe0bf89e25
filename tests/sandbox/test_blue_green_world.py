"""The blue-green part of the simulated cluster, judged by the real kubectl (v1.33) and the
official Python client: the demo's shop/web Service routing to web-green, the EndpointSlices the
controller keeps for it, `kubectl scale` of the idle colour, a switch by patching the Service's
selector, readiness flips, and what a Service without a selector gets (nothing); and the bot's
pure blue-green decisions (bot.domain.rollback.blue_green) applied to it with kubectl."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch

from bot.adapters.kube.parsing import parse_deployment
from bot.domain.rollback.blue_green import (
    BlueGreenSpec,
    ColorState,
    SwitchPlan,
    SwitchRefused,
    color_state,
    parse_endpoint_slices,
    parse_service,
    plan_switch,
    pod_names,
    ready_to_route,
    switch_done,
    switch_progress,
)
from rollback_sandbox.cluster import resources
from rollback_sandbox.cluster.endpointslices import stable_ip
from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import FAST, Kubectl, find_kubectl

pytestmark = pytest.mark.kubectl

JsonDict = dict[str, Any]
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[SandboxThread, Kubectl]]:
    """The demo cluster, kubectl's namespace `shop`."""
    with SandboxThread(seed="demo", speed=FAST) as sb:
        config_path = sb.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        yield sb, Kubectl(find_kubectl(), config_path, tmp_path / "cache")


def get(kubectl: Kubectl, *what: str) -> Any:
    return json.loads(kubectl("get", *what, "-o", "json").stdout)


def slices(kubectl: Kubectl, service: str) -> list[JsonDict]:
    items: list[JsonDict] = get(kubectl, "endpointslices", "-l", f"{SERVICE_NAME}={service}")[
        "items"
    ]
    return items


def endpoints(kubectl: Kubectl, service: str) -> dict[str, bool]:
    """The Service's endpoints across its slices: pod name -> ready."""
    return {
        ep["targetRef"]["name"]: ep["conditions"]["ready"]
        for s in slices(kubectl, service)
        for ep in s.get("endpoints") or []
    }


def pods(kubectl: Kubectl, selector: str) -> dict[str, JsonDict]:
    return {p["metadata"]["name"]: p for p in get(kubectl, "pods", "-l", selector)["items"]}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def typed_client(sb: SandboxThread, tmp_path: Path) -> Any:
    loader: Any = config  # the loader has no type hints
    return loader.new_client_from_config(
        config_file=str(sb.write_kubeconfig(tmp_path / "typed-kubeconfig", namespace="shop"))
    )


# ---------------------------------------------------------------- the demo's pair


def test_the_demo_routes_web_to_green_and_keeps_blue_scaled_down(
    demo: tuple[SandboxThread, Kubectl],
) -> None:
    _, kubectl = demo
    svc = get(kubectl, "service/web")
    assert svc["spec"]["selector"] == {"app": "web", "color": "green"}
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}
    ]
    blue, green = get(kubectl, "deploy/web-blue"), get(kubectl, "deploy/web-green")
    assert blue["spec"]["replicas"] == 0
    assert blue["metadata"]["labels"] == {
        "app": "web",
        "color": "blue",
        "app.kubernetes.io/version": "4.1.0",
    }
    assert blue["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/web:4.1.0")
    assert green["spec"]["replicas"] == green["status"]["availableReplicas"] == 3
    assert green["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "4.2.0"

    [eps] = slices(kubectl, "web")
    meta = eps["metadata"]
    assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5
    assert meta["generateName"] == "web-"
    assert meta["labels"] == {"app": "web", SERVICE_NAME: "web", MANAGED_BY: CONTROLLER}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": svc["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert eps["addressType"] == "IPv4"
    assert eps["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    green_pods = pods(kubectl, "app=web,color=green")
    assert len(green_pods) == 3
    assert sorted(eps["endpoints"], key=lambda e: e["targetRef"]["name"]) == [
        {
            "addresses": [pod["status"]["podIP"]],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "targetRef": {
                "kind": "Pod",
                "namespace": "shop",
                "name": name,
                "uid": pod["metadata"]["uid"],
            },
            "nodeName": pod["spec"]["nodeName"],
        }
        for name, pod in sorted(green_pods.items())
    ]

    # kubectl's table, with the real server's columns; a named targetPort resolves per pod
    table = kubectl("get", "endpointslices", "-l", f"{SERVICE_NAME}=web").stdout.splitlines()
    assert table[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    cells = table[1].split()
    assert cells[:3] == [meta["name"], "IPv4", "8080"]
    assert sorted(cells[3].split(",")) == sorted(p["status"]["podIP"] for p in green_pods.values())
    [checkout] = slices(kubectl, "checkout")
    assert checkout["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    resources_ = kubectl("api-resources", "--api-group=discovery.k8s.io").stdout.splitlines()
    assert resources_[1].split() == [
        "endpointslices",
        "discovery.k8s.io/v1",
        "true",
        "EndpointSlice",
    ]


def test_scale_up_blue_then_switch_the_service_and_the_slices_follow(
    demo: tuple[SandboxThread, Kubectl], tmp_path: Path
) -> None:
    sb, kubectl = demo
    assert kubectl("scale", "deploy/web-blue", "--replicas=3").stdout.strip() == (
        "deployment.apps/web-blue scaled"
    )
    kubectl("rollout", "status", "deploy/web-blue", "--timeout=30s")
    blue_pods = pods(kubectl, "app=web,color=blue")
    assert len(blue_pods) == 3
    assert all(
        c["status"] == "True"
        for p in blue_pods.values()
        for c in p["status"]["conditions"]
        if c["type"] == "Ready"
    )
    # scaled up but not routed: the slices still hold green's pods only
    assert set(endpoints(kubectl, "web")) == set(pods(kubectl, "app=web,color=green"))

    api = typed_client(sb, tmp_path)
    try:
        discovery: Any = client.DiscoveryV1Api(api)
        listed = discovery.list_namespaced_endpoint_slice(
            "shop", label_selector=f"{SERVICE_NAME}=web"
        )
        before: Any = listed.items[0]
        assert len(listed.items) == 1
        assert type(before).__name__ == "V1EndpointSlice"  # deserialized, typed
        assert {ep.target_ref.name for ep in before.endpoints} == set(
            pods(kubectl, "app=web,color=green")
        )
        kubectl(
            "patch", "service", "web", "-p", '{"spec":{"selector":{"app":"web","color":"blue"}}}'
        )
        # the watch from the list's resourceVersion sees the slice change over to blue
        seen: list[set[str]] = []
        watch_class: Any = watch.Watch  # no type hints
        watcher = watch_class()
        for event in watcher.stream(
            discovery.list_namespaced_endpoint_slice,
            "shop",
            label_selector=f"{SERVICE_NAME}=web",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=10,
        ):
            eps = event["object"]
            assert event["type"] == "MODIFIED"
            assert eps.metadata.name == before.metadata.name  # updated in place, not replaced
            names = {ep.target_ref.name for ep in eps.endpoints or []}
            seen.append(names)
            if names == set(blue_pods):
                watcher.stop()
        assert seen and seen[-1] == set(blue_pods)
        # the switch is one write of the slice: green's pods leave as blue's arrive
        assert len(seen) == 1
    finally:
        api.close()
    assert endpoints(kubectl, "web") == dict.fromkeys(blue_pods, True)
    [eps] = slices(kubectl, "web")
    assert {ep["addresses"][0] for ep in eps["endpoints"]} == {
        p["status"]["podIP"] for p in blue_pods.values()
    }


def test_a_pod_turning_unready_is_listed_not_ready_and_comes_back(
    demo: tuple[SandboxThread, Kubectl],
) -> None:
    _, kubectl = demo
    name = sorted(pods(kubectl, "app=web,color=green"))[0]

    def set_ready(status: str) -> None:
        patch = {"status": {"conditions": [{"type": "Ready", "status": status}]}}
        kubectl("patch", "pod", name, "--subresource=status", "-p", json.dumps(patch))

    set_ready("False")
    wait_for(lambda: endpoints(kubectl, "web").get(name) is False, "the endpoint to be unready")
    [eps] = slices(kubectl, "web")
    [mine] = [ep for ep in eps["endpoints"] if ep["targetRef"]["name"] == name]
    assert mine["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert sum(ep["conditions"]["ready"] for ep in eps["endpoints"]) == 2
    set_ready("True")
    wait_for(lambda: endpoints(kubectl, "web").get(name) is True, "the endpoint to be ready")


def test_nothing_is_written_when_nothing_changed(demo: tuple[SandboxThread, Kubectl]) -> None:
    sb, kubectl = demo
    [before] = slices(kubectl, "web")
    name = sorted(pods(kubectl, "app=web,color=green"))[0]
    kubectl("annotate", "pod", name, "example.com/touched=yes")
    kubectl("label", "service", "cart", "example.com/touched=yes")
    sb.call(sb.sandbox.reconcile)  # a whole pass of the controllers, on the sandbox's loop
    [after] = slices(kubectl, "web")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # the Service's own labels are copied to its slices, so that one is written
    [cart] = slices(kubectl, "cart")
    assert cart["metadata"]["labels"]["example.com/touched"] == "yes"


# ---------------------------------------------------------------- Services of every kind


SERVICES = """apiVersion: v1
kind: Service
metadata: {name: external}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: http}, {name: admin, port: 9000, targetPort: 9000}]
---
apiVersion: v1
kind: Pod
metadata: {name: api-0, labels: {app: api}}
spec:
  containers:
  - name: api
    image: api:1.0
    ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, labels: {app: api}}
spec:
  containers:
  - name: api
    image: api:1.0
"""


def test_services_with_and_without_selectors(sandbox: SandboxThread, kubectl: Kubectl) -> None:
    kubectl("apply", "--validate=false", "-f", "-", stdin=SERVICES)
    # the selector-less one gets no slice from the controller
    wait_for(lambda: len(endpoints(kubectl, "api")) == 2, "api's pods to be listed")
    assert slices(kubectl, "external") == []
    # one that matches no pod keeps a placeholder: endpoints and ports null, as the real
    # apiserver returns them (the typed Python client cannot read it: kubernetes-client/python#2423)
    [nobody] = slices(kubectl, "nobody")
    assert nobody["endpoints"] is None
    assert nobody["ports"] is None
    table = kubectl("get", "endpointslices", "-l", f"{SERVICE_NAME}=nobody").stdout.splitlines()
    assert table[1].split()[1:4] == ["IPv4", "<unset>", "<unset>"]
    # pods resolving the named port differently go to different slices
    by_pod = {
        ep["targetRef"]["name"]: s["ports"] for s in slices(kubectl, "api") for ep in s["endpoints"]
    }
    assert by_pod == {
        "api-0": [
            {"name": "http", "port": 8080, "protocol": "TCP"},
            {"name": "admin", "port": 9000, "protocol": "TCP"},
        ],
        "api-1": [{"name": "admin", "port": 9000, "protocol": "TCP"}],
    }

    # a slice someone else keeps for the selector-less Service is left alone
    manual = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "external-1",
            "labels": {SERVICE_NAME: "external", MANAGED_BY: "example.com/me"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["192.0.2.10"], "conditions": {"ready": True}}],
    }
    kubectl("create", "--validate=false", "-f", "-", stdin=json.dumps(manual))
    kubectl("label", "service", "external", "example.com/touched=yes")
    [kept] = slices(kubectl, "external")
    assert kept["endpoints"] == manual["endpoints"]

    # a managed slice deleted by hand is made again
    [gone] = slices(kubectl, "nobody")
    kubectl("delete", "endpointslice", gone["metadata"]["name"])
    wait_for(
        lambda: (
            [s["metadata"]["name"] for s in slices(kubectl, "nobody")]
            not in ([], [gone["metadata"]["name"]])
        ),
        "nobody's placeholder to be made again",
    )

    # losing its selector, a Service keeps the slices it had, unchanged, as in a real cluster
    # (kubernetes/kubernetes#118376); deleting it deletes them (they are owned by it)
    before = slices(kubectl, "api")
    kubectl(
        "patch", "service", "api", "--type=json", "-p", '[{"op":"remove","path":"/spec/selector"}]'
    )
    kubectl("delete", "pod", "api-1", "--wait=false")
    sandbox.call(sandbox.sandbox.reconcile)
    assert slices(kubectl, "api") == before
    kubectl("delete", "service", "api", "nobody")
    wait_for(lambda: not slices(kubectl, "api") and not slices(kubectl, "nobody"), "GC")


def test_a_running_pod_without_an_ip_is_given_a_stable_one(kubectl: Kubectl) -> None:
    kubectl(
        "apply", "--validate=false", "-f", "-",
        stdin=SERVICES.split("---")[2] + "---" + SERVICES.split("---")[3],
    )  # fmt: skip
    wait_for(lambda: endpoints(kubectl, "api") == {"api-0": True}, "api-0 to be listed")
    pod = get(kubectl, "pod/api-0")
    kubectl(
        "patch", "pod", "api-0", "--subresource=status", "--type=json",
        "-p", '[{"op":"remove","path":"/status/podIP"},{"op":"remove","path":"/status/podIPs"}]',
    )  # fmt: skip
    want = stable_ip(pod["metadata"]["uid"])
    wait_for(lambda: get(kubectl, "pod/api-0")["status"].get("podIP") == want, "a new pod IP")
    assert get(kubectl, "pod/api-0")["status"]["podIPs"] == [{"ip": want}]
    wait_for(
        lambda: (
            [ep["addresses"] for s in slices(kubectl, "api") for ep in s["endpoints"]] == [[want]]
        ),
        "the slice to list the new address",
    )


def test_the_typed_client_reads_the_demo_slices(
    demo: tuple[SandboxThread, Kubectl], tmp_path: Path
) -> None:
    sb, _ = demo
    api = typed_client(sb, tmp_path)
    try:
        discovery: Any = client.DiscoveryV1Api(api)  # used untyped, as the other sandbox tests do
        items = discovery.list_namespaced_endpoint_slice("shop").items
    finally:
        api.close()
    by_service = {s.metadata.labels[SERVICE_NAME]: s for s in items}
    assert set(by_service) == {"cart", "checkout", "web"}
    web = by_service["web"]
    assert web.address_type == "IPv4"
    assert [(p.name, p.port, p.protocol) for p in web.ports] == [("http", 8080, "TCP")]
    assert all(ep.conditions.ready and ep.target_ref.kind == "Pod" for ep in web.endpoints)
    assert {ep.target_ref.name.rsplit("-", 2)[0] for ep in web.endpoints} == {"web-green"}
    # the stored objects are what the API served
    stored = sb.call(lambda: sb.sandbox.registry.list(resources.ENDPOINTSLICES, "shop"))
    assert {s["metadata"]["name"] for s in stored} == {s.metadata.name for s in items}


# ---------------------------------------------------------------- the bot's decisions, applied


def test_the_domains_switch_plan_applied_with_kubectl_switches_the_demo(
    demo: tuple[SandboxThread, Kubectl],
) -> None:
    _, kubectl = demo
    spec = BlueGreenSpec("web", "color", (("blue", "web-blue"), ("green", "web-green")))

    def color_states() -> dict[str, ColorState]:
        return {
            color: color_state(spec, color, parse_deployment(get(kubectl, f"deploy/{name}")))
            for color, name in spec.colors
        }

    service_json = get(kubectl, "service/web")
    routing = parse_service(service_json, spec)
    assert routing.live_color == "green"
    decision = plan_switch(spec, routing, color_states(), "blue")
    assert isinstance(decision, SwitchPlan)
    assert decision.needs_scale_up and decision.scale_patch == {"spec": {"replicas": 3}}

    def merge_patch(target: str, body: JsonDict) -> None:
        kubectl("patch", target, "--type=merge", "-p", json.dumps(body))

    assert decision.scale_patch is not None
    merge_patch("deploy/web-blue", decision.scale_patch)
    first: SwitchPlan = decision
    wait_for(lambda: ready_to_route(first, color_states()["blue"]), "blue to be available")
    # a Service changed since it was read is not overwritten: the resourceVersion precondition
    kubectl("label", "service", "web", "example.com/touched=yes")
    stale = kubectl(
        "patch", "service/web", "--type=merge", "-p", json.dumps(decision.service_patch),
        check=False,
    )  # fmt: skip
    assert stale.returncode != 0
    assert "the object has been modified" in stale.stderr
    assert get(kubectl, "service/web")["spec"]["selector"]["color"] == "green"
    # read again, planned again, sent: the slices follow
    routing = parse_service(get(kubectl, "service/web"), spec)
    decision = plan_switch(spec, routing, color_states(), "blue")
    assert isinstance(decision, SwitchPlan) and not decision.needs_scale_up
    merge_patch("service/web", decision.service_patch)
    blue = pod_names(get(kubectl, "pods", "-l", "app=web,color=blue")["items"])

    def done() -> bool:
        listed = parse_endpoint_slices(get(kubectl, "endpointslices"), "web")
        return switch_done(listed, blue)

    wait_for(done, "the switch to show in the slices")
    listed = parse_endpoint_slices(get(kubectl, "endpointslices"), "web")
    assert switch_progress(listed, "blue", blue).message == "3 of 3 endpoints are blue's pods"
    assert parse_service(get(kubectl, "service/web"), spec).live_color == "blue"
    refused = plan_switch(
        spec, parse_service(get(kubectl, "service/web"), spec), color_states(), "blue"
    )
    assert refused == SwitchRefused("web already routes to blue (web-blue): nothing to switch.")
