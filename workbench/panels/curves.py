"""Training curves over env steps; downsampled and clipped to view so a million points scroll smoothly."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

from .common import label_plot

PLOTS = [  # (title, y label, [(series, name, colour, smoothed)])
    ("episode return", "return", [("return", "train (mean of 50 episodes)", (90, 180, 255), True)]),
    ("win rate", "win rate", [("won", "train (mean of 50 episodes)", (90, 180, 255), True),
                              ("test_win_rate", "greedy test", (255, 170, 60), False)]),
    ("loss", "TD loss", [("loss", "loss", (230, 110, 110), False)]),
    ("TD error", "|TD error|", [("td_error", "mean |TD error|", (230, 160, 110), False)]),
    ("epsilon", "epsilon", [("epsilon", "epsilon", (180, 180, 180), False)]),
    ("overestimation", "Qtot - return", [("overestimation", "mean Qtot - discounted return", (255, 90, 90), True)]),
    ("throughput", "env steps/s", [("steps_per_s", "env steps/s", (120, 220, 120), False)]),
    ("value targets", "value", [("qtot_taken", "Qtot of taken actions", (90, 180, 255), False),
                                ("max_value", "max target (RES runs)", (255, 170, 60), False),
                                ("res_softmax_value", "RES softmax target", (120, 230, 120), False)]),
]


class CurvesPanel(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None, columns: int = 4):
        super().__init__(parent)
        self.curves = {}
        for k, (title, ylab, items) in enumerate(PLOTS):
            p = self.addPlot(row=k // columns, col=k % columns)
            label_plot(p, title, ylab, "env steps")
            p.getAxis("bottom").enableAutoSIPrefix(True)
            p.setLabel("bottom", "env steps", units="steps")
            p.setDownsampling(auto=True, mode="peak")
            p.setClipToView(True)
            if len(items) > 1:
                p.addLegend(offset=(5, 5), labelTextSize="7pt")
            for series, name, colour, smooth in items:
                c = p.plot(pen=pg.mkPen(colour, width=2), name=name)
                self.curves[series] = (c, smooth, p)
        self.points = 0

    def show_state(self, state) -> None:
        total = 0
        for series, (curve, smooth, _) in self.curves.items():
            s = state.series[series]
            if s.n == 0:
                curve.setData([], [])
                continue
            x, y = s.smoothed(50) if smooth else (s.x, s.y)
            curve.setData(x, y)
            total += s.n
        self.points = total
