"""Training throughput of QMIX on 2c_vs_64zg with the shipped preset's schedule.

Usage: python benchmarks/bench_train.py [--preset qmix_2c_vs_64zg] [--seconds 60] [--device cpu]
Prints: acting env steps/s (epsilon-greedy rounds, no learning), time per update at batch 32
episodes for short (as collected) and full-length (400-step) episodes, and end-to-end training
env steps/s (collect + store + updates, the preset's updates per round) with the learner in its own
process (the 2c presets' default: acting and learning overlap, one round apart) and inline (PyMARL's
schedule: collect, then update, torch and numba threads over both cores).
"""
import argparse
import os
import platform
import time

import numpy as np
import torch

from models.config import load_config
from models.learner_host import LearnerCore
from models.train import Trainer


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
    a = p.parse_args()
    base = [f'run.device="{a.device}"', "run.test_interval=100000000", "run.save_interval=0",
            'run.runs_dir="/tmp/qmix-bench-runs"']
    cfg = load_config(a.preset, base + ["run.learner_process=false"])
    L = cfg.learner
    print(f"# {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"device {a.device}")
    print(f"# preset {a.preset}: {cfg.env.num_envs} envs per round, {L.updates_per_round} updates of "
          f"{L.batch_size} episodes per round")
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

    def time_updates(k=10):
        batch = core.buffer.sample(L.batch_size, rng, tr.device)
        core.learner.update(batch)
        t = time.perf_counter()
        for _ in range(k):
            core.learner.update(core.buffer.sample(L.batch_size, rng, tr.device))
        return (time.perf_counter() - t) / k * 1e3, batch["actions"].shape[1]

    upd_short, T_short = time_updates()
    core.buffer.length[: core.buffer.size] = core.buffer.T  # pretend every stored episode ran the full 400 steps
    core.buffer.filled[: core.buffer.size] = True
    upd_full, T_full = time_updates(5)
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


if __name__ == "__main__":
    main()
