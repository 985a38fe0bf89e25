"""Server-side defaulting: one stored form whatever encoding the client used."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollback_sandbox.cluster.defaults import apply_defaults, image_tag

RAW: dict[str, Any] = {
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 80}]}]
            },
        },
    }
}


def test_raw_json_and_a_go_marshalled_template_default_alike() -> None:
    go_style = copy.deepcopy(RAW)
    template = go_style["spec"]["template"]
    template["metadata"]["creationTimestamp"] = None
    template["spec"]["containers"][0]["resources"] = {}
    assert apply_defaults("Deployment", copy.deepcopy(RAW)) == apply_defaults(
        "Deployment", go_style
    )


def test_deployment_and_pod_spec_defaults() -> None:
    d = apply_defaults("Deployment", copy.deepcopy(RAW))
    spec = d["spec"]
    assert spec["replicas"] == 1
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["creationTimestamp"] is None
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["schedulerName"]) == (
        "Always",
        "ClusterFirst",
        "default-scheduler",
    )
    assert (pod["terminationGracePeriodSeconds"], pod["securityContext"]) == (30, {})
    [c] = pod["containers"]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["resources"] == {}
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert "enableServiceLinks" not in pod  # only Pods get that, not templates


def test_recreate_gets_no_rolling_parameters() -> None:
    d = copy.deepcopy(RAW)
    d["spec"]["strategy"] = {"type": "Recreate"}
    assert apply_defaults("Deployment", d)["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize(
    ("image", "tag", "policy"),
    [
        ("nginx", "latest", "Always"),
        ("nginx:latest", "latest", "Always"),
        ("registry:5000/team/app", "latest", "Always"),
        ("registry:5000/team/app:1.2", "1.2", "IfNotPresent"),
        ("app@sha256:abc", "", "IfNotPresent"),
    ],
)
def test_image_pull_policy_follows_the_tag(image: str, tag: str, policy: str) -> None:
    assert image_tag(image) == tag
    pod = apply_defaults("Pod", {"spec": {"containers": [{"name": "c", "image": image}]}})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_probe_and_volume_defaults() -> None:
    pod = apply_defaults(
        "Pod",
        {
            "spec": {
                "containers": [
                    {"name": "c", "image": "c:1", "readinessProbe": {"httpGet": {"port": 80}}}
                ],
                "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "cfg"}}],
            }
        },
    )
    probe = pod["spec"]["containers"][0]["readinessProbe"]
    assert probe == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert pod["spec"]["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
    ]
