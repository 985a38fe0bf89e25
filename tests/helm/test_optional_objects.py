"""The optional parts, switched on by the rich values: image by digest, scheduling and pull
secrets, the Ingress, the NetworkPolicy, the PodDisruptionBudget and the ServiceMonitor."""

from __future__ import annotations

from tests.helm.chart import MINIMAL, NAMESPACE, RICH, container, one, pod_spec, render


def test_rich_image_scheduling_and_pull_secrets() -> None:
    manifests = render(RICH)
    spec = pod_spec(manifests)
    assert container(manifests)["image"] == (
        "registry.example.com/platform/rollback-bot@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in spec["affinity"]
    assert spec["priorityClassName"] == "platform-critical"
    assert one(manifests, "Deployment")["spec"]["replicas"] == 2
    assert one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]["team"] == (
        "platform"
    )


def test_ingress_routes_only_slack_and_alertmanager() -> None:
    ingress = one(render(RICH), "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"secretName": "rollback-bot-tls", "hosts": ["rollback-bot.example.com"]}
    ]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "rollback-bot.example.com"
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [
        ("/slack/events", "Exact"),
        ("/alertmanager", "Exact"),
    ]
    for p in rule["http"]["paths"]:
        assert p["backend"] == {"service": {"name": "rollback-bot", "port": {"name": "http"}}}


def test_network_policy() -> None:
    manifests = render(RICH)
    policy = one(manifests, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"] == one(manifests, "Service")["spec"]["selector"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert [p["namespaceSelector"]["matchLabels"] for p in ingress["from"]] == [
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        {"kubernetes.io/metadata.name": "monitoring"},
    ]
    dns, api, slack, proxy = policy["egress"]
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert api == {
        "ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
    }
    assert slack == {
        "ports": [{"port": 443, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
    }
    assert proxy["ports"] == [{"port": 3128, "protocol": "TCP"}]
    # Defaults: any source, but the HTTP port only; any API server address on its ports.
    default = one(render(MINIMAL, sets=("networkPolicy.enabled=true",)), "NetworkPolicy")["spec"]
    assert default["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    assert "to" not in default["egress"][1]


def test_pod_disruption_budget() -> None:
    manifests = render(RICH)
    pdb = one(manifests, "PodDisruptionBudget")["spec"]
    assert pdb == {
        "minAvailable": 1,
        "selector": one(manifests, "Deployment")["spec"]["selector"],
    }
    default = one(
        render(MINIMAL, sets=("podDisruptionBudget.enabled=true",)), "PodDisruptionBudget"
    )
    assert default["spec"]["maxUnavailable"] == 1 and "minAvailable" not in default["spec"]


def test_service_monitor_scrapes_metrics_on_the_http_port() -> None:
    manifests = render(RICH)
    monitor = one(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = one(manifests, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
