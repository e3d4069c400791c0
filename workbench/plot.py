"""`qmix-workbench plot RUN_DIR`: the run's curves (test win rate, return, overestimation) as a PNG."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np


def read_metrics(run_dir) -> dict:
    """{(kind, column): (t_env array, value array)} from a run's metrics.csv (blank cells skipped)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise ValueError(f"{run_dir} has no metrics.csv: not a run directory")
    pairs: dict = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            t = float(row["t_env"])
            for k, v in row.items():
                if k in ("kind", "t_env") or v in ("", None):
                    continue
                pairs.setdefault((row["kind"], k), []).append((t, float(v)))
    return {key: (np.array([p[0] for p in v]), np.array([p[1] for p in v])) for key, v in pairs.items()}


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
    win.show()
    _app.processEvents()
    exp = pg.exporters.ImageExporter(win.scene())
    exp.parameters()["width"] = width
    exp.export(str(out_png))
    win.close()
    return str(out_png)
