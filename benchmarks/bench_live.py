"""What the live-settings machinery costs a round when no change is asked for: `Trainer._apply_pending` (one stat of
the control file, the script's next step) timed against a whole round of the 2c QMIX preset.

    python benchmarks/bench_live.py [--rounds 20]
"""
import argparse
import tempfile
import time

from models.config import load_config
from models.training.train import Trainer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tr = Trainer(load_config("qmix_2c_vs_64zg", ["run.learner_process=false", "run.test_interval=10000000",
                                                     "run.save_interval=0", "run.record_interval=0",
                                                     "run.record_first_win=false"]),
                     run_dir=f"{d}/r", log=lambda *x: None)
        tr.round()
        rounds = []
        for _ in range(a.rounds):
            t = time.perf_counter()
            tr.round()
            rounds.append(time.perf_counter() - t)
        n = 20_000
        t = time.perf_counter()
        for _ in range(n):
            tr._apply_pending()
        per_check = (time.perf_counter() - t) / n
        tr.close()
    rounds.sort()
    med = rounds[len(rounds) // 2]
    print("| what | time |")
    print("|---|---:|")
    print(f"| a round of the 2c QMIX preset (16 battles, its updates; median of {a.rounds}) | {med * 1e3:,.1f} ms |")
    print(f"| the live check of a round with nothing asked (mean of {n:,} calls) | {per_check * 1e6:,.1f} us |")
    print(f"| its share of a round | {per_check / med:.4%} |")


if __name__ == "__main__":
    main()
