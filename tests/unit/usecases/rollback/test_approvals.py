"""The approvals use case with in-memory ports: what the last approval starts, with the
catalog's policy, and a start that failed for a passing reason waiting for that approval again."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.adapters.memory import MemoryDocument
from bot.config.catalog import Catalog, ServiceEntry
from bot.domain.errors import ClusterError
from bot.domain.rollback.approvals import ApprovalRequest, State
from bot.domain.rollback.models import Thread
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.approvals import Approvals
from bot.usecases.rollback.requests import RESTARTING, RollbackRequest, StartResult
from tests.builders import OneCluster
from tests.unit.usecases.rollback.test_runner import (
    TARGET,
    FakeCluster,
    RecordingSink,
    before,
    request,
)

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
THREAD = Thread("C0SHOP", "1795752000.000100", "1795752000.000100")


class Runner:
    def __init__(self, answers: Sequence[StartResult | Exception]) -> None:
        self.answers = list(answers)
        self.asked: list[RollbackRequest] = []

    async def start(self, rollback: RollbackRequest) -> StartResult:
        self.asked.append(rollback)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Messages:
    def __init__(self) -> None:
        self.shown: list[ApprovalRequest] = []

    async def post_request(self, request: ApprovalRequest, approvers: Sequence[str]) -> str:
        self.shown.append(request)
        return "1795752001.000200"

    async def update_request(self, request: ApprovalRequest, approvers: Sequence[str]) -> None:
        self.shown.append(request)

    async def announce_break_glass(self, *args: Any) -> None:
        pass


def approvals(runner: Runner, **entry: Any) -> tuple[Approvals, Messages]:
    catalog = Catalog(
        services={"checkout": ServiceEntry(namespace="shop", deployment="checkout", **entry)}
    )
    messages = Messages()
    use_case = Approvals(
        MemoryDocument(),
        runner,
        messages,
        OneCluster(FakeCluster(before())),
        AuditTrail([RecordingSink()]),
        catalog,
        now=lambda: NOW,
    )
    return use_case, messages


async def asked(use_case: Approvals) -> ApprovalRequest:
    rollback = dataclasses.replace(request(), thread=THREAD, snapshot=None, target=TARGET)
    return await use_case.ask(rollback, from_version="1.2", needed=1, minutes=15)


async def test_the_last_approval_starts_it_with_the_catalogs_gitops_policy_and_limit() -> None:
    runner = Runner([StartResult("started", "rolling back to 1.1")])
    use_case, _ = approvals(runner, approvals=1, gitops="suspend", history_limit=3)
    made = await asked(use_case)
    assert await use_case.approve(made.id, "U0BOB") is None
    (started,) = runner.asked
    assert (started.gitops, started.history_limit) == ("suspend", 3)
    assert (started.actor, started.thread) == ("U0ALICE", THREAD)
    found = await use_case.find(made.id)
    assert found is not None and found.state is State.APPROVED


async def test_a_start_that_failed_for_a_passing_reason_waits_for_the_approval_again() -> None:
    runner = Runner(
        [
            StartResult("refused", RESTARTING),
            ClusterError("the API server did not answer"),
            StartResult("started", "rolling back to 1.1"),
        ]
    )
    use_case, messages = approvals(runner, approvals=1)
    made = await asked(use_case)
    for _ in range(2):
        assert await use_case.approve(made.id, "U0BOB") is None
        found = await use_case.find(made.id)
        assert found is not None and found.state is State.PENDING and found.approvers == ()
        assert found.outcome is not None and "Approve again" in found.outcome
    assert await use_case.approve(made.id, "U0BOB") is None
    found = await use_case.find(made.id)
    assert found is not None and found.state is State.APPROVED
    assert len(runner.asked) == 3
    assert messages.shown[-1].state is State.APPROVED


async def test_a_refusal_at_the_last_approval_is_final() -> None:
    runner = Runner([StartResult("stale", "the deployment moved from revision 3 to 4")])
    use_case, _ = approvals(runner, approvals=1)
    made = await asked(use_case)
    assert await use_case.approve(made.id, "U0BOB") is None
    found = await use_case.find(made.id)
    assert found is not None and found.state is State.APPROVED
    assert found.outcome == "Not rolled back: the deployment moved from revision 3 to 4"
    refusal = await use_case.approve(made.id, "U0CAROL")
    assert refusal is not None and "approved already" in refusal
