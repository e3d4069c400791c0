"""`EpisodeBatch`: the episodes of one lock-step round, as the runner recorded them (numpy)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EpisodeBatch:
    obs: np.ndarray  # [B, T+1, n, obs]
    state: np.ndarray  # [B, T+1, S]
    avail: np.ndarray  # [B, T+1, n, A]
    actions: np.ndarray  # [B, T, n]
    reward: np.ndarray  # [B, T]
    terminal: np.ndarray  # [B, T] true terminal (no bootstrap)
    filled: np.ndarray  # [B, T]
    mc_return: np.ndarray  # [B, T] discounted return from t
    length: np.ndarray  # [B]
    won: np.ndarray  # [B]
    episode_return: np.ndarray  # [B]
    q_taken: np.ndarray  # [B, T, n] the acting network's Q of the taken actions
    dead_enemies: np.ndarray  # [B]

    @property
    def size(self) -> int:
        return self.obs.shape[0]

    @property
    def max_len(self) -> int:
        return int(self.length.max())


def discounted_returns(reward: np.ndarray, filled: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = sum_k gamma^k r_{t+k} within each episode ([B, T] arrays)."""
    G = np.zeros_like(reward, dtype=np.float64)
    acc = np.zeros(reward.shape[0])
    for t in range(reward.shape[1] - 1, -1, -1):
        acc = reward[:, t] + gamma * acc * filled[:, t]
        G[:, t] = acc * filled[:, t]
    return G.astype(np.float32)
