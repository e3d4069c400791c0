"""The QMIX Workbench main window: dockable panels over a `WorkbenchState`, fed by a trainer process."""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtGui import QFont  # noqa: E402
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow,  # noqa: E402
                               QPlainTextEdit)

from .client import TrainerClient  # noqa: E402
from .panels import (ArenaPanel, ControlsPanel, CurvesPanel, JointPanel, MixerPanel, QtotPanel,  # noqa: E402
                     QValuesPanel)
from .state import PRESET_PREFIX, WorkbenchState  # noqa: E402

REFRESH_MS = 30  # ~33 Hz: at least 30 Hz with timer slack
TRAINER_TORCH_THREADS = int(os.environ.get("QMIX_WORKBENCH_TORCH_THREADS", "1"))
TRAINER_NUMBA_THREADS = int(os.environ.get("QMIX_WORKBENCH_NUMBA_THREADS", "1"))
CLOSE_SAVE_TIMEOUT_S = 60.0  # how long closing the window waits for the trainer's final save
CURVES_EVERY_S = 0.5  # the curves move slowly; redrawing their 16 axes is the costliest paint


def build_config(map_name: str, algorithm: str, overrides: list[str]):
    """The preset for (map, algorithm) — or the 2c_vs_64zg one with the map swapped — plus overrides."""
    from models.config import apply_overrides, list_presets, load_config

    prefix = PRESET_PREFIX[algorithm]
    name = f"{prefix}_{map_name}"
    if name in list_presets():
        cfg = load_config(name)
    else:
        cfg = load_config(f"{prefix}_2c_vs_64zg", [f'env.map_name="{map_name}"', f'run.name="{prefix}_{map_name}"'])
    return apply_overrides(cfg, overrides)


class MainWindow(QMainWindow):
    def __init__(self, runs_dir: str = "runs"):
        super().__init__()
        from sims import list_matrix_games, list_scenarios

        self.setWindowTitle("QMIX Workbench")
        self.resize(1800, 1120)
        self.runs_dir = runs_dir
        self.state = WorkbenchState()
        self.client = TrainerClient()
        self.extra_overrides: list[str] = []

        self.arena = ArenaPanel()
        self.setCentralWidget(self.arena)
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
        for name, w, area in (("Controls", self.controls, Qt.LeftDockWidgetArea),
                              ("Messages", self.log_view, Qt.LeftDockWidgetArea),
                              ("Agent Q-values", self.qvalues, Qt.BottomDockWidgetArea),
                              ("Training curves", self.curves, Qt.BottomDockWidgetArea),
                              ("Joint-action landscape", self.joint, Qt.RightDockWidgetArea),
                              ("Mixer", self.mixer, Qt.RightDockWidgetArea),
                              ("Qtot", self.qtot, Qt.RightDockWidgetArea)):
            d = QDockWidget(name, self)
            d.setObjectName(name)
            d.setWidget(w)
            self.addDockWidget(area, d)
            self.docks[name] = d
        self.splitDockWidget(self.docks["Agent Q-values"], self.docks["Training curves"], Qt.Horizontal)
        self.qvalues.setMinimumHeight(300)
        self.curves.setMinimumSize(560, 300)
        self.joint.setMinimumSize(440, 300)
        self.mixer.setMinimumHeight(300)
        self.qtot.setMinimumHeight(240)
        self.controls.setMinimumWidth(280)
        self.status = QLabel()
        self.statusBar().addPermanentWidget(self.status, 1)

        c = self.controls
        c.startClicked.connect(self.start_training)
        c.pauseClicked.connect(lambda: self.client.send("pause"))
        c.resumeClicked.connect(lambda: self.client.send("resume"))
        c.stepClicked.connect(lambda: self.client.send("step"))
        c.stopClicked.connect(self.stop)
        c.saveClicked.connect(lambda: self.client.send("save"))
        c.loadClicked.connect(self._ask_checkpoint)
        c.openRunClicked.connect(self._ask_run_dir)
        c.forceClicked.connect(self.force_action)
        c.snapshotRateChanged.connect(lambda hz: self.client.send("snapshot_hz", float(hz)))
        c.watchSpeedChanged.connect(lambda v: self.client.send("speed", float(v)) if self.state.mode == "watch" else None)
        c.presetChanged.connect(self._preset_changed)
        self.arena.agentSelected.connect(self.select_agent)
        self._preset_changed()
        c.set_running("idle", False)

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
        self._update_status()

    # ---- actions ----------------------------------------------------------------------------------
    def _detect_cuda(self):
        try:
            import torch

            self.controls.set_cuda_available(torch.cuda.is_available())
        except Exception:  # noqa: BLE001 - the GUI must open even if torch is broken
            pass

    def _preset_changed(self):
        try:
            cfg = build_config(self.controls.scenario.currentText(), self.controls.algorithm.currentText(), [])
        except ValueError as e:
            self._log(f"config error: {e}")
            return
        self.controls.fill_from(cfg)

    def current_config(self):
        c = self.controls
        return build_config(c.scenario.currentText(), c.algorithm.currentText(),
                            c.overrides() + [f'run.runs_dir="{self.runs_dir}"'] + self.extra_overrides)

    def start_training(self, overrides: list[str] | None = None):
        if self.client.alive():
            self._log("a run is already in progress; stop it first")
            return
        try:
            cfg = self.current_config()
            if overrides:
                from models.config import apply_overrides

                cfg = apply_overrides(cfg, overrides)
        except ValueError as e:
            self._log(f"cannot start: {e}")
            return
        self._reset_views()
        self.arena.set_scenario(cfg.env.map_name, cfg.env.profile)
        self.state.mode = "train"
        self.client.start("train", {"config": cfg.to_dict(), "torch_threads": TRAINER_TORCH_THREADS,
                                    "numba_threads": TRAINER_NUMBA_THREADS},
                          self.controls.snapshot_hz.value())
        self._log(f"starting {cfg.algorithm_name} on {cfg.env.map_name} (trainer pid {self.client.pid})")

    def watch_checkpoint(self, path: str):
        if self.client.alive():
            self._log("stop the current run before watching a checkpoint")
            return
        from models.checkpoint import CheckpointError, load_checkpoint
        from models.config import from_dict

        try:
            meta, _ = load_checkpoint(path)
            cfg = from_dict(meta["config"])
        except (CheckpointError, ValueError) as e:
            self._log(f"cannot watch {path}: {e}")
            return
        if meta.get("fallback"):
            self._log(meta["fallback"])
        self._reset_views(keep_curves=True)
        self.arena.set_scenario(cfg.env.map_name, cfg.env.profile)
        self.state.mode = "watch"
        self.client.start("watch", {"checkpoint": str(path), "seed": self.controls.seed.value(),
                                    "steps_per_s": self.controls.watch_speed.value()},
                          self.controls.snapshot_hz.value())
        self._log(f"watching {meta['algorithm']} from {path} ({meta['t_env']:,} env steps of training)")

    def open_run_dir(self, run_dir: str):
        """Load a run's metrics into the curves and watch its latest checkpoint."""
        from .plot import read_metrics

        p = Path(run_dir)
        try:
            metrics = read_metrics(p)
        except ValueError as e:
            self._log(str(e))
            return
        self._reset_views()
        self.state.load_metrics(metrics)
        self.state.run_dir = str(p)
        self.curves.show_state(self.state)
        ck = p / "checkpoints"
        if ck.is_dir() and any(ck.glob("*.pt")):
            self.watch_checkpoint(str(p))  # latest.pt, or the newest readable t*.pt (and it says which)
        else:
            self._log(f"{run_dir}: curves loaded; no checkpoint to watch yet")

    def stop(self):
        """Ask the trainer to stop; it saves a checkpoint (with the replay buffer) and exits by itself, while
        the window keeps refreshing."""
        if not self.client.alive():
            return
        self.client.send("stop")
        self._log("stopping: saving a checkpoint with the replay buffer" if self.state.mode == "train"
                  else "stopping")

    def force_action(self, agent: int, action: int):
        """Intervene: force `action` for `agent` in env 0 and step once (only while paused)."""
        if not self.state.paused:
            self._log("pause first: forcing an action steps the paused battle once")
            return
        self.client.send("force", agent, action)
        self.client.send("step")

    def select_agent(self, i: int):
        try:
            self.state.select_agent(i)
        except ValueError as e:
            self._log(str(e))
            return
        self.controls.force_agent.setCurrentIndex(i)
        self._show_snapshot()

    def _ask_checkpoint(self):
        path, _ = QFileDialog.getOpenFileName(self, "Watch checkpoint", self.runs_dir, "Checkpoints (*.pt)")
        if path:
            self.watch_checkpoint(path)

    def _ask_run_dir(self):
        path = QFileDialog.getExistingDirectory(self, "Open run directory", self.runs_dir)
        if path:
            self.open_run_dir(path)

    def _reset_views(self, keep_curves: bool = False):
        series = self.state.series
        self.state = WorkbenchState()
        if keep_curves:
            self.state.series = series
        self._messages_shown = 0
        self._error_shown = None

    # ---- the refresh loop ---------------------------------------------------------------------------------
    def refresh(self):
        t0 = time.perf_counter()
        self.tick_times.append(t0)
        msgs, snap, code = self.client.poll()
        st = self.state
        mode_before = st.mode
        st.ingest(msgs)
        if any(k == "start" for k, _ in msgs):
            self._configure_panels()
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
        self._update_status()
        self.update_times.append(time.perf_counter() - t0)

    def _configure_panels(self):
        st = self.state
        info = st.env_info
        n, A = info.get("n_agents", 0), info.get("n_actions", 0)
        self.qvalues.configure(n, A, st.is_matrix_game)
        self.mixer.setup(st.config.get("algo", {}).get("mixer", "qmix"), n)
        self.controls.set_agents(n, A, st.is_matrix_game)

    def _show_snapshot(self):
        st = self.state
        snap = st.snapshot
        if snap is None:
            return
        last = "" if snap.get("executed") is None else "  u=(" + ",".join(str(a) for a in snap["executed"]) + ")"
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
        self.status.setText(f"{mode}   |   {st.t_env:,} env steps   |   {st.episodes:,} episodes   |   "
                            f"{st.steps_per_s:,.0f} steps/s   |   panels {fs['hz']:.0f} Hz   |   "
                            f"run: {st.run_dir or '-'}{err}")

    def closeEvent(self, event):
        self.timer.stop()
        self.hide()
        # the trainer saves a checkpoint with the replay buffer before it exits (a few seconds for a full
        # 2c buffer); a kill during that save would still leave the previous checkpoint intact
        self.client.stop(timeout=CLOSE_SAVE_TIMEOUT_S)
        super().closeEvent(event)


def run_app(argv=None) -> int:
    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    w = MainWindow()
    w.show()
    return app.exec()
