"""Live settings: what may change while a training runs, the record of each change, and the control file a
headless run takes changes from.

A change is asked for at any time (`Trainer.set`, the window, `qmix-workbench set RUN KEY=VALUE`) and applies at
the next round boundary, in the learner process too. Each applied change is an event: env step, update, key, old
and new value, source; the run keeps them in `events.csv`, in its checkpoints (a resume re-applies them in order,
so the resumed run continues as the uninterrupted one would) and shows them as markers on the curves. The run's
`config.toml` keeps the configuration it started with.

The exploration schedule restarts at a change of one of its keys: from then on, epsilon goes linearly from
`run.epsilon_start` (when that is the key changed; else from the epsilon of that moment) to `run.epsilon_finish`
over `run.epsilon_anneal_steps` env steps counted from the change.

The control file, `RUN_DIR/live_requests.jsonl`, is append-only: one JSON object per line (`key`, `value`,
`source`), written by `request` with O_APPEND (a whole line per write). The trainer reads what was appended since
its last look once a round (one stat when nothing was) and applies each line once: its events carry the line's
number, so a resumed run applies only the lines it had not.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import Config, ConfigError, flatten, from_dict
from ..files.rundir import EVENTS_FILE, REQUESTS_FILE

# key -> what the change does; every other key is locked while a run trains (`locked_reason` says why)
LIVE_KEYS = {
    "run.epsilon_start": "restarts exploration at this epsilon now, annealing to epsilon_finish",
    "run.epsilon_finish": "the epsilon the schedule anneals to, from the epsilon of now",
    "run.epsilon_anneal_steps": "env steps, from now, over which epsilon anneals",
    "run.epsilon_spread": "Ape-X spread of epsilon over the envs of a round",
    "learner.lr": "the optimizer's learning rate, from the next update (with learner.lr_anneal_steps: where "
                  "its schedule starts, so the rate becomes the schedule's at this env step)",
    "learner.lr_finish": "the rate the learning-rate schedule decays to (the rate becomes the new schedule's at "
                         "this env step)",
    "learner.lr_anneal_steps": "env steps from the run's start over which the learning rate decays to lr_finish "
                               "(0: constant; the rate becomes the new schedule's at this env step)",
    "learner.td_lambda": "TD(lambda) of the targets",
    "learner.grad_clip": "the gradient-norm clip",
    "learner.target_update_episodes": "episodes between hard copies of the target networks",
    "learner.replay_ratio": "episodes sampled for updates per episode collected",
    "learner.batch_size": "episodes per update",
    "algo.res_beta": "RES's softmax inverse temperature",
    "algo.res_lambda": "RES's regulariser weight",
    "run.test_interval": "env steps between greedy evaluations",
    "run.save_interval": "env steps between checkpoints",
    "run.t_max": "the env steps the run trains to",
    "run.time_limit_s": "the training wall time after which the run stops",
}
_LOCKED = [  # (key or section prefix, why it cannot change in a running training)
    ("env.", "the environments are built when the run starts; branch the run to change them"),
    ("algo.mixer", "the networks' architecture is fixed for a run; branch from a checkpoint to change it"),
    ("algo.res", "RES on or off changes the algorithm; branch from a checkpoint to change it"),
    ("algo.agent_hidden", "the networks' sizes are fixed for a run"),
    ("algo.mixing_embed", "the networks' sizes are fixed for a run"),
    ("algo.hypernet_embed", "the networks' sizes are fixed for a run"),
    ("learner.buffer_size", "the replay buffer is sized when the run starts"),
    ("learner.optimizer", "the optimizer's state belongs to one optimizer"),
    ("run.seed", "the random streams are seeded when the run starts"),
    ("run.device", "the networks live on one device for a run"),
    ("run.learner_process", "the processes are set up when the run starts"),
    ("run.", "it is read when the run starts"),
    ("learner.", "it is read when the run starts"),
    ("algo.", "it is read when the run starts"),
]
EPSILON_KEYS = ("run.epsilon_start", "run.epsilon_finish", "run.epsilon_anneal_steps")
EVENT_COLUMNS = ["t_env", "updates", "episodes", "wall_s", "key", "old", "new", "source", "request"]


def locked_reason(key: str) -> str | None:
    """Why `key` cannot change while a run trains; None when it can."""
    if key in LIVE_KEYS:
        return None
    for prefix, why in _LOCKED:
        if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
            return why
    return "not a setting"


# bounds on live values where a larger or smaller one cannot work: a round must end in seconds (so a stop is
# honoured); the config's own checks (a batch within the buffer, epsilon_finish <= epsilon_start) apply too
LIVE_BOUNDS = {
    "learner.replay_ratio": (0.01, 256.0),
    "learner.batch_size": (1, 1024),
    "learner.target_update_episodes": (1, 10_000_000),
    "learner.grad_clip": (1e-6, 1e6),
    "algo.res_beta": (0.0, 1000.0),
    "algo.res_lambda": (0.0, 100.0),
    "run.test_interval": (100, 10**12),
    "run.t_max": (1, 10**12),
}


def inert_reason(cfg: Config, key: str) -> str | None:
    """Why changing `key` would do nothing for a run with `cfg`; None when it acts."""
    if key.startswith("algo.res_") and not cfg.algo.res:
        return f"this run's algorithm ({cfg.algorithm_name}) has no RES operator"
    if key == "learner.target_update_episodes" and cfg.learner.target_update != "hard":
        return "this run's target networks follow Polyak averaging (learner.target_update), not hard copies"
    return None


def changed(cfg: Config, key: str, value) -> tuple[Config, object]:
    """(the config with `key` set to `value`, checked as a config file's value would be, the old value).
    A ConfigError names the key and why, for a locked key, an unknown one, one that does nothing for this run, a
    bad value or one out of LIVE_BOUNDS. `cfg` is the run's config as changed so far."""
    flat = flatten(cfg.to_dict())
    if key not in flat:
        raise ConfigError(f"{key}: not a setting; settings that change live: {', '.join(LIVE_KEYS)}")
    why = locked_reason(key)
    if why is not None:
        raise ConfigError(f"{key} cannot change while the run trains: {why}")
    why = inert_reason(cfg, key)
    if why is not None:
        raise ConfigError(f"{key} does nothing for this run: {why}")
    section, _, name = key.partition(".")
    new = from_dict({section: {name: value}}, cfg)
    v = flatten(new.to_dict())[key]
    if key in LIVE_BOUNDS:
        lo, hi = LIVE_BOUNDS[key]
        if not lo <= v <= hi:
            raise ConfigError(f"{key}: expected a value in [{lo:g}, {hi:g}] while a run trains, got {value!r}")
    return new, flat[key]


@dataclass
class LiveEvent:
    t_env: int
    updates: int
    episodes: int
    wall_s: float
    key: str
    old: object
    new: object
    source: str  # "window", "cli", "api", "script"
    request: int = -1  # the control file's line number it came from (-1: not from the file)

    def describe(self) -> str:
        return f"{self.key}: {self.old} -> {self.new} at {self.t_env:,} env steps ({self.source})"


def write_events(run_dir: Path, events: list[LiveEvent]) -> None:
    from ..files.atomic import write_atomic

    out = io.StringIO(newline="")
    w = csv.DictWriter(out, EVENT_COLUMNS)
    w.writeheader()
    for e in events:
        w.writerow({**asdict(e), "old": json.dumps(e.old), "new": json.dumps(e.new)})
    write_atomic(Path(run_dir) / EVENTS_FILE, out.getvalue())


def read_events(run_dir: Path) -> list[LiveEvent]:
    """A run's events (none for a run without `events.csv`)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.is_file():
        return []
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            try:
                out.append(LiveEvent(int(r["t_env"]), int(r["updates"]), int(r["episodes"]), float(r["wall_s"]),
                                     r["key"], json.loads(r["old"]), json.loads(r["new"]), r["source"],
                                     int(r.get("request") or -1)))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def current_config(run_dir: str | Path) -> Config:
    """A run's settings as they stand: its starting config.toml, its applied events in order, then the requests
    not yet applied (a stopped run applies them at its resume). What a new request is checked against."""
    from ..config import load_config

    d = Path(run_dir)
    cfg_path = d / "config.toml"
    if not cfg_path.is_file():
        raise ConfigError(f"{d}: no config.toml; expected a run directory")
    cfg = load_config(cfg_path)
    events = read_events(d)
    for e in events:
        try:
            cfg, _ = changed(cfg, e.key, e.new)
        except ConfigError:
            continue  # an event of an earlier version's rules: it happened; the run's own replay decides
    applied = max((e.request for e in events), default=-1)
    for line, r in RequestReader(d, applied).new():
        if "error" not in r:
            try:
                cfg, _ = changed(cfg, r["key"], r["value"])
            except ConfigError:
                continue  # the run will refuse it too, and say so
    return cfg


def request_all(run_dir: str | Path, changes: list[tuple[str, object]], source: str = "cli") -> list[int]:
    """Append changes to a run's control file, all or nothing: each is checked against the run's settings as
    changed so far (`current_config`, then the ones before it), and only when every one passes are they written,
    in one append. Their line numbers. The training applies them at its next round, or at its resume."""
    cfg = current_config(run_dir)
    for key, value in changes:
        cfg, _ = changed(cfg, key, value)
    text = "".join(json.dumps({"key": k, "value": v, "source": source}) + "\n" for k, v in changes)
    path = Path(run_dir) / REQUESTS_FILE
    before = sum(1 for _ in open(path, "rb")) if path.exists() else 0
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return list(range(before, before + len(changes)))


def request(run_dir: str | Path, key: str, value, source: str = "cli") -> int:
    """One change appended to a run's control file (`request_all`); its line number."""
    return request_all(run_dir, [(key, value)], source)[0]


class RequestReader:
    """The lines appended to a run's control file since the last `new()`, with their line numbers."""

    def __init__(self, run_dir: Path, applied_upto: int):
        self.path = Path(run_dir) / REQUESTS_FILE
        self.next_line = applied_upto + 1  # the first line not yet applied
        self._size = -1
        self._ino: int | None = None  # the file's identity when last read: a new one is a replaced file

    def new(self) -> list[tuple[int, dict]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        size, ino = st.st_size, st.st_ino
        out = []
        if self._size >= 0 and (size < self._size or ino != self._ino):
            # deleted and made again, or cut: its lines are new requests from the first on, and that is said
            out.append((-1, {"error": f"{self.path} was replaced or truncated while the run trained: its lines are "
                                      f"read as new requests from line 1"}))
            self.next_line, self._size = 0, -1
        self._ino = ino
        if size == self._size:
            return out
        with open(self.path, "rb") as f:
            raw = f.read()
        whole = raw[:raw.rfind(b"\n") + 1]  # a line being written waits for its end
        self._size = len(whole)
        for i, line in enumerate(whole.splitlines()):
            if i < self.next_line:
                continue
            try:
                d = json.loads(line)
                if not isinstance(d, dict) or "key" not in d or "value" not in d:
                    raise ValueError("expected an object with key and value")
            except ValueError as e:
                d = {"error": f"line {i + 1} of {self.path}: {e}"}
            out.append((i, d))
            self.next_line = i + 1
        return out
