"""The Helm chart and the image files, checked with the real helm and kubectl.

- `helm lint` and `helm template` with the chart's defaults and with values files in
  `helm_values/` (minimal: what an install needs; namespaced: explicit RBAC namespaces, restricted
  state names, Socket Mode; rich: every optional part on, cluster-wide, existingSecret);
- the schema and the templates refuse bad values with helm's message naming the key;
- RBAC: the exact rules of each Role/ClusterRole, no wildcard, no Secrets, no Pods or pods/exec;
- the pod's security, probes and ports; the Secret mounted as files, no token in the environment;
  the bot's own settings loader reading the rendered environment and Secret; the catalog ConfigMap
  loaded by the bot's catalog loader; checksums that roll the pods;
- every rendered manifest validated against the Kubernetes JSON schemas (kubernetes-validate,
  offline) for the oldest supported, kubectl's, and the newest known Kubernetes;
- the Dockerfile agrees with the chart (user, port, entrypoint, command), `.dockerignore` keeps the
  context to what the wheel is built from, and that context builds a wheel with `bot`, `handlers`
  and the `rollback-bot` console script;
- the rendered manifests are accepted by the simulated API server through the real kubectl.
"""

from __future__ import annotations

import base64
import configparser
import fnmatch
import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from bot.config.catalog import Catalog
from bot.config.settings import load_settings
from tests.integration.kube_history import Kubectl

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "rollback-bot"
VALUES_DIR = Path(__file__).resolve().parent / "helm_values"
TOOLS_BIN = REPO / ".tools" / "bin"

RELEASE = "rb"
NAMESPACE = "ops"
FULLNAME = "rb-rollback-bot"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - in its pod the bot listens on all interfaces

MINIMAL = "minimal"
NAMESPACED = "namespaced"
RICH = "rich"
VALUES_FILES = (MINIMAL, NAMESPACED, RICH)

TOKEN_KEYS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "ROLLBACK_BOT_ALERTMANAGER_TOKEN",
)

# What the bot may do where the Deployments are, and in its own namespace:
# (apiGroup, resource) -> verbs. The rollback Lease lives next to its Deployment
# (bot/rollback/locks.py), so it is granted with the Deployments.
ROLLOUT_RULES = {
    ("apps", "deployments"): {"get", "list", "watch", "patch"},
    ("apps", "replicasets"): {"get", "list", "watch"},
    ("coordination.k8s.io", "leases"): {"get", "create", "update", "patch"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
# By name where RBAC allows (create cannot be): the one ConfigMap the bot keeps its alert index in.
STATE_RULES = {
    ("", "configmaps", ()): {"create"},
    ("", "configmaps", ("rollback-bot-alert-messages",)): {"get", "update", "patch"},
}


def named_rules(role: Manifest) -> dict[tuple[str, str, tuple[str, ...]], set[str]]:
    return {
        (r["apiGroups"][0], r["resources"][0], tuple(r.get("resourceNames", ()))): set(r["verbs"])
        for r in role["rules"]
    }


Manifest = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# helm


def pinned_tool(name: str) -> str:
    """The pinned tool from `.tools/bin` (first on PATH under `make`), never a system one."""
    found = shutil.which(name)
    if found is None or Path(found).resolve().parent != TOOLS_BIN.resolve():
        candidate = TOOLS_BIN / name
        found = str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    if found is None:
        pytest.fail(f"{name} is not in {TOOLS_BIN}: run `make tools`")
    return found


@functools.cache
def helm_binary() -> str:
    return pinned_tool("helm")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run helm; the caller checks the outcome (failures are part of what is tested)."""
    return subprocess.run(
        [helm_binary(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def values_args(values: tuple[str, ...], sets: tuple[str, ...]) -> list[str]:
    args: list[str] = []
    for name in values:
        args += ["-f", str(VALUES_DIR / f"{name}.yaml")]
    for item in sets:
        args += ["--set", item]
    return args


def template(*values: str, sets: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> str:
    result = helm(
        "template", RELEASE, str(CHART), "-n", NAMESPACE, *values_args(values, sets), *extra
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@functools.cache
def _render(values: tuple[str, ...], sets: tuple[str, ...]) -> str:
    return template(*values, sets=sets)


def render(*values: str, sets: tuple[str, ...] = ()) -> list[Manifest]:
    """The manifests `helm template` renders (parsed afresh each call: tests may not share them)."""
    return [doc for doc in yaml.safe_load_all(_render(values, sets)) if doc]


def refusal(*values: str, sets: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> str:
    result = helm(
        "template", RELEASE, str(CHART), "-n", NAMESPACE, *values_args(values, sets), *extra
    )
    assert result.returncode != 0, f"rendered although it should not:\n{result.stdout[:2000]}"
    return result.stderr


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(manifests, kind, name)
    assert len(found) == 1, f"{len(found)} {kind} named {name}: {[kinds(found)]}"
    return found[0]


def kinds(manifests: list[Manifest]) -> list[tuple[str, str, str | None]]:
    return sorted(
        (m["kind"], m["metadata"]["name"], m["metadata"].get("namespace")) for m in manifests
    )


def pod_spec(manifests: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = one(manifests, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(manifests: list[Manifest]) -> dict[str, Any]:
    containers = pod_spec(manifests)["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def values_file(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text())
    return data


def chart_defaults() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return data


def rules_of(role: Manifest) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, for rules without resourceNames; one rule per pair."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                key = (group, resource)
                assert key not in out, f"{key} granted twice in {role['metadata']['name']}"
                out[key] = set(rule["verbs"])
    return out


# ---------------------------------------------------------------------------------------------
# lint and render


def test_chart_metadata_follows_the_project() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "rollback-bot"
    assert chart["appVersion"] == project["version"]
    assert (CHART / "templates" / "NOTES.txt").is_file()


def test_lint_passes_with_the_defaults_and_warns_of_the_missing_tokens() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    # lint only warns of `required`; `helm template`/`install` refuse (next test).
    assert "secret.slackBotToken is required" in result.stderr


@pytest.mark.parametrize("name", VALUES_FILES)
def test_lint_passes_with_each_values_file(name: str) -> None:
    result = helm("lint", "--strict", str(CHART), *values_args((name,), ()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout


def test_the_defaults_alone_do_not_install_a_bot_without_tokens() -> None:
    message = refusal()
    assert "secret.slackBotToken is required" in message
    assert "existingSecret" in message


def test_default_render_creates_exactly_the_base_resources() -> None:
    manifests = render(MINIMAL)
    assert kinds(manifests) == [
        ("ConfigMap", f"{FULLNAME}-catalog", NAMESPACE),
        ("Deployment", FULLNAME, NAMESPACE),
        ("Role", FULLNAME, "shop"),
        ("Role", f"{FULLNAME}-state", NAMESPACE),
        ("RoleBinding", FULLNAME, "shop"),
        ("RoleBinding", f"{FULLNAME}-state", NAMESPACE),
        ("Secret", FULLNAME, NAMESPACE),
        ("Service", FULLNAME, NAMESPACE),
        ("ServiceAccount", FULLNAME, NAMESPACE),
    ]


def test_rich_render_creates_every_optional_resource() -> None:
    manifests = render(RICH)
    assert kinds(manifests) == [
        ("ClusterRole", "rollback-bot-ops", None),
        ("ClusterRoleBinding", "rollback-bot-ops", None),
        ("ConfigMap", "rollback-bot-catalog", NAMESPACE),
        ("Deployment", "rollback-bot", NAMESPACE),
        ("Ingress", "rollback-bot", NAMESPACE),
        ("NetworkPolicy", "rollback-bot", NAMESPACE),
        ("PodDisruptionBudget", "rollback-bot", NAMESPACE),
        ("Role", "rollback-bot-state", NAMESPACE),
        ("RoleBinding", "rollback-bot-state", NAMESPACE),
        ("Service", "rollback-bot", NAMESPACE),
        ("ServiceAccount", "rollback-bot", NAMESPACE),
        ("ServiceMonitor", "rollback-bot", NAMESPACE),
    ]


@pytest.mark.parametrize("name", VALUES_FILES)
def test_every_resource_has_the_standard_labels(name: str) -> None:
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    for m in render(name):
        labels = m["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "rollback-bot", m["kind"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["helm.sh/chart"] == f"rollback-bot-{version}"


def test_name_overrides() -> None:
    by_name = render(MINIMAL, sets=("nameOverride=rbot",))
    assert one(by_name, "Deployment")["metadata"]["name"] == "rb-rbot"
    assert one(by_name, "Service")["spec"]["selector"]["app.kubernetes.io/name"] == "rbot"
    full = render(MINIMAL, sets=("fullnameOverride=chatops",))
    assert {m["metadata"]["name"] for m in full} == {"chatops", "chatops-catalog", "chatops-state"}


# ---------------------------------------------------------------------------------------------
# refusals: the schema (helm's message names the key) and the templates (a sentence)

SCHEMA_REFUSALS: list[tuple[str, tuple[str, ...], str]] = [
    ("log level", ("settings.logLevel=LOUD",), "at '/settings/logLevel': value must be one of"),
    (
        "namespace not a DNS label",
        ("catalog.services.web.namespace=Web_NS", "catalog.services.web.deployment=web"),
        "at '/catalog/services/web/namespace': 'Web_NS' does not match pattern",
    ),
    (
        "deployment not a DNS name",
        ("catalog.services.web.namespace=web", "catalog.services.web.deployment=Web App"),
        "at '/catalog/services/web/deployment': 'Web App' does not match pattern",
    ),
    (
        "service without deployment",
        ("catalog.services.web.namespace=web",),
        "at '/catalog/services/web': missing property 'deployment'",
    ),
    (
        "namespace not a string",
        ("catalog.services.web.namespace=7", "catalog.services.web.deployment=web"),
        "at '/catalog/services/web/namespace': got number, want string",
    ),
    ("privileged port", ("containerPort=80",), "at '/containerPort': minimum: got 80, want 1,024"),
    ("port out of range", ("service.port=70000",), "at '/service/port': maximum: got 70,000"),
    ("negative replicas", ("replicaCount=-1",), "at '/replicaCount': minimum: got -1, want 0"),
    ("replicas as a string", ("replicaCount=two",), "at '/replicaCount': got string, want integer"),
    ("unknown top-level key", ("replicas=2",), "additional properties 'replicas' not allowed"),
    (
        "secret.create and existingSecret",
        ("existingSecret=mine",),
        "at '/secret/create': value must be false",
    ),
    (
        "neither secret.create nor existingSecret",
        ("secret.create=false",),
        "at '/existingSecret': minLength: got 0, want 1",
    ),
    (
        "a token in extraEnv",
        ("extraEnv[0].name=SLACK_BOT_TOKEN", "extraEnv[0].value=xoxb-leak"),
        "at '/extraEnv/0/name': 'not' failed",
    ),
    ("kube timeout zero", ("settings.kubeTimeout=0",), "at '/settings/kubeTimeout'"),
    (
        "metrics exposed by the Ingress",
        ("ingress.paths[0]=/metrics",),
        "at '/ingress/paths/0': value must be one of '/slack/events', '/alertmanager'",
    ),
    ("pull policy", ("image.pullPolicy=Sometimes",), "at '/image/pullPolicy': value must be one"),
    ("bad digest", ("image.digest=latest",), "at '/image/digest': 'latest' does not match"),
    (
        "RBAC namespace not a DNS label",
        ("rbac.namespaces[0]=Shop",),
        "at '/rbac/namespaces/0': 'Shop' does not match pattern",
    ),
    (
        "PDB percentage",
        ("podDisruptionBudget.maxUnavailable=150%",),
        "at '/podDisruptionBudget/maxUnavailable'",
    ),
]


@pytest.mark.parametrize(
    ("sets", "expected"),
    [pytest.param(sets, expected, id=case) for case, sets, expected in SCHEMA_REFUSALS],
)
def test_the_schema_refuses_a_bad_value_naming_its_key(
    sets: tuple[str, ...], expected: str
) -> None:
    message = refusal(MINIMAL, sets=sets)
    assert "values don't meet the specifications of the schema" in message
    assert expected in message


def test_lint_refuses_a_bad_value_too() -> None:
    result = helm(
        "lint", str(CHART), *values_args((MINIMAL,), ("catalog.services.web.namespace=web",))
    )
    assert result.returncode != 0
    assert "at '/catalog/services/web': missing property 'deployment'" in result.stdout


TEMPLATE_REFUSALS: list[tuple[str, tuple[str, ...], str]] = [
    (
        "no Slack tokens anywhere",
        ("secret.create=false",),
        "the Slack tokens come from nowhere: set secret.create=true",
    ),
    (
        "both a chart Secret and existingSecret",
        ("existingSecret=mine",),
        "set either secret.create=true (the chart makes the Secret) or existingSecret",
    ),
    (
        "HTTP mode without the signing secret",
        ("secret.slackSigningSecret=",),
        "secret.slackSigningSecret is required in Slack HTTP mode",
    ),
    (
        "rbac.namespaces missing a catalog namespace",
        ("rbac.namespaces[0]=other",),
        'catalog service "checkout" is in namespace "shop", which rbac.namespaces does not list',
    ),
    (
        "Ingress without a host",
        ("ingress.enabled=true",),
        "ingress.enabled needs at least one host",
    ),
    (
        "no ServiceAccount to use",
        ("serviceAccount.create=false",),
        "serviceAccount.name is required when serviceAccount.create is false",
    ),
]


@pytest.mark.parametrize(
    ("sets", "expected"),
    [pytest.param(sets, expected, id=case) for case, sets, expected in TEMPLATE_REFUSALS],
)
def test_the_templates_refuse_what_cannot_work_even_without_the_schema(
    sets: tuple[str, ...], expected: str
) -> None:
    message = refusal(MINIMAL, sets=sets, extra=("--skip-schema-validation",))
    assert expected in message


def test_socket_mode_needs_no_signing_secret() -> None:
    manifests = render(
        MINIMAL, sets=("secret.slackSigningSecret=", "secret.slackAppToken=xapp-socket")
    )
    assert set(one(manifests, "Secret")["data"]) == {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"}


# ---------------------------------------------------------------------------------------------
# RBAC


@pytest.mark.parametrize("name", VALUES_FILES)
def test_no_rule_grants_a_wildcard_secrets_or_pods(name: str) -> None:
    roles = [m for m in render(name) if m["kind"] in ("Role", "ClusterRole")]
    assert roles
    for role in roles:
        assert "aggregationRule" not in role
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert all("*" not in item for item in rule.get(field, [])), rule
            assert not {"secrets", "pods", "pods/exec", "pods/attach", "pods/portforward"} & set(
                rule["resources"]
            ), rule
            assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(
                rule["verbs"]
            ), rule


def test_a_role_per_catalog_namespace_with_exactly_the_rollout_rules() -> None:
    manifests = render(
        MINIMAL,
        sets=(
            "catalog.services.search.namespace=search",
            "catalog.services.search.deployment=search",
        ),
    )
    roles = {r["metadata"]["namespace"]: r for r in find(manifests, "Role", FULLNAME)}
    assert set(roles) == {"shop", "search"}
    for role in roles.values():
        assert rules_of(role) == ROLLOUT_RULES
    bindings = {b["metadata"]["namespace"]: b for b in find(manifests, "RoleBinding", FULLNAME)}
    assert set(bindings) == {"shop", "search"}
    for binding in bindings.values():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": FULLNAME,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
        ]
    assert not find(manifests, "ClusterRole") and not find(manifests, "ClusterRoleBinding")


def test_the_state_role_is_in_the_bots_namespace_only() -> None:
    manifests = render(MINIMAL)
    state = one(manifests, "Role", f"{FULLNAME}-state")
    assert state["metadata"]["namespace"] == NAMESPACE
    assert named_rules(state) == STATE_RULES
    binding = one(manifests, "RoleBinding", f"{FULLNAME}-state")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"]["name"] == f"{FULLNAME}-state"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
    ]
    assert pod_spec(manifests)["serviceAccountName"] == FULLNAME


def test_explicit_namespaces_and_named_state_resources() -> None:
    manifests = render(NAMESPACED)
    namespaces = {r["metadata"]["namespace"] for r in find(manifests, "Role", FULLNAME)}
    assert namespaces == {"shop", "search", "staging"}
    state = one(manifests, "Role", f"{FULLNAME}-state")
    assert named_rules(state) == {
        ("", "configmaps", ()): {"create"},
        ("", "configmaps", ("rollback-bot-alerts",)): {"get", "update", "patch"},
    }


# The official client's method names, as the bot's Kubernetes adapter calls them.
_CLIENT_VERBS = {
    "read": "get",
    "list": "list",
    "create": "create",
    "replace": "update",
    "patch": "patch",
    "delete": "delete",
}
_CLIENT_GROUPS = {
    "apps": "apps",
    "core": "",
    "coordination": "coordination.k8s.io",
    "events": "events.k8s.io",
}


def test_the_roles_grant_every_call_of_the_bots_kubernetes_adapter() -> None:
    """Read bot/kube/kubernetes_cluster.py for `self._<api>.<verb>_namespaced_<kind>` calls and
    for requests by path, `self._rest(what, "VERB", f"{LEASES}/namespaces/{namespace}/leases…")`
    (all in the Deployment's namespace): a new call the chart does not grant fails here."""
    source = (REPO / "bot" / "kube" / "kubernetes_cluster.py").read_text()
    granted = rules_of(one(render(MINIMAL), "Role", FULLNAME))
    direct = r"self\._(apps|core|coordination|events)\.([a-z]+)_namespaced_(\w+)"
    calls = set(re.findall(direct, source))
    assert calls, "no Kubernetes calls found: has the adapter moved?"
    for api, method, kind in sorted(calls):
        resource = kind.replace("_", "") + "s"
        verb = _CLIENT_VERBS[method]
        assert verb in granted.get((_CLIENT_GROUPS[api], resource), set()), (
            f"the adapter calls {api}.{method}_namespaced_{kind}: grant {verb} on {resource}"
        )
    prefixes = dict(re.findall(r'^([A-Z_]+) = "(/apis?/[^"]*)"', source, re.MULTILINE))
    http_verbs = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}
    by_path = re.findall(
        r'self\._rest\(\s*[^,]+,\s*"(GET|POST|PUT|PATCH)",\s*f?"(\{(\w+)\}|/api/v1)'
        r"/namespaces/\{[^}]+\}/(\w+)",
        source,
    )
    found = set()
    assert len(by_path) == source.count("self._rest("), "a request by path the test cannot read"
    for method, start, prefix_name, resource in by_path:
        path = prefixes[prefix_name] if prefix_name else start
        group = "" if path == "/api/v1" else path.split("/")[2]
        found.add((group, resource))
        assert http_verbs[method] in granted.get((group, resource), set()), (
            f"the adapter sends {method} {path}/…/{resource}: grant {http_verbs[method]}"
        )
    # The Lease lock and the Events are part of what must be granted, not only Deployments.
    assert {("coordination.k8s.io", "leases"), ("", "events")} <= found
    assert {m for m, _, _, r in by_path if r == "leases"} == {"GET", "POST", "PUT", "PATCH"}
    if "watch=True" in source:
        assert "watch" in granted[("apps", "deployments")]


def test_cluster_wide_rbac() -> None:
    manifests = render(RICH)
    cluster_role = one(manifests, "ClusterRole")
    assert rules_of(cluster_role) == ROLLOUT_RULES
    binding = one(manifests, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rollback-bot", "namespace": NAMESPACE}
    ]
    assert [r["metadata"]["name"] for r in find(manifests, "Role")] == ["rollback-bot-state"]


def test_no_rbac_when_disabled() -> None:
    manifests = render(MINIMAL, sets=("rbac.create=false",))
    assert not [m for m in manifests if m["kind"].endswith(("Role", "RoleBinding"))]


# ---------------------------------------------------------------------------------------------
# the pod


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


@pytest.mark.parametrize("name", VALUES_FILES)
def test_the_secret_is_files_in_the_secrets_dir_and_never_in_the_environment(name: str) -> None:
    manifests = render(name)
    values = values_file(name)
    c = container(manifests)
    env = env_of(c)
    secrets_dir = env["ROLLBACK_BOT_SECRETS_DIR"]["value"]
    assert secrets_dir == "/var/run/secrets/rollback-bot"
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == secrets_dir)
    assert mount["readOnly"] is True
    volume = next(v for v in pod_spec(manifests)["volumes"] if v["name"] == mount["name"])
    expected_secret = values.get("existingSecret") or FULLNAME
    assert volume["secret"]["secretName"] == expected_secret
    assert volume["secret"]["defaultMode"] == 0o440  # group 10001 (fsGroup) reads, nobody writes

    assert "envFrom" not in c
    tokens = [v for k, v in values.get("secret", {}).items() if k != "create" and v]
    for var in c["env"]:
        assert "secretKeyRef" not in var.get("valueFrom", {}), var
        assert var["name"] not in TOKEN_KEYS
        assert not any(token in str(var.get("value", "")) for token in tokens), var

    secrets = find(manifests, "Secret")
    if values.get("existingSecret"):
        assert secrets == []
    else:
        secret = one(manifests, "Secret", FULLNAME)
        assert set(secret["data"]) <= set(TOKEN_KEYS)
        decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert decoded["SLACK_BOT_TOKEN"] == values["secret"]["slackBotToken"]


@pytest.mark.parametrize("name", [MINIMAL, NAMESPACED])
def test_the_bots_settings_read_the_rendered_environment_and_secret(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart's variable names and Secret keys are the ones the bot's Settings read."""
    manifests = render(name)
    values = values_file(name)["secret"]
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for key, encoded in one(manifests, "Secret")["data"].items():
        (secrets_dir / key).write_bytes(base64.b64decode(encoded))
    for var in [*TOKEN_KEYS, "KUBECONFIG"] + [k for k in os.environ if k.startswith("ROLLBACK_")]:
        monkeypatch.delenv(var, raising=False)
    for var in container(manifests)["env"]:
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
        else:
            # Only the downward API: the pod's namespace and name, never a secret's value.
            downward = {"ROLLBACK_BOT_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}
            assert var["valueFrom"] == {"fieldRef": {"fieldPath": downward[var["name"]]}}
            monkeypatch.setenv(var["name"], NAMESPACE)

    settings = load_settings(secrets_dir)

    assert settings.namespace == NAMESPACE
    assert settings.config == Path("/etc/rollback-bot/catalog.yaml")
    assert settings.host == ALL_INTERFACES
    assert settings.port == 3000
    assert settings.kube_request_timeout == 10.0
    assert settings.log_level == "INFO"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.kubeconfig is None  # in-cluster configuration
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == values["slackBotToken"]
    for field, key in (
        ("slack_signing_secret", "slackSigningSecret"),
        ("slack_app_token", "slackAppToken"),
        ("alertmanager_token", "alertmanagerToken"),
    ):
        secret = getattr(settings, field)
        assert (secret.get_secret_value() if secret else None) == values.get(key), field


def test_settings_and_extra_env() -> None:
    env = env_of(container(render(RICH)))
    assert env["ROLLBACK_BOT_LOG_LEVEL"]["value"] == "DEBUG"
    assert env["ROLLBACK_BOT_KUBE_TIMEOUT"]["value"] == "7.5"
    assert env["ROLLBACK_BOT_DEFAULT_CHANNEL"]["value"] == "C0INCIDENTS"
    assert env["ROLLBACK_BOT_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    assert env["HTTPS_PROXY"]["value"] == "http://proxy.internal:3128"
    assert "ROLLBACK_BOT_DEFAULT_CHANNEL" not in env_of(container(render(MINIMAL)))


@pytest.mark.parametrize("name", VALUES_FILES)
def test_the_configmap_holds_the_catalog_verbatim_where_the_bot_reads_it(
    name: str, tmp_path: Path
) -> None:
    manifests = render(name)
    c = container(manifests)
    config_path = Path(env_of(c)["ROLLBACK_BOT_CONFIG"]["value"])
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    assert mount["readOnly"] is True
    volume = next(v for v in pod_spec(manifests)["volumes"] if v["name"] == mount["name"])
    configmap = one(manifests, "ConfigMap", volume["configMap"]["name"])
    text = configmap["data"][config_path.name]
    assert yaml.safe_load(text) == values_file(name)["catalog"]
    (tmp_path / config_path.name).write_text(text)
    catalog = Catalog.load(tmp_path / config_path.name)  # the bot's own loader accepts it
    assert set(catalog.services) == set(values_file(name)["catalog"]["services"])


def _show_only(path: str, *values: str, sets: tuple[str, ...] = ()) -> str:
    out = template(*values, sets=sets, extra=("--show-only", path))
    header = f"---\n# Source: rollback-bot/{path}\n"
    assert out.startswith(header)
    return out[len(header) :]


def test_checksums_are_those_of_the_rendered_configmap_and_secret() -> None:
    annotations = one(render(MINIMAL), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    for key, path in (
        ("checksum/catalog", "templates/configmap.yaml"),
        ("checksum/secret", "templates/secret.yaml"),
    ):
        text = _show_only(path, MINIMAL)
        assert annotations[key] == hashlib.sha256(text.encode()).hexdigest()


def test_a_changed_catalog_or_secret_rolls_the_pods() -> None:
    def checksums(*sets: str) -> dict[str, str]:
        template_meta = one(render(MINIMAL, sets=sets), "Deployment")["spec"]["template"]
        return {
            k: v for k, v in template_meta["metadata"]["annotations"].items() if "checksum" in k
        }

    base = checksums()
    catalog = checksums("catalog.services.checkout.deployment=checkout-v2")
    secret = checksums("secret.slackBotToken=xoxb-rotated")
    assert catalog["checksum/catalog"] != base["checksum/catalog"]
    assert catalog["checksum/secret"] == base["checksum/secret"]
    assert secret["checksum/secret"] != base["checksum/secret"]
    assert secret["checksum/catalog"] == base["checksum/catalog"]
    rich = one(render(RICH), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/catalog" in rich and "checksum/secret" not in rich  # existingSecret
    assert rich["example.com/team"] == "platform"  # podAnnotations beside them


# ---------------------------------------------------------------------------------------------
# the optional parts


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


def test_notes_say_where_the_bot_may_roll_back() -> None:
    result = helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--dry-run=client",
        *values_args((NAMESPACED,), ()),
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "Socket Mode" in notes
    assert "Deployment rights in: search, shop, staging." in notes
    empty = helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--dry-run=client",
        "--set",
        "secret.slackBotToken=x",
        "--set",
        "secret.slackSigningSecret=y",
    )
    assert "WARNING: no namespace to roll back in" in empty.stdout


# ---------------------------------------------------------------------------------------------
# the Kubernetes JSON schemas

K8S_VERSIONS = ("1.25", "1.33", kubernetes_validate.latest_version())
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}  # no schema ships for a CRD


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", VALUES_FILES)
def test_manifests_are_valid_kubernetes_objects(name: str, version: str) -> None:
    validated = 0
    for m in render(name):
        if (m["apiVersion"], m["kind"]) in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(m, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{m['kind']}/{m['metadata']['name']} at {where}: {exc.message}")
        validated += 1
    assert validated >= 9


def test_the_schema_validation_is_not_vacuous() -> None:
    deployment = one(render(MINIMAL), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.33", strict=True)
    role = one(render(MINIMAL), "Role", FULLNAME)
    role["rules"][0]["verbs"] = "get"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(role, "1.33", strict=True)


# ---------------------------------------------------------------------------------------------
# documentation


def _value_paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of values.yaml: every key, from the top down to the leaves."""
    if isinstance(node, dict):
        for key, child in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from _value_paths(child, path)


def test_the_readme_documents_every_value_and_no_other() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z0-9_.]+)` \|", readme, flags=re.MULTILINE))
    paths = set(_value_paths(chart_defaults()))
    leaves = {p for p in paths if not any(other.startswith(f"{p}.") for other in paths)}
    undocumented = {
        p for p in leaves if not any(p == d or p.startswith(f"{d}.") for d in documented)
    }
    assert not undocumented, f"values missing from the chart's README: {sorted(undocumented)}"
    assert documented <= paths, f"README documents unknown values: {documented - paths}"


def test_the_schema_knows_every_default_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    assert set(chart_defaults()) <= set(schema["properties"])


# ---------------------------------------------------------------------------------------------
# the image


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not pending):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        instruction, _, args = full.partition(" ")
        out.append((instruction.upper(), args.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_the_image_is_multi_stage_on_python_slim() -> None:
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    froms = [a.split()[0] for op, a in instructions if op == "FROM"]
    assert len(froms) == 2
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], f) for f in froms]
    assert all(re.fullmatch(r"python:3\.1[12]-slim", b) for b in bases), bases
    builder_runs = " ".join(a for op, a in instructions[: len(instructions)] if op == "RUN")
    assert "pip wheel --no-deps --wheel-dir /wheels ." in builder_runs
    final_runs = " ".join(a for op, a in final_stage() if op == "RUN")
    assert "--no-index" in final_runs and "--find-links=/wheels" in final_runs
    assert not re.search(r"apt-get|gcc|build-essential|COPY \. ", final_runs)
    env = " ".join(a for op, a in final_stage() if op == "ENV")
    assert "PIP_NO_CACHE_DIR=1" in env


def test_the_image_runs_as_the_charts_user_port_and_command() -> None:
    final = dict(final_stage())
    uid, _, gid = final["USER"].partition(":")
    values = chart_defaults()
    for context in (values["podSecurityContext"], values["securityContext"]):
        assert context["runAsUser"] == int(uid)
        assert context["runAsGroup"] == int(gid)
    assert values["podSecurityContext"]["fsGroup"] == int(gid)
    assert int(final["EXPOSE"]) == values["containerPort"] == values["service"]["port"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert json.loads(final["ENTRYPOINT"]) == list(project["scripts"]) == ["rollback-bot"]
    assert json.loads(final["CMD"]) == container(render(MINIMAL))["args"] == ["serve"]
    assert "command" not in container(render(MINIMAL))  # the image's ENTRYPOINT runs


def _dockerignore_patterns() -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        out.append((negated, line.lstrip("!").strip("/")))
    return out


def dockerignored(relative: str) -> bool:
    """Docker's rule, enough for these patterns: the last matching pattern (or a pattern matching
    a parent directory) wins; `**` matches any number of directories."""
    excluded = False
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for negated, pattern in _dockerignore_patterns():
        regex = fnmatch.translate(pattern).replace(".*.*/", "(?:.*/)?")
        if any(re.match(regex, p) for p in prefixes):
            excluded = not negated
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".tools/bin/helm",
        "tests/integration/test_helm_chart.py",
        ".git/HEAD",
        ".mypy_cache/3.11/x.json",
        ".pytest_cache/v/cache",
        ".ruff_cache/x",
        "bot/__pycache__/app.cpython-311.pyc",
        "bot/kube/__pycache__/x.pyc",
        "helm/rollback-bot/values.yaml",
        "sandbox.kubeconfig",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert dockerignored(path)


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    copied = [
        src
        for op, a in dockerfile_instructions()
        if op == "COPY" and not a.startswith("--from")
        for src in shlex.split(a)[:-1]
    ]
    assert set(copied) == {"pyproject.toml", "README.md", "bot", "handlers"}
    for src in copied:
        assert (REPO / src).exists(), src
        assert not dockerignored(src), src
    assert not dockerignored("bot/__main__.py")
    assert not dockerignored("handlers/__init__.py")


def test_the_build_context_builds_the_wheel(tmp_path: Path) -> None:
    """The builder stage's `pip wheel --no-deps`, on what `.dockerignore` and COPY let in."""
    source = tmp_path / "src"
    for op, a in dockerfile_instructions():
        if op != "COPY" or a.startswith("--from"):
            continue
        *sources, _dest = shlex.split(a)
        for src in sources:
            origin = REPO / src
            files = [origin] if origin.is_file() else sorted(origin.rglob("*"))
            for f in files:
                relative = f.relative_to(REPO).as_posix()
                if f.is_file() and not dockerignored(relative):
                    (source / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, source / relative)
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = wheels.glob("rollback_bot-*.whl")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert wheel.name == f"rollback_bot-{project['version']}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"rollback_bot-{project['version']}.dist-info"
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(f"{dist_info}/entry_points.txt").decode())
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert {"bot/__init__.py", "bot/__main__.py", "handlers/__init__.py"} <= names
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    assert dict(entry_points["console_scripts"]) == {"rollback-bot": "bot.__main__:main"}
    requires = [
        line
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra" not in line
    ]
    assert len(requires) == len(project["dependencies"])  # the deps the second `pip wheel` fetches


# ---------------------------------------------------------------------------------------------
# the simulated API server, through the real kubectl


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
    discovery lists them, and are checked above against the Kubernetes schemas instead. What this
    proves beyond the schemas: the Deployment passes the server's validation and defaulting, its
    selector matches its pod labels so the controller rolls it out, the Service and the catalog
    ConfigMap are accepted and read back unchanged, and a changed catalog (its checksum
    annotation) makes a new revision, i.e. rolls the pods.
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
