"""kubectl rollout status for StatefulSets and DaemonSets: every branch, in kubectl's words."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.rollback.models import WorkloadKind
from bot.domain.rollback.progress import Ending, Phase, ending
from bot.domain.rollback.workload_progress import (
    ONLY_ROLLING_UPDATE,
    WorkloadProgress,
    daemonset_progress,
    statefulset_progress,
    workload_progress,
)

ROLLING: dict[str, Any] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}


def statefulset(
    *,
    replicas: int | None = 3,
    strategy: dict[str, Any] | None = None,
    generation: int = 8,
    **status: Any,
) -> dict[str, Any]:
    """A StatefulSet as the API returns it; `status` overrides a rolled-out one's."""
    spec: dict[str, Any] = {
        "serviceName": "db",
        "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": []}},
        "updateStrategy": ROLLING if strategy is None else strategy,
        "podManagementPolicy": "OrderedReady",
    }
    if replicas is not None:
        spec["replicas"] = replicas
    full = {
        "observedGeneration": 8,
        "replicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": "db-5d8c7f9b6d",
        "updateRevision": "db-5d8c7f9b6d",
        "collisionCount": 0,
        **status,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "shop", "generation": generation},
        "spec": spec,
        "status": full,
    }


def daemonset(
    *, strategy: dict[str, Any] | None = None, generation: int = 3, **status: Any
) -> dict[str, Any]:
    full = {
        "observedGeneration": 3,
        "currentNumberScheduled": 5,
        "desiredNumberScheduled": 5,
        "numberMisscheduled": 0,
        "numberReady": 5,
        "numberAvailable": 5,
        "updatedNumberScheduled": 5,
        **status,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "node-agent", "namespace": "kube-system", "generation": generation},
        "spec": {
            "selector": {"matchLabels": {"app": "node-agent"}},
            "updateStrategy": strategy
            if strategy is not None
            else {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        },
        "status": full,
    }


def said(progress: WorkloadProgress) -> tuple[Phase, str]:
    return progress.phase, progress.message


# --- StatefulSetStatusViewer ----------------------------------------------------------------


def test_statefulset_waits_for_the_spec_to_be_observed() -> None:
    expected = (
        Phase.WAITING_FOR_OBSERVATION,
        "Waiting for statefulset spec update to be observed...",
    )
    assert said(statefulset_progress(statefulset(generation=9))) == expected
    # kubectl also counts an observedGeneration of 0 (never observed) as not yet
    assert said(statefulset_progress(statefulset(generation=0, observedGeneration=0))) == expected


def test_statefulset_waits_for_pods_to_be_ready_first() -> None:
    progress = statefulset_progress(statefulset(readyReplicas=1, updatedReplicas=0))
    assert said(progress) == (Phase.BECOMING_AVAILABLE, "Waiting for 2 pods to be ready...")
    assert (progress.desired, progress.ready, progress.updated) == (3, 1, 0)


def test_a_default_statefulset_waits_as_a_partitioned_roll_out_at_partition_0() -> None:
    # The API server sets rollingUpdate: {partition: 0} for the default strategy, so kubectl
    # takes the partitioned branch for a plain StatefulSet.
    progress = statefulset_progress(statefulset(updatedReplicas=1, updateRevision="db-7c6b5d4f8e"))
    assert said(progress) == (
        Phase.UPDATING,
        "Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated...",
    )
    assert said(statefulset_progress(statefulset())) == (
        Phase.COMPLETE,
        "partitioned roll out complete: 3 new pods have been updated...",
    )


def test_a_partitioned_statefulset_is_complete_once_the_pods_above_the_partition_are() -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    obj = statefulset(replicas=5, strategy=strategy, readyReplicas=5, updatedReplicas=2)
    obj["status"]["replicas"] = 5
    waiting = statefulset_progress(obj)
    assert said(waiting) == (
        Phase.UPDATING,
        "Waiting for partitioned roll out to finish: 2 out of 3 new pods have been updated...",
    )
    assert (waiting.partition, waiting.total, waiting.desired) == (2, 5, 5)
    done = statefulset_progress(
        statefulset(replicas=5, strategy=strategy, readyReplicas=5, updatedReplicas=3)
    )
    assert said(done) == (
        Phase.COMPLETE,
        "partitioned roll out complete: 3 new pods have been updated...",
    )
    assert done.finished


def test_rolling_update_without_a_partition_is_complete_at_once_as_kubectl_says() -> None:
    # kubectl only compares with the partition when there is one; a rollingUpdate without it
    # (never so from the API server, whose default is 0) is "complete" whatever was updated.
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    assert said(statefulset_progress(statefulset(strategy=strategy, updatedReplicas=0))) == (
        Phase.COMPLETE,
        "partitioned roll out complete: 0 new pods have been updated...",
    )


def test_a_partition_above_the_replicas_is_complete() -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 5}}
    assert statefulset_progress(statefulset(strategy=strategy, updatedReplicas=0)).phase is (
        Phase.COMPLETE
    )


def test_rolling_update_without_rolling_update_fields_waits_for_the_update_revision() -> None:
    strategy = {"type": "RollingUpdate"}
    progress = statefulset_progress(
        statefulset(
            strategy=strategy,
            updatedReplicas=1,
            currentReplicas=2,
            updateRevision="db-7c6b5d4f8e",
        )
    )
    assert said(progress) == (
        Phase.UPDATING,
        "waiting for statefulset rolling update to complete 1 pods at revision db-7c6b5d4f8e...",
    )
    assert said(statefulset_progress(statefulset(strategy=strategy))) == (
        Phase.COMPLETE,
        "statefulset rolling update complete 3 pods at revision db-5d8c7f9b6d...",
    )


def test_statefulset_without_replicas_skips_the_ready_and_partition_checks() -> None:
    progress = statefulset_progress(statefulset(replicas=None, readyReplicas=0, updatedReplicas=0))
    assert said(progress) == (
        Phase.COMPLETE,
        "partitioned roll out complete: 0 new pods have been updated...",
    )
    assert progress.desired == 1


def test_statefulset_on_delete_ends_saying_the_pods_must_be_deleted() -> None:
    progress = statefulset_progress(statefulset(strategy={"type": "OnDelete"}))
    assert progress.phase is Phase.PODS_TO_DELETE
    assert progress.finished
    assert progress.pods_must_be_deleted
    assert progress.strategy == "OnDelete"
    assert progress.message.startswith(
        "rollout status is only available for RollingUpdate strategy type: "
    )
    assert 'statefulset "db" uses the OnDelete update strategy' in progress.message
    assert "Delete the pods to bring the rolled-back version up" in progress.message
    # Told as its own ending: the template is back, the pods are not (never "rolled out").
    assert ending(progress, None) is Ending.PODS_TO_DELETE
    assert ending(progress, "the bot stopped") is Ending.FAILED


def test_statefulset_without_a_strategy_type_is_kubectls_error() -> None:
    progress = statefulset_progress(statefulset(strategy={}))
    assert said(progress) == (
        Phase.FAILED,
        f'{ONLY_ROLLING_UPDATE}: statefulset "db" has update strategy type none',
    )
    assert not progress.pods_must_be_deleted


def test_the_revision_is_carried_and_counts_read() -> None:
    progress = statefulset_progress(
        statefulset(readyReplicas=2, availableReplicas=1, updatedReplicas=2, replicas=3),
        revision=4,
    )
    assert progress.revision == 4
    assert (progress.total, progress.ready, progress.available) == (3, 2, 1)
    assert progress.counts == "2/3 updated, 2/3 ready, 1/3 available"


def test_complete_is_every_step() -> None:
    progress = statefulset_progress(statefulset())
    assert progress.steps == (9, 9)


def test_hostile_counts_read_as_nothing() -> None:
    obj = statefulset(readyReplicas="3", updatedReplicas=True, observedGeneration=10**30)
    obj["spec"]["replicas"] = "3"
    progress = statefulset_progress(obj)
    assert progress.phase is Phase.WAITING_FOR_OBSERVATION  # observedGeneration read as 0
    assert (progress.ready, progress.updated, progress.desired) == (0, 0, 1)
    assert statefulset_progress({}).phase is Phase.FAILED  # no strategy at all
    assert statefulset_progress({"metadata": [], "spec": None}).phase is Phase.FAILED


# --- DaemonSetStatusViewer ------------------------------------------------------------------


def test_daemonset_waits_for_the_spec_to_be_observed() -> None:
    assert said(daemonset_progress(daemonset(generation=4))) == (
        Phase.WAITING_FOR_OBSERVATION,
        "Waiting for daemon set spec update to be observed...",
    )


def test_daemonset_waits_for_pods_to_be_updated() -> None:
    progress = daemonset_progress(daemonset(updatedNumberScheduled=2, numberAvailable=4))
    assert said(progress) == (
        Phase.UPDATING,
        'Waiting for daemon set "node-agent" rollout to finish: 2 out of 5 new pods have been '
        "updated...",
    )
    assert (progress.desired, progress.updated, progress.available, progress.total) == (5, 2, 4, 5)


def test_daemonset_waits_for_updated_pods_to_be_available() -> None:
    assert said(daemonset_progress(daemonset(numberAvailable=4))) == (
        Phase.BECOMING_AVAILABLE,
        'Waiting for daemon set "node-agent" rollout to finish: 4 of 5 updated pods are '
        "available...",
    )


def test_daemonset_complete() -> None:
    progress = daemonset_progress(daemonset(), revision=6)
    assert said(progress) == (Phase.COMPLETE, 'daemon set "node-agent" successfully rolled out')
    assert progress.revision == 6
    assert ending(progress, None) is Ending.SUCCEEDED


def test_daemonset_on_no_node_is_complete() -> None:
    empty = daemonset(
        currentNumberScheduled=0,
        desiredNumberScheduled=0,
        numberReady=0,
        numberAvailable=0,
        updatedNumberScheduled=0,
    )
    assert daemonset_progress(empty).phase is Phase.COMPLETE


def test_daemonset_on_delete_ends_saying_the_pods_must_be_deleted() -> None:
    progress = daemonset_progress(daemonset(strategy={"type": "OnDelete"}))
    assert progress.phase is Phase.PODS_TO_DELETE
    assert progress.pods_must_be_deleted
    assert progress.message.startswith(ONLY_ROLLING_UPDATE)
    assert 'daemon set "node-agent" uses the OnDelete update strategy' in progress.message


def test_daemonset_of_an_unknown_strategy_is_kubectls_error() -> None:
    assert said(daemonset_progress(daemonset(strategy={"type": "Surge"}))) == (
        Phase.FAILED,
        f'{ONLY_ROLLING_UPDATE}: daemon set "node-agent" has update strategy type "Surge"',
    )


# --- by kind --------------------------------------------------------------------------------


def test_the_viewer_is_chosen_by_kind() -> None:
    assert workload_progress(WorkloadKind.STATEFULSET, statefulset()).message.startswith(
        "partitioned roll out complete"
    )
    assert workload_progress(WorkloadKind.DAEMONSET, daemonset(), revision=2).revision == 2
    with pytest.raises(ValueError, match="rollout_progress"):
        workload_progress(WorkloadKind.DEPLOYMENT, {})
