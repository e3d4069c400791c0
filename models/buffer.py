"""`EpisodeBuffer`: whole episodes in compact arrays, sampled uniformly."""
from __future__ import annotations

import numpy as np
import torch

from .episode import EpisodeBatch


def _layout(capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int, n_actions: int,
            obs_dtype) -> dict:
    """name -> (shape, dtype) of every array of a buffer: what it allocates and what it costs."""
    C, T, n = capacity, episode_limit, n_agents
    return {
        "obs": ((C, T + 1, n, obs_dim), obs_dtype),
        "state": ((C, T + 1, state_dim), obs_dtype),
        "avail": ((C, T + 1, n, n_actions), bool),
        "actions": ((C, T, n), np.int16),
        "reward": ((C, T), np.float32),
        "terminal": ((C, T), bool),  # ends without bootstrapping
        "filled": ((C, T), bool),
        "mc_return": ((C, T), np.float32),
        "length": ((C,), np.int32),
    }


def buffer_nbytes(capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int, n_actions: int,
                 obs_dtype=np.float16) -> int:
    """The memory a buffer of this size takes (also for one that lives in another process)."""
    return sum(int(np.prod(shape, dtype=object)) * np.dtype(dt).itemsize
               for shape, dt in _layout(capacity, episode_limit, n_agents, obs_dim, state_dim, n_actions,
                                        obs_dtype).values())


def describe_buffer(capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int, n_actions: int,
                    obs_dtype=np.float16) -> str:
    total = buffer_nbytes(capacity, episode_limit, n_agents, obs_dim, state_dim, n_actions, obs_dtype)
    return (f"episode buffer: {capacity} episodes x {episode_limit} steps, "
            f"{total / 2**20:,.0f} MiB ({total / capacity / 2**20:.2f} MiB per episode)")


class EpisodeBuffer:
    """A ring of `capacity` episodes, each padded to `episode_limit` steps.

    Observations and states are stored as float16, masks as booleans and actions as int16:
    on 2c_vs_64zg an episode slot costs ~0.8 MB instead of ~1.9 MB as float32/int64.
    """

    def __init__(self, capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int,
                 n_actions: int, obs_dtype=np.float16):
        self.capacity, self.T = int(capacity), int(episode_limit)
        self._dims = (n_agents, obs_dim, state_dim, n_actions, obs_dtype)
        layout = _layout(self.capacity, self.T, *self._dims)
        self.fields = tuple(layout)
        for name, (shape, dt) in layout.items():
            setattr(self, name, np.zeros(shape, dtype=dt))
        self.size = 0
        self.next = 0
        self.episodes_added = 0

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, k).nbytes for k in self.fields)

    def describe(self) -> str:
        return describe_buffer(self.capacity, self.T, *self._dims)

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
        # a full buffer is saved from its own arrays (no 0.8 GiB copy); a partial one is cut to its episodes
        # (torch.save would write a view's whole storage)
        cut = (lambda a: a) if self.size == self.capacity else (lambda a: a[: self.size].copy())
        d = {k: torch.from_numpy(cut(getattr(self, k))) for k in self.fields}
        d.update(size=self.size, next=self.next, episodes_added=self.episodes_added)
        return d

    def load_state_dict(self, d: dict) -> None:
        n = int(d["size"])
        if n > self.capacity:
            raise ValueError(f"saved buffer holds {n} episodes, more than this buffer's capacity {self.capacity}")
        for k in self.fields:
            getattr(self, k)[:n] = d[k].numpy()
        self.size, self.next, self.episodes_added = n, int(d["next"]), int(d["episodes_added"])
