"""A chart as a PNG, drawn with Matplotlib off the event loop.

Matplotlib (with NumPy and Pillow, tens of MB and most of a second to import) is imported in the
worker, the first time a chart is drawn: importing this module, starting the bot and acking a
command never pay for it. Drawing uses the object-oriented API on a Figure of its own with the
Agg canvas, never pyplot, whose current figure and backend selection are process-wide state.
Matplotlib is still not thread-safe (font cache, rcParams), so one chart is drawn at a time."""

from __future__ import annotations

import asyncio
import io
import math
import threading
import unicodedata
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.adapters.charts.model import Chart, Unit, gapped

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.text import Text

WIDTH_PX = 800
HEIGHT_PX = 360
DPI = 100
# Outside text is cut to these many characters first (bounding `_fit`'s work), then to the width
# it takes as drawn; the whole text is in the message beside the chart.
TITLE_CHARS = 90
VERDICT_CHARS = 120
LABEL_CHARS = 40
# Room around the plot for the title and verdict above, the tick labels and the x label below.
MARGINS_PX = {"left": 64, "right": 12, "top": 52, "bottom": 44}
# Sparse series get a dot per sample, so that two samples are not read as a trend.
DOTS_UP_TO = 60

BASELINE_COLOR = "tab:blue"
NEW_COLOR = "tab:orange"
THRESHOLD_COLOR = "tab:red"
ROLLBACK_COLOR = "black"

# Behind the threshold's and the rollback's labels: a line crossing one leaves it legible.
_LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1}

# One drawing at a time in the process: Matplotlib's shared state is not guarded, and a burst of
# charts should not take both cores from the event loop (a render still holds the GIL in turns).
_drawing = threading.Lock()
# Renders waiting their turn wait on their loop, not in a worker thread: a thread blocked on
# `_drawing` would be one fewer in the default executor that other adapters share.
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def render_png(chart: Chart) -> bytes:
    """The chart as PNG bytes (800×360), drawn in a worker thread, one at a time."""
    turn = _turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with turn:
        return await asyncio.to_thread(render_png_sync, chart)


def render_png_sync(chart: Chart) -> bytes:
    """The chart as PNG bytes, drawn in the calling thread (the CLI's, or `render_png`'s
    worker)."""
    import matplotlib  # here, not at the top: see the module's docstring

    # The settings the drawing depends on, pinned so that a matplotlibrc on the machine (or in
    # the working directory) cannot turn TeX on for outside text or change the font `_plain`
    # checks. Changing rcParams is process-wide: it is done holding `_drawing`.
    pinned = matplotlib.rc_context({"text.usetex": False, "font.family": ["DejaVu Sans"]})
    with _drawing, pinned:
        figure = _figure(chart)
        out = io.BytesIO()
        # No "Software" chunk: the PNG need not say which Matplotlib the bot runs.
        figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
        return out.getvalue()


def _figure(chart: Chart) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties, findfont, get_font
    from matplotlib.ticker import FuncFormatter

    font = get_font(findfont(FontProperties()))

    def plain(text: str, limit: int) -> str:
        return _plain(text, limit, lambda c: font.get_char_index(ord(c)) != 0)

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)  # attaches itself: the figure draws with Agg, whatever the backend
    # Fixed margins rather than a layout engine, which would draw the figure twice: the size is
    # fixed and every text is clipped to fit, so the room each needs is known.
    figure.subplots_adjust(
        left=MARGINS_PX["left"] / WIDTH_PX,
        right=1 - MARGINS_PX["right"] / WIDTH_PX,
        top=1 - MARGINS_PX["top"] / HEIGHT_PX,
        bottom=MARGINS_PX["bottom"] / HEIGHT_PX,
    )
    axes = figure.add_subplot()
    # Every text that came from outside (signal names, versions, the verdict) is drawn as it is
    # written: `parse_math=False`, so a `$` is a dollar and never mathtext to parse (or fail on).
    title = figure.suptitle(
        plain(chart.title, TITLE_CHARS),
        x=8 / WIDTH_PX,
        y=1 - 6 / HEIGHT_PX,
        ha="left",
        va="top",
        fontweight="bold",
        parse_math=False,
    )
    _fit(title, WIDTH_PX - 16)
    verdict = axes.set_title(
        plain(chart.verdict, VERDICT_CHARS), loc="left", fontsize="small", parse_math=False
    )
    _fit(verdict, WIDTH_PX - MARGINS_PX["left"] - MARGINS_PX["right"])

    lines = [(chart.baseline, "baseline", BASELINE_COLOR), (chart.new, "new", NEW_COLOR)]
    finite: list[float] = []
    for series, fallback, color in lines:
        xs, ys = gapped(series)
        values = [y for y in ys if math.isfinite(y)]
        finite.extend(values)
        label = plain(series.label, LABEL_CHARS) or fallback
        # A label starting with "_" would be left out of the legend by Matplotlib.
        label = (" " + label if label.startswith("_") else label) + ("" if values else " (no data)")
        axes.plot(
            xs,
            ys,
            color=color,
            label=label,
            linewidth=1.6,
            marker="o" if len(xs) <= DOTS_UP_TO else "",
            markersize=3,
        )

    in_ms = chart.unit == "seconds" and max(map(abs, [*finite, chart.threshold or 0.0])) < 1
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _value_text(chart.unit, v, in_ms)))
    axes.set_xlabel("minutes since the deploy")
    axes.grid(alpha=0.3)
    # Headroom above the highest line for the labels and the legend.
    axes.margins(y=0.15)

    if chart.threshold is not None:
        axes.axhline(chart.threshold, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.2)
        axes.text(
            0.005,
            chart.threshold,
            f"threshold {_value_text(chart.unit, chart.threshold, in_ms)}",
            transform=axes.get_yaxis_transform(),
            ha="left",
            va="bottom",
            color=THRESHOLD_COLOR,
            fontsize="small",
            bbox=_LABEL_BOX,
            parse_math=False,
        )
    if chart.rolled_back_at is not None:
        at = chart.rolled_back_at / 60
        axes.axvline(at, color=ROLLBACK_COLOR, linewidth=1.2)
        left, right = axes.get_xlim()  # the limits with every line in, the marker included
        late = at > (left + right) / 2
        axes.annotate(
            "rolled back",
            xy=(at, 0.98),
            xycoords=axes.get_xaxis_transform(),
            # Beside the line, on its side with the more room.
            xytext=(-4 if late else 4, 0),
            textcoords="offset points",
            ha="right" if late else "left",
            va="top",
            color=ROLLBACK_COLOR,
            fontsize="small",
            bbox=_LABEL_BOX,
            parse_math=False,
        )
    if not finite:
        # Ticks around nothing would only invent a scale.
        axes.set_xticks([])
        axes.set_yticks([])
        axes.text(
            0.5,
            0.5,
            "no data",
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize="x-large",
            color="0.4",
            parse_math=False,
        )
    if finite and min([*finite, chart.threshold or 0.0]) >= 0:
        # Rates and latencies from zero, so that a small difference does not look like a cliff.
        axes.set_ylim(bottom=0)
    legend = axes.legend(loc="best", fontsize="small", framealpha=0.85)
    for text in legend.get_texts():
        text.set_parse_math(False)  # the labels came from outside
    return figure


def _fit(text: Text, width_px: float) -> None:
    """Clips a text, with an ellipsis, to the longest start that fits `width_px` as drawn: a
    count of characters alone lets a line of wide ones ("WWW…") run off the image."""
    whole = text.get_text()

    def fits(candidate: str) -> bool:
        text.set_text(candidate)
        # Measured with the figure's own (Agg) renderer, at its dpi.
        return bool(text.get_window_extent().width <= width_px)

    if fits(whole):
        return
    shortest, longest = 0, len(whole) - 1  # the longest start known to fit, the longest to try
    while shortest < longest:
        middle = (shortest + longest + 1) // 2
        if fits(whole[:middle].rstrip() + "…"):
            shortest = middle
        else:
            longest = middle - 1
    text.set_text(whole[:shortest].rstrip() + "…")


def _value_text(unit: Unit, value: float, in_ms: bool) -> str:
    """A value as the y-axis and the threshold's label show it. `+ 0.0` turns -0.0 into 0."""
    if unit == "ratio":
        return f"{value * 100 + 0.0:.4g}%"
    if in_ms:
        return f"{value * 1000 + 0.0:.4g} ms"
    return f"{value + 0.0:.4g} s"


def _plain(text: str, limit: int, drawable: Callable[[str], bool]) -> str:
    """Outside text as one plain line: control and format characters (newlines among them) as
    spaces, runs of spaces as one, characters the font has no glyph for as "?" (Matplotlib would
    draw a box and warn), clipped to `limit` with an ellipsis."""
    # Only a bounded prefix is looked at: a 10,000-character title costs no more than a short one.
    kept = (
        " " if c.isspace() or unicodedata.category(c).startswith("C") else c if drawable(c) else "?"
        for c in text[: limit * 4]
    )
    line = " ".join("".join(kept).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
