"""`WorkbenchState`: what the window shows, kept free of Qt so it can be tested without one.

Panels are thin views over it: the latest snapshot, the selected agent, the mode, the metric
series (growing arrays), status figures and the last error. A snapshot comes from one of three
sources — the trainer process (training, Watch mode) or an episode file (Replay mode, whose cursor
and playback live in `workbench.replay.ReplayModel`) — and looks the same from all three.
"""
from __future__ import annotations

import numpy as np

from models import registry as _registry

from . import protocol as P

# name -> (algo.mixer, algo.res), in the one registry's order (`models.registry`)
ALGORITHMS = {a.name: (a.mixer, a.res) for a in _registry.ALGORITHMS}


def action_names(n_actions: int, matrix_game: bool = False) -> list[str]:
    """The simulator's action names (`sims.action_names`); a matrix game's actions are a0, a1, ..."""
    if matrix_game:
        return [f"a{i}" for i in range(n_actions)]
    from sims import action_names as sim_names

    return sim_names(n_actions)


class Series:
    """An append-only (x, y) series with amortised growth."""

    def __init__(self):
        self._x = np.zeros(1024)
        self._y = np.zeros(1024)
        self.n = 0

    def append(self, x: float, y: float) -> None:
        if y is None or not np.isfinite(y):  # a non-finite update is marked on its own, not drawn as a point
            return
        if self.n == len(self._x):
            self._x = np.concatenate([self._x, np.zeros_like(self._x)])
            self._y = np.concatenate([self._y, np.zeros_like(self._y)])
        self._x[self.n] = x
        self._y[self.n] = y
        self.n += 1

    @property
    def x(self):
        return self._x[: self.n]

    @property
    def y(self):
        return self._y[: self.n]

    def smoothed(self, window: int = 50):
        """Running mean over the last `window` points (what the return and win curves show)."""
        if self.n == 0:
            return self.x, self.y
        c = np.concatenate([[0.0], np.cumsum(self.y)])
        idx = np.arange(1, self.n + 1)
        k = np.minimum(idx, window)
        return self.x, (c[idx] - c[idx - k]) / k


CURVES = ["return", "won", "test_win_rate", "loss", "td_error", "epsilon", "overestimation", "steps_per_s",
          "qtot_taken", "res_softmax_value", "max_value"]


class WorkbenchState:
    def __init__(self):
        self.mode = "idle"  # idle | train | watch | replay
        self.paused = False
        self.selected_agent = 0
        self.snapshot: dict | None = None
        self.snapshots_seen = 0
        self.series = {k: Series() for k in CURVES}
        self.t_env = 0
        self.learner_pid = None
        self.episodes = 0
        self.steps_per_s = 0.0
        self.run_dir = ""
        self.algorithm = ""
        self.map_name = ""
        self.env_info: dict = {}
        self.config: dict = {}
        self.error: str | None = None
        self.messages: list[str] = []
        self.last_checkpoint: str | None = None
        self.watch_episodes: list[dict] = []
        self.nonfinite: list[tuple[int, int, str]] = []  # (t_env, update, quantity) of each non-finite update
        self.alert: str | None = None  # a warning the status bar shows in red until the next run
        self.replay = None  # the `ReplayModel` in Replay mode
        self.recorded_episodes: list[str] = []  # episode files Watch mode wrote, oldest first
        self.live_events: list[P.LiveChanged] = []  # the running training's live changes (markers on the curves)

    # ---- messages from the trainer ------------------------------------------------------------------
    def ingest(self, messages) -> None:
        """The trainer's `workbench.protocol` messages, in order."""
        for msg in messages:
            match msg:
                case P.Started():
                    self.mode = msg.mode
                    self.run_dir = msg.run_dir
                    self.algorithm = msg.algorithm
                    self.env_info = msg.env_info
                    self.config = msg.config
                    self.map_name = self.config.get("env", {}).get("map_name", "")
                    self.t_env = msg.t_env
                    self.learner_pid = msg.learner_pid  # the trainer's own learner process, if any
                    self.error = None
                case P.EpisodeEnded(metrics=m):
                    self.episodes = m["episodes"]
                    if self.mode == "watch":  # greedy episodes of a saved policy are not training progress
                        self.watch_episodes.append(m)
                        continue
                    self.t_env = m["t_env"]
                    for k in ("return", "won", "epsilon", "overestimation"):
                        self.series[k].append(m["t_env"], m.get(k))
                case P.UpdateDone(metrics=m):
                    self.t_env = m["t_env"]
                    self.steps_per_s = m.get("steps_per_s", self.steps_per_s)
                    for k in ("loss", "td_error", "steps_per_s", "qtot_taken", "res_softmax_value", "max_value"):
                        if k in m:
                            self.series[k].append(m["t_env"], m[k])
                    if m.get("nonfinite"):
                        self.nonfinite.append((m["t_env"], m["updates"], m["nonfinite"]))
                        self.alert = (f"non-finite {m['nonfinite']} at update {m['updates']:,} "
                                      f"({len(self.nonfinite)} so far)")
                        self.messages.append(f"NON-FINITE {m['nonfinite']} at update {m['updates']:,} "
                                             f"({m['t_env']:,} env steps)")
                case P.Evaluated(metrics=m):
                    self.series["test_win_rate"].append(m["t_env"], m["test_win_rate"])
                case P.CheckpointSaved(path=path):
                    self.last_checkpoint = path
                    self.messages.append(f"checkpoint saved: {path}")
                case P.PausedChanged(paused=paused):
                    self.paused = bool(paused)
                case P.Error(text=text):
                    self.error = text
                case P.Info(text=text) | P.Warning(text=text):
                    self.messages.append(str(text))
                case P.LiveChanged():
                    self.live_events.append(msg)
                    section, _, name = msg.key.partition(".")
                    self.config.setdefault(section, {})[name] = msg.new  # (the trainer's log line says it)
                case P.Ended(summary=s):
                    self.messages.append(f"finished at {s.get('t_env', 0):,} env steps")
                case P.EpisodeRecorded(path=path):
                    self.recorded_episodes.append(str(path))
                    self.messages.append(f"episode recorded: {path}")
                case _:
                    raise TypeError(f"not a message of workbench.protocol: {msg!r}")

    def open_replay(self, replay) -> None:
        """Replay mode on `replay` (a `ReplayModel`): the episode header stands in for the trainer's "start"
        message, so the panels are configured the same way."""
        self.mode = "replay"
        self.replay = replay
        self.paused = False
        self.algorithm = replay.algorithm
        self.config = replay.config
        self.env_info = replay.env_info()
        self.map_name = replay.map_name
        self.t_env = int(replay.header.get("t_env", 0))
        self.error = None
        self.alert = None

    def load_metrics(self, metrics: dict) -> None:
        """Fill the curves from a run's metrics.csv, as read by `workbench.plot.read_metrics`."""
        for (kind, key), (xs, ys) in metrics.items():
            if key in self.series:
                s = self.series[key]
                for x, y in zip(xs, ys):
                    s.append(float(x), float(y))

    def ingest_snapshot(self, snap: dict | None) -> None:
        if snap is None:
            return
        self.snapshot = snap
        self.snapshots_seen += 1
        # `t_env` stays the training steps (in watch mode: the checkpoint's); `paused` follows the
        # lossless "paused" messages only: a snapshot may predate them

    def process_ended(self, exitcode: int | None) -> None:
        if exitcode not in (0, None) and self.error is None:
            self.error = (f"the trainer process died (exit code {exitcode}) without a message; "
                          f"the run directory keeps everything written so far: {self.run_dir or '(none yet)'}")
        if self.mode != "replay":  # an episode opened after a run stopped outlives that run's exit report
            self.mode = "idle"
            self.paused = False

    def select_agent(self, i: int) -> None:
        n = self.env_info.get("n_agents", 1)
        if not 0 <= i < max(n, 1):
            raise ValueError(f"agent {i} does not exist; agents are 0..{n - 1}")
        self.selected_agent = i

    @property
    def n_agents(self) -> int:
        return int(self.env_info.get("n_agents", 0))

    @property
    def is_matrix_game(self) -> bool:
        from sims import list_matrix_games

        return self.map_name in list_matrix_games()
