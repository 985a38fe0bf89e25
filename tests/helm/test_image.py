"""The image the chart runs, and the product's wheel in it.

- the Dockerfile agrees with the chart (user, port, entrypoint, command);
- `.dockerignore` keeps the context to what the wheel is built from, and that context builds a wheel
  with `bot`, `handlers` and the `rollback-bot` console script;
- the product's wheel built from the repository holds `bot` and `handlers` and none of the
  simulated world (the Kubernetes API stand-in and the local Slack workspace live in their own
  distribution, `sandbox/`, package `rollback_sandbox`), and it is the wheel the image installs.

Both wheels are built offline, with the build backend already in the venv (`--no-build-isolation
--no-index`): nothing is downloaded.
"""

from __future__ import annotations

import configparser
import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import MINIMAL, REPO, chart_defaults, container, render


def project() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
    return data


# ---------------------------------------------------------------------------------------------
# the Dockerfile


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
    scripts = list(project()["project"]["scripts"])
    assert json.loads(final["ENTRYPOINT"]) == scripts == ["rollback-bot"]
    assert json.loads(final["CMD"]) == container(render(MINIMAL))["args"] == ["serve"]
    assert "command" not in container(render(MINIMAL))  # the image's ENTRYPOINT runs


# ---------------------------------------------------------------------------------------------
# the build context


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
        "tests/helm/test_image.py",
        ".git/HEAD",
        ".mypy_cache/3.11/x.json",
        ".pytest_cache/v/cache",
        ".ruff_cache/x",
        "bot/__pycache__/app.cpython-311.pyc",
        "bot/kube/__pycache__/x.pyc",
        "helm/rollback-bot/values.yaml",
        "sandbox.kubeconfig",
        "sandbox/rollback_sandbox/__init__.py",
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


def build_context(into: Path) -> Path:
    """What the builder stage's COPY instructions bring in, past `.dockerignore`."""
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
                    (into / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, into / relative)
    return into


# ---------------------------------------------------------------------------------------------
# the wheels


def build_wheel(source: Path, wheels: Path) -> Path:
    """`pip wheel --no-deps` of `source`, offline: the venv's own build backend, no index."""
    backend = project()["build-system"]
    module = backend["build-backend"].partition(".")[0]
    if importlib.util.find_spec(module) is None:
        pytest.fail(
            f"the build backend {module!r} ({', '.join(backend['requires'])}, pyproject.toml's "
            f"build-system) is not installed in {sys.prefix}: this test builds the wheel offline "
            f"and downloads nothing; install it there, e.g. "
            f"`{sys.executable} -m pip install '{backend['requires'][0]}'`"
        )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
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
    return wheel


@pytest.fixture(scope="module")
def context_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder stage's `pip wheel --no-deps`, on what `.dockerignore` and COPY let in."""
    source = build_context(tmp_path_factory.mktemp("context"))
    return build_wheel(source, tmp_path_factory.mktemp("context-wheels"))


@pytest.fixture(scope="module")
def product_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product's wheel, built from the repository itself."""
    return build_wheel(REPO, tmp_path_factory.mktemp("product-wheels"))


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def check_the_products_wheel(wheel: Path) -> None:
    """The bot and its handlers, its console script and its dependencies, nothing else."""
    version = project()["project"]["version"]
    assert wheel.name == f"rollback_bot-{version}-py3-none-any.whl"
    dist_info = f"rollback_bot-{version}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
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
    # the deps the image's second `pip wheel` fetches
    assert len(requires) == len(project()["project"]["dependencies"])

    # The simulated cluster and the Slack stand-in are not the product: not in its wheel, and not
    # something installing it pulls in.
    assert {n.partition("/")[0] for n in names} == {"bot", "handlers", dist_info}
    assert [n for n in names if n.startswith("bot/") and n.endswith(".py")]
    assert [n for n in names if n.startswith("handlers/") and n.endswith(".py")]
    assert not [n for n in names if "rollback_sandbox" in n]
    assert not [n for n in names if "sandbox" in n.lower()]
    assert not [n for n in names if n.endswith("static/app.js")]
    assert not [r for r in requires if "sandbox" in r.lower()]


def test_the_build_context_builds_the_wheel(context_wheel: Path) -> None:
    check_the_products_wheel(context_wheel)


def test_the_products_wheel_holds_the_bot_and_not_the_simulated_world(
    product_wheel: Path,
) -> None:
    check_the_products_wheel(product_wheel)


def test_the_image_installs_the_products_wheel(context_wheel: Path, product_wheel: Path) -> None:
    """What the build context builds is what the repository builds: nothing left out of the
    image, nothing in the image that the product does not ship."""
    assert wheel_files(context_wheel) == wheel_files(product_wheel)
