"""The migration guard and the plan's preview in the CLI, run as a subprocess against the
simulated cluster: refused with exit 3 past an irreversible migration, overridden only with the
flag, a reason and the service's name typed, recorded; env values never printed."""

from __future__ import annotations

import json
from pathlib import Path

from rollback_sandbox.cluster.threaded import SandboxThread
from tests.integration.migration_deploys import PLAIN_SECRET, deploy_checkout
from tests.integration.test_cli import cli, demo

__all__ = ["demo"]  # the fixture, used by name

BLOCKED = "2.14.0 cannot run against the schema migrated by 3.0.0 (revision 4)"


def version(kubeconfig: Path) -> str:
    return str(json.loads(cli(kubeconfig, "status", "checkout", "-o", "json").stdout)["version"])


def test_a_rollback_past_an_irreversible_migration_is_refused_with_exit_3(
    demo: tuple[SandboxThread, Path],
) -> None:
    kubeconfig = demo[1]
    deploy_checkout(kubeconfig, "3.0.0", migration="irreversible")
    for args in (("--yes",), ("--dry-run",), ("--to-revision", "1", "--yes")):
        result = cli(kubeconfig, "rollback", "checkout", *args)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "--override-migration-guard" in result.stderr
    assert BLOCKED in cli(kubeconfig, "rollback", "checkout", "--yes").stderr
    assert version(kubeconfig) == "3.0.0"


def test_the_override_needs_a_reason_and_the_name_typed_and_is_recorded(
    demo: tuple[SandboxThread, Path],
) -> None:
    kubeconfig = demo[1]
    deploy_checkout(kubeconfig, "3.0.0", migration="irreversible")
    override = ("rollback", "checkout", "--override-migration-guard", "--yes")
    no_reason = cli(kubeconfig, *override)
    assert no_reason.returncode == 2 and "needs --reason" in no_reason.stderr
    untyped = cli(kubeconfig, *override, "--reason", "schema restored", stdin="")
    assert untyped.returncode == 3, untyped.stdout + untyped.stderr
    assert "--confirm-service checkout" in untyped.stderr
    wrong = cli(kubeconfig, *override, "--reason", "schema restored", "--confirm-service", "cart")
    assert wrong.returncode == 3 and "the name typed is not checkout" in wrong.stderr
    assert version(kubeconfig) == "3.0.0"
    trail = kubeconfig.parent / "audit.jsonl"
    assert not trail.exists() or "override" not in trail.read_text()

    done = cli(
        kubeconfig, *override, "--reason", "schema restored", "--confirm-service", "checkout"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"override  migration guard: {BLOCKED}" in done.stdout
    assert version(kubeconfig) == "2.14.0"
    records = [json.loads(line) for line in trail.read_text().splitlines()]
    steps = [r["step"] for r in records]
    assert steps.index("override") < steps.index("confirmed") < steps.index("succeeded")
    override_record = records[steps.index("override")]
    assert override_record["detail"] == f"migration guard: {BLOCKED}"
    assert (override_record["reason"], override_record["via"]) == ("schema restored", "CLI")


def test_the_plan_names_env_vars_without_their_values_and_notes_mutable_tags(
    demo: tuple[SandboxThread, Path],
) -> None:
    kubeconfig = demo[1]
    deploy_checkout(
        kubeconfig,
        "2.15.0",
        image="registry.example.com/shop/checkout:latest",
        history_limit=2,
    )
    deploy_checkout(kubeconfig, "3.0.0", secret_env=True, migration="additive")
    result = cli(kubeconfig, "rollback", "checkout", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "what changes (env values are never shown):" in out
    assert (
        "checkout: image registry.example.com/shop/checkout:3.0.0 → "
        "registry.example.com/shop/checkout:latest"
    ) in out
    assert "checkout: env removed: API_TOKEN, DB_PASSWORD (values not shown)" in out
    assert PLAIN_SECRET not in out and "secretKeyRef" not in out
    assert "note  keeps only 2 old ReplicaSets (spec.revisionHistoryLimit: 2)" in out
    assert "note  mutable image tag: checkout (registry.example.com/shop/checkout:latest)" in out
