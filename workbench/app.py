"""The QMIX Workbench main window: dockable panels over a `WorkbenchState`, fed by a trainer process (training,
Watch mode) or by an episode file (Replay mode: a timeline under the arena, forks, export). `run_app` opens it
watching the shipped QMIX policy (`models.files.policies`)."""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtGui import QFont, QKeySequence  # noqa: E402
from PySide6.QtWidgets import (QApplication, QDialog, QDockWidget, QFileDialog, QLabel, QMainWindow,  # noqa: E402
                               QPlainTextEdit, QScrollArea, QVBoxLayout, QWidget)

from . import layout  # noqa: E402
from . import protocol as P  # noqa: E402
from .client import TrainerClient  # noqa: E402
from .panels import (ArenaPanel, ControlsPanel, CurvesPanel, JointPanel, MixerPanel, QtotPanel,  # noqa: E402
                     QValuesPanel, TimelinePanel)
from .panels.controls import NO_POLICY_MESSAGE  # noqa: E402
from .panels.fork import ForkDialog, ForkPanel  # noqa: E402
from .replay import ReplayModel  # noqa: E402
from .state import WorkbenchState  # noqa: E402

REFRESH_MS = 30  # ~33 Hz: at least 30 Hz with timer slack
TRAINER_TORCH_THREADS = int(os.environ.get("QMIX_WORKBENCH_TORCH_THREADS", "1"))
TRAINER_NUMBA_THREADS = int(os.environ.get("QMIX_WORKBENCH_NUMBA_THREADS", "1"))
CLOSE_SAVE_TIMEOUT_S = 60.0  # how long closing the window waits for the trainer's final save
WATCH_STOP_TIMEOUT_S = 3.0  # a watch told to stop ends within a step; one still starting up is terminated
CURVES_EVERY_S = 0.5  # the curves move slowly; redrawing their 16 axes is the costliest paint
EXPORT_PANELS = ["arena", "qvalues", "qtot"]
EXPORT_FPS = 8
FORK_SEED = 0
# the window's own torch work is tiny (a step's 70 x 70 joint-action table, a fork's small batches): a second
# intra-op thread only spins against the trainer and the painting; measured on 2 busy cores, one joint table took
# 23 ms with torch's default 2 threads and 0.2 ms with 1
GUI_TORCH_THREADS = 1
DEFAULT_POLICY = "qmix"  # what the app plays when it opens (`run_app`); the first shipped policy if that one is not


def build_config(map_name: str, algorithm: str, overrides: list[str]):
    """The preset for (map, algorithm) — or the 2c_vs_64zg one with the map swapped — plus overrides."""
    from models import registry
    from models.config import apply_overrides, load_config

    prefix = registry.algorithm(algorithm).prefix
    name = f"{prefix}_{map_name}"
    if name in registry.list_presets():
        cfg = load_config(name)
    else:
        cfg = load_config(f"{prefix}_2c_vs_64zg", [f'env.map_name="{map_name}"', f'run.name="{prefix}_{map_name}"'])
    return apply_overrides(cfg, overrides)


class MainWindow(QMainWindow):
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
        controls_scroll = QScrollArea()  # the controls are taller than a laptop's screen allows them
        controls_scroll.setWidget(self.controls)
        controls_scroll.setWidgetResizable(True)
        controls_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        for name, w, area in (("Controls", controls_scroll, Qt.LeftDockWidgetArea),
                              ("Messages", self.log_view, Qt.LeftDockWidgetArea),
                              ("Agent Q-values", self.qvalues, Qt.BottomDockWidgetArea),
                              ("Training curves", self.curves, Qt.BottomDockWidgetArea),
                              ("Joint-action landscape", self.joint, Qt.RightDockWidgetArea),
                              ("Mixer", self.mixer, Qt.RightDockWidgetArea),
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
        if not self._end_watch():
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

    def watch_checkpoint(self, path: str) -> bool:
        """Watch mode on a checkpoint, a run directory or a shipped policy's .npz; a watch already playing gives
        way to it."""
        if self.client.alive() and self.state.mode != "watch":
            self._log("stop the current run before watching a checkpoint")
            return False
        from models.files.checkpoint import CheckpointError, load_checkpoint
        from models.config import from_dict
        from models.files.policies import is_policy_file, verified_card

        card = None
        try:
            if is_policy_file(path):
                card = verified_card(path)  # a changed file is one line here, not a trainer error
                meta = card.meta()
            else:
                meta, _ = load_checkpoint(path)
            cfg = from_dict(meta["config"])
        except (CheckpointError, ValueError) as e:  # PolicyError is a ValueError
            self._log(f"cannot watch {path}: {e}")
            return False
        if meta.get("fallback"):
            self._log(meta["fallback"])
        self._end_watch()  # only now: a path that cannot be watched leaves the current watch playing
        self._reset_views(keep_curves=card is None)
        if card is not None and card.curves:  # how the policy was trained, beside it playing
            self.state.load_metrics(card.curve_series())
            self.curves.show_state(self.state)
        self.arena.set_scenario(cfg.env.map_name, cfg.env.profile)
        self.state.mode = "watch"
        payload = {"checkpoint": str(path), "seed": self.controls.seed.value(),
                   "steps_per_s": self.controls.watch_speed.value(), "keep": self.controls.keep_episodes.value()}
        if card is not None:
            # a shipped policy lives in the installed package: its episodes go under runs/, which is the user's
            payload["record"] = str(Path(self.runs_dir) / "episodes")
        self.client.start("watch", payload, self.controls.snapshot_hz.value())
        if card is not None:
            self.controls.select_policy(card.name)
            self.setWindowTitle(f"QMIX Workbench \u2014 shipped policy {card.name}")
            self._log(f"watching shipped policy {card.summary()}")
        else:
            self._log(f"watching {meta['algorithm']} from {path} ({meta['t_env']:,} env steps of training)")
        return True

    # ---- shipped policies ---------------------------------------------------------------------------------------
    def _list_policies(self) -> list:
        """The shipped policies' cards, shown in Controls' *Policies* list; a bad card is a message, not a crash."""
        from models.files.policies import PolicyError, list_policies

        bad: list = []
        try:
            cards = list_policies(unreadable=bad)
        except PolicyError as e:
            self._log(f"shipped policies: {e}")
            cards = []
        for path, why in bad:  # the rest are still listed
            self._log(f"shipped policy {path.stem} left out: {why}")
        self.controls.set_policies([(c.name, f"{c.name}: {c.algorithm}, {c.score}",
                                     f"{c.summary()} (seed {c.eval_seed})") for c in cards])
        return cards

    def watch_policy(self, name: str) -> bool:
        """Watch mode on the shipped policy `name` (what the *Policies* list does)."""
        from models.files.policies import PolicyError, find_policy

        try:
            card = find_policy(name)
        except PolicyError as e:
            self._log(str(e))
            return False
        return self.watch_checkpoint(str(card.weights))

    def _start_policy(self) -> None:
        """What the app does when it opens: watch `start_policy` (or the first shipped policy), else say there is
        none."""
        if self.client.alive() or self.state.mode != "idle":  # something was opened first (`replay FILE`)
            return
        if not self.policy_cards:
            self._log(NO_POLICY_MESSAGE)
            return
        card = next((c for c in self.policy_cards if c.name == self.start_policy), self.policy_cards[0])
        self.watch_policy(card.name)

    def _end_watch(self) -> bool:
        """Make way for what a person starts next: a watch stops at once (it has nothing to save; its episode files
        are already written), a training run does not (its stop saves a checkpoint: the Stop button's job). True
        when no trainer process runs any more."""
        if not self.client.alive():
            return True
        if self.state.mode != "watch":
            return False
        self.client.stop(timeout=WATCH_STOP_TIMEOUT_S)
        self.client.poll()  # its last messages and exit code belong to the watch that ended, not what comes next
        self.state.process_ended(0)
        return True

    def open_run_dir(self, run_dir: str):
        """Load a run's metrics into the curves and watch its latest checkpoint."""
        from .plot import read_metrics

        p = Path(run_dir)
        try:
            metrics = read_metrics(p)
        except ValueError as e:
            self._log(str(e))
            return
        if not self._end_watch():
            self._log("stop the current run before opening a run directory")
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
        self.client.send(P.Stop())
        self._log("stopping: saving a checkpoint with the replay buffer" if self.state.mode == "train"
                  else "stopping")

    def force_action(self, agent: int, action: int):
        """Intervene: force `action` for `agent` in env 0 and step once (only while paused)."""
        if not self.state.paused:
            self._log("pause first: forcing an action steps the paused battle once")
            return
        self.client.send(P.ForceAction(agent, action))
        self.client.send(P.Step())

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
        old = self.state
        self.state = WorkbenchState()
        if keep_curves:
            self.state.series = old.series
        self.state.recorded_episodes = old.recorded_episodes  # "Open last recorded episode" outlives the watch
        self._messages_shown = 0
        self._error_shown = None
        self.timeline.hide()  # shown again by `open_replay`; a new run or watch ends Replay mode
        self.setWindowTitle("QMIX Workbench")

    # ---- Replay mode: an episode file as the snapshot source ---------------------------------------------------
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
        a = m.addAction("Compare runs\u2026")
        a.triggered.connect(self.ask_compare)
        self.compare_action = a
        self.file_menu = m

    def ask_open_episode(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open episode", self._episode_dir(), "Episode files (*.npz)")
        if path:
            self.open_episode(path)

    def _episode_dir(self) -> str:
        rp = self.state.replay
        if rp is not None and rp.path:
            return str(Path(rp.path).parent)
        if self.state.recorded_episodes:
            return str(Path(self.state.recorded_episodes[-1]).parent)
        return self.runs_dir

    def open_episode(self, path) -> bool:
        """Replay mode on an episode file. A file that cannot be used is one line in Messages and the status bar,
        and whatever the window showed stays."""
        if self.client.alive():
            self._log("stop the current run before opening an episode")
            return False
        from models.files.episode_file import EpisodeFileError, load_episode

        try:
            ep = load_episode(path)
        except EpisodeFileError as e:
            self._episode_error(str(e))
            return False
        return self.open_replay(ep)

    def open_replay(self, episode) -> bool:
        """Replay mode on an `Episode` (loaded, or a fork's continuation that has been saved)."""
        if not self._end_watch():
            self._log("stop the current run before opening an episode")
            return False
        if self.client.proc is not None and not self.client.exit_reported:
            self.refresh()  # a run that just ended reports its exit into its own state, not the replay's
        import torch

        torch.set_num_threads(GUI_TORCH_THREADS)
        try:
            model = ReplayModel(episode)
        except (ValueError, KeyError, IndexError) as e:  # EpisodeFileError is a ValueError
            self._episode_error(f"cannot replay {episode.name}: {e}")
            return False
        self._reset_views(keep_curves=True)
        st = self.state
        st.open_replay(model)
        self.arena.set_scenario(model.map_name, model.header.get("profile", "lotv"))
        self._configure_panels()
        self.controls.set_running(st.mode, False)
        self.timeline.show_model(model)
        self.timeline.show()
        self._show_replay_step()
        name = Path(model.path).name if model.path else "(unsaved episode)"
        self.setWindowTitle(f"QMIX Workbench \u2014 {name}")
        marks = ", ".join(f"{label} at {k}" for k, label in model.markers) or "none"
        self._log(f"replaying {model.path}: {model.algorithm} on {model.map_name}, {model.length} steps "
                  f"({model.header.get('source', '?')} episode, {st.t_env:,} env steps of training); "
                  f"markers: {marks}")
        return True

    def _episode_error(self, text: str):
        """A file or fork that cannot be used: red in the status bar until the next episode or run, and in
        Messages; the window keeps what it showed."""
        lines = text.strip().splitlines()
        self.state.alert = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"  # a bug: traceback's ends
        self._log(text)
        self.docks["Messages"].raise_()
        self._update_status()

    def open_last_recorded(self):
        path = self.last_recorded_episode()
        if path is None:
            self._log("no recorded episode yet: Watch mode writes each episode it plays to the run's episodes/ "
                      "directory")
            return
        self.open_episode(path)

    def last_recorded_episode(self) -> str | None:
        """The newest episode file Watch mode wrote that still exists (the ring deletes the oldest), else the
        newest file in the current run directory's episodes/."""
        for p in reversed(self.state.recorded_episodes):
            if Path(p).is_file():
                return p
        d = Path(self.state.run_dir) / "episodes" if self.state.run_dir else None
        files = sorted(d.glob("*.npz"), key=lambda f: f.stat().st_mtime) if d is not None and d.is_dir() else []
        return str(files[-1]) if files else None

    def _move_replay(self, how: str, *args) -> bool:
        """Move the replay (`ReplayModel.seek`, `step_by`, `next_marker`, ...) and show the step it lands on."""
        rp = self.state.replay
        if self.state.mode != "replay" or rp is None:
            return False
        changed = getattr(rp, how)(*args)
        if changed:
            self._show_replay_step()
        else:
            self.timeline.show_step(rp)  # a slider dragged past the ends snaps back
        return changed

    def seek(self, k: int) -> bool:
        return self._move_replay("seek", k)

    def toggle_play(self):
        rp = self.state.replay
        if self.state.mode != "replay" or rp is None:
            return
        rp.toggle()
        self._show_replay_step()

    def set_replay_speed(self, speed: float):
        rp = self.state.replay
        if rp is not None:
            rp.set_speed(speed)
            self.timeline.show_step(rp)

    def _show_replay_step(self):
        """Step `replay.step` on every panel: `Episode.snapshot` -> the state -> the same path live snapshots take."""
        rp = self.state.replay
        self.state.ingest_snapshot(rp.snapshot())
        self._show_snapshot()
        self.timeline.show_step(rp)
        self._update_status()

    def ask_fork(self):
        rp = self._replay_for("fork")
        if rp is None:
            return
        if rp.step >= rp.length:
            self._log(f"step {rp.step} is the episode's final state: no decision was taken there; step back to fork")
            return
        rp.pause()
        dlg = ForkDialog(rp, self.state.selected_agent, self.state.is_matrix_game, self)
        if dlg.exec() == QDialog.Accepted:
            self.run_fork(*dlg.choice())

    def _replay_for(self, what: str):
        if self.state.mode != "replay" or self.state.replay is None:
            self._log(f"open an episode first (File > Open episode\u2026) to {what} it")
            return None
        return self.state.replay

    def run_fork(self, agent: int, action, episodes: int = 20):
        """`models.play.fork.fork` at the replay's step, synchronously under a wait cursor (about a second at small N);
        the table goes to the Fork panel and Messages. A fork that cannot run is a message; None then."""
        rp = self._replay_for("fork")
        if rp is None:
            return None
        from models.play.fork import fork

        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            result = fork(rp.episode, rp.step, agent, action, episodes=episodes, seed=FORK_SEED)
        except Exception as e:  # noqa: BLE001 - a failed fork must leave the replay usable
            self._episode_error(f"fork failed: {self._one_line(e)}")
            return None
        finally:
            QApplication.restoreOverrideCursor()
        self.fork_result = result
        self._fork_parent = rp
        self.fork_view.show_result(result.table())
        self.docks["Fork"].show()
        self.docks["Fork"].raise_()
        self._log(result.table())
        return result

    @staticmethod
    def _one_line(exc: BaseException) -> str:
        """A user's mistake in one line (as the CLI prints it); a bug with its traceback."""
        import traceback

        from models.errors import user_message

        msg = user_message(exc)
        return msg if msg is not None else "".join(traceback.format_exception(exc))

    def open_fork_as_replay(self) -> bool:
        """Save the last fork's first continuation beside its episode file, then replay it."""
        r = self.fork_result
        if r is None:
            return False
        path = self._fork_parent.fork_path(r.step, r.agent, r.action)
        try:
            r.fork_episode.save(path)
        except OSError as e:
            self._episode_error(f"cannot save the fork's episode: {self._one_line(e)}")
            return False
        self._log(f"fork's first continuation saved to {path}")
        return self.open_replay(r.fork_episode)

    def ask_export(self):
        rp = self._replay_for("export")
        if rp is None:
            return
        rp.pause()
        stem = Path(rp.path).with_suffix("") if rp.path else Path(self.runs_dir) / "episode"
        out, chosen = QFileDialog.getSaveFileName(self, "Export episode", f"{stem}.gif",
                                                  "Animated GIF (*.gif);;MP4 video (*.mp4)")
        if out:
            self.export_to(out, "mp4" if "mp4" in chosen and not out.lower().endswith(".gif") else None)

    def export_to(self, out: str, fmt: str | None = None):
        """Draw the replayed episode file to a GIF or MP4 (`workbench.export`); (path, frames) or None."""
        rp = self._replay_for("export")
        if rp is None:
            return None
        fmt = fmt or ("mp4" if str(out).lower().endswith(".mp4") else "gif")
        if not str(out).lower().endswith("." + fmt):
            out = f"{out}.{fmt}"
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            from .export import export_episode  # headless drawing code: loaded when first asked for

            path, frames = export_episode(rp.path, out, fmt=fmt, panels=EXPORT_PANELS, fps=EXPORT_FPS)
        except Exception as e:  # noqa: BLE001 - a failed export must leave the replay usable
            self._episode_error(f"export failed: {self._one_line(e)}")
            return None
        finally:
            QApplication.restoreOverrideCursor()
        self._log(f"exported {frames} frames to {path}")
        return path, frames

    # drag and drop an episode file anywhere on the window
    @staticmethod
    def _dropped_episode(mime) -> str | None:
        for url in mime.urls() if mime.hasUrls() else []:
            if url.isLocalFile() and url.toLocalFile().lower().endswith(".npz"):
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event):
        if self._dropped_episode(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event):
        self.dragEnterEvent(event)

    def dropEvent(self, event):
        path = self._dropped_episode(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.open_episode(path)

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
        self.mixer.setup(st.config.get("algo", {}).get("mixer", "qmix"), n)
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
