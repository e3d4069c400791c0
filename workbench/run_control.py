"""Run control, a part of the main window: starting a training, watching a checkpoint or a shipped policy,
opening a run directory, stopping, forcing an action while paused. A mixin of `workbench.app.MainWindow` (it uses the
window's state, client, panels and log)."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from models.files.rundir import RunDir

from . import protocol as P
from .state import WorkbenchState
from .panels.controls import NO_POLICY_MESSAGE

TRAINER_TORCH_THREADS = int(os.environ.get("QMIX_WORKBENCH_TORCH_THREADS", "1"))
TRAINER_NUMBA_THREADS = int(os.environ.get("QMIX_WORKBENCH_NUMBA_THREADS", "1"))
WATCH_STOP_TIMEOUT_S = 3.0  # a watch told to stop ends within a step; one still starting up is terminated
DEFAULT_POLICY = "qmix"  # what the app plays when it opens (`run_app`); the first shipped policy if that one is not


def build_config(map_name: str, algorithm: str, overrides: list[str], protocol: str = "workbench"):
    """The preset for (map, algorithm, protocol) — or that protocol's 2c_vs_64zg one with the map swapped — plus
    overrides."""
    from models import registry
    from models.config import apply_overrides, load_config

    prefix = registry.algorithm(algorithm).prefix
    suffix = registry.PROTOCOLS[registry.check_protocol(protocol)][0]
    name = f"{prefix}_{map_name}{suffix}"
    if name in registry.list_presets():
        cfg = load_config(name)
    else:
        cfg = load_config(f"{prefix}_2c_vs_64zg{suffix}", [f'env.map_name="{map_name}"',
                                                           f'run.name="{prefix}_{map_name}{suffix}"'])
    return apply_overrides(cfg, overrides)



class RunControl:
    # ---- actions ----------------------------------------------------------------------------------
    def _detect_cuda(self):
        try:
            import torch

            self.controls.set_cuda_available(torch.cuda.is_available())
        except Exception:  # noqa: BLE001 - the GUI must open even if torch is broken
            pass

    def _preset_changed(self):
        try:
            cfg = build_config(self.controls.scenario.currentText(), self.controls.algorithm.currentText(), [],
                               self.controls.protocol.currentData())
        except ValueError as e:
            self._log(f"config error: {e}")
            return
        self.controls.fill_from(cfg)

    def current_config(self):
        c = self.controls
        return build_config(c.scenario.currentText(), c.algorithm.currentText(),
                            c.overrides() + [f'run.runs_dir="{self.runs_dir}"'] + self.extra_overrides,
                            c.protocol.currentData())

    def start_training(self, overrides: list[str] | None = None):
        if not self._end_watch():
            self._log("a run is already in progress; stop it first")
            return
        try:
            cfg = self.current_config()
            if overrides:
                from models.config import apply_overrides

                cfg = apply_overrides(cfg, overrides)
            if cfg.run.script:  # every step checked before the trainer starts
                from models.training.script import load_script

                load_script(cfg.run.script, cfg)
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
        if RunDir(p).has_checkpoint():
            self.watch_checkpoint(str(p))  # latest.pt, or the newest readable t*.pt (and it says which)
        else:
            self._log(f"{run_dir}: curves loaded; no checkpoint to watch yet")

    def play_script(self, path: str) -> None:
        """Train the controls' experiment, playing the experiment script at `path` (models.training.script)."""
        import json

        self.start_training([f"run.script={json.dumps(str(Path(path).resolve()))}"])

    def ask_script(self):
        path, _ = QFileDialog.getOpenFileName(self, "Play an experiment script", "", "Experiment scripts (*.toml)")
        if path:
            self.play_script(path)

    # ---- branching (models.training.branch) ----------------------------------------------------------------
    def branch_training(self, changes: dict) -> None:
        """Branch the running training at its next round, with `changes` ({key: value}); it goes on unchanged."""
        if self.state.mode != "train":
            self._log("no training is running to branch; File > Branch run... branches a run directory")
            return
        self.client.send(P.BranchNow(dict(changes)))

    def branch_run(self, source: str, changes: list[str]):
        """Branch a run directory or checkpoint (`qmix-workbench branch`); the branch's directory, or None."""
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QApplication

        from models.training.branch import branch

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            return branch(source, changes, log=self._log)
        except (ValueError, OSError) as e:  # ConfigError, CheckpointError, RunDirError are ValueErrors
            self._log(f"not branched: {e}")
            return None
        finally:
            QApplication.restoreOverrideCursor()

    def ask_branch(self):
        from PySide6.QtWidgets import QInputDialog

        from models.config import parse_override

        training = self.state.mode == "train"
        source = None
        if not training:
            source = QFileDialog.getExistingDirectory(self, "Branch which run directory?", self.runs_dir)
            if not source:
                return
        text, ok = QInputDialog.getText(self, "Branch", "settings to change (section.key=value, space-separated), "
                                                        "e.g. algo.res_lambda=0.1 learner.lr=0.0005:")
        if not ok or not text.strip():
            return
        try:
            changes = [parse_override(t) for t in text.split()]
        except ValueError as e:
            self._log(f"not branched: {e}")
            return
        if training:
            self.branch_training(dict(changes))
        else:
            self.branch_run(source, text.split())

    def change_live(self, key: str, value) -> None:
        """Change a setting of the running training (applied at its next round; the curves mark it)."""
        if self.state.mode != "train":
            self._log(f"{key}: only a running training changes its settings live")
            return
        self.client.send(P.SetSetting(key, value))

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

