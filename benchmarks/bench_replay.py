"""Replay-mode scrubbing speed: how long one scrub step takes in the real window (offscreen) — the episode's
snapshot of the step, every panel updated, and the whole window repainted — against the 30 Hz goal.

Usage: python benchmarks/bench_replay.py [FILE.npz] [--passes 4] [--size 1800x1120]
Without FILE it trains a tiny untrained RES-QMIX run on 2c_vs_64zg in a temporary directory and records one
episode of it (as the tests' fixture does). Prints a table; not a pass/fail test.
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402

TINY_2C = ["env.num_envs=2", "learner.batch_size=2", "learner.replay_ratio=4", "learner.buffer_size=8", "algo.agent_hidden=16",
           "algo.mixing_embed=8", "algo.hypernet_embed=16", "run.test_episodes=2", "run.test_interval=400",
           "run.save_interval=0", "run.learner_process=false", "run.t_max=100", "run.record_interval=0",
           "run.record_first_win=false"]


def make_episode(root: str) -> str:
    from models.config import load_config
    from models.play.recording import record_episodes
    from models.training.train import train

    cfg = load_config("res_qmix_2c_vs_64zg", TINY_2C)
    run = train(cfg, run_dir=os.path.join(root, "run"), log=lambda *a: None)["run_dir"]
    return str(record_episodes(run, 1, seed=1, log=lambda *a: None)[0])


def row(name: str, seconds) -> str:
    ms = np.asarray(seconds) * 1e3
    return f"| {name} | {ms.mean():.1f} | {np.percentile(ms, 95):.1f} | {1e3 / ms.mean():.0f} |"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?")
    ap.add_argument("--passes", type=int, default=4, help="forward-and-back sweeps over the episode")
    ap.add_argument("--size", default="1800x1120")
    a = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    path = a.file or make_episode(tmp.name)

    from PySide6.QtWidgets import QApplication

    from workbench.app import MainWindow

    app = QApplication.instance() or QApplication([])
    w = MainWindow(runs_dir=tmp.name)
    w.resize(*(int(v) for v in a.size.split("x")))
    w.show()
    w.timer.stop()  # the refresh loop's own ticks would land inside the measured steps
    if not w.open_episode(path):
        raise SystemExit(w.state.alert)
    app.processEvents()
    rp = w.state.replay
    T = rp.length
    sweep = list(range(1, T + 1)) + list(range(T - 1, -1, -1))
    for k in sweep[:5]:  # warm-up: first paints build the plots' caches
        w.seek(k)
        w.repaint()
    w.seek(0)
    # what a scrub step changes and Qt repaints (the curves and the controls stay as they are)
    changed = [w.arena, w.timeline, w.qvalues, w.qtot, w.joint, w.mixer, w.status]
    snap_s, panels_s, paint_s, whole_s = [], [], [], []
    for _ in range(a.passes):
        for k in sweep:
            t0 = time.perf_counter()
            rp.episode.snapshot(k)  # the file's part alone (seek below builds it again, as a scrub does)
            t1 = time.perf_counter()
            w.seek(k)  # model, snapshot, every panel's data, the timeline and the status bar
            t2 = time.perf_counter()
            for v in changed:
                v.repaint()
            t3 = time.perf_counter()
            snap_s.append(t1 - t0)
            panels_s.append(t2 - t1)
            paint_s.append(t3 - t2)
        for k in sweep[: T]:  # an upper bound: every widget of the window repainted at every step
            t0 = time.perf_counter()
            w.seek(k)
            w.repaint()
            whole_s.append(time.perf_counter() - t0)
    app.processEvents()
    w.close()
    total_s = np.asarray(panels_s) + np.asarray(paint_s)
    print(f"episode {path}: T = {T} steps, {len(total_s)} scrub steps at {a.size}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| phase | ms per scrub step (mean) | p95 ms | per second |")
    print("|---|---:|---:|---:|")
    print(row("Episode.snapshot(k) alone", snap_s))
    print(row("seek: snapshot + every panel's data", panels_s))
    print(row("repaint of the changed panels", paint_s))
    print(row("scrub step (seek + repaint of the changed panels)", total_s))
    print(row("seek + repaint of the whole window (upper bound)", whole_s))
    hz = 1.0 / np.mean(total_s)
    print(f"\nscrubbing: {hz:.0f} steps/s ({'meets' if hz >= 30 else 'below'} the 30 Hz goal)")


if __name__ == "__main__":
    main()
