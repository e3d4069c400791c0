"""Matrix games behind the `VecEnv` face: the QMIX paper's two-step game and one-step 3x3 games.

They return the same `StepRecord` as `VecEnv`, so every algorithm runs on them unchanged.
"""
from __future__ import annotations

import numpy as np

from .vec_env import StepRecord

TWO_STEP_2B = np.array([[0.0, 1.0], [1.0, 8.0]])
GAMES = {
    # name: (payoff of the final state(s), two-step?)
    "twostep": None,
    "matrix_nonmono": np.array([[8.0, -12.0, -12.0], [-12.0, 0.0, 0.0], [-12.0, 0.0, 0.0]]),
    "matrix_mild": np.array([[12.0, -0.1, -0.1], [-0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]]),
}


def list_matrix_games() -> list[str]:
    return sorted(GAMES)


class MatrixGameVecEnv:
    """B copies of a cooperative matrix game for 2 agents.

    - `twostep` (QMIX paper, Fig. 3): in state 1, agent 0's action picks state 2A (action 0) or
      2B (action 1), reward 0; state 2A pays 7 for every joint action; state 2B pays
      [[0, 1], [1, 8]]. Observations and state are the one-hot of the current state (3 values).
    - `matrix_nonmono`, `matrix_mild`: one step, reward = payoff[u0, u1]; observation and state
      are a constant 1.
    """

    n_agents = 2

    def __init__(self, name: str, num_envs: int = 1, seed: int | None = None, autoreset: bool = True, **options):
        if name not in GAMES:
            raise ValueError(f"unknown matrix game {name!r}; known: {', '.join(list_matrix_games())}")
        if options:
            raise TypeError(f"matrix games take no options, got {sorted(options)}")
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a whole number >= 1, got {num_envs!r}")
        self.map_name = name
        self.autoreset = bool(autoreset)
        self._done = np.zeros(int(num_envs), dtype=bool)
        self.num_envs = int(num_envs)
        self.two_step = name == "twostep"
        self.payoff = TWO_STEP_2B if self.two_step else GAMES[name]
        self.n_actions = self.payoff.shape[0]
        self.n_enemies = 0
        self.episode_limit = 2 if self.two_step else 1
        self.obs_dim = self.state_dim = 3 if self.two_step else 1
        self._state = np.zeros(self.num_envs, dtype=np.int64)  # 0 = state 1, 1 = 2A, 2 = 2B
        self._t = np.zeros(self.num_envs, dtype=np.int64)
        self._ret = np.zeros(self.num_envs)

    def get_env_info(self) -> dict:
        return {"state_shape": self.state_dim, "obs_shape": self.obs_dim, "n_actions": self.n_actions,
                "n_agents": 2, "episode_limit": self.episode_limit, "agent_features": [], "enemy_features": []}

    def _observe(self):
        B = self.num_envs
        if self.two_step:
            state = np.eye(3, dtype=np.float32)[self._state]
        else:
            state = np.ones((B, 1), dtype=np.float32)
        obs = np.repeat(state[:, None, :], 2, axis=1)
        avail = np.ones((B, 2, self.n_actions), dtype=bool)
        return obs, state, avail

    def reset(self) -> StepRecord:
        B = self.num_envs
        self._state[:] = 0
        self._t[:] = 0
        self._ret[:] = 0
        self._done[:] = False
        obs, state, avail = self._observe()
        z = np.zeros(B, dtype=bool)
        zi = np.zeros(B, dtype=np.int64)
        return StepRecord(obs, state, avail, np.zeros(B), z, z.copy(), z.copy(), np.ones(B, dtype=bool),
                          np.zeros(B), zi, zi.copy(), zi.copy())

    def step(self, actions) -> StepRecord:
        a = np.asarray(actions)
        B = self.num_envs
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"actions must be integers, got dtype {a.dtype}")
        if a.shape != (B, 2):
            raise ValueError(f"actions must have shape {(B, 2)} (envs, agents), got {a.shape}")
        if ((a < 0) | (a >= self.n_actions)).any():
            raise ValueError(f"actions must be in 0..{self.n_actions - 1}")
        active = ~self._done
        if self.two_step:
            first = self._state == 0
            reward = np.where(self._state == 1, 7.0, np.where(self._state == 2, self.payoff[a[:, 0], a[:, 1]], 0.0))
            term = ~first
            self._state = np.where(first & active, 1 + a[:, 0], self._state)
        else:
            reward = self.payoff[a[:, 0], a[:, 1]].astype(np.float64)
            term = np.ones(B, dtype=bool)
        reward = np.where(active, reward, 0.0)
        term &= active
        self._t += active
        self._ret += reward
        ep_ret = np.where(term, self._ret, 0.0)
        ep_len = np.where(term, self._t, 0)
        if term.any():
            if self.autoreset:
                self._state[term] = 0
                self._t[term] = 0
                self._ret[term] = 0
            else:
                self._done |= term
        obs, state, avail = self._observe()
        z = np.zeros(B, dtype=bool)
        zi = np.zeros(B, dtype=np.int64)
        reset = term.copy() if self.autoreset else z.copy()
        return StepRecord(obs, state, avail, reward, term, z.copy(), z.copy(), reset, ep_ret, ep_len, zi, zi.copy())

    def payoff_of(self, env_index: int = 0):
        """The true payoff table of env `env_index`'s current state (None where it pays nothing yet)."""
        if not self.two_step:
            return self.payoff
        st = int(self._state[env_index])
        return None if st == 0 else (np.full((2, 2), 7.0) if st == 1 else self.payoff)

    def close(self) -> None:
        pass
