"""The battle events a debugger looks for, defined once: the Replay timeline's markers (over an episode file's
states) and the breakpoints of Watch mode and training (state by state, live) both come from `EventDetector`.

A state is a dict of the battle's per-unit arrays (`health`, `shield`, `alive`, `pos`; agents first), as
`sims.World.snapshot` gives for one battle and an episode file stores per step. An event's step is the first state
in which it is visible.
"""
from __future__ import annotations

import numpy as np

# the kinds a breakpoint can wait for, and the marker labels each matches
BREAK_KINDS = {
    "first damage": lambda label: label == "an agent first damaged",
    "shields down": lambda label: label.endswith("shields down"),
    "agent dies": lambda label: label.endswith(" dies"),
    "enemy on the plateau": lambda label: label == "first enemy on the plateau",
    "win": lambda label: label == "battle won (every enemy dead)",
    "loss": lambda label: label == "battle lost (every agent dead)",
}


def matches(kind: str, label: str) -> bool:
    if kind not in BREAK_KINDS:
        raise ValueError(f"breakpoint {kind!r}: expected one of {', '.join(BREAK_KINDS)}")
    return BREAK_KINDS[kind](label)


class EventDetector:
    """Feed it the states of one battle in order (`reset` with the first); `step` returns the labels of the events
    first visible in each state."""

    def __init__(self, n_agents: int, height: np.ndarray | None = None):
        self.n = n_agents
        self.height = height  # the map's terrain height [X, Y]: the plateau event needs it

    def reset(self, first: dict) -> list[str]:
        n = self.n
        self.hs0 = np.asarray(first["health"][:n], float) + np.asarray(first["shield"][:n], float)
        self.max_shield = np.asarray(first["shield"][:n], float)
        self.damaged = False
        self.shields_down = np.zeros(n, bool)
        self.dead = np.zeros(n, bool)
        self.start_high = None
        self.enemy_up = False
        self.ended = False
        if self.height is not None:
            h, alive = self._enemy_heights(first)
            self.start_high = float(h[alive].max()) if alive.any() else None
        return self.step(first)

    def _enemy_heights(self, s: dict):
        X, Y = self.height.shape
        p = np.asarray(s["pos"])[self.n:]
        h = self.height[np.clip(p[:, 0].astype(int), 0, X - 1), np.clip(p[:, 1].astype(int), 0, Y - 1)]
        return h, np.asarray(s["alive"])[self.n:].astype(bool)

    def step(self, s: dict) -> list[str]:
        n, out = self.n, []
        hs = np.asarray(s["health"][:n], float) + np.asarray(s["shield"][:n], float)
        if not self.damaged and (hs < self.hs0).any():
            self.damaged = True
            out.append("an agent first damaged")
        shield, alive = np.asarray(s["shield"][:n], float), np.asarray(s["alive"][:n]).astype(bool)
        for i in range(n):
            if self.max_shield[i] > 0 and not self.shields_down[i] and shield[i] <= 0:
                self.shields_down[i] = True
                out.append(f"agent {i}: shields down")
            if not self.dead[i] and not alive[i]:
                self.dead[i] = True
                out.append(f"agent {i} dies")
        if self.start_high is not None and not self.enemy_up:
            h, up = self._enemy_heights(s)
            if ((h > self.start_high + 1e-6) & up).any():
                self.enemy_up = True
                out.append("first enemy on the plateau")
        if not self.ended:  # (a time-out shows in no state: it is not one of these)
            enemies = np.asarray(s["alive"][n:]).astype(bool)
            if len(enemies) and not enemies.any():
                self.ended = True
                out.append("battle won (every enemy dead)")
            elif not alive.any():
                self.ended = True
                out.append("battle lost (every agent dead)")
        return out


def first_gap(qtot, return_to_go, above: float) -> tuple[int, float] | None:
    """The first step of a finished episode where |Qtot(s_t, u_t) - G_t| (the value against the discounted return
    actually earned from t) is above `above`, and that gap; None when no step's is. Known only once the episode
    has ended (G_t needs its rewards to the end): a breakpoint on it stops Watch mode and training at the episode's
    end, naming the step, and Replay playback at the step itself."""
    q = np.asarray(qtot, dtype=np.float64)
    g = np.asarray(return_to_go, dtype=np.float64)
    n = min(len(q), len(g))
    if n == 0:
        return None
    gap = np.abs(q[:n] - g[:n])
    over = np.flatnonzero(gap > above)
    return (int(over[0]), float(gap[over[0]])) if len(over) else None
