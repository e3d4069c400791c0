"""Agent Q-values: one bar per action for each agent; unavailable greyed, chosen and greedy marked.

Bars are drawn as filled step curves (one for available, one for unavailable actions): a single
path each, which paints an order of magnitude faster than 70 separate bar items.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from ..state import action_names
from .common import StableLevels, label_plot, set_title, set_view_range

AVAIL = (80, 150, 230)
SELECTED = (110, 190, 255)
UNAVAIL = (85, 85, 85)


class QValuesPanel(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plots: list = []
        self.avail_bars: list = []
        self.unavail_bars: list = []
        self.chosen: list = []
        self.greedy: list = []
        self.notes: list = []
        self.n = self.A = 0
        self.last_q = None
        self._titles: dict = {}
        self._ticks_for = None  # the attack-label stride the axes were laid out for
        self._narrow = None  # whether that was for a narrow panel (short title, no "action" label)
        self._matrix = False
        self.setToolTip("Q_i of each action for each agent: \u25bc the action taken (epsilon-greedy in training), "
                        "\u2605 the greedy one, with their indices at the right; grey bars: unavailable actions")

    def configure(self, n_agents: int, n_actions: int, matrix_game: bool) -> None:
        if (n_agents, n_actions) == (self.n, self.A):
            return
        self.clear()
        self.plots, self.avail_bars, self.unavail_bars, self.chosen, self.greedy, self.notes = [], [], [], [], [], []
        self.n, self.A = n_agents, n_actions
        self._titles = {}
        self.levels = [StableLevels() for _ in range(n_agents)]
        self._matrix = matrix_game
        self._ticks_for = self._narrow = None
        edges = np.arange(n_actions + 1) - 0.5
        for i in range(n_agents):
            p = self.addPlot(row=i, col=0)
            label_plot(p, f"agent {i}: Q_i per action", "Q_i", "action")
            un = pg.PlotCurveItem(edges, np.zeros(n_actions), stepMode="center", fillLevel=0,
                                  brush=pg.mkBrush(UNAVAIL), pen=pg.mkPen((20, 20, 20), width=1))
            av = pg.PlotCurveItem(edges, np.zeros(n_actions), stepMode="center", fillLevel=0,
                                  brush=pg.mkBrush(AVAIL), pen=pg.mkPen((20, 20, 20), width=1))
            p.addItem(un)
            p.addItem(av)
            ch = pg.ScatterPlotItem(symbol="t", size=13, brush=pg.mkBrush(255, 140, 40), pen=pg.mkPen("w"))
            gr = pg.ScatterPlotItem(symbol="star", size=15, brush=pg.mkBrush(255, 230, 60), pen=None)
            p.addItem(ch)
            p.addItem(gr)
            # which actions are marked, inside the plot: a title that changed every frame would re-lay-out
            # the plot and repaint its axes; short ("▼9 ★9": the title and tooltip name the symbols) and on a
            # dark fill, since in a laptop's ~30 px plot it lies over the last actions' bars
            note = pg.TextItem("", anchor=(1, 0), color=(230, 230, 230), fill=pg.mkBrush(0, 0, 0, 170))
            note.setPos(n_actions - 0.5, 0)
            p.addItem(note, ignoreBounds=True)
            note.setZValue(1)  # over the bars, under the markers: a chosen action under the note stays marked
            ch.setZValue(2)
            gr.setZValue(2)
            self.notes.append(note)
            p.disableAutoRange(axis="y")
            p.setXRange(-2.0, n_actions - 0.5, padding=0)  # room left of bar 0 for its "no-op" label
            self.plots.append(p)
            self.avail_bars.append(av)
            self.unavail_bars.append(un)
            self.chosen.append(ch)
            self.greedy.append(gr)
        self._fit_ticks()

    NARROW_PX = 520  # below this a laptop's panel: attack labels every 8 ran together, the long title was cut

    def _ticks(self, stride: int) -> list:
        names = action_names(self.A, self._matrix)
        if self._matrix:
            return [(i, names[i]) for i in range(self.A)]
        from sims import N_ACTIONS_NO_ATTACK as K  # the action layout is the simulator's: no-op, stop, 4 moves

        return [(0, "no-op"), ((2 + K - 1) / 2, "move")] + [(i, f"atk {i - K}")
                                                          for i in range(K + stride, self.A, stride)]

    def _fit_ticks(self) -> None:
        """Attack labels every 8 actions, or every 16/32 when the plot is too narrow for them."""
        if not getattr(self, "plots", None):  # a resize while the panel is being built
            return
        room = max(self.width() - 80, 1)  # the y axis and margins
        stride = next((k for k in (8, 16, 32) if (self.A / k + 1) * 40 <= room), 64)
        narrow = self.width() < self.NARROW_PX
        if (stride, narrow) == (self._ticks_for, self._narrow):
            return
        if narrow != self._narrow:
            self._titles = {}  # the title's length follows the width too
        self._ticks_for, self._narrow = stride, narrow
        for p in self.plots:
            p.getAxis("bottom").setTicks([self._ticks(stride)])
            # the ticks say "move", "atk 16": a laptop's bars need the row the word "action" took
            p.getAxis("bottom").showLabel(not narrow)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._fit_ticks()

    def heights(self, i: int) -> np.ndarray:
        """The bar heights agent `i`'s plot shows (available and unavailable together)."""
        return self.avail_bars[i].getData()[1] + self.unavail_bars[i].getData()[1]

    def show_probe(self, probe: dict, selected: int) -> None:
        q, avail = np.asarray(probe["q"], float), np.asarray(probe["avail"], bool)
        self.last_q = q
        edges = np.arange(self.A + 1) - 0.5
        for i in range(min(self.n, q.shape[0])):
            self.avail_bars[i].setData(edges, np.where(avail[i], q[i], 0.0))
            self.unavail_bars[i].setData(edges, np.where(avail[i], 0.0, q[i]))
            self.avail_bars[i].setBrush(pg.mkBrush(SELECTED if i == selected else AVAIL))
            c, g = int(probe["chosen"][i]), int(probe["greedy"][i])
            lo, hi = self.levels[i](np.append(q[i], 0.0))
            span = max(hi - lo, 1e-3)
            yr = (min(lo, 0.0), hi + 0.25 * span)  # room above the bars for the markers
            set_view_range(self.plots[i], "y", *yr)
            self.chosen[i].setData([c], [q[i, c] + 0.08 * span])
            self.greedy[i].setData([g], [q[i, g] + 0.16 * span])
            self.notes[i].setHtml(f"<span style='color:#ff8c28'>&#9660;{c}</span>&nbsp;"
                                  f"<span style='color:#ffe63c'>&#9733;{g}</span>")
            self.notes[i].setPos(self.A - 0.5, yr[1])
            title = (f"agent {i}{' (selected)' if i == selected else ''}: Q_i"
                     + (" (grey: unavailable)" if self._narrow else
                        " per action — <span style='color:#ff8c28'>&#9660; chosen</span>, "
                        "<span style='color:#ffe63c'>&#9733; greedy</span>, grey = unavailable"))
            if self._titles.get(i) != title:
                self._titles[i] = title
                set_title(self.plots[i], title)
