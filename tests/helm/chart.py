"""What the chart tests share: the pinned helm, its renders, and ways to look into them.

The chart (`helm/rollback-bot`) is shipped, so the real helm is the oracle: every manifest the tests
look at is one `helm template` rendered. The values files in `values/` are
minimal (what an install needs), namespaced (explicit RBAC namespaces, restricted state names,
Socket Mode) and rich (every optional part on, cluster-wide, existingSecret).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "rollback-bot"
VALUES_DIR = Path(__file__).resolve().parent / "values"
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
    """The manifests `helm template` renders (parsed afresh each call: tests may not share them).

    One helm run per distinct (values, sets) in the whole session, whichever module asks first.
    """
    return [doc for doc in yaml.safe_load_all(_render(values, sets)) if doc]


def refusal(*values: str, sets: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> str:
    """helm's message when `helm template` refuses (the test fails if it renders)."""
    result = helm(
        "template", RELEASE, str(CHART), "-n", NAMESPACE, *values_args(values, sets), *extra
    )
    assert result.returncode != 0, f"rendered although it should not:\n{result.stdout[:2000]}"
    return result.stderr


# ---------------------------------------------------------------------------------------------
# looking into the manifests


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


# ---------------------------------------------------------------------------------------------
# the values


def values_file(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text())
    return data


def chart_defaults() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return data
