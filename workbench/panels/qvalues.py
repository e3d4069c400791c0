"""Agent Q-values: one bar per action for each agent; unavailable greyed, chosen and greedy marked."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from ..state import action_names
from .common import label_plot

AVAIL_BRUSH = pg.mkBrush(80, 150, 230)
UNAVAIL_BRUSH = pg.mkBrush(70, 70, 70)
SELECTED_BRUSH = pg.mkBrush(110, 190, 255)


class QValuesPanel(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plots: list = []
        self.bars: list = []
        self.chosen: list = []
        self.greedy: list = []
        self.n = self.A = 0
        self.last_q = None

    def configure(self, n_agents: int, n_actions: int, matrix_game: bool) -> None:
        if (n_agents, n_actions) == (self.n, self.A):
            return
        self.clear()
        self.plots, self.bars, self.chosen, self.greedy = [], [], [], []
        self.n, self.A = n_agents, n_actions
        names = action_names(n_actions, matrix_game)
        ticks = [(0, "no-op"), (3.5, "move")] + [(i, f"atk {i - 6}") for i in range(14, n_actions, 8)]
        if matrix_game:
            ticks = [(i, names[i]) for i in range(n_actions)]
        for i in range(n_agents):
            p = self.addPlot(row=i, col=0)
            label_plot(p, f"agent {i}: Q_i per action", "Q_i", "action")
            p.getAxis("bottom").setTicks([ticks])
            bars = pg.BarGraphItem(x=np.arange(n_actions), height=np.zeros(n_actions), width=0.8,
                                   brushes=[UNAVAIL_BRUSH] * n_actions, pen=None)
            p.addItem(bars)
            ch = pg.ScatterPlotItem(symbol="t", size=13, brush=pg.mkBrush(255, 140, 40), pen=pg.mkPen("w"),
                                    name="chosen")
            gr = pg.ScatterPlotItem(symbol="star", size=15, brush=pg.mkBrush(255, 230, 60), pen=None, name="greedy")
            p.addItem(ch)
            p.addItem(gr)
            self.plots.append(p)
            self.bars.append(bars)
            self.chosen.append(ch)
            self.greedy.append(gr)

    def show_probe(self, probe: dict, selected: int) -> None:
        q, avail = np.asarray(probe["q"]), np.asarray(probe["avail"], bool)
        self.last_q = q
        for i in range(min(self.n, q.shape[0])):
            brushes = [(SELECTED_BRUSH if i == selected else AVAIL_BRUSH) if a else UNAVAIL_BRUSH for a in avail[i]]
            self.bars[i].setOpts(height=q[i], brushes=brushes)
            c, g = int(probe["chosen"][i]), int(probe["greedy"][i])
            span = max(float(np.ptp(q[i])), 1e-3)
            self.chosen[i].setData([c], [q[i, c] + 0.08 * span])
            self.greedy[i].setData([g], [q[i, g] + 0.16 * span])
            self.plots[i].setTitle(f"agent {i}{' (selected)' if i == selected else ''}: Q_i per action — "
                                   f"<span style='color:#ff8c28'>&#9650; chosen {c}</span>, "
                                   f"<span style='color:#ffe63c'>&#9733; greedy {g}</span>, grey = unavailable",
                                   size="10pt")
