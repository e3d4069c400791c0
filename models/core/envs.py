"""Building the environments a config asks for (SMAC maps and matrix games alike)."""
from __future__ import annotations

import sims


def make_env_for(cfg, num_envs: int, seed: int, autoreset: bool):
    """A `VecEnv` (or matrix game) for `cfg.env`, with the config's SMAC options and stat profile."""
    opts = dict(cfg.env.options)
    if cfg.env.map_name not in sims.list_matrix_games():
        opts["profile"] = cfg.env.profile
    return sims.make_vec_env(cfg.env.map_name, num_envs, seed=seed, autoreset=autoreset, **opts)
