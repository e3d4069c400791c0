"""The QMIX Workbench main window: dockable panels over a `WorkbenchState`, fed by a trainer process (training,
Watch mode) or by an episode file (Replay mode: a timeline under the arena, forks, export). `run_app` opens it
watching the shipped QMIX policy (`models.files.policies`)."""
from __future__ import annotations

import os
import sys
import time
from collections import deque

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtGui import QFont, QKeySequence  # noqa: E402
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow,  # noqa: E402
                               QPlainTextEdit, QVBoxLayout, QWidget)

from . import layout  # noqa: E402
from . import protocol as P  # noqa: E402
from .client import TrainerClient  # noqa: E402
from .replay_control import ReplayControl  # noqa: E402
from .run_control import DEFAULT_POLICY, RunControl, build_config  # noqa: E402,F401
from .panels import (ArenaPanel, ControlsPanel, CurvesPanel, CurvesScroll, JointPanel, MixerPanel,  # noqa: E402
                     QtotPanel, QValuesPanel, TimelinePanel, vertical_scroll)
from .panels.fork import ForkPanel  # noqa: E402
from .state import WorkbenchState  # noqa: E402

REFRESH_MS = 30  # ~33 Hz: at least 30 Hz with timer slack
CLOSE_SAVE_TIMEOUT_S = 60.0  # how long closing the window waits for the trainer's final save
CURVES_EVERY_S = 0.5  # the curves move slowly; redrawing their 16 axes is the costliest paint


class MainWindow(RunControl, ReplayControl, QMainWindow):
    def __init__(self, runs_dir: str = "runs", start_policy: str | None = None):
        """`start_policy`: a shipped policy to watch as soon as the window shows (None: open idle)."""
        super().__init__()
        from sims import list_matrix_games, list_scenarios

        self.setWindowTitle("QMIX Workbench")
        self.runs_dir = runs_dir
        self.state = WorkbenchState()
        self.client = TrainerClient()
        self.extra_overrides: list[str] = []

        self.arena = ArenaPanel()
        self.timeline = TimelinePanel()  # Replay mode only
        self.timeline.hide()
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.arena, 1)
        cl.addWidget(self.timeline)
        self.setCentralWidget(central)
        self.fork_view = ForkPanel()
        self.controls = ControlsPanel(list_scenarios() + list_matrix_games())
        self.qvalues = QValuesPanel()
        self.qtot = QtotPanel()
        self.joint = JointPanel()
        self.mixer = MixerPanel()
        self.curves = CurvesPanel()
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setFont(QFont("Monospace", 9))
        self.docks = {}
        controls_scroll = vertical_scroll(self.controls)  # the controls are taller than a laptop's screen allows
        # a laptop's Mixer dock (~220 px) squashed the heatmaps to a few pixels: it scrolls the panel instead
        mixer_scroll = vertical_scroll(self.mixer, frame=False)
        for name, w, area in (("Controls", controls_scroll, Qt.LeftDockWidgetArea),
                              ("Messages", self.log_view, Qt.LeftDockWidgetArea),
                              ("Agent Q-values", self.qvalues, Qt.BottomDockWidgetArea),
                              ("Training curves", CurvesScroll(self.curves), Qt.BottomDockWidgetArea),
                              ("Joint-action landscape", self.joint, Qt.RightDockWidgetArea),
                              ("Mixer", mixer_scroll, Qt.RightDockWidgetArea),
                              ("Qtot", self.qtot, Qt.RightDockWidgetArea),
                              ("Fork", self.fork_view, Qt.BottomDockWidgetArea)):
            d = QDockWidget(name, self)
            d.setObjectName(name)
            d.setWidget(w)
            self.addDockWidget(area, d)
            self.docks[name] = d
        self.splitDockWidget(self.docks["Agent Q-values"], self.docks["Training curves"], Qt.Horizontal)
        # a fork's table goes where the training curves are: a replay has no training to plot
        self.tabifyDockWidget(self.docks["Training curves"], self.docks["Fork"])
        self.docks["Training curves"].raise_()
        self.docks["Fork"].hide()  # until the first fork
        layout.arrange(self, self.docks)
        self.status = QLabel()
        self.statusBar().addPermanentWidget(self.status, 1)

        c = self.controls
        c.startClicked.connect(self.start_training)
        c.pauseClicked.connect(lambda: self.client.send(P.Pause()))
        c.resumeClicked.connect(lambda: self.client.send(P.Resume()))
        c.stepClicked.connect(lambda: self.client.send(P.Step()))
        c.stopClicked.connect(self.stop)
        c.saveClicked.connect(lambda: self.client.send(P.Save()))
        c.loadClicked.connect(self._ask_checkpoint)
        c.openRunClicked.connect(self._ask_run_dir)
        c.forceClicked.connect(self.force_action)
        c.snapshotRateChanged.connect(lambda hz: self.client.send(P.SetSnapshotRate(float(hz))))
        c.watchSpeedChanged.connect(
            lambda v: self.client.send(P.SetWatchSpeed(float(v))) if self.state.mode == "watch" else None)
        c.presetChanged.connect(self._preset_changed)
        c.liveChanged.connect(self.change_live)
        c.policyChosen.connect(self.watch_policy)
        self.arena.agentSelected.connect(self.select_agent)
        self._preset_changed()
        c.set_running("idle", False)

        tl = self.timeline
        tl.seekRequested.connect(lambda k: self._move_replay("seek", k))
        tl.stepRequested.connect(lambda d: self._move_replay("step_by", d))
        tl.markerRequested.connect(lambda d: self._move_replay("next_marker" if d > 0 else "prev_marker"))
        tl.playToggled.connect(self.toggle_play)
        tl.speedChanged.connect(self.set_replay_speed)
        tl.forkClicked.connect(self.ask_fork)
        tl.exportClicked.connect(self.ask_export)
        self.fork_view.openForkClicked.connect(self.open_fork_as_replay)
        self.fork_result = None
        self.compare_window = None  # made on first use of File > Compare runs...
        self._build_menu()
        layout.add_view_menu(self, self.docks)
        if not layout.restore(self):  # the last launch's layout, or one fitted to this screen
            layout.fit_to_screen(self, self.docks)
        self.setAcceptDrops(True)

        self.tick_times: deque = deque(maxlen=600)
        self.update_times: deque = deque(maxlen=600)
        self._last_curves = 0.0
        self._messages_shown = 0
        self._error_shown = None
        self._status_red = False
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(REFRESH_MS)
        QTimer.singleShot(0, self._detect_cuda)
        self.policy_cards = self._list_policies()
        self.start_policy = start_policy
        if start_policy is not None:
            QTimer.singleShot(0, self._start_policy)  # once the window shows: the spawn takes its seconds there
        self._update_status()

    # ---- menus ----------------------------------------------------------------------------------------------
    def _build_menu(self):
        m = self.menuBar().addMenu("&File")
        a = m.addAction("Open episode\u2026")
        a.setShortcut(QKeySequence.Open)
        a.triggered.connect(self.ask_open_episode)
        a = m.addAction("Open last recorded episode")
        a.triggered.connect(self.open_last_recorded)
        m.addSeparator()
        a = m.addAction("Export episode\u2026")
        a.triggered.connect(self.ask_export)
        m.addSeparator()
        a = m.addAction("Branch run\u2026")
        a.setToolTip("a new run going on from the running training (now) or a run directory, with settings changed")
        a.triggered.connect(self.ask_branch)
        a = m.addAction("Play experiment script\u2026")
        a.setToolTip("train the experiment in the controls, playing a TOML of timed changes, branches and breakpoints")
        a.triggered.connect(self.ask_script)
        m.addSeparator()
        a = m.addAction("Compare runs\u2026")
        a.triggered.connect(self.ask_compare)
        self.compare_action = a
        self.file_menu = m
        from models.core.events import BREAK_KINDS

        b = self.menuBar().addMenu("&Break on")
        b.setToolTipsVisible(True)
        self.break_actions = {}
        for kind in BREAK_KINDS:
            a = b.addAction(kind)
            a.setCheckable(True)
            a.setToolTip("pause Watch mode, a training's environment 0 or Replay playback on the state where this "
                         "first happens (the Replay timeline's markers)")
            a.toggled.connect(lambda _=False: self._send_breakpoints())
            self.break_actions[kind] = a
        b.addSeparator()
        self.td_break_action = a = b.addAction("TD error above\u2026")
        a.setCheckable(True)
        a.setToolTip("pause a training after an update whose mean |TD error| is above a value you give")
        a.toggled.connect(self._ask_td_break)
        self.td_break: float | None = None
        self.gap_break_action = a = b.addAction("|Qtot - return| above\u2026")
        a.setCheckable(True)
        a.setToolTip("pause when an episode of environment 0 ends in which Qtot was further than a value you give "
                     "from the discounted return actually earned (known only at the end: the message names the "
                     "step; Replay playback stops at the step itself)")
        a.toggled.connect(self._ask_gap_break)
        self.gap_break: float | None = None
        self.break_menu = b

    def _ask_td_break(self, on: bool) -> None:
        self._ask_threshold(on, "td_break", self.td_break_action, "Break on the TD error",
                            "pause after an update whose mean |TD error| is above:", 1.0)

    def _ask_gap_break(self, on: bool) -> None:
        self._ask_threshold(on, "gap_break", self.gap_break_action, "Break on |Qtot - return|",
                            "pause after an episode in which |Qtot - discounted return| went above:", 2.0)

    def _ask_threshold(self, on: bool, attr: str, action, title: str, prompt: str, default: float) -> None:
        """A threshold breakpoint's menu item: checked asks for the value (cancel unchecks it), unchecked clears."""
        if on:
            from PySide6.QtWidgets import QInputDialog

            v, ok = QInputDialog.getDouble(self, title, prompt, getattr(self, attr) or default, 0.0, 1e9, 3)
            if not ok:
                action.blockSignals(True)
                action.setChecked(False)
                action.blockSignals(False)
                return
            setattr(self, attr, v)
        else:
            setattr(self, attr, None)
        self._send_breakpoints()

    def set_breakpoints(self, kinds, td_error_above: float | None = None, gap_above: float | None = None) -> None:
        """Pause on these events (`models.core.events.BREAK_KINDS`), in whatever mode runs now and after; a
        training also after an update whose mean |TD error| is above `td_error_above`; every mode after an
        episode of env 0 whose |Qtot - return| went above `gap_above` (Replay: at that step)."""
        for a, on in [*((a, kind in kinds) for kind, a in self.break_actions.items()),
                      (self.td_break_action, td_error_above is not None),
                      (self.gap_break_action, gap_above is not None)]:
            a.blockSignals(True)
            a.setChecked(on)
            a.blockSignals(False)
        self.td_break = td_error_above
        self.gap_break = gap_above
        self._send_breakpoints()

    @property
    def breakpoints(self) -> tuple:
        return tuple(k for k, a in self.break_actions.items() if a.isChecked())

    def _send_breakpoints(self) -> None:
        if self.state.mode in ("train", "watch"):
            self.client.send(P.SetBreakpoints(self.breakpoints, self.td_break, self.gap_break))
        if self.state.replay is not None:
            self.state.replay.breakpoints = self.breakpoints
            self.state.replay.gap_above = self.gap_break

    # ---- the refresh loop ---------------------------------------------------------------------------------
    def refresh(self):
        t0 = time.perf_counter()
        self.tick_times.append(t0)
        msgs, snap, code = self.client.poll()
        st = self.state
        mode_before = st.mode
        st.ingest(msgs)
        if any(isinstance(m, P.Started) for m in msgs):
            self._configure_panels()
            if self.breakpoints or self.td_break is not None or self.gap_break is not None:  # a new trainer has none
                self._send_breakpoints()
        st.ingest_snapshot(snap)
        if code is not None:
            st.process_ended(code)
        if snap is not None:
            self._show_snapshot()
        now = time.monotonic()
        if msgs and now - self._last_curves >= CURVES_EVERY_S:
            self._last_curves = now
            self.curves.show_state(st)
        self._show_messages()
        if code is not None or mode_before != st.mode or snap is not None or msgs:
            self.controls.set_running(st.mode, st.paused)
        if st.mode == "replay" and st.replay is not None and st.replay.playing:
            if st.replay.advance(time.monotonic()):
                self._show_replay_step()
        self._update_status()
        self.update_times.append(time.perf_counter() - t0)

    def _configure_panels(self):
        st = self.state
        info = st.env_info
        n, A = info.get("n_agents", 0), info.get("n_actions", 0)
        self.qvalues.configure(n, A, st.is_matrix_game)
        algo = st.config.get("algo", {})
        self.mixer.setup(algo.get("mixer", "qmix"), n)
        self.qtot.set_res(bool(algo.get("res", False)))
        self.controls.set_agents(n, A, st.is_matrix_game)

    def _show_snapshot(self):
        st = self.state
        snap = st.snapshot
        if snap is None:
            return
        last = "" if snap.get("executed") is None else "  u=(" + ",".join(str(a) for a in snap["executed"]) + ")"
        if snap.get("replay") and st.replay is not None:  # the renderer adds "step k"; the markers are on the timeline
            title = f"{st.algorithm} replay of {st.replay.length} steps  r {snap['reward']:+.2f}{last}"
        else:
            title = (f"{st.algorithm} {st.mode}{' (paused)' if st.paused else ''}  ep {snap['episode']}  "
                     f"r {snap['reward']:+.2f}{last}")
        self.arena.show_snapshot(snap, st.selected_agent, title)
        self.qvalues.show_probe(snap["probe"], st.selected_agent)
        self.qtot.show_trace(snap)
        self.joint.show_probe(snap, st.is_matrix_game)
        self.mixer.show_snapshot(snap)

    def _show_messages(self):
        st = self.state
        for m in st.messages[self._messages_shown:]:
            self._append(m)
        self._messages_shown = len(st.messages)
        if st.error and st.error != self._error_shown:
            self._error_shown = st.error
            self._append("TRAINER ERROR — the window stays usable; the run directory keeps what was written:\n"
                         + st.error)
            self.docks["Messages"].raise_()

    def _log(self, text: str):
        self.state.messages.append(text)
        self._show_messages()

    def _append(self, text: str):
        self.log_view.appendPlainText(text)

    def frame_stats(self) -> dict:
        """GUI refresh figures over the last ~20 s: mean and 95th-percentile tick interval, mean work per tick."""
        import numpy as np

        t = np.diff(np.asarray(self.tick_times))
        u = np.asarray(self.update_times)
        if len(t) == 0:
            return {"interval_ms": float("nan"), "p95_ms": float("nan"), "work_ms": float("nan"), "hz": 0.0}
        return {"interval_ms": float(t.mean() * 1e3), "p95_ms": float(np.percentile(t, 95) * 1e3),
                "work_ms": float(u.mean() * 1e3), "hz": float(1.0 / t.mean())}

    def _update_status(self):
        st = self.state
        fs = self.frame_stats()
        mode = st.mode + (" (paused)" if st.paused else "")
        err = "   |   TRAINER ERROR (see Messages)" if st.error else ""
        if st.alert:
            err += f"   |   {st.alert}"
        alarm = bool(st.error or st.alert)
        if alarm != self._status_red:  # a style change re-polishes the label: only on change
            self._status_red = alarm
            self.status.setStyleSheet("color: #ff5555; font-weight: bold;" if alarm else "")
        if st.mode == "replay" and st.replay is not None:
            rp = st.replay
            play = f" (playing {rp.speed:g}x)" if rp.playing else ""
            self.status.setText(f"{rp.status()}{play}   |   {st.algorithm} on {st.map_name}, {st.t_env:,} env steps "
                                f"of training   |   panels {fs['hz']:.0f} Hz{err}")
            return
        self.status.setText(f"{mode}   |   {st.t_env:,} env steps   |   {st.episodes:,} episodes   |   "
                            f"{st.steps_per_s:,.0f} steps/s   |   panels {fs['hz']:.0f} Hz   |   "
                            f"run: {st.run_dir or '-'}{err}")

    # ---- Compare runs: a window over models.sweeps.compare, beside whatever this one is doing ---------------------
    def ask_compare(self):
        d = QFileDialog.getExistingDirectory(self, "Compare runs: a sweep, a directory of runs, or a run",
                                             self.runs_dir)
        if d:
            self.open_compare([d])

    def open_compare(self, paths) -> bool:
        """The Compare window (one, kept) with `paths` added; a directory that cannot be compared is a red line
        in that window."""
        from .panels.compare import CompareWindow

        if self.compare_window is None:
            self.compare_window = CompareWindow(parent=self, start_dir=self.runs_dir)
        ok = self.compare_window.add_paths(paths)
        self.compare_window.show()
        self.compare_window.raise_()
        return ok

    def closeEvent(self, event):
        self.timer.stop()
        layout.save(self)
        self.hide()
        # the trainer saves a checkpoint with the replay buffer before it exits (a few seconds for a full
        # 2c buffer); a kill during that save would still leave the previous checkpoint intact
        self.client.stop(timeout=CLOSE_SAVE_TIMEOUT_S)
        super().closeEvent(event)


def run_app(argv=None, episode=None, watch=None, start_policy: str | None = DEFAULT_POLICY) -> int:
    """The window, watching the shipped policy `start_policy`; with `episode` (a file), in Replay mode on it
    (`qmix-workbench replay FILE`); with `watch` (a checkpoint, run directory or policy .npz), watching that
    (`qmix-workbench watch`)."""
    app = QApplication.instance()
    if app is None:
        from .syslibs import check_qt_platform

        check_qt_platform()  # a missing X11 library is one line naming the packages, not Qt's abort
        app = QApplication(sys.argv if argv is None else argv)
    w = MainWindow(start_policy=None if episode is not None or watch is not None else start_policy)
    w.show()
    if episode is not None:
        w.open_episode(episode)
    elif watch is not None:
        w.watch_checkpoint(str(watch))
    return app.exec()
