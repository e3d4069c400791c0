"""The contract between the training loop and whoever watches it: `Callbacks` (every hook optional; with none given,
training pays nothing), the `StepContext` an every-step hook sees, and `StopRequested` (raised from a hook to end
training at once). The CLI's progress bar, the window's trainer process, sweeps and benchmarks implement it."""
from __future__ import annotations

import numpy as np
import torch

from ..core.probe import Probe
from ..core.trace import EpisodeTrace


class Callbacks:
    """Hooks into `train`. Every method is optional; with none given training pays nothing."""

    def on_start(self, info: dict) -> None: ...
    def on_episode(self, m: dict) -> None: ...
    def on_update(self, m: dict) -> None: ...
    def on_eval(self, m: dict) -> None: ...
    def on_checkpoint(self, path: str) -> None: ...
    def on_recorded(self, path: str) -> None: ...  # an episode file was written
    def on_live_change(self, event) -> None: ...  # a `models.training.live.LiveEvent` was applied
    def on_script_break(self, kinds: list) -> None: ...  # an experiment script's break_on step
    def on_end(self, summary: dict) -> None: ...

    def wants_episode(self) -> bool:
        """True to have environment 0's episode recorded every round (`Trainer.save_episode_so_far` can then
        write it at any step: a breakpoint's)."""
        return False

    def wants_steps(self) -> bool:
        """True to get `on_step` every env step (snapshots, pausing, forced actions)."""
        return False

    def on_step(self, ctx: "StepContext") -> np.ndarray | None:
        """Called every env step when `wants_steps()`; may return actions [B, n] to use instead."""
        return None

    def should_stop(self) -> bool:
        return False


def complete(cb) -> Callbacks:
    """`cb` with every hook it lacks taken from `Callbacks` (a duck-typed one, like the CLI's progress bar, need not
    subclass it, nor learn of hooks added later)."""
    if cb is None:
        return Callbacks()
    if not isinstance(cb, Callbacks):
        base = Callbacks()
        for name in dir(Callbacks):
            if not name.startswith("_") and not hasattr(cb, name):
                setattr(cb, name, getattr(base, name))
    return cb


class StopRequested(Exception):
    """Raised from `Callbacks.on_step` to end training at once (the round in progress is dropped)."""


class StepContext:
    """What `Callbacks.on_step` sees: one acting step (before the env steps), with probes on demand."""

    def __init__(self, probe: Probe, env, t: int, rec, q: torch.Tensor, actions: np.ndarray, t_env: int,
                 epsilon: float, trace: EpisodeTrace | None = None):
        self.probe_, self.env, self.t, self.rec, self.q, self.actions = probe, env, t, rec, q, actions
        self.t_env, self.epsilon = t_env, epsilon
        self.trace = trace  # env 0's episode so far and its last finished one

    @property
    def world(self):
        return getattr(self.env, "world", None)

    def probe(self, env_index: int = 0, chosen=None, joint_table: bool = True):
        return self.probe_.from_q(self.q[env_index], self.rec.state[env_index], self.rec.avail[env_index],
                                  self.actions[env_index] if chosen is None else chosen, joint_table=joint_table)
