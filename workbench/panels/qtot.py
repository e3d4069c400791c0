"""Qtot over the episode's steps beside the discounted return actually earned (overestimation),
with RES's softmax target beside the max target when RES is on; in Replay mode, a cursor at the step shown."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from .common import StableLevels, grow_range, label_plot, line_key, set_title, set_view_range, set_y_range


class QtotPanel(pg.PlotWidget):
    TITLE = "Qtot over the episode (env 0)"
    COLOURS = {"cur": (90, 180, 255), "res": (120, 230, 120), "last_q": (255, 170, 60), "last_g": (255, 90, 90)}

    def __init__(self, parent=None):
        super().__init__(parent)
        p = self.getPlotItem()
        label_plot(p, self.TITLE, "value", "step t of the episode")
        p.disableAutoRange()
        self.levels = StableLevels()
        self.cur = p.plot(pen=pg.mkPen(self.COLOURS["cur"], width=2))
        self.greedy = p.plot(pen=pg.mkPen(self.COLOURS["cur"], width=1, style=Qt.DashLine))
        self.res = p.plot(pen=pg.mkPen(self.COLOURS["res"], width=2))
        self.last_q = p.plot(pen=pg.mkPen(self.COLOURS["last_q"], width=2))
        self.last_g = p.plot(pen=pg.mkPen(self.COLOURS["last_g"], width=2))
        # bottom left: the values fall over an episode (rewards collected), so the curves leave that corner free
        self.label = pg.TextItem("", color=(255, 120, 120), anchor=(0, 1))
        p.addItem(self.label, ignoreBounds=True)
        # Replay mode's step: the whole episode is drawn and a vertical line says where the other panels are
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((255, 255, 255, 200), width=1.5))
        self.cursor.setVisible(False)
        p.addItem(self.cursor, ignoreBounds=True)
        self.gap = None
        self._set_key(replay=False, res=False)

    def set_res(self, on: bool) -> None:
        """Whether the run shown uses RES (its softmax target is drawn and named)."""
        if on != self.res_on:
            self._set_key(self.replay, on)

    def _set_key(self, replay: bool, res: bool) -> None:
        """The key (in the title: a legend inside the view covered most of a laptop-sized panel) names only the
        lines drawn: RES's target only when RES is on; in Replay mode the episode shown is the finished one, its
        Qtot drawn once (blue) and the return beside it this episode's, so the orange "last finished episode"
        line and its entry go."""
        self.replay, self.res_on = replay, res
        C = self.COLOURS
        who = "this episode" if replay else "the last finished episode"
        entries = [(C["cur"], "Qtot", False, "solid blue: Qtot(s_t, u_t) of the actions taken, this episode"),
                   (C["cur"], "max_u Qtot", True, "dashed blue: max_u Qtot(s_t, u)"),
                   (C["res"], "RES target", False, "green: RES's softmax target") if res else None,
                   None if replay else (C["last_q"], "last ep. Qtot", False, "orange: Qtot of the last finished episode"),
                   (C["last_g"], "return earned" if replay else "last ep. return", False,
                    f"red: the discounted return earned from each step on, {who}")]
        entries = list(filter(None, entries))  # the short name in the key, the long one on hover
        self.key_names = [name for _, name, _, _ in entries]
        self.setToolTip("<br>".join(long for *_, long in entries))
        self._key = [e[:3] for e in entries]
        self._title = None
        self._show_key()
        if replay:
            self.last_q.setData([], [])

    def _show_key(self) -> None:
        """The title with the key wrapped to the panel's width (a narrow dock cut a one-line key at both ends);
        set only when the wrapping changes, as a new title repaints."""
        title = f"{self.TITLE}<br>{line_key(self._key, size='8pt', width=max(self.width() - 60, 100))}"
        if title != self._title:
            self._title = title
            set_title(self.getPlotItem(), title)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        if hasattr(self, "_key"):
            self._show_key()

    def show_trace(self, snap: dict) -> None:
        if bool(snap.get("replay")) != self.replay:
            self._set_key(bool(snap.get("replay")), self.res_on)
        tr = snap.get("trace") or {}
        res = [v for v in tr.get("res", []) if v is not None]
        k = snap.get("cursor")
        if k is not None:
            self.cursor.setValue(k)
        if self.cursor.isVisible() != (k is not None):
            self.cursor.setVisible(k is not None)
        q = np.asarray(tr.get("qtot", []), dtype=float)
        self.cur.setData(np.arange(len(q)), q)
        g = np.asarray(tr.get("greedy", []), dtype=float)
        self.greedy.setData(np.arange(len(g)), g)
        self.res.setData(np.arange(len(res)), np.asarray(res, dtype=float))
        last = snap.get("last_episode")
        p = self.getPlotItem()
        n = max(len(q), len(last["qtot"]) if last else 0)
        if k is None:
            grow_range(p, n)
        else:  # one whole episode: exactly its steps (its final state included), as the timeline spans them
            set_view_range(p, "x", 0, max(n, 1), padding=0.02)
        set_y_range(p, self.levels, q, g, res, last and last["qtot"], last and last["return_to_go"])
        if last:
            lq = np.asarray(last["qtot"], dtype=float)
            lg = np.asarray(last["return_to_go"], dtype=float)
            L = min(len(lq), len(lg))
            if not self.replay:
                self.last_q.setData(np.arange(L), lq[:L])
            self.last_g.setData(np.arange(L), lg[:L])
            self.gap = float(np.mean(lq[:L] - lg[:L])) if L else None
            if self.gap is not None:
                who = "this episode" if self.replay else "last episode"
                self.label.setText(f"{who}: mean Qtot - return = {self.gap:+.2f}")
                vb = self.getPlotItem().vb
                (x0, _), (y0, _) = vb.viewRange()
                self.label.setPos(x0, y0)
