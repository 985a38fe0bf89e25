"""The pod: its hardening (non-root, read-only root filesystem, no capabilities, only /tmp
writable), its defaults, and its ports and probes meeting the bot's HTTP server."""

from __future__ import annotations

import pytest

from tests.helm.chart import (
    ALL_INTERFACES,
    MINIMAL,
    VALUES_FILES,
    container,
    env_of,
    one,
    pod_spec,
    render,
)


@pytest.mark.parametrize("name", VALUES_FILES)
def test_pod_security(name: str) -> None:
    manifests = render(name)
    spec = pod_spec(manifests)
    assert spec["automountServiceAccountToken"] is True  # the bot uses the in-cluster config
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec.get("hostNetwork") is None and spec.get("hostPID") is None
    c = container(manifests)
    assert c["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    volumes = {v["name"]: v for v in spec["volumes"]}
    writable = [m for m in c["volumeMounts"] if not m.get("readOnly")]
    assert writable == [{"name": "tmp", "mountPath": "/tmp"}]
    assert "emptyDir" in volumes["tmp"]


def test_pod_defaults() -> None:
    manifests = render(MINIMAL)
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    spec = pod_spec(manifests)
    assert spec["terminationGracePeriodSeconds"] == 120
    c = container(manifests)
    assert c["image"] == "rollback-bot:0.1.0"
    assert c["args"] == ["serve"]
    assert set(c["resources"]) == {"requests", "limits"}
    assert set(c["resources"]["requests"]) == {"cpu", "memory"}
    assert set(c["resources"]["limits"]) == {"cpu", "memory"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_ports_and_probes_meet_the_bots_http_server() -> None:
    manifests = render(MINIMAL)
    c = container(manifests)
    assert c["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    env = env_of(c)
    assert env["ROLLBACK_BOT_PORT"]["value"] == "3000"
    assert env["ROLLBACK_BOT_HOST"]["value"] == ALL_INTERFACES
    probes = {
        kind: c[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": {"path": "/healthz", "port": "http"},
        "livenessProbe": {"path": "/healthz", "port": "http"},
        "readinessProbe": {"path": "/readyz", "port": "http"},
    }
    service = one(manifests, "Service")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 3000, "targetPort": "http", "protocol": "TCP"}
    ]
    assert (
        service["spec"]["selector"]
        == one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    )


def test_a_changed_container_port_moves_everything_with_it() -> None:
    c = container(render(MINIMAL, sets=("containerPort=8080",)))
    assert c["ports"][0]["containerPort"] == 8080
    assert env_of(c)["ROLLBACK_BOT_PORT"]["value"] == "8080"
