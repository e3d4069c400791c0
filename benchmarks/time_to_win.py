"""Time to a winning policy: wall-clock seconds from Start to the first greedy evaluation with >= 80% wins.

Usage: python benchmarks/time_to_win.py [--preset qmix_2c_vs_64zg] [--seeds 0-4] [--budget-s 900]
                                        [--until 80|budget] [--set KEY=VALUE ...] [--final-episodes 200]
Each seed trains in a freshly spawned process (the clock starts at the spawn, so imports and start-up count,
as they do after pressing Start), one seed after another. Evaluations are the preset's own (their time
counts: it is what the user waits for). A run ends at the budget, at the preset's t_max, or (`--until 80`)
at its first evaluation >= 80%; its last checkpoint is then evaluated greedily over `--final-episodes`
episodes (not counted). Prints a table per seed and the medians; the last line is
`time to 80%: median N s over K seeds` or `time to 80%: not reached in BUDGET s`.
Run it with nothing else on the machine.
"""
import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time


def _child(preset, seed, budget_s, until80, overrides, runs_dir, t_spawn, q):
    from models.config import load_config
    from models.training.callbacks import Callbacks
    from models.training.train import train

    class Clock(Callbacks):
        def __init__(self):
            self.stop = False

        def on_eval(self, m):
            q.put(("eval", time.time() - t_spawn, m["t_env"], m["test_win_rate"]))
            if until80 and m["test_win_rate"] >= 0.8:
                self.stop = True

        def should_stop(self):
            return self.stop or time.time() - t_spawn >= budget_s

    cfg = load_config(preset, [f"run.seed={seed}", f'run.runs_dir="{runs_dir}"', *overrides])
    s = train(cfg, callbacks=Clock(), log=lambda *a: None)
    q.put(("end", time.time() - t_spawn, s["t_env"], s["run_dir"]))


def run_seed(preset, seed, budget_s, until80, overrides, runs_dir, final_episodes):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    t_spawn = time.time()
    p = ctx.Process(target=_child, args=(preset, seed, budget_s, until80, overrides, runs_dir, t_spawn, q))
    p.start()
    evals, end = [], None
    while end is None:
        kind, *rest = q.get(timeout=budget_s + 600)
        if kind == "eval":
            evals.append(rest)
        else:
            end = rest
    p.join(60)
    wall, t_env, run_dir = end
    first = {}
    for thr in (0.5, 0.8):
        hit = next(((w, t) for w, t, win in evals if win >= thr), None)
        first[thr] = hit
    from models.play.evaluate import evaluate_checkpoint

    final = evaluate_checkpoint(run_dir, final_episodes, seed=12345)["win_rate"]
    # env steps/s over the run's own training clock (the CSV's wall_s), start-up excluded
    import csv

    with open(os.path.join(run_dir, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    train_wall = max(float(r["wall_s"]) for r in rows) if rows else float("nan")
    return {"seed": seed, "first": first, "final": final, "t_env": t_env, "wall": wall,
            "sps": t_env / train_wall if train_wall else float("nan"), "evals": len(evals)}


def _fmt(hit):
    return "not reached" if hit is None else f"{hit[0]:,.0f} s / {hit[1] / 1e6:.2f}M"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="qmix_2c_vs_64zg")
    ap.add_argument("--seeds", default="0-4", help="0,1,2 or a range 0-4 (default 0-4)")
    ap.add_argument("--budget-s", type=float, default=900)
    ap.add_argument("--until", choices=["80", "budget"], default="budget")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--final-episodes", type=int, default=200)
    a = ap.parse_args()
    from models.sweeps.sweep import parse_seeds

    seeds = parse_seeds(a.seeds)
    runs_dir = tempfile.mkdtemp(prefix="qmix-ttw-")
    print(f"# {os.cpu_count()} cores, preset {a.preset} {' '.join(a.overrides)}, budget {a.budget_s:.0f} s per seed, "
          f"until {a.until}; runs in {runs_dir}")
    print("| seed | first eval >= 50% (wall / env steps) | first eval >= 80% | final greedy win rate "
          f"({a.final_episodes} ep.) | env steps | env steps/s |")
    print("|---:|---|---|---:|---:|---:|")
    results = []
    for seed in seeds:
        r = run_seed(a.preset, seed, a.budget_s, a.until == "80", a.overrides, runs_dir, a.final_episodes)
        results.append(r)
        print(f"| {seed} | {_fmt(r['first'][0.5])} | {_fmt(r['first'][0.8])} | {r['final']:.1%} | "
              f"{r['t_env']:,} | {r['sps']:,.0f} |", flush=True)

    def median_of(thr):
        times = [r["first"][thr][0] if r["first"][thr] else float("inf") for r in results]
        return statistics.median(times)

    m50, m80 = median_of(0.5), median_of(0.8)
    print(f"| median | {'not reached' if m50 == float('inf') else f'{m50:,.0f} s'} | "
          f"{'not reached' if m80 == float('inf') else f'{m80:,.0f} s'} | "
          f"{statistics.median(r['final'] for r in results):.1%} | | "
          f"{statistics.median(r['sps'] for r in results):,.0f} |")
    if m80 == float("inf"):
        print(f"time to 80%: not reached in {a.budget_s:.0f} s")
    else:
        print(f"time to 80%: median {m80:.0f} s over {len(results)} seeds")


if __name__ == "__main__":
    main()
