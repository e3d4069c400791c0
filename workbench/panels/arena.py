"""Arena: the live battle of environment 0 (or a replayed episode's state), drawn by `sims.render` from the
snapshot's world arrays."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget


class ArenaPanel(QWidget):
    agentSelected = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMouseTracking(True)
        self.renderer = None
        self.view = None
        self.image: QImage | None = None
        self.frame: np.ndarray | None = None
        self.text = "Press Start to train on the chosen scenario, or load a checkpoint to watch."
        self._key = None
        self.frames_drawn = 0

    def set_scenario(self, map_name: str, profile: str = "lotv") -> None:
        """Prepare the renderer for a SMAC map (None for matrix games)."""
        key = (map_name, profile)
        if key == self._key:
            return
        self._key = key
        self.renderer = self.view = None
        self.image = None
        from sims import list_matrix_games

        if map_name in list_matrix_games():
            self.text = f"{map_name}: a matrix game has no battlefield; see the joint-action panel."
            self.update()
            return
        from sims import load_scenario
        from sims.render import Renderer
        from sims.world import World

        scen = load_scenario(map_name, profile=profile)
        self.renderer = Renderer(scen)
        self._world = World(scen, 1, seed=0)
        self.view = None
        self.text = ""
        self.update()

    def show_snapshot(self, snap: dict, selected: int, title: str = "") -> None:
        if self.renderer is None or snap.get("world") is None:
            return
        from sims.world import WorldView

        world = snap["world"]
        if self.view is None:
            self.view = WorldView(self._world, world)
        else:
            self.view.update(world)
        frame = self.renderer.frame(self.view, 0, title=title, highlight=selected)
        self.frame = frame
        h, w, _ = frame.shape
        self.image = QImage(frame.data, w, h, 3 * w, QImage.Format_RGB888).copy()
        self.frames_drawn += 1
        self.update()

    def _target_rect(self) -> QRectF:
        if self.image is None:
            return QRectF(self.rect())
        iw, ih = self.image.width(), self.image.height()
        s = min(self.width() / iw, self.height() / ih)
        w, h = iw * s, ih * s
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(12, 12, 16))
        if self.image is not None:
            p.drawImage(self._target_rect(), self.image)
        if self.text:
            p.setPen(QColor(220, 220, 220))
            p.setFont(QFont("Sans", 11))
            p.drawText(self.rect().adjusted(12, 12, -12, -12), Qt.AlignCenter | Qt.TextWordWrap, self.text)
        p.end()

    def _unit_at(self, pos: QPointF, agents_only: bool):
        if self.image is None or self.view is None:
            return None
        r = self._target_rect()
        if not r.contains(pos):
            return None
        s = self.image.width() / r.width()
        px, py = (pos.x() - r.x()) * s, (pos.y() - r.y()) * s
        x, y = self.renderer.to_map(px, py)
        v = self.view
        d = np.hypot(v.pos[0, :, 0] - x, v.pos[0, :, 1] - y)
        d[~v.alive[0]] = np.inf
        if agents_only:
            d[v.n:] = np.inf
        u = int(np.argmin(d))
        return u if d[u] <= v.radius[u] + 0.3 else None

    def mousePressEvent(self, event):
        u = self._unit_at(event.position(), agents_only=True)
        if u is not None:
            self.agentSelected.emit(u)

    def unit_info(self, u: int) -> str:
        v = self.view
        t = v.types[v.utype[u]]
        who = f"agent {u}" if u < v.n else f"enemy {u - v.n}"
        txt = (f"{who}: {t.name}\nhealth {v.health[0, u]:.1f} / {v.max_health[u]:.0f}")
        if v.max_shield[u] > 0:
            txt += f"\nshield {v.shield[0, u]:.1f} / {v.max_shield[u]:.0f}"
        txt += f"\nweapon cooldown {v.cooldown[0, u] / 16:.2f} s"
        return txt

    def mouseMoveEvent(self, event):
        u = self._unit_at(event.position(), agents_only=False)
        if u is None:
            QToolTip.hideText()
            return
        QToolTip.showText(event.globalPosition().toPoint(), self.unit_info(u), self)
