"""The rollback's story on a terminal: a live bar when interactive, lines otherwise.

What the cluster said (versions, services, rollout messages) is shown as plain text (`text`)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bot.domain.rollback.models import RunInfo, Target, Thread
from bot.domain.rollback.planning import RollbackPlan
from bot.domain.rollback.progress import Progress as RolloutProgress
from bot.entry.cli.text import plain


class ConsoleReporter:
    """The runner's `Reporters` and `Reporter` for the CLI: one terminal, one rollback."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, emoji=False)
        self._console = self.console
        self._interactive = self.console.is_terminal
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            disable=not self._interactive,
        )
        self._task = self._bar.add_task("rollout", total=None, counts="")
        self._last: str | None = None

    def reporter(self, thread: Thread | None, target: Target) -> ConsoleReporter:
        """The runner's `Reporters`: one terminal, one rollback at a time."""
        return self

    async def started(self, run: RunInfo, plan: RollbackPlan, reason: str | None) -> None:
        self._console.print(
            f"rolling back {plain(run.service)}: {plain(plan.from_version)} → "
            f"{plain(run.to_version)} (revision {plan.from_revision or '?'} → {run.to_revision})",
            markup=False,
        )
        self._bar.start()

    async def picked_up(self, run: RunInfo, previous: str) -> None:
        self._console.print(
            f"following the rollback of {plain(run.service)} to {plain(run.to_version)} "
            f"that {plain(previous)} started",
            markup=False,
        )
        self._bar.start()

    async def handed_over(self, run: RunInfo, me: str) -> None:
        self._bar.stop()
        self._console.print(
            f"stopped following the rollback of {plain(run.service)}: handed over", markup=False
        )

    async def not_picked_up(self, run: RunInfo, previous: str, detail: str, *, sent: bool) -> None:
        self._console.print(
            f"the rollback of {plain(run.service)} that {plain(previous)} started: {plain(detail)}",
            markup=False,
        )

    async def progress(self, progress: RolloutProgress, elapsed: float) -> None:
        if not self._interactive and progress.message != self._last:
            self._console.print(
                f"  {plain(progress.message)} ({plain(progress.counts)})", markup=False
            )
        self._last = progress.message
        done, of = progress.steps
        self._bar.update(self._task, total=of, completed=done, counts=plain(progress.counts))

    async def finished(
        self,
        last: RolloutProgress | None,
        elapsed: float,
        error: str | None,
        *,
        unknown: bool = False,
    ) -> None:
        self._bar.stop()
