"""The `qmix-workbench` command."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="qmix-workbench", description=__doc__)
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("render", help="render a battle of a scenario to a PNG")
    r.add_argument("--map", default="2c_vs_64zg")
    r.add_argument("--steps", type=int, default=20)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", default="frame.png")
    r.add_argument("--policy", choices=["random", "heuristic"], default="random")
    sub.add_parser("maps", help="list the scenarios")
    args = p.parse_args(argv)
    if args.cmd == "maps":
        from sims import list_scenarios, load_scenario

        for name in list_scenarios():
            s = load_scenario(name)
            print(f"{name:12s} agents {s.n_agents:3d}  enemies {s.n_enemies:3d}  limit {s.limit}")
        return 0
    if args.cmd == "render":
        return _render(args)
    p.print_help()
    return 0


def _render(args) -> int:
    import numpy as np

    from sims import VecEnv
    from sims.render import Renderer

    env = VecEnv(args.map, 1, seed=args.seed, heuristic_ai=args.policy == "heuristic")
    rec = env.reset()
    rng = np.random.default_rng(args.seed)
    for _ in range(args.steps):
        acts = (rng.random(rec.avail.shape) * rec.avail).argmax(-1)
        rec = env.step(acts)
    r = Renderer(env.battle.scenario)
    r.save_png(r.frame(env.world, 0), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
