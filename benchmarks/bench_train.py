"""Training throughput of QMIX on 2c_vs_64zg with the shipped preset's schedule.

Usage: python benchmarks/bench_train.py [--preset qmix_2c_vs_64zg] [--seconds 60] [--device cpu] [--set K=V ...]
                                        [--recording]
Prints: acting env steps/s (epsilon-greedy rounds, no learning), time per update at batch 32
episodes for short (as collected) and full-length (400-step) episodes, and end-to-end training
env steps/s (collect + store + updates, the preset's updates per round) with the learner in its own
process (the 2c presets' default: acting and learning overlap, one round apart) and inline (PyMARL's
schedule: collect, then update, torch and numba threads over both cores).
With --recording it measures only what recording episode files costs: acting rounds with environment 0
recorded every round (the worst case: a run records every round until its first win) against none,
interleaved, and end-to-end training (learner process) with the preset's recording settings against none.
"""
import argparse
import os
import platform
import time

import numpy as np
import torch

from models.core.buffer import EpisodeBuffer
from models.config import load_config
from models.training.learner_host import LearnerCore
from models.training.train import Trainer


def end_to_end(cfg, seconds: float) -> tuple[float, Trainer]:
    tr = Trainer(cfg, log=lambda *x: None)  # fresh: epsilon schedule from the start, as a real run
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        tr.round()
    tr.catch_up()
    rate = tr.t_env / (time.perf_counter() - t0)
    tr.close()
    return rate, tr


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="qmix_2c_vs_64zg")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--recording", action="store_true")
    a = p.parse_args()
    base = [f'run.device="{a.device}"', "run.test_interval=100000000", "run.save_interval=0",
            'run.runs_dir="/tmp/qmix-bench-runs"', *a.overrides]
    if a.recording:
        return recording_cost(a, base)
    cfg = load_config(a.preset, base + ["run.learner_process=false"])
    L = cfg.learner
    print(f"# {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"device {a.device}")
    print(f"# preset {a.preset}: {cfg.env.num_envs} envs per round, replay ratio {L.replay_ratio:g} "
          f"({cfg.env.num_envs * L.replay_ratio / L.batch_size:g} updates of {L.batch_size} episodes per round), "
          f"target copy every {L.target_update_episodes} episodes")
    tr = Trainer(cfg, log=lambda *x: None)
    core = LearnerCore(cfg, {"obs_dim": tr.env.obs_dim, "state_dim": tr.env.state_dim, "n_agents": tr.env.n_agents,
                             "n_actions": tr.env.n_actions, "episode_limit": tr.env.episode_limit},
                       tr.device, tr.agent, tr.mixer)
    rng = np.random.default_rng(0)

    # acting only
    n, t0 = 0, time.perf_counter()
    lengths = []
    while time.perf_counter() - t0 < a.seconds / 4:
        b = tr.runner.run(0.5, rng)
        core.buffer.add(b)
        n += int(b.length.sum())
        lengths += list(b.length)
    act = n / (time.perf_counter() - t0)

    def time_updates(buf, k=10):
        batch = buf.sample(L.batch_size, rng, tr.device)
        core.learner.update(batch, buf.episodes_added)
        t = time.perf_counter()
        for _ in range(k):
            core.learner.update(buf.sample(L.batch_size, rng, tr.device), buf.episodes_added)
        return (time.perf_counter() - t) / k * 1e3, batch["actions"].shape[1]

    upd_short, T_short = time_updates(core.buffer)
    # the collected episodes stretched to the full 400 steps (their steps repeated): a batch at the limit
    T = core.buffer.T
    full_buf = EpisodeBuffer(L.batch_size, T, tr.env.n_agents, tr.env.obs_dim, tr.env.state_dim, tr.env.n_actions)
    while full_buf.size < L.batch_size:
        full = {k: np.resize(getattr(b, k), (b.size, T + (1 if k in ("obs", "state", "avail") else 0),
                                             *getattr(b, k).shape[2:]))
                for k in ("obs", "state", "avail", "actions", "reward", "mc_return")}
        full["terminal"] = np.zeros((b.size, T), dtype=bool)
        full_buf.add({**full, "length": np.full(b.size, T)})
    upd_full, T_full = time_updates(full_buf, 5)
    tr.close()

    inline, tr_i = end_to_end(cfg, a.seconds)
    proc, tr_p = end_to_end(load_config(a.preset, base + ["run.learner_process=true"]), a.seconds)
    print("| measure | value |")
    print("|---|---:|")
    print(f"| acting (epsilon-greedy rounds, no learning) | {act:,.0f} env steps/s |")
    print(f"| mean episode length while acting | {np.mean(lengths):.0f} steps |")
    print(f"| one update, batch {L.batch_size} episodes of {T_short} steps (as collected) | {upd_short:.0f} ms |")
    print(f"| one update, batch {L.batch_size} episodes of {T_full} steps (full length) | {upd_full:.0f} ms |")
    for name, rate, t in (("inline learner, 2 threads", inline, tr_i), ("learner process", proc, tr_p)):
        print(f"| end-to-end training over {a.seconds:.0f} s, {name} ({t.t_env:,d} env steps, {t.updates} updates) | "
              f"{rate:,.0f} env steps/s |")
    print(f"| updates per env step (learner process) | {tr_p.updates / max(tr_p.t_env, 1):.4f} |")


def recording_cost(a, base):
    from models.files.episode_file import EpisodeRecorder

    off = ["run.record_interval=0", "run.record_first_win=false"]
    cfg = load_config(a.preset, base + ["run.learner_process=false"] + off)
    print(f"# {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; preset {a.preset}")
    tr = Trainer(cfg, log=lambda *x: None)
    rng = np.random.default_rng(0)
    rec = EpisodeRecorder(0)
    rate = {False: [0, 0.0], True: [0, 0.0]}
    t_end = time.perf_counter() + a.seconds / 2
    while time.perf_counter() < t_end:
        for on in (False, True):  # interleaved, so drifts of a shared machine hit both
            tr.runner.recorder = rec if on else None
            t = time.perf_counter()
            b = tr.runner.run(0.5, rng)
            if on:
                rec.finish(tr.probe, {})
            rate[on][0] += int(b.length.sum())
            rate[on][1] += time.perf_counter() - t
    tr.close()
    e2e = {}
    for name, extra in (("no recording", off), ("the preset's recording (first win + interval)", [])):
        e2e[name] = end_to_end(load_config(a.preset, base + ["run.learner_process=true"] + extra), a.seconds)[0]
    r0, r1 = (rate[k][0] / rate[k][1] for k in (False, True))
    print("| measure | no recording | recording | cost |")
    print("|---|---:|---:|---:|")
    print(f"| acting, env 0 recorded every round | {r0:,.0f} env steps/s | {r1:,.0f} env steps/s | "
          f"{1 - r1 / r0:.1%} |")
    (n0, v0), (n1, v1) = e2e.items()
    print(f"| end-to-end, learner process, {a.seconds:.0f} s | {v0:,.0f} env steps/s | {v1:,.0f} env steps/s | "
          f"{1 - v1 / v0:.1%} |")


if __name__ == "__main__":
    main()
