"""The CLI as people and scripts use it: a subprocess against the simulated cluster."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import Kubectl, find_kubectl
from tests.paths import REPO

CATALOG = "services:\n  checkout: {namespace: shop, deployment: checkout}\n"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[SandboxThread, Path]]:
    with SandboxThread(seed="demo", speed=40) as sandbox:
        (tmp_path / "catalog.yaml").write_text(CATALOG)
        yield sandbox, sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def cli(
    kubeconfig: Path,
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`rollback-bot ARGS` as a subprocess; `env` adds to its environment (None: takes away)."""
    base: dict[str, str | None] = {
        "KUBECONFIG": str(kubeconfig),
        "ROLLBACK_BOT_CONFIG": str(kubeconfig.parent / "catalog.yaml"),
        "ROLLBACK_BOT_AUDIT_FILE": str(kubeconfig.parent / "audit.jsonl"),
        "PATH": "/usr/bin:/bin",
        "USER": "carol",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={k: v for k, v in {**base, **(env or {})}.items() if v is not None},
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
    assert "checkout: image registry.example.com/shop/checkout:2.14.0 →" in result.stdout
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
    # Only the waiting ended: said so, with how to follow it, and not recorded as a failure.
    assert "stopped waiting after 1" in timed_out.stderr
    assert "kubectl -n shop rollout status deployment/checkout" in timed_out.stderr
    assert "failed" not in timed_out.stderr
    trail = (demo[1].parent / "audit.jsonl").read_text().splitlines()
    last = json.loads(trail[-1])
    assert last["step"] == "timed_out"
    assert f"rolled back checkout to {last['to_version']}, and the rollout goes on" in (
        timed_out.stderr
    )


def test_no_time_to_wait_is_a_usage_error(demo: tuple[SandboxThread, Path]) -> None:
    for zero in ("0", "0s"):
        result = cli(demo[1], "rollback", "checkout", "--yes", "--timeout", zero)
        assert result.returncode == 2
        assert "no time to wait: give more than 0s" in result.stderr


def lease_left_by(holder: str, started: datetime, seconds: int) -> str:
    """A rollback Lease as a replica leaves it when it is killed mid-rollout."""
    now = started.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    return json.dumps(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": "rollback-bot.checkout",
                "namespace": "shop",
                "labels": {"app.kubernetes.io/managed-by": "rollback-bot"},
                "annotations": {
                    "rollback-bot.io/actor": "U0DAVE01",
                    "rollback-bot.io/service": "checkout",
                    "rollback-bot.io/to-version": "2.13.0",
                    "rollback-bot.io/to-revision": "2",
                    "rollback-bot.io/started-at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            },
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": seconds,
                "acquireTime": now,
                "renewTime": now,
            },
        }
    )


def test_a_lock_left_by_a_stopped_replica_is_explained_and_can_be_waited_for(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    kubectl(
        "create",
        "--validate=false",
        "-f",
        "-",
        stdin=lease_left_by("replica-x", datetime.now(UTC), 3),
    )

    # One look cannot tell a live holder from a dead one: it says who, and what to do.
    busy = cli(demo[1], "rollback", "checkout", "--yes")
    assert busy.returncode == 3, busy.stdout + busy.stderr
    assert "U0DAVE01 is already rolling back" in busy.stderr
    assert "lock held by replica-x" in busy.stderr
    assert "--wait 1m" in busy.stderr

    # Waiting, it sees the Lease go unrenewed for its duration, then rolls back.
    waited = cli(demo[1], "rollback", "checkout", "--yes", "--wait", "40s")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "waiting up to" in waited.stdout
    assert "rolled back checkout to 2.13.0" in waited.stdout


def test_an_unknown_service_is_a_usage_error_exit_2_in_one_sentence(
    demo: tuple[SandboxThread, Path],
) -> None:
    unknown = cli(demo[1], "status", "chekout")
    assert unknown.returncode == 2  # the README: 2 usage
    assert unknown.stderr.strip() == "error: unknown service 'chekout': did you mean 'checkout'?"
    malformed = cli(demo[1], "rollback", "Shop/Checkout", "--yes")
    assert malformed.returncode == 2
    assert malformed.stderr.strip() == (
        "error: 'Shop/Checkout' is not [KIND/]NAMESPACE/NAME: both must be lowercase "
        "Kubernetes names"
    )
    assert cli(demo[1], "status").returncode == 2  # argparse's own, for comparison


def test_an_unreachable_cluster_is_one_line_without_the_libraries_chatter(
    demo: tuple[SandboxThread, Path],
) -> None:
    demo[0].stop()
    down = cli(demo[1], "history", "checkout")
    assert down.returncode == 1
    (line,) = down.stderr.splitlines()  # no urllib3 `Retrying (Retry(total=0 …` before it
    assert line.startswith("error: reading the history of deployment shop/checkout: ")
    assert line.endswith(f"cannot reach the Kubernetes API at {demo[0].url}")
    assert down.stdout == ""


# -- a kubeconfig that cannot be used: the file, the line, what is wrong ------------------------

SECRET_TOKEN = "s3cr3t-token-value"
USERS = f"users:\n- name: admin\n  user: {{token: {SECRET_TOKEN}}}\n"


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        pytest.param(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n"
            "    server: https://k8s.example.com:6443\n   contexts: []\n" + USERS,
            7,
            "invalid YAML: expected <block end>, but found '<block mapping start>'",
            id="indentation",
        ),
        pytest.param(
            "apiVersion: v1\nclusters:\n\t- name: prod\n" + USERS,
            3,
            "invalid YAML: found character '\\t' that cannot start any token",
            id="tab",
        ),
        pytest.param(
            "apiVersion: v1\nclusters: https://k8s.example.com:6443\n" + USERS,
            2,
            "'clusters' must be a list, not a single value",
            id="not-a-list",
        ),
        pytest.param(
            "apiVersion: v1\nclusters:\n- name: prod\n  cluster: {server: 'https://k8s:6443'}\n"
            "contexts:\n- name: prod\n  context: {cluster: staging, user: admin}\n"
            "current-context: prod\n" + USERS,
            7,
            "context 'prod' names cluster 'staging', but 'clusters' has no entry of that name",
            id="missing-cluster",
        ),
        pytest.param(
            "- apiVersion: v1\n- " + SECRET_TOKEN + "\n",
            1,
            "a kubeconfig is a mapping (apiVersion, clusters, contexts, users, …), not a list",
            id="a-list",
        ),
    ],
)
def test_a_malformed_kubeconfig_is_one_line_naming_the_file_and_the_line(
    tmp_path: Path, text: str, line: int, what: str
) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(text)
    for args in (("status", "checkout"), ("rollback", "shop/checkout", "--yes")):
        result = cli(kubeconfig, *args)
        assert result.returncode == 1, result.stderr
        assert result.stderr.splitlines() == [
            f"error: kubeconfig {kubeconfig}, line {line}: {what}"
        ]
        assert SECRET_TOKEN not in result.stdout + result.stderr
        assert result.stdout == ""


def test_a_missing_kubeconfig_and_an_unknown_context_are_named(
    demo: tuple[SandboxThread, Path],
) -> None:
    missing = demo[1].parent / "no-such-kubeconfig"
    result = cli(demo[1], "status", "checkout", env={"KUBECONFIG": str(missing)})
    assert (result.returncode, result.stderr) == (1, f"error: kubeconfig {missing}: no such file\n")
    result = cli(demo[1], "status", "checkout", "--context", "prod-eu")
    assert (result.returncode, result.stderr) == (
        1,
        f"error: kubeconfig {demo[1]}: there is no context 'prod-eu'\n",
    )


# -- the catalog ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["services: {}\n", "", "uncataloged: {allowed_users: [U0ALICE1]}\n"]
)
def test_an_empty_catalog_is_said_to_have_no_services_not_to_be_missing(
    demo: tuple[SandboxThread, Path], text: str
) -> None:
    catalog = demo[1].parent / "catalog.yaml"
    catalog.write_text(text)
    result = cli(demo[1], "status", "checkout")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: unknown service 'checkout': the service catalog {catalog} has no services; "
        "add it under 'services:' there, or give NAMESPACE/DEPLOYMENT"
    ]
    assert "no service catalog is configured" not in result.stderr
    assert cli(demo[1], "status", "shop/checkout").returncode == 0  # what it suggests works


def test_without_a_catalog_a_name_is_said_to_need_one(demo: tuple[SandboxThread, Path]) -> None:
    result = cli(demo[1], "status", "checkout", env={"ROLLBACK_BOT_CONFIG": None})
    assert result.returncode == 2
    assert "no service catalog is configured (ROLLBACK_BOT_CONFIG)" in result.stderr


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
            "checkout: image registry.example.com/shop/checkout:[/bold]^[[5m → "
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


# -- the README and the command agree ----------------------------------------------------------


def _exit_codes(text: str) -> list[tuple[int, str]]:
    """`Exit codes: 0 rolled out (…), 1 error, …` as (code, what), the parentheses left out."""
    found = re.search(r"Exit codes: (.*? stopped waiting)", " ".join(text.split()))
    assert found, "no `Exit codes:` sentence"
    sentence = re.sub(r"\s*\([^()]*\)", "", found.group(1))
    return [(int(code), what.strip()) for code, what in re.findall(r"(\d) ([^,;]+)", sentence)]


def test_the_readme_lists_the_exit_codes_the_cli_documents(tmp_path: Path) -> None:
    readme = _exit_codes((REPO / "README.md").read_text(encoding="utf-8"))
    assert [code for code, _ in readme] == [0, 1, 2, 3, 4, 5]
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    help_text = cli(tmp_path / "kubeconfig", "rollback", "--help").stdout
    assert _exit_codes(help_text) == readme


def test_an_image_changed_without_its_label_is_not_named_by_the_label_alone(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    kubectl("set", "image", "deployment/checkout", "-n", "shop",
            "checkout=registry.example.com/shop/checkout:2.15.0")  # fmt: skip
    kubectl("rollout", "status", "deployment/checkout", "-n", "shop")
    plan = cli(demo[1], "rollback", "checkout", "--dry-run")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "from  2.14.0 (image 2.15.0) (revision 4)" in plan.stdout
    assert "to    2.14.0 (revision 3" in plan.stdout


def test_a_revision_rolled_back_to_went_out_just_now_not_when_it_was_created(
    demo: tuple[SandboxThread, Path],
) -> None:
    before = json.loads(cli(demo[1], "history", "checkout", "-o", "json").stdout)
    old = next(r for r in before["revisions"] if r["version"] == "2.13.0")
    assert old["wentOutAt"] == old["createdAt"]  # never current again since it was created

    rolled = cli(demo[1], "rollback", "checkout", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    after = json.loads(cli(demo[1], "history", "checkout", "-o", "json").stdout)
    now = next(r for r in after["revisions"] if r["current"])
    assert now["version"] == "2.13.0"
    assert now["createdAt"] == old["createdAt"]  # the same ReplicaSet, reused
    went_out = datetime.fromisoformat(now["wentOutAt"])
    assert abs((datetime.now(UTC) - went_out).total_seconds()) < 60
    # The audit trail's confirmation carries that very instant.
    confirmed = [
        json.loads(line)
        for line in (demo[1].parent / "audit.jsonl").read_text().splitlines()
        if json.loads(line)["step"] == "confirmed"
    ]
    assert datetime.fromisoformat(confirmed[-1]["at"]).replace(microsecond=0) == went_out

    table = cli(demo[1], "history", "checkout", env=WIDE).stdout
    assert "WENT OUT" in table
    row = next(line for line in table.splitlines() if "2.13.0" in line and "*" in line)
    assert "s ago" in row and "d ago" not in row, row
