"""Mixer: QMIX's hypernetwork outputs for the current state (|W1|, b1, |W2|, V(s)) and the credit
dQtot/dQi per agent over the episode (in Replay mode with a cursor at the step shown)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from .common import (AGENT_COLOURS, StableLevels, agent_pen, grow_range, label_plot, relax, set_image_levels, set_title,
                     set_view_range, set_y_range, titled_key)


class MixerPanel(pg.GraphicsLayoutWidget):
    MIN_H = 320  # below this the plots drew a few pixels tall: the window scrolls the panel instead
    HEATMAP_H = 70  # a heatmap of 2-3 rows of cells reads at this height; the credit curves get the rest

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(self.MIN_H)
        self.kind = None
        self.w1 = None

    def setup(self, mixer: str, n_agents: int) -> None:
        if self.kind == (mixer, n_agents):
            return
        self.clear()
        self.kind = (mixer, n_agents)
        self.levels = {k: StableLevels() for k in ("w1", "b1w2", "credit")}
        row = 0
        if mixer == "qmix":
            self.imgs = {}
            for key, title, ticks in (("w1", "|W1(s)| per agent, embedding unit",
                                       [(i + 0.5, f"agent {i}") for i in range(n_agents)]),
                                      ("b1w2", self._b1w2_title(None),
                                       [(0.5, "b1"), (1.5, "|W2|")])):
                p = self.addPlot(row=row, col=0)
                label_plot(p, title, "", "")
                p.getAxis("bottom").showLabel(False)  # the title names the axis: no "embedding unit" under each
                if key == "w1":  # the same units as the plot under it, whose ticks show them
                    p.getAxis("bottom").setStyle(showValues=False)
                # b1/W2 has its tick labels under it; W1 grows with its rows of agents
                p.setMaximumHeight(self.HEATMAP_H + (20 if key == "b1w2" else 10 * max(0, n_agents - 2)))
                self.ci.layout.setRowStretchFactor(row, 0)
                img = pg.ImageItem()
                img.setColorMap(pg.colormap.get("inferno"))
                p.addItem(img)
                bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("inferno"), interactive=False, width=10)
                bar.setImageItem(img, insert_in=p)
                p.getAxis("left").setTicks([ticks])
                self.imgs[key] = (img, bar, p)
                row += 1
        else:
            text = ("VDN: Qtot = sum of Qi — no hypernetwork; every agent's credit is 1." if mixer == "vdn"
                    else "IQL: no mixer — each agent learns its own Q from the team reward.")
            relax(self.addLabel(text, row=row, col=0))
            row += 1
        self.credit_plot = self.addPlot(row=row, col=0)
        self.ci.layout.setRowStretchFactor(row, 1)
        # the agents' key goes in the title: a legend inside a plot this small hid the curves
        self._credit_key = [(c, f"agent {i}", False) for i, c in enumerate(AGENT_COLOURS[:n_agents])]
        self._credit_title = None
        label_plot(self.credit_plot, "credit per step", "dQtot/dQi", "")
        self._show_credit_key()
        self.credit_plot.getAxis("bottom").showLabel(False)  # the title says "per step": its row goes to the curves
        self.credit_plot.disableAutoRange()
        self.credit_curves = [self.credit_plot.plot(pen=agent_pen(i), name=f"agent {i}") for i in range(n_agents)]
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((255, 255, 255, 200), width=1.5))
        self.cursor.setVisible(False)
        self.credit_plot.addItem(self.cursor, ignoreBounds=True)

    def _show_credit_key(self) -> None:
        """The credit plot's title with its key, wrapped under it in a narrow dock; set only when the wrapping
        changes, as a new title repaints."""
        title = titled_key("credit per step", self._credit_key, max(self.width() - 60, 100))
        if title != self._credit_title:
            self._credit_title = title
            set_title(self.credit_plot, title)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        if getattr(self, "kind", None) is not None:  # Qt resizes it inside __init__, before setup
            self._show_credit_key()

    @staticmethod
    def _b1w2_title(v: float | None) -> str:
        return "b1(s), |W2(s)|" + ("" if v is None else f";  V(s) = {v:+.3f}")

    def show_snapshot(self, snap: dict) -> None:
        probe = snap["probe"]
        hyper = probe.get("hyper") or {}
        if hyper and self.kind and self.kind[0] == "qmix":
            w1 = np.asarray(hyper["w1"], float)  # [n, E]
            self.w1 = w1
            b1w2 = np.stack([np.asarray(hyper["b1"], float), np.asarray(hyper["w2"], float)])
            for key, data in (("w1", w1), ("b1w2", b1w2)):
                img, bar, p = self.imgs[key]
                lo, hi = self.levels[key](data)
                set_image_levels(img, bar, data, (lo, hi), ends_only=True)
            # V(s) shares the b1/W2 title: a row of its own took the height the credit curves need
            set_title(self.imgs["b1w2"][2], self._b1w2_title(float(hyper["v"])))
        k = snap.get("cursor")
        if self.kind is not None:
            if k is not None:
                self.cursor.setValue(k)
            if self.cursor.isVisible() != (k is not None):
                self.cursor.setVisible(k is not None)
        credit = (snap.get("trace") or {}).get("credit", [])
        credit = [c for c in credit if c is not None]
        if credit:
            c = np.asarray(credit, float)
            if k is None:
                grow_range(self.credit_plot, len(c))
            else:
                set_view_range(self.credit_plot, "x", 0, max(len(c), 1), padding=0.02)
            set_y_range(self.credit_plot, self.levels["credit"], c)
            for i, curve in enumerate(self.credit_curves):
                if i < c.shape[1]:
                    curve.setData(np.arange(len(c)), c[:, i])
