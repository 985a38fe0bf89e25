"""The CLI as people and scripts use it: a subprocess against the simulated cluster."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import Kubectl, find_kubectl

CATALOG = "services:\n  checkout: {namespace: shop, deployment: checkout}\n"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[SandboxThread, Path]]:
    with SandboxThread(seed="demo", speed=40) as sandbox:
        (tmp_path / "catalog.yaml").write_text(CATALOG)
        yield sandbox, sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def cli(
    kubeconfig: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        "KUBECONFIG": str(kubeconfig),
        "ROLLBACK_BOT_CONFIG": str(kubeconfig.parent / "catalog.yaml"),
        "ROLLBACK_BOT_AUDIT_FILE": str(kubeconfig.parent / "audit.jsonl"),
        "PATH": "/usr/bin:/bin",
        "USER": "carol",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**base, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_history_as_json_for_scripts(demo: tuple[SandboxThread, Path]) -> None:
    result = cli(demo[1], "history", "checkout", "--output", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(r["revision"], r["version"], r["current"]) for r in data["revisions"]] == [
        (3, "2.14.0", True),
        (2, "2.13.0", False),
        (1, "2.12.0", False),
    ]
    assert data["revisions"][1]["images"]["checkout"].endswith(":2.13.0")


def test_status_table_for_people(demo: tuple[SandboxThread, Path]) -> None:
    result = cli(demo[1], "status", "shop/checkout")
    assert result.returncode == 0, result.stderr
    assert "version   2.14.0 (revision 3)" in result.stdout
    assert "3/3 ready" in result.stdout


def test_rollback_shows_the_plan_rolls_back_and_exits_0(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    result = cli(demo[1], "rollback", "checkout", "--yes", "--reason", "errors after 2.14.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "from  2.14.0 (revision 3)" in result.stdout
    assert (
        "containers[checkout].image: registry.example.com/shop/checkout:2.14.0 →" in result.stdout
    )
    assert "rolled back checkout to 2.13.0" in result.stdout
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    history = kubectl("rollout", "history", "deployment/checkout", "-n", "shop").stdout
    me = pwd.getpwuid(os.getuid()).pw_name
    assert (
        f"rolled back to revision 2 (2.13.0) by os user {me}, kubeconfig user sandbox "
        "(unverified) via CLI: errors after 2.14.0"
    ) in history


def test_a_rollback_leaves_its_audit_trail_whatever_the_log_level(
    demo: tuple[SandboxThread, Path],
) -> None:
    trail = demo[1].parent / "audit.jsonl"
    result = cli(demo[1], "rollback", "checkout", "--yes", env={"ROLLBACK_BOT_LOG_LEVEL": "ERROR"})
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line)["step"] for line in trail.read_text().splitlines()]
    assert steps[:2] == ["confirmed", "started"] and steps[-1] == "succeeded"
    assert all(json.loads(line)["via"] == "CLI" for line in trail.read_text().splitlines())
    assert "confirmed" not in result.stderr  # the terminal is not the trail


def test_dry_run_changes_nothing(demo: tuple[SandboxThread, Path]) -> None:
    result = cli(demo[1], "rollback", "checkout", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout
    after = json.loads(cli(demo[1], "status", "checkout", "-o", "json").stdout)
    assert after["version"] == "2.14.0"


def test_without_a_terminal_confirmation_is_refused(demo: tuple[SandboxThread, Path]) -> None:
    result = cli(demo[1], "rollback", "checkout", stdin="")
    assert result.returncode == 3
    assert "pass --yes" in result.stdout


def test_a_paused_deployment_is_refused_with_exit_3(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    Kubectl(find_kubectl(), demo[1], tmp_path / "cache")(
        "rollout", "pause", "deployment/checkout", "-n", "shop"
    )
    result = cli(demo[1], "rollback", "checkout", "--yes")
    assert result.returncode == 3
    assert "paused" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_rollout_exits_4_and_a_slow_one_5(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    kubectl("patch", "deployment/checkout", "-n", "shop", "-p",
            '{"spec":{"progressDeadlineSeconds":30}}')  # fmt: skip
    broken = "checkout=registry.example.com/shop/checkout:2.15.0-broken"
    kubectl("set", "image", "deployment/checkout", broken, "-n", "shop")
    kubectl("rollout", "status", "deployment/checkout", "-n", "shop", check=False)
    # Back to the broken revision from a good one: it stalls again.
    assert cli(demo[1], "rollback", "checkout", "--yes").returncode == 0  # to 2.14.0
    failed = cli(demo[1], "rollback", "checkout", "--yes", "--to-revision", "4")
    assert failed.returncode == 4, failed.stdout + failed.stderr
    assert "exceeded its progress deadline" in failed.stderr
    kubectl("patch", "deployment/checkout", "-n", "shop", "-p",
            '{"spec":{"progressDeadlineSeconds":6000}}')  # fmt: skip
    # Back on a good version, then towards the broken one with a short wait: timed out.
    assert cli(demo[1], "rollback", "checkout", "--yes", "--to-revision", "5").returncode == 0
    timed_out = cli(
        demo[1], "rollback", "checkout", "--yes", "--to-revision", "6", "--timeout", "1s"
    )
    assert timed_out.returncode == 5, timed_out.stdout + timed_out.stderr
    assert "did not finish within 1s" in timed_out.stderr


def test_unknown_service_and_unreachable_cluster_are_one_sentence(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    unknown = cli(demo[1], "status", "chekout")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: unknown service 'chekout': did you mean 'checkout'?"
    demo[0].stop()
    down = cli(demo[1], "history", "checkout")
    assert down.returncode == 1
    assert "cannot reach the Kubernetes API at http://127.0.0.1:" in down.stderr
    assert "Traceback" not in down.stderr


# -- text from the cluster is shown as text ---------------------------------------------------

# A change-cause anyone who can deploy may set: Rich markup, a hyperlink, an emoji code, and raw
# terminal controls (clear screen, an OSC 8 hyperlink, a carriage return, C1 CSI, bell).
HOSTILE_CAUSE = (
    "deploy [/bold] [link=https://evil.example]click[/link] :smiley: "
    "\x1b[2J\x1b]8;;https://evil.example\x1b\\x\rover\x9b31m\x07 end"
)
# The same text as the CLI shows it: markup and emoji codes literal, each control made visible.
HOSTILE_SHOWN = (
    "deploy [/bold] [link=https://evil.example]click[/link] :smiley: "
    "^[[2J^[]8;;https://evil.example^[\\x^Mover\ufffd31m^G end"
)
WIDE = {"COLUMNS": "400"}  # a table row on one line, so the cell reads as one string


def _no_terminal_controls(out: str) -> None:
    bad = [ch for ch in out if (ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F]
    assert not bad, f"control characters reached the terminal: {bad!r}"


def test_hostile_change_causes_are_shown_literally_by_status_and_history(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    kubectl("annotate", "deployment/checkout", "-n", "shop", "--overwrite",
            f"kubernetes.io/change-cause={HOSTILE_CAUSE}")  # fmt: skip
    for command in ("status", "history"):
        result = cli(demo[1], command, "checkout", env=WIDE)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        _no_terminal_controls(result.stdout)
        assert HOSTILE_SHOWN in result.stdout, result.stdout
    # Scripts get the value exactly (JSON escapes the controls itself).
    data = json.loads(cli(demo[1], "history", "checkout", "-o", "json").stdout)
    assert data["changeCause"] == HOSTILE_CAUSE
    assert data["revisions"][0]["changeCause"] == HOSTILE_CAUSE


def test_raw_terminal_controls_from_the_cluster_never_reach_the_terminal(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    # No markup at all: an OSC 8 hyperlink, clear screen and a carriage return, as raw bytes.
    raw = "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\ \x1b[2J\rdeploy 2.14.0\x9b"
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    kubectl("annotate", "deployment/checkout", "-n", "shop", "--overwrite",
            f"kubernetes.io/change-cause={raw}")  # fmt: skip
    for command in ("status", "history"):
        result = cli(demo[1], command, "checkout", env=WIDE)
        assert result.returncode == 0, result.stdout + result.stderr
        _no_terminal_controls(result.stdout)
        assert "^[]8;;https://evil.example^[\\click^[]8;;^[\\ ^[[2J^Mdeploy 2.14.0\ufffd" in (
            result.stdout
        )


def test_hostile_text_is_no_hyperlink_even_on_a_colour_terminal(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    link = "see [link=https://evil.example]the runbook[/link]"
    kubectl("annotate", "deployment/checkout", "-n", "shop", "--overwrite",
            f"kubernetes.io/change-cause={link}")  # fmt: skip
    for command in ("status", "history"):
        result = cli(demo[1], command, "checkout", env={**WIDE, "FORCE_COLOR": "1"})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "\x1b]8;" not in result.stdout  # no OSC 8 hyperlink
        assert link in result.stdout


def test_a_long_change_cause_is_capped_in_the_table_not_in_json(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    long_cause = "x" * 5000
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    kubectl("annotate", "deployment/checkout", "-n", "shop", "--overwrite",
            f"kubernetes.io/change-cause={long_cause}")  # fmt: skip
    status = cli(demo[1], "status", "checkout", env={"COLUMNS": "1000"})
    assert status.returncode == 0, status.stderr
    (line,) = [line for line in status.stdout.splitlines() if line.startswith("  cause")]
    assert line == "  cause     " + "x" * 299 + "…"
    history = cli(demo[1], "history", "checkout", env={"COLUMNS": "1000"})
    assert "x" * 299 + "…" in history.stdout
    assert "x" * 300 not in history.stdout
    data = json.loads(cli(demo[1], "status", "checkout", "-o", "json").stdout)
    assert data["changeCause"] == long_cause


def test_the_rollback_plan_shows_hostile_images_and_causes_literally(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    kubectl("annotate", "deployment/checkout", "-n", "shop", "--overwrite",
            f"kubernetes.io/change-cause={HOSTILE_CAUSE}")  # fmt: skip
    # Revision 4 runs an image whose tag is markup; revision 3 (the target) carries the cause.
    kubectl("set", "image", "deployment/checkout", "-n", "shop",
            "checkout=registry.example.com/shop/checkout:[/bold]\x1b[5m")  # fmt: skip
    kubectl("rollout", "status", "deployment/checkout", "-n", "shop")
    history = cli(demo[1], "history", "checkout", env=WIDE)
    assert history.returncode == 0, history.stdout + history.stderr
    _no_terminal_controls(history.stdout)
    assert "checkout=registry.example.com/shop/checkout:[/bold]^[[5m" in history.stdout
    for args in (("--dry-run",), ("--yes",)):
        result = cli(demo[1], "rollback", "checkout", *args, env=WIDE)
        assert result.returncode == 0, result.stdout + result.stderr
        _no_terminal_controls(result.stdout)
        assert f"which was: {HOSTILE_SHOWN}" in result.stdout
        assert (
            "containers[checkout].image: registry.example.com/shop/checkout:[/bold]^[[5m → "
            "registry.example.com/shop/checkout:2.14.0"
        ) in result.stdout
    assert "rolled back checkout to 2.14.0" in result.stdout


# -- who rolled back ---------------------------------------------------------------------------


def test_the_actor_is_the_os_user_and_the_kubeconfig_user_never_dollar_user(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    # A kubeconfig whose user is named apart from its context, as real ones often are.
    config = yaml.safe_load(demo[1].read_text())
    config["users"][0]["name"] = "admin@prod"
    config["contexts"][0]["context"]["user"] = "admin@prod"
    demo[1].write_text(yaml.safe_dump(config))
    result = cli(demo[1], "rollback", "checkout", "--yes", env={"USER": "mallory"})
    assert result.returncode == 0, result.stdout + result.stderr
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    deployment = json.loads(
        kubectl("get", "deployment/checkout", "-n", "shop", "-o", "json").stdout
    )
    annotations = deployment["metadata"]["annotations"]
    me = pwd.getpwuid(os.getuid()).pw_name
    actor = f"os user {me}, kubeconfig user admin@prod (unverified)"
    assert annotations["kubernetes.io/change-cause"] == (
        f"rolled back to revision 2 (2.13.0) by {actor} via CLI"
    )
    assert annotations["rollback-bot.io/rolled-back-by"] == actor
    assert "mallory" not in json.dumps(annotations)


def test_a_hostile_kubeconfig_user_name_is_recorded_as_data(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    hostile = "[/bold]\x1b[31m\nroot" + "z" * 200
    config = yaml.safe_load(demo[1].read_text())
    config["users"][0]["name"] = hostile
    config["contexts"][0]["context"]["user"] = hostile
    demo[1].write_text(yaml.safe_dump(config))
    result = cli(demo[1], "rollback", "checkout", "--yes", env=WIDE)
    assert result.returncode == 0, result.stdout + result.stderr
    _no_terminal_controls(result.stdout)
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    deployment = json.loads(
        kubectl("get", "deployment/checkout", "-n", "shop", "-o", "json").stdout
    )
    actor = deployment["metadata"]["annotations"]["rollback-bot.io/rolled-back-by"]
    assert "kubeconfig user [/bold]^[[31m^Jroot" in actor
    assert len(actor) <= 120
    assert actor.endswith("(unverified)")
