"""Timeline: Replay mode's scrubber under the arena — a slider over states 0..T with the episode's markers
drawn on it, step/play/marker buttons, the playback speed, Fork here… and Export…, and their keys.

A thin view over `workbench.replay.ReplayModel`: it shows the model (`show_model`) and emits what the person
asked for; the window moves the model and redraws every panel.
"""
from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QPainter, QPen, QPolygon, QShortcut
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QStyle, QStyleOptionSlider,
                               QToolTip, QVBoxLayout, QWidget)

from ..replay import SPEEDS, STEPS_PER_S_AT_1X

MARKER_COLOURS = (("dies", (255, 70, 70)), ("damaged", (255, 170, 60)), ("shields", (90, 180, 255)),
                  ("plateau", (235, 220, 80)), ("Qtot", (220, 110, 230)))


def marker_colour(label: str) -> QColor:
    for word, rgb in MARKER_COLOURS:
        if word in label:
            return QColor(*rgb)
    return QColor(200, 200, 200)


class MarkerSlider(QSlider):
    """A horizontal slider that draws the episode's markers as coloured ticks above its groove and names them in
    a tooltip. Keys are left to the timeline's shortcuts (a slider's own PageUp/PageDown would jump by pages)."""

    MARK_H = 11

    def __init__(self, parent=None):
        super().__init__(Qt.Horizontal, parent)
        self.markers: list[tuple[int, str]] = []
        self.setMouseTracking(True)
        self.setMinimumHeight(40)
        self.setFocusPolicy(Qt.ClickFocus)
        self.setTickPosition(QSlider.TicksBelow)

    def set_markers(self, markers) -> None:
        self.markers = list(markers)
        self.update()

    def x_of(self, value: int) -> int:
        """The x pixel of the handle's centre at `value` (where a marker for that step is drawn)."""
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        st = self.style()
        groove = st.subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderGroove, self)
        handle = st.subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderHandle, self)
        span = groove.width() - handle.width()
        return groove.x() + handle.width() // 2 + QStyle.sliderPositionFromValue(self.minimum(), self.maximum(),
                                                                                 value, span)

    def paintEvent(self, event):
        super().paintEvent(event)
        if not self.markers:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        for step, label in self.markers:
            x = self.x_of(step)
            c = marker_colour(label)
            p.setPen(QPen(QColor(20, 20, 20), 1))
            p.setBrush(c)
            p.drawPolygon(QPolygon([QPoint(x - 5, 1), QPoint(x + 5, 1), QPoint(x, self.MARK_H)]))
        p.end()

    def labels_near(self, x: int, radius: int = 6) -> list[str]:
        return [f"step {s}: {label}" for s, label in self.markers if abs(self.x_of(s) - x) <= radius]

    def mouseMoveEvent(self, event):
        super().mouseMoveEvent(event)
        pos = event.position().toPoint()
        near = self.labels_near(pos.x()) if pos.y() <= self.MARK_H + 6 else []
        if near:
            QToolTip.showText(event.globalPosition().toPoint(), "\n".join(near), self)
        else:
            QToolTip.hideText()

    def keyPressEvent(self, event):
        event.ignore()


class TimelinePanel(QWidget):
    seekRequested = Signal(int)  # a state index
    stepRequested = Signal(int)  # -1 or +1
    markerRequested = Signal(int)  # -1 previous, +1 next
    playToggled = Signal()
    speedChanged = Signal(float)
    forkClicked = Signal()
    exportClicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 4)
        lay.setSpacing(2)
        self.slider = MarkerSlider()
        self.slider.setRange(0, 0)
        lay.addWidget(self.slider)
        row = QHBoxLayout()
        lay.addLayout(row)
        self.back = QPushButton("\u25c0 step")
        self.play = QPushButton("\u25b6 play")
        self.forward = QPushButton("step \u25b6")
        self.prev_marker = QPushButton("\u25c0\u25c0 marker")
        self.next_marker = QPushButton("marker \u25b6\u25b6")
        self.speed = QComboBox()
        for s in SPEEDS:
            self.speed.addItem(f"{s:g}x", s)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.setToolTip(f"playback speed; 1x = {STEPS_PER_S_AT_1X:g} env steps per second "
                              f"(one step is 0.5 s of game time)")
        self.fork = QPushButton("Fork here\u2026")
        self.fork.setToolTip("what if an agent had acted otherwise at this step? (continuations of both)")
        self.export = QPushButton("Export\u2026")
        self.label = QLabel()
        self.label.setMinimumWidth(260)
        for w in (self.back, self.play, self.forward, self.prev_marker, self.next_marker):
            w.setFocusPolicy(Qt.NoFocus)  # Space and the arrows belong to the timeline, not a focused button
            row.addWidget(w)
        row.addWidget(QLabel("speed"))
        row.addWidget(self.speed)
        row.addWidget(self.label, 1)
        row.addWidget(self.fork)
        row.addWidget(self.export)
        self.back.setToolTip("one step back (Left)")
        self.forward.setToolTip("one step forward (Right)")
        self.play.setToolTip("play / pause (Space)")
        self.prev_marker.setToolTip("previous marker (PageUp or [)")
        self.next_marker.setToolTip("next marker (PageDown or ])")
        self.slider.setToolTip("")

        self.slider.valueChanged.connect(self.seekRequested)
        self.back.clicked.connect(lambda: self.stepRequested.emit(-1))
        self.forward.clicked.connect(lambda: self.stepRequested.emit(1))
        self.prev_marker.clicked.connect(lambda: self.markerRequested.emit(-1))
        self.next_marker.clicked.connect(lambda: self.markerRequested.emit(1))
        self.play.clicked.connect(self.playToggled)
        self.speed.currentIndexChanged.connect(lambda i: self.speedChanged.emit(float(self.speed.itemData(i))))
        self.fork.clicked.connect(self.forkClicked)
        self.export.clicked.connect(self.exportClicked)
        # window-wide keys, live only while the timeline is shown (Qt ignores a hidden widget's shortcuts)
        self._length = 0
        self.shortcuts = []
        for keys, fn in ((("Left",), lambda: self.stepRequested.emit(-1)),
                         (("Right",), lambda: self.stepRequested.emit(1)),
                         (("Home",), lambda: self.seekRequested.emit(0)),
                         (("End",), lambda: self.seekRequested.emit(self._length)),
                         (("PgUp", "["), lambda: self.markerRequested.emit(-1)),
                         (("PgDown", "]"), lambda: self.markerRequested.emit(1)),
                         (("Space",), self.playToggled.emit)):
            for k in keys:
                sc = QShortcut(QKeySequence(k), self)
                sc.setContext(Qt.WindowShortcut)
                sc.activated.connect(fn)
                self.shortcuts.append(sc)

    def show_model(self, model) -> None:
        """Show the replay's markers, length, step, play state and speed (without echoing a seek back)."""
        if model.length != self._length or self.slider.markers != model.markers:
            self._length = model.length
            self.slider.blockSignals(True)
            self.slider.setRange(0, model.length)
            self.slider.setTickInterval(10 if model.length > 40 else 1)
            self.slider.blockSignals(False)
            self.slider.set_markers(model.markers)
        self.show_step(model)

    def show_step(self, model) -> None:
        if self.slider.value() != model.step:
            self.slider.blockSignals(True)
            self.slider.setValue(model.step)
            self.slider.blockSignals(False)
        self.play.setText("\u25ae\u25ae pause" if model.playing else "\u25b6 play")
        i = SPEEDS.index(model.speed)
        if self.speed.currentIndex() != i:
            self.speed.blockSignals(True)
            self.speed.setCurrentIndex(i)
            self.speed.blockSignals(False)
        here = model.markers_at()
        text = f"step {model.step}/{model.length}"
        if here:
            text += "  \u2014  " + "; ".join(here)
        self.label.setText(text)
        self.fork.setEnabled(model.step < model.length)  # the final state has no decision to fork
