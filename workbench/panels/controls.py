"""Controls: the shipped policies to watch; scenario, algorithm, key hyperparameters, device, seed; run buttons;
snapshot rate, watch speed and how many watched episodes to keep as files; checkpoints and run directories; forcing
an action while paused (Intervene)."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox, QLabel, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from models.registry import PROTOCOLS
from models.training.live import LIVE_KEYS, locked_reason

from ..state import ALGORITHMS, action_names

NO_POLICY_MESSAGE = "no shipped policy found; press Start to train one"
LIVE_EDIT_DELAY_MS = 600  # a live edit goes to the training once the value has been still this long


def _spin(lo, hi, value, step=1):
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setValue(value)
    return w


def _dspin(lo, hi, value, decimals, step):
    w = QDoubleSpinBox()
    w.setDecimals(decimals)
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setValue(value)
    return w


class ControlsPanel(QWidget):
    startClicked = Signal()
    pauseClicked = Signal()
    resumeClicked = Signal()
    stopClicked = Signal()
    stepClicked = Signal()
    saveClicked = Signal()
    loadClicked = Signal()
    openRunClicked = Signal()
    forceClicked = Signal(int, int)
    snapshotRateChanged = Signal(float)
    watchSpeedChanged = Signal(float)
    presetChanged = Signal()
    policyChosen = Signal(str)  # a shipped policy's name, picked by a person (not by `select_policy`)
    liveChanged = Signal(str, object)  # (config key, value): a person changed a setting while a training runs

    def __init__(self, scenarios: list[str], parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        pg_ = QGroupBox("Policies")
        pl = QVBoxLayout(pg_)
        self.policy = QComboBox()
        self.policy.setToolTip("Shipped trained policies (with their cards' greedy win rates): picking one stops the "
                               "current watch and watches it")
        self.policy_note = QLabel(NO_POLICY_MESSAGE)
        self.policy_note.setWordWrap(True)
        pl.addWidget(self.policy)
        pl.addWidget(self.policy_note)
        lay.addWidget(pg_)
        g = QGroupBox("Experiment")
        f = QFormLayout(g)
        self.scenario = QComboBox()
        self.scenario.addItems(scenarios)
        self.scenario.setCurrentText("2c_vs_64zg")
        self.algorithm = QComboBox()
        self.algorithm.addItems(list(ALGORITHMS))
        self.algorithm.setCurrentText("QMIX")
        self.protocol = QComboBox()
        for key, (_suffix, text) in PROTOCOLS.items():
            self.protocol.addItem(key, key)
            self.protocol.setItemData(self.protocol.count() - 1, text, Qt.ToolTipRole)
        self.protocol.setToolTip("Which training settings the presets follow: the workbench's (pymarl2's tricks) or "
                                 "the papers' (PyMARL, the RES code); docs/results.md compares them")
        self.lr = _dspin(1e-5, 1.0, 1e-3, 5, 1e-4)
        self.batch = _spin(1, 1024, 32)
        self.envs = _spin(1, 512, 16)
        self.envs.setToolTip("Battles collected in lock-step per round; the learning schedule below does not "
                             "depend on it")
        self.replay_ratio = _dspin(0.01, 1000.0, 8.0, 2, 1.0)
        self.replay_ratio.setToolTip("Episodes sampled for updates per episode collected: a round of N battles "
                                     "earns N x ratio / batch updates")
        self.target_episodes = _spin(1, 10_000_000, 200, 50)
        self.target_episodes.setToolTip("Episodes collected between hard copies of the target networks "
                                        "(PyMARL's count)")
        self.anneal = _spin(0, 10_000_000, 100_000, 10_000)
        self.eps_start = _dspin(0.0, 1.0, 1.0, 2, 0.05)
        self.td_lambda = _dspin(0.0, 1.0, 0.6, 2, 0.1)
        self.res_beta = _dspin(0.0, 100.0, 5.0, 2, 0.5)
        self.res_lambda = _dspin(0.0, 10.0, 0.05, 3, 0.01)
        self.t_max = _spin(1000, 2_000_000_000, 2_000_000, 100_000)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu"])
        self.seed = _spin(0, 2**31 - 1, 0)
        for label, w in (("scenario", self.scenario), ("algorithm", self.algorithm), ("protocol", self.protocol),
                         ("learning rate", self.lr),
                         ("batch (episodes)", self.batch), ("envs per round", self.envs),
                         ("replay ratio", self.replay_ratio), ("target refresh (episodes)", self.target_episodes),
                         ("epsilon start", self.eps_start), ("epsilon anneal (steps)", self.anneal),
                         ("TD lambda", self.td_lambda),
                         ("RES beta", self.res_beta), ("RES lambda", self.res_lambda), ("env steps", self.t_max),
                         ("device", self.device), ("seed", self.seed)):
            f.addRow(label, w)
        lay.addWidget(g)

        r = QGroupBox("Run")
        grid = QGridLayout(r)
        self.start = QPushButton("Start")
        self.pause = QPushButton("Pause")
        self.resume = QPushButton("Resume")
        self.stop = QPushButton("Stop")
        self.step = QPushButton("Step")
        self.save = QPushButton("Save checkpoint")
        self.load = QPushButton("Watch checkpoint...")
        self.open_run = QPushButton("Open run directory...")
        for i, b in enumerate((self.start, self.pause, self.resume, self.stop, self.step)):
            grid.addWidget(b, i // 3, i % 3)
        grid.addWidget(self.save, 2, 0, 1, 3)
        grid.addWidget(self.load, 3, 0, 1, 3)
        grid.addWidget(self.open_run, 4, 0, 1, 3)
        self.snapshot_hz = _dspin(1.0, 60.0, 30.0, 0, 5.0)
        f2 = QFormLayout()
        f2.addRow("snapshots per second", self.snapshot_hz)
        self.watch_speed = _dspin(0.5, 1000.0, 8.0, 1, 2.0)
        self.watch_speed.setToolTip("Watch mode: env steps per second (one step = 0.5 game seconds)")
        f2.addRow("watch speed (steps/s)", self.watch_speed)
        self.keep_episodes = _spin(1, 10_000, 20)
        self.keep_episodes.setToolTip("Watch mode writes each episode it plays to the run's episodes/ directory "
                                      "and keeps the newest N files (File > Open last recorded episode)")
        f2.addRow("keep last N episodes", self.keep_episodes)
        grid.addLayout(f2, 5, 0, 1, 3)
        lay.addWidget(r)

        iv = QGroupBox("Intervene (while paused)")
        f3 = QFormLayout(iv)
        self.force_agent = QComboBox()
        self.force_action = QComboBox()
        self.force = QPushButton("Force action and step")
        f3.addRow("agent", self.force_agent)
        f3.addRow("action", self.force_action)
        f3.addRow(self.force)
        lay.addWidget(iv)
        lay.addStretch(1)

        self.start.clicked.connect(self.startClicked)
        self.pause.clicked.connect(self.pauseClicked)
        self.resume.clicked.connect(self.resumeClicked)
        self.stop.clicked.connect(self.stopClicked)
        self.step.clicked.connect(self.stepClicked)
        self.save.clicked.connect(self.saveClicked)
        self.load.clicked.connect(self.loadClicked)
        self.open_run.clicked.connect(self.openRunClicked)
        self.force.clicked.connect(lambda: self.forceClicked.emit(self.force_agent.currentIndex(),
                                                                  self.force_action.currentIndex()))
        # settings that change while a training runs (models.training.live): a person's edit is sent once the
        # value has been still for a moment (not at each arrow click); the others are locked while it runs
        self.live_keys = {self.lr: "learner.lr", self.batch: "learner.batch_size",
                          self.replay_ratio: "learner.replay_ratio",
                          self.target_episodes: "learner.target_update_episodes", self.eps_start: "run.epsilon_start",
                          self.anneal: "run.epsilon_anneal_steps", self.td_lambda: "learner.td_lambda",
                          self.res_beta: "algo.res_beta", self.res_lambda: "algo.res_lambda", self.t_max: "run.t_max"}
        self.locked_keys = {self.scenario: "env.map_name", self.algorithm: "algo.mixer", self.protocol: "learner.optimizer",
                            self.envs: "env.num_envs",
                            self.device: "run.device", self.seed: "run.seed"}
        self._tips = {w: w.toolTip() for w in (*self.live_keys, *self.locked_keys)}
        self._training = False
        self._live_pending: dict[str, object] = {}
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(LIVE_EDIT_DELAY_MS)
        self._live_timer.timeout.connect(self._send_live)
        for w, key in self.live_keys.items():
            w.valueChanged.connect(lambda v, key=key: self._edited(key, v))
        self.snapshot_hz.valueChanged.connect(self.snapshotRateChanged)
        self.watch_speed.valueChanged.connect(self.watchSpeedChanged)
        self.scenario.currentTextChanged.connect(lambda _: self.presetChanged.emit())
        self.algorithm.currentTextChanged.connect(lambda _: self.presetChanged.emit())
        self.protocol.currentTextChanged.connect(lambda _: self.presetChanged.emit())
        # `activated`, not `currentIndexChanged`: only a person's pick (picking the one shown again re-watches it)
        self.policy.activated.connect(lambda i: self.policyChosen.emit(self.policy.itemData(i)))

    def set_policies(self, policies: list[tuple[str, str, str]]) -> None:
        """The shipped policies as (name, label, tooltip), in order; the note under them says when there are none."""
        self.policy.clear()
        for i, (name, label, tip) in enumerate(policies):
            self.policy.addItem(label, name)
            self.policy.setItemData(i, tip, Qt.ToolTipRole)
        self.policy.setVisible(bool(policies))
        self.policy_note.setVisible(not policies)

    def select_policy(self, name: str) -> None:
        i = self.policy.findData(name)
        if i >= 0:
            self.policy.setCurrentIndex(i)

    def set_cuda_available(self, ok: bool) -> None:
        if ok and self.device.findText("cuda") < 0:
            self.device.addItem("cuda")

    def set_agents(self, n_agents: int, n_actions: int, matrix_game: bool) -> None:
        if self.force_agent.count() != n_agents:
            self.force_agent.clear()
            self.force_agent.addItems([f"agent {i}" for i in range(n_agents)])
        names = action_names(n_actions, matrix_game)
        if self.force_action.count() != len(names):
            self.force_action.clear()
            self.force_action.addItems([f"{i}: {n}" for i, n in enumerate(names)])

    def fill_from(self, cfg) -> None:
        """Show a config's values in the form (without re-emitting presetChanged, nor sending live changes)."""
        training, self._training = self._training, False
        try:
            self._fill(cfg)
        finally:
            self._training = training

    def _fill(self, cfg) -> None:
        self.lr.setValue(cfg.learner.lr)
        self.eps_start.setValue(cfg.run.epsilon_start)
        self.batch.setValue(cfg.learner.batch_size)
        self.envs.setValue(cfg.env.num_envs)
        self.replay_ratio.setValue(cfg.learner.replay_ratio)
        self.target_episodes.setValue(cfg.learner.target_update_episodes)
        self.anneal.setValue(cfg.run.epsilon_anneal_steps)
        self.td_lambda.setValue(cfg.learner.td_lambda)
        self.res_beta.setValue(cfg.algo.res_beta)
        self.res_lambda.setValue(cfg.algo.res_lambda)
        self.t_max.setValue(min(cfg.run.t_max, self.t_max.maximum()))

    def overrides(self) -> list[str]:
        return [f"learner.lr={self.lr.value()}", f"learner.batch_size={self.batch.value()}",
                f"env.num_envs={self.envs.value()}", f"learner.replay_ratio={self.replay_ratio.value()}",
                f"learner.target_update_episodes={self.target_episodes.value()}",
                f"run.epsilon_start={self.eps_start.value()}", f"run.epsilon_anneal_steps={self.anneal.value()}",
                f"learner.td_lambda={self.td_lambda.value()}", f"algo.res_beta={self.res_beta.value()}",
                f"algo.res_lambda={self.res_lambda.value()}", f"run.t_max={self.t_max.value()}",
                f'run.device="{self.device.currentText()}"', f"run.seed={self.seed.value()}"]

    def _edited(self, key: str, value) -> None:
        if self._training:
            self._live_pending[key] = value
            self._live_timer.start()

    def _send_live(self) -> None:
        pending, self._live_pending = self._live_pending, {}
        for key, value in pending.items():
            self.liveChanged.emit(key, value)

    def set_running(self, mode: str, paused: bool) -> None:
        running = mode not in ("idle", "replay")  # a replay runs no process: everything can start from it
        # a watch gives way at once to whatever is started instead (it has nothing to save); training does not
        # (stopping it saves a checkpoint with the replay buffer: a person's decision, the Stop button)
        training = mode == "train"
        self.start.setEnabled(not training)
        self.load.setEnabled(not training)
        self.open_run.setEnabled(not training)
        self.policy.setEnabled(not training)
        self.pause.setEnabled(running and not paused)
        self.resume.setEnabled(running and paused)
        self.step.setEnabled(running and paused)
        self.stop.setEnabled(running)
        self.save.setEnabled(mode == "train")
        self.force.setEnabled(running and paused)
        if training != self._training:
            self._training = training
            for w, key in self.locked_keys.items():
                w.setEnabled(not training)
                w.setToolTip(f"locked while the training runs: {locked_reason(key)}" if training else self._tips[w])
            for w, key in self.live_keys.items():
                w.setToolTip(f"changes the running training at its next round: {LIVE_KEYS[key]}"
                             if training else self._tips[w])
