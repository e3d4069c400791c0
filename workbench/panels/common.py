"""Shared plot styling and the level-keeping helper for heatmaps."""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGraphicsItem, QScrollArea

pg.setConfigOptions(antialias=False, imageAxisOrder="row-major", useOpenGL=False)

LEGEND_BRUSH = (15, 15, 20, 200)  # legends sit over curves: a dark backdrop keeps them readable

AGENT_COLOURS = [(80, 170, 255), (255, 170, 60), (120, 220, 120), (230, 110, 200), (200, 200, 90),
                 (110, 220, 220), (240, 120, 110), (170, 140, 255)]


def agent_pen(i: int, width: float = 2.0, style=None):
    kw = {"color": AGENT_COLOURS[i % len(AGENT_COLOURS)], "width": width}
    if style is not None:
        kw["style"] = style
    return pg.mkPen(**kw)


def nice_step(x: float) -> float:
    """The 1-2-5 step at or above x (x > 0)."""
    e = 10.0 ** np.floor(np.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * e >= x:
            return m * e
    return 10.0 * e


class StableLevels:
    """A value range (colour levels, or a y range) that changes rarely: snapped outward to a 1-2-5 step
    with headroom, widened as soon as data leave it, narrowed only once data have filled less than
    `shrink_below` of it for `patience_s` seconds (a new episode starts small several times a second).
    Every change repaints the axis or colour bar that shows it, and text is the costliest thing a plot
    paints."""

    def __init__(self, shrink_below: float = 0.4, headroom: float = 0.1, patience_s: float = 3.0,
                 clock=time.monotonic):
        self.lo = self.hi = None
        self.shrink_below, self.headroom, self.patience_s, self.clock = shrink_below, headroom, patience_s, clock
        self.small_since = None

    def __call__(self, data) -> tuple[float, float]:
        data = np.asarray(data, dtype=float)
        finite = data[np.isfinite(data)]
        if finite.size == 0:
            return (0.0, 1.0) if self.lo is None else (self.lo, self.hi)
        lo, hi = float(finite.min()), float(finite.max())
        refit = self.lo is None or lo < self.lo or hi > self.hi
        if not refit and hi - lo < self.shrink_below * (self.hi - self.lo):
            now = self.clock()
            if self.small_since is None:
                self.small_since = now
            refit = now - self.small_since >= self.patience_s
        else:
            self.small_since = None
        if refit:
            self.small_since = None
            span = hi - lo
            if span < 1e-6 * max(abs(lo), abs(hi), 1.0):  # a flat line: show it mid-plot, not at 1e-7 steps
                span = 0.2 * max(abs(lo), abs(hi), 1.0)
                lo, hi = lo - span / 2, hi + span / 2
            step = nice_step(span / 5)
            self.lo = float(np.floor((lo - self.headroom * span) / step) * step)
            self.hi = float(np.ceil((hi + self.headroom * span) / step) * step)
        return self.lo, self.hi


def line_key(entries, size: str | None = None, width: float | None = None) -> str:
    """A plot's key as rich text for its title: a line glyph in each entry's colour (dashed or solid) and its
    name, for entries ((r, g, b), name, dashed). A legend inside a laptop-sized plot covered the curves it
    named; in the title it costs a line and hides nothing. With `width` (pixels) the entries wrap onto as many
    lines as keep each within it, rather than being cut at a narrow dock's edges."""
    entries = list(entries)
    spans = [f"<span style='color:#{r:02x}{g:02x}{b:02x}'>{'&#9549;' if dashed else '&#9473;'} {name}</span>"
             for (r, g, b), name, dashed in entries]
    lines = [[]]
    if width is not None:
        used = 0.0
        for span, (_, name, _) in zip(spans, entries):
            w = text_width(f"\u2501 {name}  ", size)
            if lines[-1] and used + w > width:
                lines.append([])
                used = 0.0
            lines[-1].append(span)
            used += w
    else:
        lines = [spans]
    text = "<br>".join(" &nbsp;".join(line) for line in lines)
    return text if size is None else f"<span style='font-size:{size}'>{text}</span>"


def text_width(text: str, size: str | None = None) -> float:
    """Pixels `text` takes in the application's font at `size` ("8pt"; None: the font's own size)."""
    from PySide6.QtGui import QFont, QFontMetrics

    font = QFont()
    if size is not None:
        font.setPointSizeF(float(size.removesuffix("pt")))
    return QFontMetrics(font).horizontalAdvance(text)


def titled_key(title: str, entries, width: float, size: str = "10pt") -> str:
    """A title with its key (`line_key`'s entries) after it where both fit on one line of `width` pixels, else
    with the key wrapped on the lines under it: a narrow dock cut a long one-line title at its right end."""
    entries = list(entries)
    if text_width(title + "".join(f"  \u2501 {name}" for _, name, _ in entries), size) <= width:
        return f"{title} {line_key(entries)}"
    return f"{title}<br>{line_key(entries, width=width)}"


def set_title(plot: pg.PlotItem, title: str, size: str = "10pt") -> None:
    """A plot's title that never widens its panel: on a narrow screen a long title is cut, the plot is not. A title
    of several lines (a key wrapped under it) gets their height: pyqtgraph fixes the title's row at 30 px."""
    relax(plot.titleLabel)
    plot.setTitle(title, size=size)
    h = max(30, int(np.ceil(plot.titleLabel.item.boundingRect().height())))
    plot.titleLabel.setMaximumHeight(h)
    plot.layout.setRowFixedHeight(0, h)


def relax(label):
    """A pyqtgraph label whose text width no longer sets its layout's minimum width (pyqtgraph makes a label's
    text width its minimum on every setText, which on a laptop's narrow dock crops the whole panel)."""
    if getattr(label, "_relaxed", False):
        return label
    original = label.updateMin

    def update_min():
        original()
        h = label._sizeHint.get(Qt.MinimumSize, (0, 0))[1]  # pyqtgraph's own size hints (no public setter)
        label._sizeHint[Qt.MinimumSize] = (0, h)
        label.setMinimumWidth(0)
        label.updateGeometry()
    label.updateMin = update_min
    label._relaxed = True
    update_min()
    return label


def label_plot(plot: pg.PlotItem, title: str, left: str, bottom: str, left_units: str | None = None) -> None:
    set_title(plot, title)
    plot.setLabel("left", left, units=left_units)
    plot.setLabel("bottom", bottom)
    plot.showGrid(x=True, y=True, alpha=0.2)
    for ax in ("left", "bottom"):
        plot.getAxis(ax).enableAutoSIPrefix(False)
    cache_axes(plot)


def cache_axes(plot: pg.PlotItem) -> None:
    """Paint axes and the title from a pixmap cache: text is the costliest thing a plot repaints, and
    axes change only when their range does."""
    for ax in ("left", "bottom", "top", "right"):
        plot.getAxis(ax).setCacheMode(QGraphicsItem.DeviceCoordinateCache)
    plot.titleLabel.setCacheMode(QGraphicsItem.DeviceCoordinateCache)


def set_view_range(plot: pg.PlotItem, axis: str, lo: float, hi: float, padding: float = 0.0) -> None:
    """Move the view along `axis` ("x" or "y") only when the range changes: each move repaints the axis
    (regenerates its cached picture of tick labels)."""
    key = f"_view_{axis}"
    if getattr(plot, key, None) != (lo, hi):
        setattr(plot, key, (lo, hi))
        (plot.setXRange if axis == "x" else plot.setYRange)(lo, hi, padding=padding)


def grow_range(plot: pg.PlotItem, n: int, minimum: int = 16) -> None:
    """Widen the x range to the next power of two above `n` points and never narrow it (episodes come and
    go several times a second; the axis, and its cached picture, then changes a handful of times a run)."""
    hi = max(minimum, 1 << max(int(n) - 1, 1).bit_length(), getattr(plot, "_view_x", (0, 0))[1])
    set_view_range(plot, "x", 0, hi, padding=0.02)


def set_y_range(plot: pg.PlotItem, levels: StableLevels, *arrays) -> None:
    """The y range of `plot` from `levels` over the values of `arrays`."""
    vals = [np.asarray(a, dtype=float).ravel() for a in arrays if a is not None and len(a)]
    if vals:
        set_view_range(plot, "y", *levels(np.concatenate(vals)))


def set_image_levels(img: pg.ImageItem, bar: pg.ColorBarItem, data: np.ndarray, levels: tuple,
                     ends_only: bool = False) -> None:
    """New pixels under fixed levels; the levels (and the bar's axis, which repaints on every level
    change) only when they change. `ends_only`: label just the bar's two ends (a short bar's ticks
    would overlap)."""
    img.setImage(data, autoLevels=False, levels=img.levels if img.levels is not None else levels)
    if tuple(bar.levels()) != tuple(levels):
        bar.setLevels(levels)
        if ends_only:
            bar.axis.setTicks([[(v, f"{v:.2g}") for v in levels]])


def vertical_scroll(widget, frame: bool = True, area=None):
    """`widget` in a scroll area (`area`, or a new one) that follows its width and scrolls it up and down: a panel
    that must not be squashed below its minimum height in a small dock."""
    area = area if area is not None else QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    if not frame:
        area.setFrameShape(QFrame.NoFrame)
    return area
