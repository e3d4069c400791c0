"""`EpisodeBuffer`: whole episodes stored at their real length, padded only when a batch is drawn.

The steps of every episode lie back to back in one arena (a ring of steps); a batch gathers its episodes
into padded arrays with one fancy index per field. A 2c_vs_64zg episode of 40 steps takes 41 steps' room
(~90 KiB) instead of the episode limit's 401 (~0.83 MiB), so 5,000 episodes fit in well under 1 GiB.

Episodes keep PyMARL's slots: slot `next` is overwritten when the buffer is full, and a batch samples slot
indices, so on the same seed this buffer draws the same episodes as one padded to the episode limit.
The arena starts at `INITIAL_STEPS` steps' room per episode and grows (x1.5) when the episodes get longer,
up to the episode limit's worth; where memory refuses a growth, it stops growing and drops the oldest
episodes instead (`capped` says why).
"""
from __future__ import annotations

import collections

import numpy as np
import torch

INITIAL_STEPS = 32  # room per episode in a new arena, in steps (a 2c battle lasts 20-45 steps)


def step_layout(n_agents: int, obs_dim: int, state_dim: int, n_actions: int, obs_dtype=np.float16) -> dict:
    """name -> (shape of one arena row, dtype). obs/state/avail are kept for the T+1 states of an episode,
    the rest for its T steps (the row after an episode's last step is left as it is)."""
    n = n_agents
    return {
        "obs": ((n, obs_dim), obs_dtype),
        "state": ((state_dim,), obs_dtype),
        "avail": ((n, n_actions), bool),
        "actions": ((n,), np.int16),
        "reward": ((), np.float32),
        "terminal": ((), bool),  # ends without bootstrapping
        "mc_return": ((), np.float32),
    }


STATE_FIELDS = ("obs", "state", "avail")
STEP_FIELDS = ("actions", "reward", "terminal", "mc_return")


def step_nbytes(n_agents: int, obs_dim: int, state_dim: int, n_actions: int, obs_dtype=np.float16) -> int:
    """Bytes one stored step takes."""
    return sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
               for shape, dt in step_layout(n_agents, obs_dim, state_dim, n_actions, obs_dtype).values())


def buffer_nbytes(capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int, n_actions: int,
                  obs_dtype=np.float16, steps_per_episode: int | None = None) -> int:
    """The memory of a buffer's arena with room for `steps_per_episode` steps per episode (default: a new
    arena's); `steps_per_episode = episode_limit + 1` is the most it ever takes."""
    per = min(episode_limit + 1, INITIAL_STEPS) if steps_per_episode is None else steps_per_episode
    return (int(capacity) * int(per) + 1) * step_nbytes(n_agents, obs_dim, state_dim, n_actions, obs_dtype)


def describe_buffer(capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int, n_actions: int,
                    obs_dtype=np.float16) -> str:
    dims = (n_agents, obs_dim, state_dim, n_actions, obs_dtype)
    start = buffer_nbytes(capacity, episode_limit, *dims)
    most = buffer_nbytes(capacity, episode_limit, *dims, steps_per_episode=episode_limit + 1)
    return (f"episode buffer: {capacity} episodes at their real length ({step_nbytes(*dims) / 1024:.1f} KiB per step): "
            f"{start / 2**20:,.0f} MiB to start, growing with the episodes up to {most / 2**20:,.0f} MiB "
            f"if every one lasted the {episode_limit}-step limit")


class EpisodeBuffer:
    """A ring of `capacity` episodes whose steps share one arena.

    Observations and states are stored as float16, masks as booleans and actions as int16.
    `can_grow(nbytes) -> bool` is asked before the arena takes more memory (default: always yes).
    """

    def __init__(self, capacity: int, episode_limit: int, n_agents: int, obs_dim: int, state_dim: int,
                 n_actions: int, obs_dtype=np.float16, can_grow=None):
        self.capacity, self.T = int(capacity), int(episode_limit)
        self._dims = (n_agents, obs_dim, state_dim, n_actions, obs_dtype)
        self._layout = step_layout(*self._dims)
        self.fields = tuple(self._layout)
        self._can_grow = can_grow or (lambda nbytes: True)
        self.max_rows = self.capacity * (self.T + 1)  # every episode at the limit: the padded buffer's room
        self._alloc(min(self.max_rows, self.capacity * min(self.T + 1, INITIAL_STEPS)))
        self.start = np.zeros(self.capacity, dtype=np.int64)  # arena row of each slot's first state
        self.length = np.full(self.capacity, -1, dtype=np.int32)  # steps of each slot's episode; -1: empty
        self.order: collections.deque = collections.deque()  # slots in the arena, oldest first
        self.head = 0  # the arena row the next episode is written at (unless it wraps to 0)
        self.size = 0  # slots filled so far (PyMARL's `episodes_in_buffer`)
        self.next = 0  # the slot the next episode goes to
        self.episodes_added = 0
        self.capped: str | None = None  # why the arena stopped growing, once it did

    def _alloc(self, rows: int) -> None:
        # one more row than the arena: the zero row every padded position of a batch points at
        self.rows = int(rows)
        for name, (shape, dt) in self._layout.items():
            setattr(self, name, np.zeros((self.rows + 1, *shape), dtype=dt))

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, k).nbytes for k in self.fields)

    @property
    def steps_stored(self) -> int:
        return int(sum(int(self.length[s]) + 1 for s in self.order))

    @property
    def episodes(self) -> int:
        """Episodes held now (fewer than `size` only once a capped arena has dropped some)."""
        return len(self.order)

    def describe(self) -> str:
        return describe_buffer(self.capacity, self.T, *self._dims)

    # ---- adding ----------------------------------------------------------------------------------------
    def add(self, batch) -> None:
        """Store a round: an `EpisodeBatch`, or a dict of its arrays (`learner_host.compact`)."""
        get = batch.__getitem__ if isinstance(batch, dict) else batch.__getattribute__
        length = np.asarray(get("length"))
        arrays = {name: get(name) for name in self.fields}
        for b in range(len(length)):
            self._add_one(self.next, int(length[b]), {name: a[b] for name, a in arrays.items()})
            self.next = (self.next + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)
            self.episodes_added += 1

    def _add_one(self, slot: int, L: int, ep: dict) -> None:
        if self.length[slot] >= 0:  # the slot's old episode goes (when the buffer is full it is the oldest)
            self._drop(slot)
        p = self._room(L + 1)
        for name in STATE_FIELDS:
            getattr(self, name)[p:p + L + 1] = ep[name][:L + 1]
        for name in STEP_FIELDS:
            getattr(self, name)[p:p + L] = ep[name][:L]
        self.start[slot], self.length[slot] = p, L
        self.order.append(slot)
        self.head = p + L + 1

    def _drop(self, slot: int) -> None:
        if self.order and self.order[0] == slot:
            self.order.popleft()
        else:
            self.order.remove(slot)
        self.length[slot] = -1

    def _room(self, need: int) -> int:
        """The arena row where `need` rows are free, making room: the oldest episodes in the way are moved
        out by growing the arena, or (once it cannot grow) dropped."""
        while True:
            if need > self.rows:
                self._grow_or_drop(need)
                continue
            if self.head + need <= self.rows:
                p = self.head
            elif self.order and self.start[self.order[0]] >= self.head:
                # no room before the arena's end, and older episodes still lie there: they go first
                self._grow_or_drop(need)
                continue
            else:
                p = 0
            if self.order:
                s = self.start[self.order[0]]  # only the oldest can be in the way: writes go round in order
                if s < p + need and s + self.length[self.order[0]] + 1 > p:
                    self._grow_or_drop(need)
                    continue
            return p

    def _grow_or_drop(self, need: int) -> None:
        rows = min(self.max_rows, max(self.rows + need, int(self.rows * 1.5)))
        if rows > self.rows and self.capped is None:
            nbytes = (rows + 1) * sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
                                      for shape, dt in self._layout.values())
            if self._can_grow(nbytes):
                self._regrow(rows)
                return
            self.capped = (f"the episode buffer stopped growing at {self.rows:,} steps ({self.nbytes / 2**20:,.0f} MiB): "
                           f"{nbytes / 2**20:,.0f} MiB are not available; it now holds fewer than "
                           f"{self.capacity:,} episodes, dropping the oldest")
        if not self.order:
            raise ValueError(f"an episode of {need - 1} steps does not fit the episode buffer's arena of "
                             f"{self.rows} steps")
        self._drop(self.order[0])

    def _regrow(self, rows: int) -> None:
        """A larger arena with the episodes copied in, oldest first, from row 0."""
        old = {name: getattr(self, name) for name in self.fields}
        self._alloc(rows)
        p = 0
        for slot in self.order:
            s, L = int(self.start[slot]), int(self.length[slot])
            for name in self.fields:
                getattr(self, name)[p:p + L + 1] = old[name][s:s + L + 1]
            self.start[slot] = p
            p += L + 1
        self.head = p

    # ---- sampling ----------------------------------------------------------------------------------------
    def can_sample(self, batch_size: int) -> bool:
        return self.episodes >= batch_size

    def sample(self, batch_size: int, rng: np.random.Generator, device="cpu") -> dict:
        """A batch of episodes as torch tensors, padded (with zeros) to the longest sampled episode."""
        if not self.can_sample(batch_size):
            raise ValueError(f"the buffer holds {self.episodes} episodes, fewer than batch_size={batch_size}")
        if self.episodes == self.size:
            idx = np.sort(rng.choice(self.size, size=batch_size, replace=False))
        else:  # a capped arena has dropped some slots' episodes
            held = np.flatnonzero(self.length >= 0)
            idx = np.sort(held[rng.choice(len(held), size=batch_size, replace=False)])
        L = self.length[idx].astype(np.int64)
        T = int(L.max())
        t = np.arange(T + 1)
        start = self.start[idx][:, None]
        pad = self.rows  # the zero row
        at_state = np.where(t[None, :] <= L[:, None], start + t[None, :], pad)  # [B, T+1]
        at_step = np.where(t[None, :T] < L[:, None], start + t[None, :T], pad)  # [B, T]
        tt = lambda a, dt=None: torch.from_numpy(a).to(device=device, dtype=dt)  # noqa: E731
        return {
            "obs": tt(self.obs[at_state], torch.float32),
            "state": tt(self.state[at_state], torch.float32),
            "avail": tt(self.avail[at_state]),
            "actions": tt(self.actions[at_step], torch.long),
            "reward": tt(self.reward[at_step]),
            "terminal": tt(self.terminal[at_step], torch.float32),
            "filled": tt(t[None, :T] < L[:, None], torch.float32),
            "mc_return": tt(self.mc_return[at_step]),
        }

    # ---- checkpoints ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The episodes oldest first, their steps back to back (a checkpoint's size follows their length)."""
        slots = np.array(list(self.order), dtype=np.int64)
        rows = np.concatenate([np.arange(self.start[s], self.start[s] + self.length[s] + 1) for s in slots]) \
            if len(slots) else np.zeros(0, dtype=np.int64)
        d = {name: torch.from_numpy(getattr(self, name)[rows]) for name in self.fields}
        d.update(slots=torch.from_numpy(slots), lengths=torch.from_numpy(self.length[slots].astype(np.int64)),
                 size=self.size, next=self.next, episodes_added=self.episodes_added)
        return d

    def load_state_dict(self, d: dict) -> None:
        if "slots" not in d:
            return self._load_padded(d)
        slots, lengths = d["slots"].numpy(), d["lengths"].numpy()
        if len(slots) and (slots.max() >= self.capacity or int(d["size"]) > self.capacity):
            raise ValueError(f"saved buffer holds slots up to {int(slots.max()) + 1}, more than this buffer's "
                             f"capacity {self.capacity}")
        arrays = {name: d[name].numpy() for name in self.fields}
        p = 0
        for slot, L in zip(slots.tolist(), lengths.tolist()):
            self._add_one(slot, L, {name: a[p:p + L + 1] for name, a in arrays.items()})
            p += L + 1
        self.size, self.next, self.episodes_added = int(d["size"]), int(d["next"]), int(d["episodes_added"])

    def _load_padded(self, d: dict) -> None:
        """A buffer saved by an earlier version, each episode padded to the limit: [size, T+1, ...] arrays."""
        n = int(d["size"])
        if n > self.capacity:
            raise ValueError(f"saved buffer holds {n} episodes, more than this buffer's capacity {self.capacity}")
        nxt = int(d["next"])
        order = list(range(nxt, n)) + list(range(nxt)) if n == self.capacity else list(range(n))
        arrays = {name: d[name].numpy() for name in self.fields}
        lengths = d["length"].numpy()
        for slot in order:
            self._add_one(slot, int(lengths[slot]), {name: a[slot] for name, a in arrays.items()})
        self.size, self.next, self.episodes_added = n, nxt, int(d["episodes_added"])
