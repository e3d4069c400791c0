"""PNG plots: `qmix-workbench plot RUN_DIR` (one run's win rate, return and overestimation curves) and
`qmix-workbench compare --out` (groups of runs with their bands, from `models.sweeps.compare`)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from models.files import metrics


def read_metrics(run_dir) -> dict:
    """{(kind, column): (t_env array, value array)} from a run's metrics.csv (blank cells skipped)."""
    return metrics.series(run_dir)  # MetricsMissing (a ValueError) names a directory that is not a run


def plot_run(run_dir, out_png, width=1500, height=420) -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    import pyqtgraph.exporters  # noqa: F401
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication([])
    m = read_metrics(run_dir)
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    win = pg.GraphicsLayoutWidget()
    win.resize(width, height)

    def panel(col, title, ylab, series):
        p = win.addPlot(row=0, col=col)
        p.setTitle(title)
        p.setLabel("left", ylab)
        p.getAxis("left").enableAutoSIPrefix(False)
        p.setLabel("bottom", "env steps", units="steps")
        p.showGrid(x=True, y=True, alpha=0.3)
        p.addLegend(offset=(5, 5))
        for (kind, key), name, colour, smooth in series:
            if (kind, key) not in m:
                continue
            x, y = m[(kind, key)]
            if smooth and len(y) > 1:
                k = min(200, len(y))
                y = np.convolve(y, np.ones(k) / k, mode="valid")
                x = x[k - 1:]
            p.plot(x, y, pen=pg.mkPen(colour, width=2), name=name)
        return p

    panel(0, "win rate", "win rate", [(("eval", "test_win_rate"), "greedy test (32 episodes)", (220, 110, 0), False),
                                      (("episode", "won"), "training episodes (mean of 200)", (30, 100, 200), True)])
    panel(1, "episode return (20 = win)", "return", [(("eval", "test_return"), "greedy test", (220, 110, 0), False),
                                                     (("episode", "return"), "training (mean of 200)", (30, 100, 200), True)])
    panel(2, "overestimation: Qtot - discounted return", "Qtot - G",
          [(("episode", "overestimation"), "training episodes (mean of 200)", (200, 40, 40), True)])
    return _export_png(win, out_png, width)


# distinct on white, one per group (cycled past eight)
GROUP_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
                 (227, 119, 194), (127, 127, 127)]


def plot_compare(comparison, out_png, width=1400, height=480) -> str:
    """A `models.sweeps.compare.Comparison` as a PNG: each group's centre curve and band over env steps (left) and
    over training wall-clock time (right)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    import pyqtgraph.exporters  # noqa: F401
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    win = pg.GraphicsLayoutWidget()
    win.resize(width, height)
    what = "greedy test win rate" if comparison.metric == "test_win_rate" else comparison.metric
    band = "IQR" if comparison.stat == "median" else "95% bootstrap CI"
    for col, (attr, xlabel, units) in enumerate((("by_steps", "env steps", "steps"),
                                                 ("by_wall", "training wall time", "s"))):
        p = win.addPlot(row=0, col=col)
        p.setTitle(f"{what}: {comparison.stat} and {band} over seeds")
        p.setLabel("left", what)
        p.getAxis("left").enableAutoSIPrefix(False)
        p.setLabel("bottom", xlabel, units=units)
        p.showGrid(x=True, y=True, alpha=0.3)
        p.addLegend(offset=_emptiest_corner(comparison.groups, attr, comparison.metric == "test_win_rate"))
        if comparison.metric == "test_win_rate":
            p.setYRange(0.0, 1.0, padding=0.02)
        for i, g in enumerate(comparison.groups):
            b = getattr(g, attr)
            ok = np.isfinite(b.center)
            if not ok.any():
                continue
            colour = GROUP_COLOURS[i % len(GROUP_COLOURS)]
            x = b.x[ok]
            lo = p.plot(x, b.lo[ok], pen=pg.mkPen(colour + (90,), width=1))
            hi = p.plot(x, b.hi[ok], pen=pg.mkPen(colour + (90,), width=1))
            p.addItem(pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(colour + (50,))))
            p.plot(x, b.center[ok], pen=pg.mkPen(colour, width=2), name=g.legend)
    return _export_png(win, out_png, width)


def _emptiest_corner(groups, attr: str, unit_y: bool) -> tuple[int, int]:
    """The legend's offset into the plot corner the centre lines cross least: win rates rise late and leave the
    top left empty, overestimation climbs from far below and leaves the bottom right empty."""
    pts = [(getattr(g, attr).x, getattr(g, attr).center) for g in groups]
    x = np.concatenate([a for a, _ in pts] or [np.zeros(0)])
    y = np.concatenate([b for _, b in pts] or [np.zeros(0)])
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0:
        return (5, 5)
    span = lambda v, lo, hi: (v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5)
    u = span(x, x.min(), x.max())
    v = span(y, 0.0, 1.0) if unit_y else span(y, y.min(), y.max())
    corners = {(5, 5): (u < 0.4) & (v > 0.6), (-5, 5): (u > 0.6) & (v > 0.6),
               (-5, -5): (u > 0.6) & (v < 0.4), (5, -5): (u < 0.4) & (v < 0.4)}
    return min(corners, key=lambda c: int(corners[c].sum()))  # ties: the first, top left


def check_out_png(out_png) -> Path:
    """An output PNG's path, refused before any work when its directory does not exist."""
    out = Path(out_png)
    if not out.parent.is_dir():
        raise ValueError(f"{out}: the directory {out.parent} does not exist")
    return out


def _export_png(win, out_png, width: int) -> str:
    """Lay out the offscreen window once, write it to `out_png` at `width` pixels, and close it; an error
    naming the path when no file came of it (a "wrote" is never printed for a file that is not there)."""
    import pyqtgraph as pg
    import pyqtgraph.exporters  # noqa: F401
    from PySide6.QtWidgets import QApplication

    out = check_out_png(out_png)
    before = out.stat().st_mtime_ns if out.exists() else None
    win.show()
    QApplication.instance().processEvents()
    exp = pg.exporters.ImageExporter(win.scene())
    exp.parameters()["width"] = width
    exp.export(str(out))
    win.close()
    if not out.exists() or out.stat().st_size == 0 or out.stat().st_mtime_ns == before:
        raise OSError(f"{out}: the image could not be written")
    return str(out)


def plot_statistics(comparison, out_png, width=1500, height=480, reps: int = 2000) -> str:
    """The final metric's run-score distribution (performance profile: the fraction of runs above each
    threshold, with 95% bands) and the probability of improvement of each pair of groups with its interval."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from models.sweeps import stats

    check_out_png(out_png)
    _app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    win = pg.GraphicsLayoutWidget()
    win.resize(width, height)
    rate = comparison.metric in ("test_win_rate", "won")
    what = "final greedy win rate" if rate else f"final {comparison.metric}"
    finals = comparison.finals()
    everything = np.concatenate([v for v in finals.values() if len(v)] or [np.zeros(1)])
    taus = np.linspace(0.0, 1.0, 101) if rate else np.linspace(everything.min(), everything.max(), 101)
    p = win.addPlot(row=0, col=0)
    p.setTitle(f"performance profile: fraction of runs with {what} > tau (95% bands)")
    p.setLabel("bottom", "tau")
    p.setLabel("left", "fraction of runs")
    p.showGrid(x=True, y=True, alpha=0.3)
    p.setYRange(0.0, 1.0, padding=0.02)
    p.addLegend(offset=(-5, 5))
    for i, (label, x) in enumerate(finals.items()):
        if not len(x):
            continue
        colour = GROUP_COLOURS[i % len(GROUP_COLOURS)]
        point, lo, hi = stats.profile_bands(x, taus, reps)
        a = p.plot(taus, lo, pen=pg.mkPen(colour + (90,), width=1))
        b = p.plot(taus, hi, pen=pg.mkPen(colour + (90,), width=1))
        p.addItem(pg.FillBetweenItem(a, b, brush=pg.mkBrush(colour + (50,))))
        p.plot(taus, point, pen=pg.mkPen(colour, width=2), name=f"{i + 1}: {label} ({len(x)} runs)")
    q = win.addPlot(row=0, col=1)
    q.setTitle("P(X > Y), 95% intervals (X, Y: the profile's numbers)")
    q.setLabel("bottom", "P(X > Y)")
    q.showGrid(x=True, alpha=0.3)
    # groups by their number in the profile's legend: "1 > 2" reads as P(group 1 beats group 2)
    number = {k: i + 1 for i, k in enumerate(finals)}
    labels = [k for k, v in finals.items() if len(v)]
    pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1:]]
    ticks = []
    for row, (a, b) in enumerate(pairs):
        est = stats.improvement(finals[a], finals[b], reps)
        y = len(pairs) - 1 - row
        q.plot([est.lo, est.hi], [y, y], pen=pg.mkPen(GROUP_COLOURS[labels.index(a) % len(GROUP_COLOURS)], width=8))
        q.plot([est.value], [y], pen=None, symbol="o", symbolBrush="k", symbolSize=8)
        ticks.append((y, f"{number[a]} > {number[b]}"))
    from PySide6.QtCore import Qt

    q.addLine(x=0.5, pen=pg.mkPen((120, 120, 120), style=Qt.DashLine))
    q.setXRange(0.0, 1.0, padding=0.02)
    q.setYRange(-0.7, max(len(pairs) - 0.3, 0.3), padding=0)
    q.getAxis("left").setTicks([ticks])
    q.getAxis("left").setWidth(60)
    win.ci.layout.setColumnStretchFactor(0, 3)
    win.ci.layout.setColumnStretchFactor(1, 2)
    return _export_png(win, out_png, width)
