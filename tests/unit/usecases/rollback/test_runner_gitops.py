"""Auto-sync the bot turned off just before a patch that then never went out is turned back on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.domain.errors import RollbackRefused
from bot.domain.rollback.models import Deployment, JsonDict, RunInfo, Target
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.engine import RollbackEngine
from bot.usecases.rollback.requests import RollbackRequest
from bot.usecases.rollback.runner import RolloutRunner
from tests.builders import OneCluster
from tests.unit.usecases.rollback.test_runner import (
    ME,
    NOW,
    FakeCluster,
    RecordingReporter,
    RecordingReporters,
    RecordingSink,
    after,
    before,
    outcome_of,
    request,
)


class RefusingPatch(FakeCluster):
    async def patch(
        self,
        namespace: str,
        name: str,
        patch: Sequence[JsonDict] | JsonDict,
        *,
        dry_run: bool,
        kind: object = None,
        subresource: str | None = None,
    ) -> Deployment:
        raise RollbackRefused("the target ReplicaSet disappeared while rolling back")


class Guard:
    """What the runner asks of the GitOps guard, recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def note(self, target: Target, policy: str | None) -> Any:
        return None

    async def refusal(self, request: RollbackRequest) -> str | None:
        return None

    async def before_patch(
        self, request: RollbackRequest, run: RunInfo, deployment: Deployment
    ) -> bool:
        self.calls.append("suspend")
        return True

    async def resume(self, target: Target, actor: str, via: str, *, force: bool = False) -> Any:
        self.calls.append(f"resume force={force}")


async def run_with(cluster: FakeCluster, guard: Guard) -> None:
    runner = RolloutRunner(
        RollbackEngine(OneCluster(cluster)),
        AuditTrail([RecordingSink()]),
        RecordingReporters(RecordingReporter()),
        replica_id=ME,
        now=lambda: NOW,
        gitops=guard,  # type: ignore[arg-type]
    )
    await outcome_of(await runner.start(request(gitops="suspend")))


async def test_a_patch_that_never_went_out_turns_auto_sync_back_on() -> None:
    guard = Guard()
    await run_with(RefusingPatch(before(), after=after()), guard)
    assert guard.calls == ["suspend", "resume force=True"]


async def test_a_patch_that_went_out_leaves_auto_sync_off() -> None:
    guard = Guard()
    await run_with(FakeCluster(before(), after=after()), guard)
    assert guard.calls == ["suspend"]


async def test_an_abort_never_touches_gitops_and_sends_the_status_patch() -> None:
    # An abort changes the Rollout's status only: nothing GitOps would revert, nothing to
    # suspend or refuse, whatever the catalog's policy.
    from bot.adapters.kube.parsing import parse_workload_history
    from bot.domain.rollback.models import Target, WorkloadKind
    from tests.unit.domain.rollback.test_argo_rollouts import aborted, history_rss, rollout

    def history_of(obj: dict[str, Any]) -> Any:
        return parse_workload_history(WorkloadKind.ROLLOUT, obj, history_rss())

    paused, done = history_of(rollout()), history_of(aborted(availableReplicas=5))
    cluster = FakeCluster(paused, after=done, watch=[done.deployment])
    guard = Guard()
    runner = RolloutRunner(
        RollbackEngine(OneCluster(cluster)),
        AuditTrail([RecordingSink()]),
        RecordingReporters(RecordingReporter()),
        replica_id=ME,
        now=lambda: NOW,
        gitops=guard,  # type: ignore[arg-type]
    )
    stable = paused.revisions[1]
    asked = request(
        gitops="refuse",
        abort=True,
        service="payments",
        target=Target("shop", "payments-canary", kind=WorkloadKind.ROLLOUT),
        target_replicaset=stable.replicaset,
        target_revision=stable.number,
        target_version=stable.version,
        snapshot=None,
    )
    result = await outcome_of(await runner.start(asked))
    assert result.succeeded, result.error
    assert guard.calls == []
    assert cluster.patches == [({"status": {"abort": True}},)]
