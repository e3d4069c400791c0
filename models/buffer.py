"""`EpisodeBuffer`: whole episodes in compact arrays, sampled uniformly."""
from __future__ import annotations

import numpy as np
import torch

from .episode import EpisodeBatch


class EpisodeBuffer:
    """A ring of `capacity` episodes, each padded to `episode_limit` steps.

    Observations and states are stored as float16, masks as booleans and actions as int16:
    on 2c_vs_64zg an episode slot costs ~0.8 MB instead of ~1.9 MB as float32/int64.
    """

    def __init__(self, capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int,
                 n_actions: int, obs_dtype=np.float16):
        self.capacity, self.T = int(capacity), int(episode_limit)
        C, T, n = self.capacity, self.T, n_agents
        self.obs = np.zeros((C, T + 1, n, obs_dim), dtype=obs_dtype)
        self.state = np.zeros((C, T + 1, state_dim), dtype=obs_dtype)
        self.avail = np.zeros((C, T + 1, n, n_actions), dtype=bool)
        self.actions = np.zeros((C, T, n), dtype=np.int16)
        self.reward = np.zeros((C, T), dtype=np.float32)
        self.terminal = np.zeros((C, T), dtype=bool)  # ends without bootstrapping
        self.filled = np.zeros((C, T), dtype=bool)
        self.mc_return = np.zeros((C, T), dtype=np.float32)
        self.length = np.zeros(C, dtype=np.int32)
        self.size = 0
        self.next = 0
        self.episodes_added = 0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.obs, self.state, self.avail, self.actions, self.reward, self.terminal,
                                       self.filled, self.mc_return, self.length))

    def describe(self) -> str:
        per = self.nbytes / self.capacity
        return (f"episode buffer: {self.capacity} episodes x {self.T} steps, "
                f"{self.nbytes / 2**20:,.0f} MiB ({per / 2**20:.2f} MiB per episode)")

    def add(self, batch: EpisodeBatch | dict) -> None:
        """Store a round: an `EpisodeBatch`, or a dict of its arrays (`learner_host.compact`)."""
        get = batch.__getitem__ if isinstance(batch, dict) else batch.__getattribute__
        length = get("length")
        B = len(length)
        idx = (self.next + np.arange(B)) % self.capacity
        T = int(length.max())
        # only the per-step flags need clearing past an episode's end: stale observations there are
        # never read unmasked (the GRU is causal and the loss is masked by `filled`)
        for name in ("obs", "state", "avail"):
            getattr(self, name)[idx, :T + 1] = get(name)[:, :T + 1]
        for name in ("actions", "reward", "terminal", "filled", "mc_return"):
            dst = getattr(self, name)
            dst[idx, T:] = 0
            dst[idx, :T] = get(name)[:, :T]
        self.length[idx] = length
        self.next = int((self.next + B) % self.capacity)
        self.size = min(self.size + B, self.capacity)
        self.episodes_added += B

    def can_sample(self, batch_size: int) -> bool:
        return self.size >= batch_size

    def sample(self, batch_size: int, rng: np.random.Generator, device="cpu") -> dict:
        """A batch of episodes as torch tensors, cut to the longest sampled episode."""
        if not self.can_sample(batch_size):
            raise ValueError(f"the buffer holds {self.size} episodes, fewer than batch_size={batch_size}")
        idx = np.sort(rng.choice(self.size, size=batch_size, replace=False))
        T = int(self.length[idx].max())
        t = lambda a, dt=None: torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dt)  # noqa: E731
        return {
            "obs": t(self.obs[idx, :T + 1], torch.float32),
            "state": t(self.state[idx, :T + 1], torch.float32),
            "avail": t(self.avail[idx, :T + 1]),
            "actions": t(self.actions[idx, :T], torch.long),
            "reward": t(self.reward[idx, :T]),
            "terminal": t(self.terminal[idx, :T], torch.float32),
            "filled": t(self.filled[idx, :T], torch.float32),
            "mc_return": t(self.mc_return[idx, :T]),
        }

    def state_dict(self) -> dict:
        d = {k: torch.from_numpy(getattr(self, k)[: self.size].copy()) for k in
             ("obs", "state", "avail", "actions", "reward", "terminal", "filled", "mc_return", "length")}
        d.update(size=self.size, next=self.next, episodes_added=self.episodes_added)
        return d

    def load_state_dict(self, d: dict) -> None:
        n = int(d["size"])
        if n > self.capacity:
            raise ValueError(f"saved buffer holds {n} episodes, more than this buffer's capacity {self.capacity}")
        for k in ("obs", "state", "avail", "actions", "reward", "terminal", "filled", "mc_return", "length"):
            getattr(self, k)[:n] = d[k].numpy()
        self.size, self.next, self.episodes_added = n, int(d["next"]), int(d["episodes_added"])
