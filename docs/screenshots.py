"""Makes the README's screenshots of the real window (offscreen).

Usage: python docs/screenshots.py training [--steps 150000]   -> docs/workbench_training.png
       (--real: under `xvfb-run -s "-screen 0 1920x1080x24"` with QT_QPA_PLATFORM=xcb, the window as it opens there)
       python docs/screenshots.py watch RUN_DIR_OR_CHECKPOINT  -> docs/workbench_watch.png
       python docs/screenshots.py live --steps 200000         -> docs/live_change.png, docs/live_change_curves.png
           (a training whose epsilon and learning rate are changed from the controls halfway)
       python docs/screenshots.py replay EPISODE --at-step K    -> docs/replay_death.png (Replay mode at step K)
       python docs/screenshots.py fork EPISODE --at-step K --agent I --action A [--later L]
           -> docs/replay_fork.png (the window with the fork's table) and docs/fork_side_by_side.png
              (the original and the fork's first continuation, L steps after the fork, side by side)
"""
import argparse
import os
import tempfile
import time

from workbench import protocol as P

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QMIX_WORKBENCH_SETTINGS", os.path.join(tempfile.mkdtemp(), "w.ini"))  # the default layout
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def _pump(app, seconds):
    t = time.monotonic()
    while time.monotonic() - t < seconds:
        app.processEvents()
        time.sleep(0.005)


def _pause_mid_episode(app, w, min_t):
    while not w.state.snapshot:
        _pump(app, 0.02)
    w.client.send(P.Pause())
    while not w.state.paused:
        _pump(app, 0.02)
    _pump(app, 0.5)
    # single-step the paused battle until the shown episode is `min_t` steps in
    while w.state.snapshot["t"] < min_t and not w.state.snapshot.get("env0_done"):
        t = (w.state.snapshot["episode"], w.state.snapshot["t"])
        w.client.send(P.Step())
        while (w.state.snapshot["episode"], w.state.snapshot["t"]) == t:
            _pump(app, 0.01)
    _pump(app, 1.0)
    w.curves.show_state(w.state)
    w._show_snapshot()
    _pump(app, 0.3)


def _side_by_side(original, forked, k, out):
    """The two battles at state k (or each one's last), arena only, one PNG."""
    import numpy as np
    from PIL import Image

    from workbench.export import render_frame

    from PIL import ImageDraw

    left = render_frame(original, min(k, original.length), ["arena"])
    right = render_frame(forked, min(k, forked.length), ["arena"])
    gap = np.full((left.shape[0], 12, 3), 255, dtype=np.uint8)
    img = Image.fromarray(np.concatenate([left, gap, right], 1))
    d = ImageDraw.Draw(img)
    h = left.shape[0]
    d.text((10, h - 22), "recorded episode", fill=(255, 255, 255))
    d.text((left.shape[1] + 22, h - 22), "fork: continuation 0 (the recorded random stream)", fill=(255, 255, 255))
    img.save(out)
    print(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["training", "watch", "replay", "fork", "live"])
    ap.add_argument("--agent", type=int, default=0)
    ap.add_argument("--action", default="greedy")
    ap.add_argument("--later", type=int, default=8)
    ap.add_argument("path", nargs="?")
    ap.add_argument("--steps", type=int, default=150_000)
    ap.add_argument("--at-step", type=int, default=25, help="pause when the shown episode reaches this step")
    ap.add_argument("--real", action="store_true",
                    help="the window as it opens on a real screen (run under xvfb-run with QT_QPA_PLATFORM=xcb), "
                         "sized by itself to that screen")
    a = ap.parse_args()
    from PySide6.QtWidgets import QApplication

    from workbench.app import MainWindow

    app = QApplication([])
    w = MainWindow(runs_dir="/tmp/qmix-screenshot-runs")
    if not a.real:
        w.resize(1800, 1120)
    w.show()
    here = os.path.dirname(os.path.abspath(__file__))
    if a.what == "training":
        w.start_training()
        while w.state.t_env < a.steps:
            _pump(app, 0.05)
        _pause_mid_episode(app, w, a.at_step)
        out = os.path.join(here, "workbench_training.png")
    elif a.what == "live":  # a live change halfway: epsilon back up to 0.5, half the learning rate
        w.start_training()
        while w.state.t_env < a.steps // 2:
            _pump(app, 0.05)
        w.controls.eps_start.setValue(0.5)
        w.controls.lr.setValue(0.0005)
        while w.state.t_env < a.steps:
            _pump(app, 0.05)
        w.curves.show_state(w.state)
        dock = w.docks["Training curves"]  # floated and enlarged for the document, so the markers read
        dock.setFloating(True)
        dock.resize(1300, 560)
        _pump(app, 1.0)
        w.curves.show_state(w.state)
        _pump(app, 0.5)
        dock.grab().save(os.path.join(here, "live_change_curves.png"))
        dock.setFloating(False)
        _pump(app, 0.5)
        print(f"wrote {os.path.join(here, 'live_change_curves.png')}")
        _pause_mid_episode(app, w, a.at_step)
        out = os.path.join(here, "live_change.png")
    elif a.what in ("replay", "fork"):
        w.open_episode(a.path)
        w.seek(a.at_step)
        _pump(app, 0.5)
        out = os.path.join(here, "replay_death.png")
        if a.what == "fork":
            action = a.action if a.action == "greedy" else int(a.action)
            r = w.run_fork(a.agent, action, episodes=20)
            _pump(app, 0.5)
            out = os.path.join(here, "replay_fork.png")
            _side_by_side(w.state.replay.episode, r.fork_episode, a.at_step + a.later,
                          os.path.join(here, "fork_side_by_side.png"))
    else:
        w.open_run_dir(a.path) if os.path.isdir(a.path) else w.watch_checkpoint(a.path)
        _pause_mid_episode(app, w, a.at_step)
        out = os.path.join(here, "workbench_watch.png")
    w.grab().save(out)
    print(f"wrote {out}: {w.state.t_env:,} env steps, frame stats {w.frame_stats()}")
    w.close()


if __name__ == "__main__":
    main()
