"""Charts of a signal for a verdict (automatic rollback, issue 12): baseline and new over the
window, the threshold, and the moment of the rollback, as a PNG engineers look at rather than
read numbers. Importing this package imports no plotting library: Matplotlib is loaded in the
worker thread the first time a chart is drawn (`render`)."""

from bot.adapters.charts.model import MAX_POINTS, Chart, ChartSeries, Unit
from bot.adapters.charts.of_report import ReportCharts, chart_of, report_png
from bot.adapters.charts.render import render_png, render_png_sync

__all__ = [
    "MAX_POINTS",
    "Chart",
    "ChartSeries",
    "ReportCharts",
    "Unit",
    "chart_of",
    "render_png",
    "render_png_sync",
    "report_png",
]
