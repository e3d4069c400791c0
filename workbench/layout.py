"""The main window's layout: where the docks go, a first size that fits the screen the window opens on, the
layout remembered between launches, and the View menu (show/hide each panel, Reset layout).

One arrangement serves every screen from 1366x768 up: Controls (scrollable) and Messages on the left, the
Joint-action landscape, Mixer and Qtot on the right, Agent Q-values and Training curves side by side under the
arena. The left and right columns own the bottom corners, so the bottom docks sit under the arena only and the
columns get the window's full height. Sizes are shares of the screen, with minimums small enough that all seven
panels show at once on a 1366x768 laptop.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMainWindow

SETTINGS_ENV = "QMIX_WORKBENCH_SETTINGS"  # an INI file instead of the user's settings (tests, portable setups)
LAYOUT_VERSION = 1  # bump when the docks change: an older saved layout is then ignored, not half applied
LEFT, RIGHT, BOTTOM = ("Controls", "Messages"), ("Joint-action landscape", "Mixer", "Qtot"), \
    ("Agent Q-values", "Training curves")
# the smallest a panel may be made: what still reads at 1366x768 with all of them on screen
MINIMUM = {"Controls": (230, 120), "Messages": (230, 50), "Joint-action landscape": (260, 130), "Mixer": (260, 110),
           "Qtot": (260, 100), "Agent Q-values": (280, 140), "Training curves": (300, 140)}


def settings() -> QSettings:
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.IniFormat)
    return QSettings("qmix-workbench", "QMIX Workbench")


def arrange(win: QMainWindow, docks: dict) -> None:
    """Place the docks (once, at construction): areas, corners, minimum sizes."""
    win.setCorner(Qt.BottomLeftCorner, Qt.LeftDockWidgetArea)
    win.setCorner(Qt.BottomRightCorner, Qt.RightDockWidgetArea)
    for name, (w, h) in MINIMUM.items():
        docks[name].widget().setMinimumSize(w, h)
        docks[name].widget().setMaximumSize(16777215, 16777215)


def available_geometry(win: QMainWindow):
    screen = win.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def fit_to_screen(win: QMainWindow, docks: dict) -> None:
    """The first size: most of the available screen (all of it on a small one), centred; the docks' shares."""
    geo = available_geometry(win)
    W, H = geo.width(), geo.height()
    share = 1.0 if W < 1600 else 0.94
    w, h = int(W * share), int(H * share)
    win.resize(w, h)
    win.move(geo.x() + (W - w) // 2, geo.y() + (H - h) // 2)
    size_docks(win, docks, w, h)


def size_docks(win: QMainWindow, docks: dict, w: int, h: int) -> None:
    # the left column is as wide as the controls need (their form does not shrink), at least a fifth of the window
    scroll = docks[LEFT[0]].widget()
    need = scroll.widget().minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 6 \
        if hasattr(scroll, "widget") and scroll.widget() is not None else 240
    left = max(need, min(340, int(0.2 * w)))
    right = max(280, min(560, int(0.27 * w)))
    bottom = max(170, min(340, int(0.3 * h)))
    win.resizeDocks([docks[LEFT[0]], docks[RIGHT[0]]], [left, right], Qt.Horizontal)
    win.resizeDocks([docks[n] for n in BOTTOM], [bottom] * len(BOTTOM), Qt.Vertical)
    col = h - 60  # the right column's height less its title bars
    win.resizeDocks([docks[n] for n in RIGHT], [int(col * f) for f in (0.4, 0.33, 0.27)], Qt.Vertical)
    win.resizeDocks([docks[n] for n in LEFT], [int(col * 0.8), int(col * 0.2)], Qt.Vertical)
    mid = max(300, w - left - right)
    win.resizeDocks([docks[n] for n in BOTTOM], [mid // 2, mid - mid // 2], Qt.Horizontal)


def restore(win: QMainWindow) -> bool:
    """The layout and geometry of the last launch, when there is one of this version that fits this screen."""
    s = settings()
    if s.value("layout_version", 0, type=int) != LAYOUT_VERSION:
        return False
    geometry, state = s.value("geometry"), s.value("state")
    if not isinstance(geometry, QByteArray) or not isinstance(state, QByteArray):
        return False
    if not win.restoreGeometry(geometry):
        return False
    geo = available_geometry(win)
    if not geo.contains(win.frameGeometry()) and not geo.contains(win.geometry()):
        return False  # saved on a larger screen: the default fit instead
    return win.restoreState(state, LAYOUT_VERSION)


def save(win: QMainWindow) -> None:
    s = settings()
    s.setValue("layout_version", LAYOUT_VERSION)
    s.setValue("geometry", win.saveGeometry())
    s.setValue("state", win.saveState(LAYOUT_VERSION))
    s.sync()


def reset(win: QMainWindow, docks: dict) -> None:
    """Every panel back where `arrange` put it (the Fork panel stays hidden until a fork), sized to the screen."""
    for name, d in docks.items():
        if name == "Fork":
            continue
        d.setFloating(False)
        d.show()
    for name in LEFT:
        win.addDockWidget(Qt.LeftDockWidgetArea, docks[name])
    for name in RIGHT:
        win.addDockWidget(Qt.RightDockWidgetArea, docks[name], Qt.Vertical)
    win.addDockWidget(Qt.BottomDockWidgetArea, docks[BOTTOM[0]])
    win.splitDockWidget(docks[BOTTOM[0]], docks[BOTTOM[1]], Qt.Horizontal)
    if "Fork" in docks:
        win.tabifyDockWidget(docks[BOTTOM[1]], docks["Fork"])
        docks[BOTTOM[1]].raise_()
    fit_to_screen(win, docks)


def add_view_menu(win: QMainWindow, docks: dict) -> None:
    m = win.menuBar().addMenu("&View")
    for d in docks.values():
        m.addAction(d.toggleViewAction())
    m.addSeparator()
    a = m.addAction("Reset layout")
    a.triggered.connect(lambda: reset(win, docks))
    win.view_menu = m
