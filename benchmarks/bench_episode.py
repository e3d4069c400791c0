"""What an episode file costs: MB on disk and seconds to open, for a 400-step 2c_vs_64zg episode.

Usage: python benchmarks/bench_episode.py
The 400-step battle is `bench_export.long_episode` (an untrained RES-QMIX policy, colossi healed so they live to
the map's limit). "Open" is what Replay mode does before it can draw: read and check the file, build the first
snapshot (the joint table recomputed from the stored weights) and the markers. Timed in this process (best of 5,
the modules already imported) and in a fresh interpreter (imports included: a `qmix-workbench replay` start).
Prints a table.
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

OPEN = ("import time; t = time.perf_counter(); from models.files.episode_file import load_episode; "
        "ep = load_episode({path!r}); ep.snapshot(0); ep.markers(); print(time.perf_counter() - t)")


def main():
    from bench_export import long_episode

    from models.files.episode_file import load_episode

    ep = long_episode()
    path = os.path.join(tempfile.mkdtemp(prefix="qmix-bench-episode-"), "long.npz")
    t = time.perf_counter()
    ep.save(path)
    save_s = time.perf_counter() - t
    opens = []
    for _ in range(5):
        t = time.perf_counter()
        e = load_episode(path)
        e.snapshot(0)
        e.markers()
        opens.append(time.perf_counter() - t)
    t = time.perf_counter()
    for k in range(e.length + 1):
        e.snapshot(k)
    snap_ms = (time.perf_counter() - t) / (e.length + 1) * 1e3
    fresh = float(subprocess.run([sys.executable, "-c", OPEN.format(path=path)], capture_output=True, text=True,
                                 check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout)
    size = os.path.getsize(path)
    print(f"# {os.cpu_count()} cores; episode of {e.length} steps, {e.arrays['pos'].shape[1]} units")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| file size | {size / 2**20:.2f} MB ({size / e.length / 1024:.1f} KB per step) |")
    print(f"| write (compress + fsync + rename) | {save_s:.2f} s |")
    print(f"| open: read, check, first snapshot, markers (best of 5) | {min(opens):.3f} s |")
    print(f"| open in a fresh interpreter, imports included | {fresh:.3f} s |")
    print(f"| one snapshot (scrubbing; joint table recomputed) | {snap_ms:.2f} ms |")


if __name__ == "__main__":
    main()
