"""The chart of an analysis' report: the signal that decided, its baseline and new version over
what was analysed, the threshold, and when the bot rolled back. Building it imports no plotting
library (`render` does, in a worker thread)."""

from __future__ import annotations

import math

from bot.adapters.charts.model import MAX_POINTS, Chart, ChartSeries
from bot.adapters.charts.render import render_png
from bot.domain.analysis.checks import Outcome
from bot.domain.analysis.figures import format_ratio
from bot.domain.analysis.report import Points, Report


def chart_of(report: Report, *, rolled_back_at: float | None = None) -> Chart:
    """The chart of the signal that decided: the first that breached, else the first.
    `rolled_back_at`: seconds after the deploy the rollback's patch went out (None: none)."""
    item = next(
        (s for s in report.signals if s.evidence.outcome is Outcome.BREACH), report.signals[0]
    )
    rule = item.signal.rule
    baseline = (
        f"baseline: revision {report.baseline.revision}"
        if report.baseline.revision is not None
        else "baseline"
    )
    return Chart(
        title=f"{report.service} revision {report.revision} ({report.version}): "
        f"{item.signal.name}, new > {format_ratio(rule.ratio)} baseline",
        unit=item.signal.unit,
        baseline=ChartSeries(baseline, _thinned(item.baseline_points)),
        new=ChartSeries(f"new: revision {report.revision}", _thinned(item.new_points)),
        threshold=item.threshold,
        rolled_back_at=rolled_back_at,
        verdict=report.reason,
    )


def _thinned(points: Points) -> Points:
    """At most the chart's MAX_POINTS, evenly spread (a window of hours every second has more)."""
    if len(points) <= MAX_POINTS:
        return points
    every = math.ceil(len(points) / MAX_POINTS)
    return points[::every]


async def report_png(report: Report, *, rolled_back_at: float | None = None) -> bytes:
    """The report's chart as a PNG, drawn off the event loop."""
    return await render_png(chart_of(report, rolled_back_at=rolled_back_at))


class ReportCharts:
    """The `Charts` port of automatic rollback: a verdict's chart, drawn off the event loop."""

    async def png(self, report: Report, rolled_back_at: float | None) -> bytes:
        return await report_png(report, rolled_back_at=rolled_back_at)
