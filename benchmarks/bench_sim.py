"""Env steps per second of `sims.VecEnv` with random available actions.

Usage: python benchmarks/bench_sim.py [--maps 2c_vs_64zg 27m_vs_30m] [--batch 1 16 64 256] [--seconds 3]
One env step = one step of one environment (B of them per batched call). Includes computing
obs, state and masks every step and drawing the random actions.
"""
import argparse
import os
import platform
import time

import numpy as np

from sims import VecEnv


def bench(map_name, B, seconds):
    env = VecEnv(map_name, B, seed=0)
    rec = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(10):  # warm-up (compiles the kernel on first use)
        rec = env.step((rng.random(rec.avail.shape) * rec.avail).argmax(-1))
    # time the compiled kernel inside the real loop by wrapping it
    world = env.battle.world
    inner = world.advance
    spent = [0.0]

    def timed(*a, **k):
        t = time.perf_counter()
        inner(*a, **k)
        spent[0] += time.perf_counter() - t

    world.advance = timed
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        rec = env.step((rng.random(rec.avail.shape) * rec.avail).argmax(-1))
        n += 1
    dt = time.perf_counter() - t0
    return {"steps_per_s": n * B / dt, "kernel_ms": spent[0] / n * 1e3, "total_ms": dt / n * 1e3}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--maps", nargs="+", default=["2c_vs_64zg", "27m_vs_30m"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 16, 64, 256])
    p.add_argument("--seconds", type=float, default=3.0)
    a = p.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print("| map | B | env steps/s | ms per batched step | of which kernel (ms) | rest: masks, obs, state, reward, actions (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for m in a.maps:
        for B in a.batch:
            r = bench(m, B, a.seconds)
            print(f"| {m} | {B} | {r['steps_per_s']:,.0f} | {r['total_ms']:.3f} | {r['kernel_ms']:.3f} | "
                  f"{r['total_ms'] - r['kernel_ms']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
