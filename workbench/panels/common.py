"""Shared plot styling and the level-keeping helper for heatmaps."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem

pg.setConfigOptions(antialias=False, imageAxisOrder="row-major", useOpenGL=False)

AGENT_COLOURS = [(80, 170, 255), (255, 170, 60), (120, 220, 120), (230, 110, 200), (200, 200, 90),
                 (110, 220, 220), (240, 120, 110), (170, 140, 255)]


def agent_pen(i: int, width: float = 2.0, style=None):
    kw = {"color": AGENT_COLOURS[i % len(AGENT_COLOURS)], "width": width}
    if style is not None:
        kw["style"] = style
    return pg.mkPen(**kw)


class StableLevels:
    """Colour levels that widen at once when data leave them and shrink slowly, so heatmaps do not flicker."""

    def __init__(self, shrink: float = 0.05):
        self.lo = self.hi = None
        self.shrink = shrink

    def __call__(self, data: np.ndarray) -> tuple[float, float]:
        finite = data[np.isfinite(data)]
        if finite.size == 0:
            return (0.0, 1.0) if self.lo is None else (self.lo, self.hi)
        lo, hi = float(finite.min()), float(finite.max())
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo = lo if lo < self.lo else self.lo + self.shrink * (lo - self.lo)
            self.hi = hi if hi > self.hi else self.hi + self.shrink * (hi - self.hi)
        if self.hi - self.lo < 1e-6:
            return self.lo - 0.5, self.hi + 0.5
        return self.lo, self.hi


def label_plot(plot: pg.PlotItem, title: str, left: str, bottom: str, left_units: str | None = None) -> None:
    plot.setTitle(title, size="10pt")
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


def grow_range(plot: pg.PlotItem, n: int, minimum: int = 16) -> None:
    """Set the x range to the next power of two above `n` points, so the axis (and its cached picture)
    changes a handful of times per episode instead of every step."""
    hi = max(minimum, 1 << max(int(n) - 1, 1).bit_length())
    if getattr(plot, "_grow_hi", None) != hi:
        plot._grow_hi = hi
        plot.setXRange(0, hi, padding=0.02)
