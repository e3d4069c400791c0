"""Win rates of random play and of SMAC's heuristic on a map, for both stat profiles.

Usage: python benchmarks/winrates.py [--map 2c_vs_64zg] [--episodes 100]
"random": each agent picks uniformly among its available actions. "heuristic": SMAC's
`heuristic_ai` (every agent attacks its nearest enemy and keeps it until it dies, spec 4.6).
"""
import argparse

import numpy as np

from sims import VecEnv


def run(map_name, profile, policy, episodes, seed=0):
    B = min(episodes, 50)
    env = VecEnv(map_name, B, seed=seed, profile=profile, heuristic_ai=(policy == "heuristic"))
    rec = env.reset()
    rng = np.random.default_rng(seed)
    wins, done, kills, rets = 0, 0, [], []
    while done < episodes:
        acts = (rng.random(rec.avail.shape) * rec.avail).argmax(-1)
        rec = env.step(acts)
        for b in np.flatnonzero(rec.terminated):
            if done < episodes:
                done += 1
                wins += int(rec.won[b])
                kills.append(rec.dead_enemies[b])
                rets.append(rec.episode_return[b])
    return wins / episodes, float(np.mean(kills)), float(np.mean(rets))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--map", default="2c_vs_64zg")
    p.add_argument("--episodes", type=int, default=100)
    a = p.parse_args()
    print(f"{a.map}, {a.episodes} episodes each")
    print("| profile | policy | win rate | mean enemies killed | mean return |")
    print("|---|---|---:|---:|---:|")
    for profile in ("lotv", "liberty"):
        for policy in ("random", "heuristic"):
            wr, k, r = run(a.map, profile, policy, a.episodes)
            print(f"| {profile} | {policy} | {wr:.0%} | {k:.1f} | {r:.2f} |", flush=True)


if __name__ == "__main__":
    main()
