"""Greedy evaluation of a saved policy (a checkpoint or a shipped policy), independent of any run in progress."""
from __future__ import annotations

import numpy as np
import torch

from .checkpoint import check_compatible, load_checkpoint
from .config import check_seed, from_dict
from .envs import make_env_for
from .learner_host import build_networks, load_actor_weights
from .runner import Runner


def load_policy(path, device="cpu"):
    """(config, agent, mixer, meta) from a checkpoint file, a run directory, or a shipped policy's `.npz` file
    (`models.policies`; its `meta` reads like a checkpoint's, with `"policy"`: its name)."""
    from .policies import is_policy_file, load_policy_file

    if is_policy_file(path):
        cfg, agent, mixer, card = load_policy_file(path, device)
        return cfg, agent, mixer, card.meta()
    meta, tensors = load_checkpoint(path, device)
    cfg = from_dict(meta["config"])
    agent, mixer = build_networks(cfg, meta["fingerprint"], device)  # the fingerprint holds the env's dims
    load_actor_weights(agent, mixer, tensors["learner"])
    return cfg, agent, mixer, meta


def evaluate_policy(cfg, agent, meta: dict, episodes: int = 32, seed: int = 12345, device="cpu",
                    where="checkpoint") -> dict:
    """Greedy episodes of loaded networks (`load_policy`'s), all at once, from `seed`."""
    if not 1 <= episodes <= 100_000:
        raise ValueError(f"--episodes: expected a whole number in [1, 100000], got {episodes}")
    check_seed("--seed", seed)
    env = make_env_for(cfg, episodes, seed, autoreset=False)
    info = env.get_env_info()
    check_compatible(meta, {"obs_dim": info["obs_shape"], "n_actions": info["n_actions"],
                            "state_dim": info["state_shape"]}, where)
    runner = Runner(env, agent, torch.device(device), cfg.learner.gamma)
    b = runner.run(0.0, np.random.default_rng(seed))
    return {"win_rate": float(b.won.mean()), "return": float(b.episode_return.mean()),
            "dead_enemies": float(b.dead_enemies.mean()), "episodes": int(b.size), "meta": meta}


def evaluate_checkpoint(path, episodes: int = 32, seed: int = 12345, device="cpu") -> dict:
    if not 1 <= episodes <= 100_000:  # before loading anything: a typo is one line, at once
        raise ValueError(f"--episodes: expected a whole number in [1, 100000], got {episodes}")
    check_seed("--seed", seed)
    cfg, agent, mixer, meta = load_policy(path, device)
    return evaluate_policy(cfg, agent, meta, episodes, seed, device, where=path)
