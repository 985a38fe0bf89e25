"""Charts for a verdict: a PNG of the expected size for either unit, with or without the
rollback's marker, with no data or gaps, whatever the outside text says; Matplotlib loaded only
when a chart is drawn, and drawn off the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import struct
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, cast

import pytest

from bot.adapters.charts import MAX_POINTS, Chart, ChartSeries, render_png, render_png_sync
from bot.adapters.charts import render as render_module
from bot.adapters.charts.model import gapped
from bot.adapters.charts.render import HEIGHT_PX, TITLE_CHARS, WIDTH_PX, _figure
from tests.paths import REPO

if TYPE_CHECKING:
    # Only for types: collecting the suite should not import Matplotlib.
    from matplotlib.figure import Figure
    from matplotlib.text import Text

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = "$\\frac{}$ $x^{$ \\$ ${a}_{b$ \n\t\x00\u202e😀中" + "x" * 10_000


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR, the chunk that must come first."""
    assert png[:8] == PNG_MAGIC
    length, kind, width, height = struct.unpack(">I4sII", png[8:24])
    assert (length, kind) == (13, b"IHDR")
    return width, height


def series(label: str, level: float, *, seconds: int = 1800, step: int = 15) -> ChartSeries:
    return ChartSeries(label, tuple((float(s), level) for s in range(0, seconds, step)))


def chart(**changes: object) -> Chart:
    base = Chart(
        title="checkout · HTTP 5xx ratio — v1.42.0 vs v1.41.3",
        unit="ratio",
        baseline=series("baseline v1.41.3", 0.004),
        new=series("new v1.42.0", 0.031),
        threshold=0.02,
        rolled_back_at=1260.0,
        verdict="Rolled back: 5xx ratio 3.1% over the 2% threshold for 5 min",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def texts(figure: Figure) -> list[Text]:
    from matplotlib.text import Text

    figure.canvas.draw()  # tick labels exist only once drawn
    return list(figure.findobj(Text))


def shown(figure: Figure) -> list[str]:
    return [t.get_text() for t in texts(figure)]


async def test_a_ratio_chart_is_an_800_by_360_png_with_its_marks() -> None:
    png = await render_png(chart())

    assert png_size(png) == (WIDTH_PX, HEIGHT_PX) == (800, 360)
    labels = shown(_figure(chart()))
    assert "rolled back" in labels
    assert "threshold 2%" in labels
    assert {"baseline v1.41.3", "new v1.42.0"} <= set(labels)
    assert "minutes since the deploy" in labels
    assert any(label.endswith("%") for label in labels if label.startswith(("1", "2", "3")))


async def test_a_seconds_chart_without_a_rollback() -> None:
    c = chart(
        unit="seconds",
        baseline=series("p99 v1.41.3", 0.180),
        new=series("p99 v1.42.0", 0.240),
        threshold=0.25,
        rolled_back_at=None,
        verdict="Kept: p99 latency under 250 ms",
    )

    assert png_size(await render_png(c)) == (800, 360)
    labels = shown(_figure(c))
    assert "rolled back" not in labels
    assert "threshold 250 ms" in labels
    assert "100 ms" in labels  # the y-axis in milliseconds under a second


def test_seconds_above_one_are_shown_in_seconds() -> None:
    c = chart(unit="seconds", baseline=series("a", 1.2), new=series("b", 2.5), threshold=2.0)

    assert png_size(render_png_sync(c)) == (800, 360)
    labels = shown(_figure(c))
    assert "threshold 2 s" in labels
    assert "1 s" in labels


async def test_empty_series_say_no_data() -> None:
    c = chart(baseline=ChartSeries("baseline", ()), new=ChartSeries("new", ()))

    assert png_size(await render_png(c)) == (800, 360)
    figure = _figure(c)
    labels = shown(figure)
    assert "no data" in labels
    assert not figure.axes[0].get_yticks().size  # no scale invented around nothing
    assert {"baseline (no data)", "new (no data)"} <= set(labels)


async def test_only_nan_is_no_data_and_one_empty_series_is_said_in_the_legend() -> None:
    only_nan = chart(new=ChartSeries("new", ((0.0, math.nan), (15.0, math.inf))), threshold=None)
    assert png_size(await render_png(only_nan)) == (800, 360)
    labels = shown(_figure(only_nan))
    assert "new (no data)" in labels
    assert "no data" not in labels  # the baseline still has data

    neither = chart(baseline=ChartSeries("b", ((0.0, math.nan),)), new=ChartSeries("n", ()))
    assert "no data" in shown(_figure(neither))


def test_nan_values_and_holes_in_the_sampling_are_gaps() -> None:
    points = ((0.0, 1.0), (15.0, math.nan), (30.0, 1.0), (45.0, 1.0), (600.0, 1.0), (615.0, 1.0))

    xs, ys = gapped(ChartSeries("s", tuple(reversed(points))))

    assert xs[0] == 0.0 and xs[-1] == 615 / 60  # in time order, in minutes
    assert math.isnan(ys[1])  # the NaN kept: Matplotlib breaks the line there
    gap = next(i for i, x in enumerate(xs) if 0.75 < x < 10)
    assert math.isnan(ys[gap])  # the 9¼-minute hole is not bridged
    assert sum(math.isnan(y) for y in ys) == 2


def test_points_with_no_usable_time_are_dropped() -> None:
    xs, _ = gapped(ChartSeries("s", ((math.nan, 1.0), (math.inf, 1.0), (60.0, 2.0))))
    assert xs == [1.0]


async def test_a_chart_with_gaps_renders() -> None:
    holed = tuple(
        (float(s), math.nan if 600 <= s < 700 else 0.01) for s in range(0, 1800, 15) if s < 900
    ) + tuple((float(s), 0.01) for s in range(1500, 1800, 15))
    c = chart(new=ChartSeries("new", holed))

    assert png_size(await render_png(c)) == (800, 360)
    line = next(line for line in _figure(c).axes[0].lines if line.get_label() == "new")
    ys = cast("list[float]", line.get_ydata())  # the list it was given
    assert sum(math.isnan(y) for y in ys) == 7 + 1  # NaN values, and the hole


async def test_hostile_text_is_plain_clipped_and_never_mathtext() -> None:
    c = chart(
        title=HOSTILE,
        verdict=HOSTILE,
        baseline=series(HOSTILE, 0.01),
        new=series("_hidden" + HOSTILE, 0.02),
    )

    # Mathtext would raise on the title's `$\frac{}$`; a missing glyph would warn (an error here).
    assert png_size(await render_png(c)) == (800, 360)
    figure = _figure(c)
    drawn = texts(figure)
    title = figure.get_suptitle()
    assert len(title) <= TITLE_CHARS and title.startswith("$\\frac{}$") and title.endswith("…")
    title_text = next(t for t in drawn if t.get_text() == title)
    assert title_text.get_window_extent().x1 <= WIDTH_PX  # clipped as drawn, not by count
    assert "\n" not in title and "\x00" not in title
    assert "中" not in title and "😀?x" in title  # not in the font: replaced, not a box
    outside = [t for t in drawn if "frac" in t.get_text() or "hidden" in t.get_text()]
    assert len(outside) == 4  # title, verdict, both legend labels
    assert not any(t.get_parse_math() for t in outside)
    assert any(t.get_text().startswith(" _hidden") for t in outside)  # still in the legend


def test_importing_the_package_imports_no_plotting_library() -> None:
    code = (
        "import bot.adapters.charts, sys; "
        "print('matplotlib' in sys.modules, 'numpy' in sys.modules, 'PIL' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False", "False"]


async def test_rendering_leaves_the_event_loop_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """The drawing waits, inside its thread, for a task on the loop to answer it: were it drawn
    on the loop, the task could never run and the wait would time out."""
    loop = asyncio.get_running_loop()
    drawing = asyncio.Event()
    ticked = threading.Event()
    drawn_in: list[threading.Thread] = []
    real_figure = render_module._figure

    def figure_once_the_loop_ticked(c: Chart) -> Figure:
        drawn_in.append(threading.current_thread())
        loop.call_soon_threadsafe(drawing.set)
        if not ticked.wait(timeout=10):
            raise AssertionError("the loop did not run while the chart was drawn")
        return real_figure(c)

    async def ticker() -> None:
        await drawing.wait()
        ticked.set()

    monkeypatch.setattr(render_module, "_figure", figure_once_the_loop_ticked)
    ticking = asyncio.create_task(ticker())
    png = await render_png(chart())
    await ticking

    assert png_size(png) == (800, 360)
    assert drawn_in and drawn_in[0] is not threading.main_thread()


async def test_charts_rendered_together_are_each_whole() -> None:
    charts = [chart(rolled_back_at=float(60 * n)) for n in range(4)]

    pngs = await asyncio.gather(*(render_png(c) for c in charts))

    assert [png_size(p) for p in pngs] == [(800, 360)] * 4
    assert len(set(pngs)) == 4  # each its own marker


def test_too_many_points_are_refused() -> None:
    ChartSeries("ok", tuple((float(s), 0.0) for s in range(MAX_POINTS)))
    with pytest.raises(ValueError, match="2001 points"):
        ChartSeries("big", tuple((float(s), 0.0) for s in range(MAX_POINTS + 1)))
    with pytest.raises(ValueError, match="points"):
        dataclasses.replace(series("s", 0.0), points=((0.0, 0.0),) * (MAX_POINTS + 1))


def test_a_unit_threshold_or_moment_that_cannot_be_drawn_is_refused() -> None:
    with pytest.raises(ValueError, match="unit"):
        chart(unit="percent")
    with pytest.raises(ValueError, match="threshold"):
        chart(threshold=math.nan)
    with pytest.raises(ValueError, match="rolled_back_at"):
        chart(rolled_back_at=math.inf)
