"""The typed messages between the window and its trainer process (both sides Qt-free).

Down, the window's commands: `Pause`, `Resume`, `Step`, `Stop`, `Save`, `SetSnapshotRate`, `SetWatchSpeed`,
`ForceAction`, `ClearForced`, `SetSetting`, `SetBreakpoints`, `BranchNow`. Up, the trainer's messages: `Started`, `EpisodeEnded`, `UpdateDone`,
`Evaluated`, `CheckpointSaved`, `EpisodeRecorded`, `PausedChanged`, `Info`, `Warning`, `Error`, `LiveChanged`, `Ended`. Each is a small frozen
dataclass, pickled whole through the process queues; the receivers dispatch with `match` on the type, so a message
kind the other side does not know is a TypeError at the sender's construction, not a string that silently never
matches.

(Snapshots, the latest-wins stream of what env 0 looks like now, are built by `models.core.snapshot.make_snapshot`,
by the live trainer and by episode files alike: the one place their keys are made.)
"""
from __future__ import annotations

from dataclasses import dataclass, field


# ---- commands: window -> trainer ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class Step:
    """One env step while paused."""


@dataclass(frozen=True)
class Stop:
    """Stop after the current step (training saves a checkpoint with the replay buffer)."""


@dataclass(frozen=True)
class Save:
    path: str | None = None  # None: the run's own checkpoints/


@dataclass(frozen=True)
class SetSnapshotRate:
    hz: float


@dataclass(frozen=True)
class SetWatchSpeed:
    steps_per_s: float


@dataclass(frozen=True)
class ForceAction:
    """While paused: agent `agent` takes `action` at the next step (checked against its mask there)."""
    agent: int
    action: int


@dataclass(frozen=True)
class ClearForced:
    pass


@dataclass(frozen=True)
class SetSetting:
    """A live change of the running training (`models.training.live`), applied at its next round."""
    key: str
    value: object


@dataclass(frozen=True)
class SetBreakpoints:
    """Pause when environment 0 shows one of these events (`models.core.events.BREAK_KINDS`); () clears them.
    `td_error_above`: a training also pauses after an update whose mean |TD error| is above it.
    `gap_above`: pause when an episode of environment 0 ends in which |Qtot - discounted return| was above it at
    some step (`models.core.events.first_gap`; the message names the step)."""
    kinds: tuple = ()
    td_error_above: float | None = None
    gap_above: float | None = None


@dataclass(frozen=True)
class BranchNow:
    """Branch the running training at its next round (`models.training.branch`) with these settings changed."""
    changes: dict


Command = (Pause | Resume | Step | Stop | Save | SetSnapshotRate | SetWatchSpeed | ForceAction | ClearForced
           | SetSetting | SetBreakpoints | BranchNow)


# ---- messages: trainer -> window ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Started:
    mode: str  # "train" | "watch"
    config: dict
    env_info: dict
    algorithm: str
    t_env: int = 0
    run_dir: str = ""
    device: str = "cpu"
    learner_pid: int | None = None
    checkpoint: str | None = None  # watch: what is being played
    policy: str | None = None  # watch: the shipped policy's name


@dataclass(frozen=True)
class EpisodeEnded:
    metrics: dict  # t_env, episodes, return, won, length, dead_enemies, epsilon, overestimation


@dataclass(frozen=True)
class UpdateDone:
    metrics: dict  # t_env, updates, loss, td_error, grad_norm, qtot_taken, target, ... (and nonfinite when so)


@dataclass(frozen=True)
class Evaluated:
    metrics: dict  # t_env, test_win_rate, test_return, episodes


@dataclass(frozen=True)
class CheckpointSaved:
    path: str
    requested: bool = False  # the window's Save, rather than a periodic one


@dataclass(frozen=True)
class EpisodeRecorded:
    path: str


@dataclass(frozen=True)
class PausedChanged:
    paused: bool


@dataclass(frozen=True)
class Info:
    text: str


@dataclass(frozen=True)
class Warning:  # noqa: A001 - the message kind, read as protocol.Warning
    text: str


@dataclass(frozen=True)
class Error:
    text: str


@dataclass(frozen=True)
class LiveChanged:
    """A live change was applied (a `models.training.live.LiveEvent`'s fields)."""
    t_env: int
    key: str
    old: object
    new: object
    source: str


@dataclass(frozen=True)
class Ended:
    summary: dict = field(default_factory=dict)


Message = (Started | EpisodeEnded | UpdateDone | Evaluated | CheckpointSaved | EpisodeRecorded | PausedChanged | Info
           | Warning | Error | LiveChanged | Ended)
