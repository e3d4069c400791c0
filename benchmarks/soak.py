"""Soak: the window (offscreen) training QMIX on 2c_vs_64zg for a long time; does anything grow?

Usage: python benchmarks/soak.py [--minutes 30] [--every 30] [--preset qmix_2c_vs_64zg]
Every `--every` seconds prints the resident memory (RSS) of the window, trainer and learner processes, the
depths of the trainer's message and snapshot queues, the window's refresh rate over the last interval, and
env steps; at the end the table's verdict: memory at the end against memory at minute 5 for each process
(target: within 10%) and the refresh rate (target: >= 30 Hz). Run it with nothing else on the machine.
"""
import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def rss_mib(pid) -> float:
    """Resident memory of a process in MiB (nan when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, TypeError):
        pass
    return float("nan")


def qsize(q) -> int:
    try:
        return q.qsize()
    except (NotImplementedError, OSError, ValueError, AttributeError):
        return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--every", type=float, default=30)
    ap.add_argument("--preset", default="qmix_2c_vs_64zg")
    a = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    from models.config import load_config
    from workbench.app import MainWindow

    app = QApplication.instance() or QApplication([])
    w = MainWindow(runs_dir="/tmp/qmix-soak-runs")
    w.resize(1800, 1120)
    w.show()
    cfg = load_config(a.preset)
    w.controls.scenario.setCurrentText(cfg.env.map_name)
    w.controls.algorithm.setCurrentText(cfg.algorithm_name)
    w.extra_overrides = ["run.t_max=1000000000"]  # train for the whole soak (the preset stops at 2M steps)
    w.start_training()
    while w.state.snapshots_seen == 0:
        app.processEvents()
        time.sleep(0.005)
    print(f"# {os.cpu_count()} cores, preset {a.preset}, {a.minutes:.0f} min, window 1800x1120 offscreen")
    print("| minute | window MiB | trainer MiB | learner MiB | msg queue | snapshot queue | refresh Hz | env steps |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    t0 = time.perf_counter()
    next_sample = t0 + a.every
    while True:
        app.processEvents()
        time.sleep(0.002)
        now = time.perf_counter()
        if now < next_sample:
            continue
        next_sample += a.every
        fs = w.frame_stats()
        row = {"minute": (now - t0) / 60, "window": rss_mib(os.getpid()), "trainer": rss_mib(w.client.pid),
               "learner": rss_mib(w.state.learner_pid), "msg": qsize(w.client.msg_q),
               "snap": qsize(w.client.snap_q), "hz": fs["hz"], "steps": w.state.t_env}
        rows.append(row)
        print(f"| {row['minute']:.1f} | {row['window']:.0f} | {row['trainer']:.0f} | {row['learner']:.0f} | "
              f"{row['msg']} | {row['snap']} | {row['hz']:.1f} | {row['steps']:,} |", flush=True)
        w.tick_times.clear()
        w.update_times.clear()
        if now - t0 >= a.minutes * 60:
            break
    w.close()
    at5 = min(rows, key=lambda r: abs(r["minute"] - 5))
    end = rows[-1]
    print()
    print(f"memory at the end against minute {at5['minute']:.1f}:")
    for k in ("window", "trainer", "learner"):
        change = end[k] / at5[k] - 1
        print(f"- {k}: {at5[k]:.0f} -> {end[k]:.0f} MiB ({change:+.1%}; target within 10%: "
              f"{'met' if abs(change) <= 0.10 else 'MISSED'})")
    hz = min(r["hz"] for r in rows)
    print(f"- slowest refresh over any interval: {hz:.1f} Hz (target >= 30 Hz: {'met' if hz >= 30 else 'MISSED'})")


if __name__ == "__main__":
    main()
