"""The chart's GitOps settings: the bot reads GitOps objects exactly where the chart grants it."""

from __future__ import annotations

import json

from tests.helm.chart import MINIMAL, container, env_of, refusal, render


def test_gitops_off_by_default_tells_the_bot_to_look_nowhere() -> None:
    env = env_of(container(render(MINIMAL)))
    assert env["ROLLBACK_BOT_GITOPS_NAMESPACES"]["value"] == "[]"
    assert env["ROLLBACK_BOT_GITOPS_REMINDER_SECONDS"]["value"] == "14400"


def test_enabled_gitops_names_its_namespaces_to_the_bot() -> None:
    manifests = render(
        MINIMAL,
        sets=("gitops.enabled=true", "gitops.namespaces={argocd}", "gitops.reminderSeconds=600"),
    )
    env = env_of(container(manifests))
    assert json.loads(env["ROLLBACK_BOT_GITOPS_NAMESPACES"]["value"]) == ["argocd"]
    assert env["ROLLBACK_BOT_GITOPS_REMINDER_SECONDS"]["value"] == "600"


def test_the_schema_refuses_a_bad_gitops_namespace() -> None:
    said = refusal(MINIMAL, sets=("gitops.namespaces={Argo_CD}",))
    assert "gitops" in said and "namespaces" in said
