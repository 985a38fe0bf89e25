"""The chart as a whole: its metadata, `helm lint`, what `helm template` renders with the defaults
and with each values file, the labels and names, the NOTES, and the README of every value."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.helm.chart import (
    CHART,
    FULLNAME,
    MINIMAL,
    NAMESPACE,
    NAMESPACED,
    RELEASE,
    REPO,
    RICH,
    VALUES_FILES,
    chart_defaults,
    helm,
    kinds,
    one,
    render,
    values_args,
)


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
