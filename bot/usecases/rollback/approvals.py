"""The two-person rule: a confirmed rollback of a service that needs approvals becomes a request
in its thread, and starts (through the runner: same Lease, stale check and record) at the last
approval. Requests live in a document every replica sees (a ConfigMap of the bot's own), so an
Approve click landing on another replica works, and a restart loses none.

Changes are optimistic, like the alert index's: read, decide (the pure decisions of
`bot.domain.rollback.approvals`), write back at the version read; a conflict decides again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.config.catalog import DEFAULT_HISTORY_LIMIT, Catalog, ServiceEntry
from bot.domain.audit import AuditRecord, Step
from bot.domain.errors import ClusterError, Conflict, RollbackBotError, Stale
from bot.domain.retry import Backoff, retry
from bot.domain.rollback.approvals import (
    ApprovalRequest,
    Decision,
    State,
    approve,
    expire,
    from_json,
    keep,
    reject,
    to_json,
)
from bot.domain.rollback.guards import staleness
from bot.domain.rollback.models import Deployment, JsonDict, Target
from bot.domain.rollback.planning import plan_rollback
from bot.domain.times import utc_now
from bot.usecases.audit import AuditTrail
from bot.usecases.documents import Document
from bot.usecases.rollback.access import approvers_of
from bot.usecases.rollback.ports import ApprovalMessages, Clusters
from bot.usecases.rollback.requests import RESTARTING, RollbackRequest, StartResult

log = logging.getLogger(__name__)

CONFLICT_ATTEMPTS = 10
CONFLICT_BACKOFF = Backoff(first=0.02, factor=2.0, cap=0.64)
MAX_PENDING = 200  # a document of its own stays far below a ConfigMap's 1 MiB


class Rollbacks(Protocol):
    """Who starts the rollback at the last approval (the runner)."""

    async def start(self, request: RollbackRequest) -> StartResult: ...


class Approvals:
    def __init__(
        self,
        store: Document,
        rollbacks: Rollbacks,
        messages: ApprovalMessages,
        clusters: Clusters,
        audit: AuditTrail,
        catalog: Catalog,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._catalog = catalog
        self._store = store
        self._rollbacks = rollbacks
        self._messages = messages
        self._clusters = clusters
        self._audit = audit
        self._now = now

    async def ask(
        self,
        rollback: RollbackRequest,
        *,
        from_version: str,
        needed: int,
        minutes: float,
    ) -> ApprovalRequest:
        """Turn a confirmed rollback into a request in its thread, recorded. What it would do
        is planned now from the cluster (a refusal or a stale click is said at once, and the
        request shows what changes); it is planned again when the last approval lands."""
        if rollback.thread is None:
            raise RollbackBotError("a request for approval is made in a Slack thread")
        target = rollback.target
        history = await self._clusters.cluster(target.context).history(
            target.namespace, target.name, kind=target.kind
        )
        if rollback.snapshot is not None and (moved := staleness(rollback.snapshot, history)):
            raise Stale(f"not asked: {moved}")
        plan = plan_rollback(history, rollback.target_revision)
        now = self._now()
        request = ApprovalRequest(
            id=secrets.token_hex(6),
            service=rollback.service,
            target=rollback.target,
            requester=rollback.actor,
            requester_name=rollback.actor_name,
            from_version=from_version,
            to_version=rollback.target_version,
            target_replicaset=rollback.target_replicaset,
            target_revision=rollback.target_revision,
            snapshot=rollback.snapshot,
            reason=rollback.reason,
            thread=rollback.thread,
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
            needed=needed,
            changes=tuple(str(change) for change in plan.changes),
        )
        await self._add(request)
        await self._record(request, Step.APPROVAL_REQUESTED, request.requester, needed)
        try:
            ts = await self._messages.post_request(request, self.approvers(request.service))
        except Exception:
            # The request stands (and expires) even if its message could not be shown now.
            log.exception("could not post the request for approval %s", request.id)
            return request
        decision = await self._change(request.id, lambda r: Decision(replace(r, request_ts=ts)))
        return decision.request or request

    async def break_glass(self, rollback: RollbackRequest) -> StartResult:
        """Skip approval (the caller checked the person may, and the reason is there): said in
        the thread to the approvers, recorded as such, then started like any rollback."""
        if rollback.thread is None or not rollback.reason:
            raise RollbackBotError("breaking glass needs a thread and a reason")
        record = AuditRecord(
            step=Step.BREAK_GLASS,
            service=rollback.service,
            namespace=rollback.target.namespace,
            deployment=rollback.target.name,
            actor=rollback.actor,
            via="Slack",
            at=self._now(),
            to_version=rollback.target_version,
            to_revision=rollback.target_revision,
            reason=rollback.reason,
            detail="skipped approval",
            channel=rollback.thread.channel,
            thread_ts=rollback.thread.thread_ts,
            context=rollback.target.context,
        )
        await self._audit.record(record, await self._deployment(rollback.target))
        try:
            await self._messages.announce_break_glass(
                rollback.thread,
                rollback.actor,
                rollback.service,
                rollback.target_version,
                rollback.reason,
                self.approvers(rollback.service),
            )
        except Exception:
            log.exception("could not announce breaking glass for %s", rollback.service)
        return await self._rollbacks.start(rollback)

    async def find(self, request_id: str) -> ApprovalRequest | None:
        document = await self._store.read(f"reading approval request {request_id}")
        text = _data(document).get(request_id)
        return from_json(text) if text is not None else None

    async def approve(self, request_id: str, user: str) -> str | None:
        """Count `user`'s approval (already authorized); at the last one, start the rollback.
        None when counted, else why not (nothing changed)."""
        now = self._now()
        decision = await self._change(request_id, lambda r: approve(r, user, now))
        if decision.request is None:
            return decision.refusal
        request = decision.request
        await self._record(request, Step.APPROVED, user, len(request.approvers))
        if decision.complete:
            outcome, again = await self._start(request)

            def settle(r: ApprovalRequest) -> Decision:
                if not again:
                    return Decision(replace(r, outcome=outcome))
                # Nothing started for a passing reason: waiting again for that last approval.
                return Decision(
                    replace(
                        r,
                        state=State.PENDING,
                        approvers=r.approvers[:-1],
                        decided_at=None,
                        outcome=outcome,
                    )
                )

            done = await self._change(request_id, settle)
            request = done.request or request
        await self._show(request)
        return None

    async def reject(self, request_id: str, user: str) -> str | None:
        now = self._now()
        decision = await self._change(request_id, lambda r: reject(r, user, now))
        if decision.request is None:
            return decision.refusal
        await self._record(decision.request, Step.REJECTED, user, len(decision.request.approvers))
        await self._show(decision.request)
        return None

    async def expire_due(self) -> int:
        """Expire the requests past their time, each recorded and its thread told once."""
        now = self._now()
        expired: list[ApprovalRequest] = []

        def decide(data: dict[str, str]) -> dict[str, str]:
            expired.clear()
            for key, text in data.items():
                request = from_json(text)
                if request is None:
                    continue
                late = expire(request, now)
                if late is not None:
                    expired.append(late)
                    data[key] = to_json(late)
            return data

        await self._rewrite("expiring approval requests", decide, changed=lambda: bool(expired))
        for request in expired:
            await self._record(request, Step.EXPIRED, request.requester, len(request.approvers))
            await self._show(request)
        return len(expired)

    async def run(self, interval: float) -> None:
        """Expire what is due every `interval` seconds until cancelled."""
        while True:
            try:
                await self.expire_due()
            except RollbackBotError as exc:
                log.warning("could not expire approval requests: %s", exc)
            await asyncio.sleep(interval)

    # -- starting the rollback ------------------------------------------------------------------

    async def _start(self, request: ApprovalRequest) -> tuple[str, bool]:
        """The rollback, through the runner, as the requester asked it and as the catalog says
        now (its GitOps policy, how many versions to show): what it said, and whether the last
        approval may be given again (nothing started for a passing reason: the cluster did not
        answer, another rollback runs, this replica is stopping)."""
        entry = self._entry(request.service)
        try:
            result = await self._rollbacks.start(
                RollbackRequest(
                    service=request.service,
                    target=request.target,
                    target_replicaset=request.target_replicaset,
                    target_revision=request.target_revision,
                    target_version=request.to_version,
                    snapshot=request.snapshot,
                    actor=request.requester,
                    actor_name=request.requester_name,
                    via="Slack",
                    reason=request.reason,
                    thread=request.thread,
                    history_limit=entry.history_limit if entry else DEFAULT_HISTORY_LIMIT,
                    gitops=entry.gitops if entry else "warn",
                )
            )
        except ClusterError as exc:
            return f"Not started: {exc}. Approve again to try again.", True
        except RollbackBotError as exc:
            return f"Not rolled back: {exc}", False
        if result.outcome == "started":
            return f"Rolling back to {request.to_version}: follow it in this thread.", False
        if result.outcome == "skipped":
            return f"Nothing to do: {result.message}", False
        if result.outcome == "running" or result.message == RESTARTING:
            return f"Not started: {result.message}. Approve again to try again.", True
        return f"Not rolled back: {result.message}", False

    def _entry(self, service: str) -> ServiceEntry | None:
        try:
            return self._catalog.resolve(service).entry
        except RollbackBotError:
            return None

    # -- the document ---------------------------------------------------------------------------

    async def _add(self, request: ApprovalRequest) -> None:
        def add(data: dict[str, str]) -> dict[str, str]:
            pending = sum(
                1 for t in data.values() if (r := from_json(t)) and r.state is State.PENDING
            )
            if pending >= MAX_PENDING:
                raise RollbackBotError(
                    f"{MAX_PENDING} requests for approval are waiting already; approve, reject "
                    "or let them expire first"
                )
            data[request.id] = to_json(request)
            return data

        await self._rewrite(f"storing approval request {request.id}", add)

    async def _change(
        self, request_id: str, decide: Callable[[ApprovalRequest], Decision]
    ) -> Decision:
        outcome: list[Decision] = []

        def change(data: dict[str, str]) -> dict[str, str]:
            outcome.clear()
            text = data.get(request_id)
            request = from_json(text) if text is not None else None
            if request is None:
                outcome.append(Decision(None, "this request is not known (any more)"))
                return data
            decision = decide(request)
            outcome.append(decision)
            if decision.request is not None:
                data[request_id] = to_json(decision.request)
            return data

        await self._rewrite(
            f"changing approval request {request_id}",
            change,
            changed=lambda: bool(outcome and outcome[0].request is not None),
        )
        return outcome[0]

    async def _rewrite(
        self,
        what: str,
        change: Callable[[dict[str, str]], dict[str, str]],
        *,
        changed: Callable[[], bool] = lambda: True,
    ) -> None:
        """Read, change, prune what is done with, write back at the version read."""

        async def attempt(_number: int) -> None:
            document = await self._store.read(what)
            version = _version(document)
            data = change(dict(_data(document)))
            if not changed():
                return
            now = self._now()
            kept = {
                k: v for k, v in data.items() if (r := from_json(v)) is not None and keep(r, now)
            }
            await self._store.write(what, version, kept)

        try:
            await retry(
                attempt, retry_on=Conflict, attempts=CONFLICT_ATTEMPTS, backoff=CONFLICT_BACKOFF
            )
        except Conflict:
            raise Conflict(f"{what}: {self._store.where} kept changing; try again") from None

    # -- telling ----------------------------------------------------------------------------------

    def approvers(self, service: str) -> tuple[str, ...]:
        """Who may approve a rollback of `service`, as the catalog says now."""
        try:
            return approvers_of(self._catalog.resolve(service))
        except RollbackBotError:
            return ()

    async def _show(self, request: ApprovalRequest) -> None:
        try:
            await self._messages.update_request(request, self.approvers(request.service))
        except Exception:
            log.exception("could not update the request for approval %s", request.id)

    async def _deployment(self, target: Target) -> Deployment | None:
        """The Deployment a record's Event goes on, when it can be read."""
        try:
            return await self._clusters.cluster(target.context).read(
                target.namespace, target.name, kind=target.kind
            )
        except RollbackBotError:
            log.warning("could not read %s to record a step about it", target)
            return None

    async def _record(self, request: ApprovalRequest, step: Step, actor: str, count: int) -> None:
        deployment = await self._deployment(request.target)
        record = AuditRecord(
            step=step,
            service=request.service,
            namespace=request.target.namespace,
            deployment=request.target.name,
            actor=actor,
            via="Slack",
            at=self._now(),
            from_version=request.from_version,
            to_version=request.to_version,
            to_revision=request.target_revision,
            reason=request.reason if step is Step.APPROVAL_REQUESTED else None,
            detail=f"request {request.id}: {count} of {request.needed} approvals",
            channel=request.thread.channel,
            thread_ts=request.thread.thread_ts,
            context=request.target.context,
        )
        await self._audit.record(record, deployment)


def _data(document: JsonDict | None) -> dict[str, str]:
    raw = (document or {}).get("data") or {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}


def _version(document: JsonDict | None) -> str | None:
    if document is None:
        return None
    version = (document.get("metadata") or {}).get("resourceVersion")
    return version if isinstance(version, str) else None
