"""How long `compare` takes to read runs the first time and to reread them unchanged (what the Compare window's
"follow running runs" does every 10 s): prints a markdown table. Usage: python benchmarks/bench_compare.py RUN_DIR..."""
import sys
import time
from pathlib import Path

from models.sweeps.compare import compare_runs


def main(argv: list[str]) -> None:
    runs = [Path(a) for a in argv]
    if not runs:
        sys.exit("usage: python benchmarks/bench_compare.py RUN_DIR...")
    lines = sum(sum(1 for _ in open(r / "metrics.csv", "rb")) for r in runs)
    print("| metric | runs | first read | reread, unchanged |\n|---|---|---:|---:|")
    for metric in ("test_win_rate", "overestimation"):
        t = time.perf_counter()
        compare_runs(runs, metric=metric)
        first = time.perf_counter() - t
        t = time.perf_counter()
        compare_runs(runs, metric=metric)
        again = time.perf_counter() - t
        print(f"| {metric} | {len(runs)} runs, {lines:,} metrics.csv lines | {first:.2f} s | {again:.3f} s |")


if __name__ == "__main__":
    main(sys.argv[1:])
