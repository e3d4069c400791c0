"""Greedy evaluation of a saved policy (a checkpoint or a shipped policy), independent of any run in progress."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import EVAL_SEED, check_episodes, check_seed
from ..core.envs import make_env_for
from ..core.runner import Runner
from ..files import metrics
from ..files.checkpoint import check_compatible
from ..files.loading import load_policy
from ..files.rundir import RunDir


def evaluate_policy(cfg, agent, meta: dict, episodes: int = 32, seed: int = EVAL_SEED, device="cpu",
                    where="checkpoint") -> dict:
    """Greedy episodes of loaded networks (`load_policy`'s), all at once, from `seed`."""
    check_episodes(episodes)
    check_seed("--seed", seed)
    env = make_env_for(cfg, episodes, seed, autoreset=False)
    info = env.get_env_info()
    check_compatible(meta, {"obs_dim": info["obs_shape"], "n_actions": info["n_actions"],
                            "state_dim": info["state_shape"]}, where)
    runner = Runner(env, agent, torch.device(device), cfg.learner.gamma)
    b = runner.run(0.0, np.random.default_rng(seed))
    return {"win_rate": float(b.won.mean()), "return": float(b.episode_return.mean()),
            "dead_enemies": float(b.dead_enemies.mean()), "episodes": int(b.size), "meta": meta}


def evaluate_checkpoint(path, episodes: int = 32, seed: int = EVAL_SEED, device="cpu") -> dict:
    check_episodes(episodes)  # before loading anything: a typo is one line, at once
    check_seed("--seed", seed)
    cfg, agent, mixer, meta = load_policy(path, device)
    return evaluate_policy(cfg, agent, meta, episodes, seed, device, where=path)


def best_checkpoint(run_dir) -> tuple[Path, int, float]:
    """The run's step checkpoint whose evaluation was best: (path, env steps, that evaluation's win rate).
    A checkpoint is judged by the last evaluation at or before its step (the policy then is at most one
    `run.test_interval` older); ties go to the later checkpoint. For the absolute metric (Colas et al. 2018;
    Gorsane et al. 2022): the best policy a run found, re-evaluated with more episodes."""
    try:
        t_ev, win = metrics.series(run_dir, kinds=("eval",)).get(("eval", "test_win_rate"), ((), ()))
    except metrics.MetricsMissing as e:
        raise ValueError(str(e)) from None
    evals = sorted(zip((int(t) for t in t_ev), (float(w) for w in win)))
    best = None
    for t, p in RunDir(run_dir).step_checkpoints():
        before = [w for te, w in evals if te <= t]
        if not before:
            continue
        if best is None or before[-1] >= best[2]:
            best = (p, t, before[-1])
    if best is None:
        raise ValueError(f"{run_dir}: no step checkpoint with an evaluation at or before it")
    return best


def absolute_evaluation(run_dir, episodes: int, seed: int = EVAL_SEED, device="cpu") -> dict:
    """The absolute metric of a run: its best checkpoint (`best_checkpoint`) evaluated greedily over `episodes`."""
    path, t, selected = best_checkpoint(run_dir)
    ev = evaluate_checkpoint(path, episodes, seed, device)
    # how far the run had trained when this was measured: a run trained on after it makes the file stale
    last = RunDir(run_dir).step_checkpoints()[-1][0]
    return {"checkpoint": path.name, "t_env": t, "run_t_env": last,
            "selected_by_test_win_rate": selected,
            "episodes": ev["episodes"], "win_rate": ev["win_rate"], "return": ev["return"],
            "dead_enemies": ev["dead_enemies"], "seed": seed}
