"""GUI responsiveness and training throughput with and without the window attached.

Usage: python benchmarks/bench_gui.py [--seconds 60] [--preset qmix_2c_vs_64zg]
Runs (1) headless training in a spawned process like the GUI's (same preset and seed, no snapshots) and
(2) the real window (offscreen) with its trainer process, for the same time from a fresh start each, and
prints env steps/s of both and the window's refresh interval while training.
"""
import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def headless(preset, seconds, runs_dir, overrides=()):
    """`models.training.train` in a spawned process with no GUI: env steps/s after start-up."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_headless_child, args=(preset, seconds, runs_dir, q, list(overrides)))
    p.start()
    res = q.get(timeout=seconds + 300)
    p.join(30)
    return res


def _headless_child(preset, seconds, runs_dir, q, overrides=()):
    from models.config import load_config
    from models.training.train import Trainer

    cfg = load_config(preset, [f'run.runs_dir="{runs_dir}"', *overrides])
    tr = Trainer(cfg, log=lambda *a: None)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        tr.round()
    q.put({"steps": tr.t_env, "seconds": time.perf_counter() - t0})
    tr.close()


def with_gui(preset, seconds, runs_dir, overrides=()):
    from PySide6.QtWidgets import QApplication

    from models.config import load_config
    from workbench.app import MainWindow

    app = QApplication.instance() or QApplication([])
    w = MainWindow(runs_dir=runs_dir)
    w.extra_overrides = list(overrides)
    w.resize(1800, 1120)
    w.show()
    cfg = load_config(preset)
    w.controls.scenario.setCurrentText(cfg.env.map_name)
    w.start_training()
    while w.state.snapshots_seen == 0:  # wait for the trainer's start-up (imports)
        app.processEvents()
        time.sleep(0.005)
    w.tick_times.clear()
    w.update_times.clear()
    t0, s0 = time.perf_counter(), w.state.t_env
    while time.perf_counter() - t0 < seconds:
        app.processEvents()
        time.sleep(0.002)
    dt = time.perf_counter() - t0
    stats = w.frame_stats()
    steps = w.state.t_env - s0
    snaps = w.state.snapshots_seen
    w.close()
    return {"steps": steps, "seconds": dt, "frame": stats, "snapshots": snaps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--preset", default="qmix_2c_vs_64zg")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="a config override for both runs")
    a = ap.parse_args()
    runs = "/tmp/qmix-bench-gui-runs"
    h = headless(a.preset, a.seconds, runs, a.overrides)
    g = with_gui(a.preset, a.seconds, runs, a.overrides)
    hs = h["steps"] / h["seconds"]
    gs = g["steps"] / g["seconds"]
    f = g["frame"]
    print(f"# {os.cpu_count()} cores, preset {a.preset} {' '.join(a.overrides)}, {a.seconds:.0f} s each from a "
          f"fresh start")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| headless training (spawned process, no GUI) | {hs:,.0f} env steps/s |")
    print(f"| training with the window attached | {gs:,.0f} env steps/s ({gs / hs:.0%} of headless) |")
    print(f"| window refresh while training: mean interval | {f['interval_ms']:.1f} ms ({f['hz']:.1f} Hz) |")
    print(f"| window refresh: 95th percentile interval | {f['p95_ms']:.1f} ms |")
    print(f"| window work per refresh (drain, draw panels) | {f['work_ms']:.1f} ms |")
    print(f"| snapshots drawn | {g['snapshots']} ({g['snapshots'] / g['seconds']:.1f} per s) |")


if __name__ == "__main__":
    main()
