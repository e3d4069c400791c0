"""Training curves over env steps; downsampled and clipped to view so a million points scroll smoothly."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea

from .common import StableLevels, label_plot, line_key, set_title, set_view_range, set_y_range, vertical_scroll


def x_extent(x: float) -> float:
    """The next of 1, 1.25, 1.6, 2, 2.5, 3.2, 4, 5, 6.3, 8 (x 10^k) above x: the x range moves ~10 times per
    decade of env steps, and the curves always fill at least 80% of the plot's width."""
    if x <= 0:
        return 1.0
    e = 10.0 ** np.floor(np.log10(x))
    for m in (1.0, 1.25, 1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.3, 8.0, 10.0):
        if m * e > x:
            return m * e
    return 10.0 * e

PLOTS = [  # (title, y label, [(series, key name, colour, smoothed)])
    ("episode return", "return", [("return", "train", (90, 180, 255), True)]),
    ("win rate", "win rate", [("won", "train", (90, 180, 255), True),
                              ("test_win_rate", "greedy test", (255, 170, 60), False)]),
    ("loss", "TD loss", [("loss", "loss", (230, 110, 110), False)]),
    ("TD error", "|TD error|", [("td_error", "mean |TD error|", (230, 160, 110), False)]),
    ("epsilon", "epsilon", [("epsilon", "epsilon", (180, 180, 180), False)]),
    ("overestimation", "Qtot - return", [("overestimation", "mean Qtot - discounted return", (255, 90, 90), True)]),
    ("throughput", "env steps/s", [("steps_per_s", "env steps/s", (120, 220, 120), False)]),
    ("value targets", "value", [("qtot_taken", "Qtot", (90, 180, 255), False),
                                ("max_value", "max", (255, 170, 60), False),
                                ("res_softmax_value", "RES", (120, 230, 120), False)]),
]
# what a plot's short key means, on hovering it
TOOLTIPS = {
    "episode return": "training episodes' return, mean of the last 50",
    "win rate": "train: the training episodes' (epsilon-greedy) win rate, mean of the last 50<br>"
                "greedy test: each evaluation's win rate, greedy actions",
    "overestimation": "mean over a training episode's steps of Qtot - the discounted return earned, mean of the last 50",
    "value targets": "Qtot: the mean Qtot of the taken actions in an update<br>"
                     "max: the max target's mean (RES runs)<br>RES: RES's softmax target's mean (RES runs)",
}


def _inner_ticks(hi: float) -> list[float]:
    """At most two round values inside (0, hi), clear of the ends (where a label is cut off). Not
    `_round_ticks(0, hi)`: that gives 50k and 100k on a 160k axis, whose labels run together on a narrow plot."""
    e = 10.0 ** np.floor(np.log10(hi))
    for step in (0.1 * e, 0.2 * e, 0.5 * e, e, 2 * e, 5 * e):
        ticks = [k * step for k in range(1, int(hi / step) + 1) if k * step < 0.95 * hi]
        if len(ticks) <= 2:
            return ticks
    return []


def _round_ticks(lo: float, hi: float) -> list[float]:
    """At most two round values (1, 2 or 5 x 10^k apart) well inside [lo, hi]."""
    span = hi - lo
    if not np.isfinite(span) or span <= 0:
        return []
    margin = 0.08 * span
    e = 10.0 ** np.floor(np.log10(span))
    for step in (0.1 * e, 0.2 * e, 0.5 * e, e, 2 * e, 5 * e, 10 * e):
        first = np.ceil((lo + margin) / step)
        ticks = [k * step for k in np.arange(first, np.floor((hi - margin) / step) + 1)]
        if len(ticks) <= 2:
            return [0.0 if abs(v) < 1e-12 * step else float(v) for v in ticks]
    return []


def _tick_text(v: float) -> str:
    """Short: 2k rather than 2000 (or 2e+03) on a plot 100 pixels wide."""
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:.4g}"


class CurvesScroll(QScrollArea):
    """The curves in as many columns as fit at a readable size, scrolling down when the dock is too short for
    them all (eight plots in a laptop's 320x210 dock drew unreadable, overlapping labels)."""
    MIN_W, MIN_H = 150, 125  # a plot's comfortable size when the plots scroll
    FIT_W = 100  # the narrowest a plot may be to keep them all on screen without scrolling

    def __init__(self, panel: "CurvesPanel", parent=None):
        super().__init__(parent)
        self.panel = panel
        vertical_scroll(panel, frame=False, area=self)

    def columns_for(self, width: int, height: int) -> int:
        """All the plots on screen when they fit at FIT_W x MIN_H (the fewest columns that do, for the widest
        plots); otherwise as many MIN_W-wide columns as fit, scrolling down."""
        n = len(self.panel.plots)
        for cols in range(1, n + 1):
            if -(-n // cols) * self.MIN_H <= height and width / cols >= self.FIT_W:
                return cols
        # the width left beside a scroll bar decides, whether or not one shows: no flip-flop
        return max(1, min(4, (width - self.verticalScrollBar().sizeHint().width()) // self.MIN_W))

    def resizeEvent(self, ev):
        self.panel.set_columns(self.columns_for(self.width(), self.height()))
        self.panel.setMinimumHeight(self.panel.rows() * self.MIN_H)
        super().resizeEvent(ev)


class CurvesPanel(pg.GraphicsLayoutWidget):
    NARROW_PX = 200  # below this width per plot, "env steps (Msteps)" runs into its neighbour's: units alone

    def __init__(self, parent=None, columns: int = 4):
        super().__init__(parent)
        self.columns = columns
        self._narrow = None
        self.curves = {}
        self.plots = []
        for k, (title, ylab, items) in enumerate(PLOTS):
            p = self.addPlot(row=k // columns, col=k % columns)
            self.plots.append(p)
            label_plot(p, title, ylab, "env steps")
            p.getAxis("bottom").enableAutoSIPrefix(True)
            p.setLabel("bottom", "env steps", units="steps")
            p.setDownsampling(auto=True, mode="peak")
            p.setClipToView(True)
            p.disableAutoRange()  # ranges set below, changing rarely: each change repaints an axis
            p._levels = StableLevels()
            p.sigYRangeChanged.connect(lambda *_, p=p: self._set_y_ticks(p))
            if title == "win rate":  # a rate: always the whole of [0, 1]
                p.setYRange(-0.02, 1.02, padding=0)
                p._levels = None
            if len(items) > 1:  # the key in the title: a legend inside a plot this small covered its curves
                set_title(p, f"{title}<br>{line_key([(c, name, False) for _, name, c, _ in items], size='7pt')}")
            if title in TOOLTIPS:
                p.setToolTip(TOOLTIPS[title])
            for series, name, colour, smooth in items:
                c = p.plot(pen=pg.mkPen(colour, width=2))
                self.curves[series] = (c, smooth, p)
        # updates whose loss, gradients or Q-values were not finite: red crosses on the loss plot, where the
        # curve (which cannot draw NaN) would otherwise just stop
        self.loss_plot = self.curves["loss"][2]
        self.nonfinite_marks = pg.ScatterPlotItem(symbol="x", size=14, pen=pg.mkPen((255, 60, 60), width=2),
                                                  brush=None, name="non-finite update")
        self.loss_plot.addItem(self.nonfinite_marks)
        self.marks_shown = 0
        self.points = 0
        self.live_marks: list = []  # (plot, line) of each live change shown: a dashed vertical line on every plot
        self._fit_labels()

    def set_columns(self, columns: int) -> None:
        """Lay the plots out in `columns` columns (the rows follow)."""
        columns = max(1, min(len(self.plots), int(columns)))
        if columns == self.columns:
            return
        self.columns = columns
        for p in self.plots:
            self.ci.removeItem(p)
        for k, p in enumerate(self.plots):
            self.ci.addItem(p, row=k // columns, col=k % columns)
        self._narrow = None
        self._fit_labels()

    def rows(self) -> int:
        return -(-len(self.plots) // self.columns)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._fit_labels()

    def _fit_labels(self) -> None:
        if not getattr(self, "curves", None):  # a resize while the plots are being built
            return
        narrow = self.width() / self.columns < self.NARROW_PX
        if narrow != self._narrow:
            self._narrow = narrow
            for _, _, p in self.curves.values():
                p.setLabel("bottom", "" if narrow else "env steps", units="steps")
                self._set_y_ticks(p)
                p._xticks_for = None  # narrow: two ticks inside, set with the range (labels 0.5M apart ran together)
                if narrow:
                    self._set_inner_ticks(p, max(float(p.viewRange()[0][1]), 1.0))  # before any data too
                else:
                    p.getAxis("bottom").setTicks(None)

    def _set_y_ticks(self, p) -> None:
        """Narrow: two round values on the y axis (pyqtgraph draws at least four, which overlapped)."""
        if not self._narrow:
            p.getAxis("left").setTicks(None)
            return
        lo, hi = p.viewRange()[1]
        p.getAxis("left").setTicks([[(v, _tick_text(v)) for v in _round_ticks(lo, hi)]])

    @staticmethod
    def _set_inner_ticks(p, hi: float) -> None:
        p._xticks_for = hi
        scale = pg.siScale(hi)[0]  # the axis label's SI prefix is chosen from the same range
        p.getAxis("bottom").setTicks([[(v, f"{v * scale:g}") for v in _inner_ticks(hi)]])

    def _show_live_events(self, events) -> None:
        """A labelled vertical line on every plot at each live change (a new run clears them)."""
        per_event = len(PLOTS)
        if len(events) * per_event < len(self.live_marks):
            for p, line in self.live_marks:
                p.removeItem(line)
            self.live_marks = []
        plots = list(dict.fromkeys(p for _, _, p in self.curves.values()))
        for k, ev in enumerate(events[len(self.live_marks) // per_event:], start=len(self.live_marks) // per_event):
            short = ev.key.rpartition(".")[2]
            # changes made together are labelled one under the other
            same_step = sum(1 for e in events[:k] if e.t_env == ev.t_env)
            for i, p in enumerate(plots):
                line = pg.InfiniteLine(pos=ev.t_env, angle=90, movable=False,
                                       pen=pg.mkPen((230, 230, 120), width=1, style=Qt.PenStyle.DashLine),
                                       label=f"{short}={ev.new:g}" if i == 0 and isinstance(ev.new, (int, float))
                                       else (f"{short}" if i == 0 else None),
                                       labelOpts={"position": max(0.1, 0.9 - 0.16 * same_step),
                                                  "color": (230, 230, 120)})
                line.setToolTip(f"{ev.key}: {ev.old} -> {ev.new} at {ev.t_env:,} env steps ({ev.source})")
                p.addItem(line)
                self.live_marks.append((p, line))

    def show_state(self, state) -> None:
        self._show_live_events(state.live_events)
        total = 0
        shown: dict = {}
        for series, (curve, smooth, p) in self.curves.items():
            s = state.series[series]
            if s.n == 0:
                curve.setData([], [])
                continue
            x, y = s.smoothed(50) if smooth else (s.x, s.y)
            curve.setData(x, y)
            total += s.n
            shown.setdefault(p, []).append((x, y))
        if len(state.nonfinite) != self.marks_shown:
            self.marks_shown = len(state.nonfinite)
            x = np.array([t for t, _, _ in state.nonfinite], dtype=float)
            loss = state.series["loss"]
            # on the loss curve at the mark's step (past its end, at its last finite value; 0 with no loss yet)
            y = np.interp(x, loss.x, loss.y) if loss.n else np.zeros_like(x)
            self.nonfinite_marks.setData(x, y)
            xys = shown.setdefault(self.loss_plot, [])
            xys.append((x, y))
        for p, xys in shown.items():
            hi = x_extent(max(float(x[-1]) for x, _ in xys if len(x)) if any(len(x) for x, _ in xys) else 0.0)
            set_view_range(p, "x", 0.0, hi, padding=0.01)
            if self._narrow and getattr(p, "_xticks_for", None) != hi:
                self._set_inner_ticks(p, hi)
            if p._levels is not None:
                set_y_range(p, p._levels, *(y for _, y in xys))
        self.points = total
