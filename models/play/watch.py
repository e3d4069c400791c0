"""`watch(checkpoint, callbacks)`: greedy episodes of a saved policy, one battle at a time, with the
same step hooks as training (snapshots, pause, single-step, forced actions). No learning."""
from __future__ import annotations

import numpy as np
import torch

from ..core.envs import make_env_for
from ..core.probe import Probe
from ..core.runner import Runner
from ..core.trace import EpisodeTrace
from ..files.episode_file import EpisodeRecorder
from ..files.loading import load_policy
from ..training.callbacks import Callbacks, StepContext, StopRequested


def watch(checkpoint, callbacks: Callbacks, seed: int = 0, device="cpu", max_episodes: int | None = None,
          record: str | None = "auto", keep: int = 20) -> dict:
    """`checkpoint`: a checkpoint file, a run directory or a shipped policy's `.npz` (`models.files.policies`).
    `record`: a directory for the episode files of the last `keep` episodes played ("auto": the checkpoint's run
    directory's episodes/; none for a shipped policy, whose directory is the installed package; None: no files)."""
    from ..files.episode_file import checkpoint_ref, episode_header
    from ..files.rundir import run_dir_of_checkpoint
    from .recording import EpisodeRing

    cfg, agent, mixer, meta = load_policy(checkpoint, device)
    env = make_env_for(cfg, 1, seed, autoreset=False)
    probe = Probe(agent, mixer, cfg.algo.res_beta if cfg.algo.res else None)
    runner = Runner(env, agent, torch.device(device), cfg.learner.gamma)
    runner.mixer = mixer
    runner.tracer = EpisodeTrace(probe, cfg.learner.gamma)
    rng = np.random.default_rng(seed)
    state = {"t_env": 0, "episodes": 0}
    ring = None
    if record == "auto":
        rd = None if meta.get("policy") else run_dir_of_checkpoint(meta)
        record = None if rd is None else rd / "episodes"
    if record is not None and hasattr(env, "world"):
        # one ring per policy: a ring deletes the older files of its prefix, not another policy's
        prefix = f"watch_{meta['policy']}_s{seed}" if meta.get("policy") else f"watch_s{seed}"
        ring = EpisodeRing(record, prefix, keep)
        runner.recorder = EpisodeRecorder(0)
    runner.hook = lambda r, t, rec, q, acts: callbacks.on_step(
        StepContext(probe, env, t, rec, q, acts, state["t_env"], 0.0, runner.tracer))
    callbacks.on_start({"mode": "watch", "checkpoint": meta["path"], "config": cfg.to_dict(),
                        "env_info": env.get_env_info(), "algorithm": meta["algorithm"], "t_env": meta["t_env"],
                        "run_dir": meta.get("run_dir", ""), "policy": meta.get("policy")})
    ref = checkpoint_ref(meta, agent, mixer) if ring is not None else None
    try:
        while max_episodes is None or state["episodes"] < max_episodes:
            if callbacks.should_stop():
                break
            b = runner.run(0.0, rng)
            state["t_env"] += int(b.length.sum())
            state["episodes"] += 1
            over = runner.overestimation(b)
            if ring is not None:
                hdr = episode_header(cfg, "watch", checkpoint=ref, t_env=meta["t_env"], epsilon=0.0,
                                     seed=seed, episode_index=state["episodes"] - 1, algorithm=meta["algorithm"],
                                     dims=meta["fingerprint"])
                try:
                    path = ring.save(runner.recorder.finish(probe, hdr))
                    callbacks.on_recorded(str(path))
                except OSError as e:  # a recording is a convenience: watching goes on without it
                    getattr(callbacks, "log", print)(f"could not write an episode file under {record}: {e}")
            callbacks.on_episode({"t_env": state["t_env"], "episodes": state["episodes"],
                                  "return": float(b.episode_return[0]), "won": int(b.won[0]),
                                  "length": int(b.length[0]), "dead_enemies": int(b.dead_enemies[0]),
                                  "epsilon": 0.0, "overestimation": float(over[0])})
    except StopRequested:
        pass
    summary = {"episodes": state["episodes"], "t_env": state["t_env"]}
    callbacks.on_end(summary)
    return summary
