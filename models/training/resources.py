"""Memory a configuration will take, checked before anything is allocated.

A buffer of 10^8 episodes or 10^8 environments would otherwise die deep inside numpy (or in the
learner process), or swap for minutes; asked up front, the error names the key and both sizes.
"""
from __future__ import annotations

import os

from ..core.buffer import buffer_nbytes
from ..errors import ResourceError

GiB = 2**30


def available_memory() -> int | None:
    """Bytes the system can give a new allocation without swapping (MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def round_nbytes(num_envs: int, dims: dict) -> int:
    """What one round of `num_envs` episodes holds: the runner's padded float32 arrays, the compact float16
    copy sent to the learner, and the simulator's own per-env state (a generous per-env allowance)."""
    T, n, A = dims["episode_limit"], dims["n_agents"], dims["n_actions"]
    per_step = n * dims["obs_dim"] * 4 + dims["state_dim"] * 4 + n * A + n * 8 + 4 * 4 + n * 4
    compact = n * dims["obs_dim"] * 2 + dims["state_dim"] * 2 + n * A
    sim = 64 * 1024  # units' arrays, observations and masks of one battle
    return int(num_envs) * ((T + 1) * (per_step + compact) + sim)


def check_memory(cfg, dims: dict, available: int | None = None) -> dict:
    """Raise `ResourceError` when the run would need more memory than is available; the estimate by key."""
    L, E, R = cfg.learner, cfg.env, cfg.run
    need = {
        "learner.buffer_size": buffer_nbytes(L.buffer_size, dims["episode_limit"], dims["n_agents"],
                                             dims["obs_dim"], dims["state_dim"], dims["n_actions"]),
        "env.num_envs": round_nbytes(E.num_envs, dims),
        "run.test_episodes": round_nbytes(R.test_episodes, dims),
    }
    avail = available_memory() if available is None else available
    total = sum(need.values())
    if avail is not None and total > avail:
        key = max(need, key=need.get)
        value = {"learner.buffer_size": L.buffer_size, "env.num_envs": E.num_envs,
                 "run.test_episodes": R.test_episodes}[key]
        parts = ", ".join(f"{k} {v / GiB:,.1f} GiB" for k, v in need.items())
        raise ResourceError(f"{key} = {value:,} asks for {need[key] / GiB:,.1f} GiB ({parts}; "
                            f"{total / GiB:,.1f} GiB in all), but only {avail / GiB:,.1f} GiB are available; "
                            f"lower {key}")
    return need
