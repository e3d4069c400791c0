"""`EpisodeTrace`: one environment's episode as the networks saw it, step by step.

Per executed step: Qtot of the joint action actually taken (forced ones included) and of the greedy one,
the credit dQtot/dQi, RES's softmax target, the reward; when the episode ends, the discounted return
earned from every step, so Qtot can be set against what it predicted (overestimation). The runner feeds
it after each env step, so it sees every step including an episode's last. Inputs are kept cheaply per
step and the values computed in one batch when someone reads them (`current`, or at the episode's end).
"""
from __future__ import annotations

import numpy as np
import torch

from .episode import discounted_returns
from .probe import Probe

FIELDS = ("qtot", "greedy", "res", "credit", "reward")


class EpisodeTrace:
    def __init__(self, probe: Probe, gamma: float, env_index: int = 0):
        self.probe, self.gamma, self.env_index = probe, gamma, env_index
        self.episode = 0  # episodes begun
        self.done = False  # the current episode has ended (the runner may still be stepping other envs)
        self.last: dict | None = None  # the last finished episode, with "return_to_go"
        self._values = {k: [] for k in FIELDS}
        self._pending: list = []

    def begin(self) -> None:
        self.episode += 1
        self.done = False
        self._values = {k: [] for k in FIELDS}
        self._pending = []

    def record(self, q: torch.Tensor, state: np.ndarray, avail: np.ndarray, executed: np.ndarray, reward: float,
               terminated: bool) -> None:
        """One executed step of this env: its agents' Qs [n, A], the state and masks it acted in, the joint
        action executed, and what the step returned."""
        if self.done:
            return
        self._pending.append((q.detach().clone(), np.array(state), np.array(avail), np.array(executed)))
        self._values["reward"].append(float(reward))
        if terminated:
            self._flush()
            self.done = True
            r = np.asarray(self._values["reward"], dtype=np.float32)[None]
            G = discounted_returns(r, np.ones_like(r, dtype=bool), self.gamma)[0]
            self.last = {**{k: list(v) for k, v in self._values.items()}, "return_to_go": G.tolist()}

    def current(self) -> dict:
        """The episode so far: a list per field, one entry per executed step."""
        self._flush()
        return {k: list(v) for k, v in self._values.items()}

    def _flush(self) -> None:
        if not self._pending:
            return
        q, st, av, ch = zip(*self._pending)
        self._pending = []
        v = self.probe.trace_batch(torch.stack(q), np.stack(st), np.stack(av), np.stack(ch))
        tr, n = self._values, len(q)
        tr["qtot"] += v["qtot"].tolist()
        tr["greedy"] += v["greedy"].tolist()
        tr["res"] += [None] * n if v["res"] is None else v["res"].tolist()
        tr["credit"] += [None] * n if v["credit"] is None else v["credit"].tolist()
