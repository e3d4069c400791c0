"""Joint-action landscape: Qtot of every joint action at the current state (2-agent maps), greedy and
taken joint actions marked; for matrix games the learned table beside the true payoff."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from .common import StableLevels, label_plot, relax, set_image_levels


class JointPanel(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.mode = None
        self.levels = StableLevels()
        self.table = None

    def _setup_smac(self, A: int) -> None:
        self.clear()
        p = self.addPlot(row=0, col=0)
        # the key goes in the title: a legend inside the view would hide the markers it explains
        # short enough for a laptop's dock (a longer one was cut at its left): the shading's key is the axis label
        label_plot(p, "Qtot(s, u0, u1) <span style='color:#ffffff'>&#9733; greedy</span> "
                   "<span style='color:#ff3c3c'>&#10006; taken</span>",
                   "agent 1 action", "agent 0 action (dark: unavailable)")
        self.img = pg.ImageItem()
        self.img.setColorMap(pg.colormap.get("viridis"))
        p.addItem(self.img)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"), label="Qtot",
                                   interactive=False)
        self.bar.setImageItem(self.img, insert_in=p)
        self.shade = pg.ImageItem()  # darkens joint actions that are not available now
        p.addItem(self.shade)
        self.greedy = pg.ScatterPlotItem(symbol="star", size=16, brush=pg.mkBrush(255, 255, 255), pen=None)
        self.taken = pg.ScatterPlotItem(symbol="x", size=14, brush=pg.mkBrush(255, 60, 60), pen=pg.mkPen((255, 60, 60), width=2))
        p.addItem(self.greedy)
        p.addItem(self.taken)
        p.setRange(xRange=(0, A), yRange=(0, A), padding=0.02)
        self.plot = p
        self.mode = ("smac", A)

    def _setup_matrix(self, A: int) -> None:
        self.clear()
        self.cells = []
        self.imgs = []
        for col, title in enumerate(["learned Qtot (current state)", "true payoff"]):
            p = self.addPlot(row=0, col=col)
            label_plot(p, title, "agent 1 action", "agent 0 action")
            p.setAspectLocked(True)
            img = pg.ImageItem()
            img.setColorMap(pg.colormap.get("viridis"))
            p.addItem(img)
            texts = []
            for a0 in range(A):
                for a1 in range(A):
                    t = pg.TextItem("", color=(255, 255, 255), anchor=(0.5, 0.5))
                    t.setPos(a0 + 0.5, a1 + 0.5)
                    p.addItem(t)
                    texts.append(t)
            p.setRange(xRange=(0, A), yRange=(0, A), padding=0.02)
            p.getAxis("bottom").setTicks([[(i + 0.5, str(i)) for i in range(A)]])
            p.getAxis("left").setTicks([[(i + 0.5, str(i)) for i in range(A)]])
            self.imgs.append(img)
            self.cells.append(texts)
        self.mode = ("matrix", A)

    def show_message(self, text: str) -> None:
        self.clear()
        relax(self.addLabel(text, row=0, col=0))
        self.mode = ("message", text)

    def show_probe(self, snap: dict, matrix_game: bool) -> None:
        probe = snap["probe"]
        joint = probe.get("joint")
        if joint is None:
            if self.mode is None or self.mode[0] != "message":
                self.show_message("The joint-action table needs 2 agents and a mixer (not IQL).")
            return
        joint = np.asarray(joint, dtype=float)
        A = joint.shape[0]
        if matrix_game:
            if self.mode != ("matrix", A):
                self._setup_matrix(A)
            payoff = snap.get("payoff")
            tables = [joint, None if payoff is None else np.asarray(payoff, float)]
            for img, texts, tab in zip(self.imgs, self.cells, tables):
                if tab is None:
                    img.clear()
                    for t in texts:
                        t.setText("")
                    continue
                lo, hi = float(np.nanmin(tab)), float(np.nanmax(tab))
                img.setImage(tab.T, levels=(lo, hi if hi > lo else lo + 1))
                img.setRect(0, 0, A, A)
                for k, t in enumerate(texts):
                    t.setText(f"{tab[k // A, k % A]:.2f}")
            self.table = joint
            return
        if self.mode != ("smac", A):
            self._setup_smac(A)
        lo, hi = self.levels(joint)
        set_image_levels(self.img, self.bar, joint.T, (lo, hi))
        self.img.setRect(0, 0, A, A)
        ok = probe.get("joint_avail")
        if ok is not None:
            rgba = np.zeros((A, A, 4), dtype=np.uint8)
            rgba[..., 3] = np.where(np.asarray(ok).T, 0, 170)
            self.shade.setImage(rgba, levels=(0, 255), autoLevels=False)
            self.shade.setRect(0, 0, A, A)
        g, c = probe["greedy"], probe["chosen"]
        self.greedy.setData([g[0] + 0.5], [g[1] + 0.5])
        self.taken.setData([c[0] + 0.5], [c[1] + 0.5])
        self.table = joint
