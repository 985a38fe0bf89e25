"""The GitOps decisions: what manages a Deployment, whether it would revert a rollback, the
policy's answer, the exact suspend/resume patches, reminders and the resume warning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.rollback.gitops import (
    REMINDED_ANNOTATION,
    SUSPENDED_ANNOTATION,
    GitopsRef,
    GitopsState,
    Managed,
    Suspension,
    action,
    describe,
    in_git_instead,
    managed_by,
    parse_state,
    reminder_due,
    resume_patch,
    resume_warning,
    suspend_patch,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TRACKING = "argocd.argoproj.io/tracking-id"


def application(
    automated: Any = None, annotations: dict[str, str] | None = None, **status: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"destination": {"namespace": "shop"}, "syncPolicy": {}}
    if automated is not None:
        spec["syncPolicy"]["automated"] = automated
    return {
        "metadata": {
            "name": "shop-payments",
            "namespace": "argocd",
            "resourceVersion": "42",
            "annotations": annotations or {},
        },
        "spec": spec,
        "status": status,
    }


def suspension(**changes: Any) -> Suspension:
    fields: dict[str, Any] = {
        "at": NOW,
        "by": "U0ONCALL01",
        "service": "payments",
        "namespace": "shop",
        "deployment": "payments",
        "channel": "C0INCIDENT",
        "thread_ts": "1700000000.000100",
        "previous": {"prune": True, "selfHeal": True},
        "bad_version": "1.5.0",
        "revision": "9e8f",
    }
    return Suspension(**{**fields, **changes})


# -- what manages a Deployment ---------------------------------------------------------------


def test_the_tracking_id_names_the_application_when_it_names_this_deployment() -> None:
    ref = managed_by(
        "shop", "payments", {}, {TRACKING: "shop-payments:apps/Deployment:shop/payments"}
    )
    assert ref is not None
    assert (ref.kind, ref.name, ref.namespace, ref.check_destination) == (
        "Application",
        "shop-payments",
        None,
        False,
    )


def test_a_tracking_id_of_another_object_is_ignored_as_argo_cd_does() -> None:
    copied = {TRACKING: "shop-payments:apps/Deployment:shop/checkout"}
    assert managed_by("shop", "payments", {}, copied) is None
    other_kind = {TRACKING: "shop-payments:/ConfigMap:shop/payments"}
    assert managed_by("shop", "payments", {}, other_kind) is None


def test_an_application_in_another_namespace_is_tracked_as_namespace_underscore_name() -> None:
    ref = managed_by("shop", "web", {}, {TRACKING: "team-a_web:apps/Deployment:shop/web"})
    assert ref is not None and (ref.namespace, ref.name) == ("team-a", "web")


@pytest.mark.parametrize(
    ("labels", "kind", "name", "namespace"),
    [
        (
            {
                "kustomize.toolkit.fluxcd.io/name": "search",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
            },
            "Kustomization",
            "search",
            "flux-system",
        ),
        (
            {
                "helm.toolkit.fluxcd.io/name": "cart",
                "helm.toolkit.fluxcd.io/namespace": "apps",
            },
            "HelmRelease",
            "cart",
            "apps",
        ),
    ],
)
def test_flux_labels_name_the_kustomization_or_helmrelease(
    labels: dict[str, str], kind: str, name: str, namespace: str
) -> None:
    ref = managed_by("shop", "x", labels, {})
    assert ref is not None and (ref.kind, ref.name, ref.namespace) == (kind, name, namespace)


def test_the_instance_label_alone_asks_for_the_destination_to_be_checked() -> None:
    ref = managed_by("shop", "web", {"app.kubernetes.io/instance": "web"}, {})
    assert ref is not None and ref.check_destination and ref.namespace is None


def test_names_from_outside_that_are_not_kubernetes_names_are_ignored() -> None:
    bad = {
        "kustomize.toolkit.fluxcd.io/name": "../../etc",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        "app.kubernetes.io/instance": "x" * 300,
    }
    assert managed_by("shop", "web", bad, {TRACKING: "a" * 5000}) is None


# -- the object's state and the policy ---------------------------------------------------------


def test_argo_cd_self_heal_reverts_and_the_policy_decides() -> None:
    state = parse_state("Application", application({"selfHeal": True}), "shop", "payments")
    assert state.auto_sync and state.self_heal
    managed = Managed(instance_ref(), state)
    assert describe(managed) == (
        "managed by Argo CD app `shop-payments`, auto-sync with self-heal on: a rollback alone "
        "would be reverted"
    )
    assert [action(p, managed) for p in ("warn", "suspend", "refuse")] == [
        "warn",
        "suspend",
        "refuse",
    ]
    assert "revert the bad change in the Git repository" in in_git_instead(managed, "payments")


def instance_ref() -> GitopsRef:
    ref = managed_by("shop", "payments", {"app.kubernetes.io/instance": "shop-payments"}, {})
    assert ref is not None
    return ref


def test_auto_sync_off_or_switched_off_by_argo_cd_3_means_nothing_to_do() -> None:
    for app in (application(None), application({"enabled": False, "selfHeal": True})):
        state = parse_state("Application", app, "shop", "payments")
        assert not state.auto_sync and not state.self_heal
        assert action("refuse", Managed(instance_ref(), state)) == "none"


def test_an_object_that_could_not_be_read_counts_as_one_that_would_revert() -> None:
    managed = Managed(instance_ref(), problem="403 Forbidden")
    assert action("suspend", managed) == "suspend"
    assert "could not be read: 403 Forbidden" in describe(managed)
    assert action("warn", None) == "none"


def test_flux_suspended_and_helm_drift_detection() -> None:
    kustomization: dict[str, Any] = {
        "metadata": {"name": "s", "namespace": "f"},
        "spec": {"interval": "10m"},
    }
    state = parse_state("Kustomization", kustomization, "shop", "search")
    assert state.auto_sync and state.self_heal and state.interval == "10m"
    kustomization["spec"]["suspend"] = True
    assert not parse_state("Kustomization", kustomization, "shop", "search").auto_sync
    release = {"metadata": {"name": "c"}, "spec": {"driftDetection": {"mode": "warn"}}}
    helm = parse_state("HelmRelease", release, "shop", "cart")
    assert helm.auto_sync and not helm.self_heal


# -- suspend and resume, exactly -----------------------------------------------------------------


def merge(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies a merge patch."""
    out = dict(doc)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            inner = out.get(key)
            out[key] = merge(inner if isinstance(inner, dict) else {}, value)
        else:
            out[key] = value
    return out


def test_suspend_then_resume_restores_the_application_exactly() -> None:
    automated = {"prune": True, "selfHeal": True, "allowEmpty": False}
    original = application(automated, {"team": "payments"})
    state = parse_state("Application", original, "shop", "payments")
    mark = suspension(previous=state.automated)
    patch = suspend_patch(state, mark)
    assert patch["metadata"]["resourceVersion"] == "42"  # a precondition
    suspended = merge(original, patch)
    assert "automated" not in suspended["spec"]["syncPolicy"]
    after = parse_state("Application", suspended, "shop", "payments")
    assert after.suspended_by_bot and after.suspension == mark
    resumed = merge(suspended, resume_patch(after))
    assert resumed["spec"] == original["spec"]
    assert resumed["metadata"]["annotations"] == {"team": "payments"}


def test_resume_over_an_argo_cd_3_switched_off_block_is_exact() -> None:
    suspended = application(
        {"enabled": False, "retry": {"limit": 2}},
        {SUSPENDED_ANNOTATION: suspension(previous={"selfHeal": True}).to_json()},
    )
    state = parse_state("Application", suspended, "shop", "payments")
    resumed = merge(suspended, resume_patch(state))
    assert resumed["spec"]["syncPolicy"]["automated"] == {"selfHeal": True}


def test_flux_resume_puts_back_what_suspend_was() -> None:
    original = {"metadata": {"name": "s", "resourceVersion": "7"}, "spec": {"interval": "5m"}}
    state = parse_state("Kustomization", original, "shop", "search")
    suspended = merge(original, suspend_patch(state, suspension(previous=state.suspend)))
    assert suspended["spec"]["suspend"] is True
    resumed = merge(suspended, resume_patch(parse_state("Kustomization", suspended, "shop", "s")))
    assert resumed["spec"] == {"interval": "5m"}


def test_when_someone_else_turned_auto_sync_back_on_resume_only_removes_the_mark() -> None:
    app = application({"selfHeal": True}, {SUSPENDED_ANNOTATION: suspension().to_json()})
    state = parse_state("Application", app, "shop", "payments")
    assert state.suspension is not None and not state.suspended_by_bot
    assert "spec" not in resume_patch(state)


def test_a_mark_that_the_bot_could_not_have_written_is_not_read() -> None:
    for raw in ("{", "[]", '{"at": "x"}', "x" * 10_000, '{"at": "2026-01-01T00:00:00Z"}'):
        assert Suspension.from_json(raw) is None
    assert Suspension.from_json(suspension().to_json()) == suspension()


# -- reminders and the resume warning ------------------------------------------------------------


def suspended_state(reminded: datetime | None = None, **status: Any) -> GitopsState:
    annotations = {SUSPENDED_ANNOTATION: suspension().to_json()}
    if reminded is not None:
        annotations[REMINDED_ANNOTATION] = reminded.isoformat()
    return parse_state("Application", application(None, annotations, **status), "shop", "payments")


def test_one_reminder_per_interval_from_the_last_one() -> None:
    every = timedelta(hours=4)
    assert not reminder_due(suspended_state(), NOW + timedelta(hours=3, minutes=59), every)
    assert reminder_due(suspended_state(), NOW + timedelta(hours=4), every)
    reminded = suspended_state(NOW + timedelta(hours=4))
    assert not reminder_due(reminded, NOW + timedelta(hours=7), every)
    assert reminder_due(reminded, NOW + timedelta(hours=8), every)


def test_no_reminder_once_resumed_or_turned_back_on() -> None:
    plain = parse_state("Application", application(None), "shop", "payments")
    assert not reminder_due(plain, NOW + timedelta(days=1), timedelta(hours=4))
    back_on = parse_state(
        "Application",
        application({"selfHeal": True}, {SUSPENDED_ANNOTATION: suspension().to_json()}),
        "shop",
        "payments",
    )
    assert not reminder_due(back_on, NOW + timedelta(days=1), timedelta(hours=4))


def test_resume_warns_while_git_is_still_at_the_bad_revision() -> None:
    still = suspended_state(sync={"status": "OutOfSync", "revision": "9e8f"})
    warning = resume_warning(still)
    assert warning is not None and "Git has not moved" in warning and "(1.5.0)" in warning
    fixed = suspended_state(sync={"status": "Synced", "revision": "a1b2"})
    assert resume_warning(fixed) is None
    moved = suspended_state(sync={"status": "OutOfSync", "revision": "a1b2"})
    assert "OutOfSync" in (resume_warning(moved) or "")
    unknown = suspended_state()
    assert "has not said" in (resume_warning(unknown) or "")


def test_flux_cannot_tell_so_resume_always_warns() -> None:
    obj = {
        "metadata": {"name": "s", "annotations": {SUSPENDED_ANNOTATION: suspension().to_json()}},
        "spec": {"suspend": True},
        "status": {"lastAppliedRevision": "main@sha1:5e6f"},
    }
    warning = resume_warning(parse_state("Kustomization", obj, "shop", "search"))
    assert warning is not None and "Flux does not compare while suspended" in warning
