"""The real window, real trainer process and real simulator, offscreen, at tiny sizes."""
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from workbench.app import MainWindow  # noqa: E402
from workbench import protocol as P  # noqa: E402
from workbench.state import WorkbenchState  # noqa: E402

TINY = ["env.num_envs=2", "learner.batch_size=2", "learner.replay_ratio=4", "learner.buffer_size=8", "run.test_episodes=2",
        "run.test_interval=600", "run.save_interval=0", "run.snapshot_hz=30"]
WAIT = 90_000  # ms: a spawned trainer imports torch and the simulator before its first step



def _start(qtbot, w, extra=()):
    """Start a tiny training; return once it streams snapshots, or has paused at a breakpoint. Snapshots are
    latest-wins: a breakpoint in the first steps (first damage at ~50 env steps) can pause the trainer before
    the window has polled a second one, and a paused trainer sends no more."""
    w.start_training(TINY + list(extra))
    qtbot.waitUntil(lambda: w.state.snapshots_seen >= 2 or (w.state.paused and w.state.snapshots_seen >= 1),
                    timeout=WAIT)


def _train_until_break(qtbot, w, prefix: str) -> str:
    """Start a tiny training and wait until a breakpoint pauses it; the breakpoint's message."""
    _start(qtbot, w)
    qtbot.waitUntil(lambda: w.state.paused and any(m.startswith(prefix) for m in w.state.messages), timeout=WAIT)
    return next(m for m in w.state.messages if m.startswith(prefix))


def test_state_model_without_qt():
    st = WorkbenchState()
    st.ingest([P.Started(mode="train", run_dir="r", algorithm="QMIX", t_env=0,
                         env_info={"n_agents": 2, "n_actions": 70}, config={"env": {"map_name": "2c_vs_64zg"}}),
               P.EpisodeEnded({"t_env": 30, "episodes": 1, "return": 5.0, "won": 0, "epsilon": 0.9,
                               "overestimation": 1.0}),
               P.Evaluated({"t_env": 30, "test_win_rate": 0.25})])
    assert st.series["return"].n == 1 and st.series["test_win_rate"].y[0] == 0.25 and st.t_env == 30
    st.select_agent(1)
    with pytest.raises(ValueError, match="agent 2 does not exist"):
        st.select_agent(2)
    st.process_ended(-9)
    assert "exit code -9" in st.error and st.mode == "idle"


def test_plot_ranges_snap_to_steps_and_change_rarely():
    from workbench.panels.common import StableLevels
    from workbench.panels.curves import x_extent

    now = [0.0]
    lv = StableLevels(patience_s=3.0, clock=lambda: now[0])
    lo, hi = lv([0.13, 0.87])
    assert lo <= 0.13 and hi >= 0.87 and np.isclose(lo * 10, round(lo * 10)) and np.isclose(hi * 10, round(hi * 10))
    assert lv([0.2, 0.8]) == (lo, hi)  # inside: unchanged
    lo2, hi2 = lv([0.1, 1.5])  # outside: widened at once
    assert hi2 >= 1.5 and lo2 <= 0.1
    assert lv([0.5, 0.52]) == (lo2, hi2)  # much smaller data: kept for a while (episodes start small)...
    now[0] = 3.5
    lo3, hi3 = lv([0.5, 0.52])  # ...then narrowed
    assert lo3 >= 0.4 and hi3 <= 0.6
    assert lv([0.0, 0.0]) != (0.0, 0.0)  # a flat line gets a visible range
    assert [x_extent(x) for x in (0, 99, 100, 101, 790, 8_100)] == [1.0, 100.0, 125.0, 125.0, 800.0, 10_000.0]


def test_agent_q_values_label_fewer_attacks_in_a_laptop_dock(qtbot):
    """At ~320 px an attack label every 8 actions ran together: every 16 there, every 8 when wide."""
    from workbench.panels.qvalues import QValuesPanel

    panel = QValuesPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.configure(2, 70, matrix_game=False)
    panel.resize(320, 210)
    qtbot.waitUntil(lambda: panel._ticks_for == 16)
    labels = [t for _, t in panel.plots[0].getAxis("bottom")._tickLevels[0]]
    assert labels == ["no-op", "move", "atk 16", "atk 32", "atk 48"]
    assert not panel.plots[0].getAxis("bottom").label.isVisible()  # the bars get the "action" row
    panel.resize(500, 300)  # every 8th attack fits, the panel is still narrow
    qtbot.waitUntil(lambda: panel._ticks_for == 8)
    assert not panel.plots[0].getAxis("bottom").label.isVisible()
    panel.resize(900, 300)  # the same ticks, wide: the "action" label is back
    qtbot.waitUntil(lambda: panel.plots[0].getAxis("bottom").label.isVisible())
    assert "atk 8" in [t for _, t in panel.plots[1].getAxis("bottom")._tickLevels[0]]


def test_agent_q_note_reads_over_the_bars_and_leaves_the_markers_on_top(qtbot):
    """In a laptop's ~30 px tall plot the chosen/greedy note ("▼9 ★9") lies over the last actions' bars: it
    is short, has a dark fill to be read there, and the chosen and greedy markers draw over it."""
    from workbench.panels.qvalues import QValuesPanel

    panel = QValuesPanel()
    qtbot.addWidget(panel)
    panel.configure(2, 70, matrix_game=False)
    q = np.linspace(-1.0, 2.0, 140).reshape(2, 70)
    panel.show_probe({"q": q, "avail": np.ones((2, 70), bool), "chosen": [66, 3], "greedy": [69, 3]}, selected=0)
    note = panel.notes[0]
    assert note.textItem.toPlainText().split() == ["\u25bc66", "\u260569"]  # short: it hides as few bars as it can
    assert "taken" in panel.toolTip() and "greedy" in panel.toolTip()  # where the symbols are named in full
    assert note.fill.color().alpha() >= 150
    bars = panel.avail_bars[0].zValue()
    assert bars < note.zValue() < min(panel.chosen[0].zValue(), panel.greedy[0].zValue())


def test_curves_stay_readable_in_a_laptop_dock(qtbot):
    """At 1366x768 the curves dock is ~320x210: eight plots side by side drew overlapping labels. They go to
    two scrolling columns there, and stay all on screen in the ~470x290 dock of a 1920x1080 window."""
    from workbench.panels.curves import CurvesPanel, CurvesScroll, _inner_ticks, _round_ticks

    panel = CurvesPanel()
    scroll = CurvesScroll(panel)
    qtbot.addWidget(scroll)
    scroll.show()
    scroll.resize(320, 210)
    qtbot.waitUntil(lambda: panel.columns == 2)
    assert panel.rows() == 4 and panel.minimumHeight() > 210  # it scrolls
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().maximum() > 0)
    ticks = panel.plots[0].getAxis("left")._tickLevels  # narrow: at most two labels on the y axis
    assert ticks is not None and len(ticks[0]) <= 2
    panel.plots[6].setYRange(0, 2400, padding=0)  # throughput: its ticks follow the range, short
    qtbot.waitUntil(lambda: [t for t, _ in panel.plots[6].getAxis("left")._tickLevels[0]] == [1000.0, 2000.0])
    assert [s for _, s in panel.plots[6].getAxis("left")._tickLevels[0]] == ["1k", "2k"]
    scroll.resize(470, 290)
    qtbot.waitUntil(lambda: panel.columns == 4)
    assert panel.rows() == 2 and panel.minimumHeight() <= 290
    assert _round_ticks(0, 1) == [0.5] and _round_ticks(0, 2400) == [1000.0, 2000.0] and _round_ticks(3, 3) == []
    assert _inner_ticks(1.6e5) == [1e5]  # one x label: "50" and "100" (ksteps) ran together on a narrow plot
    # the curves' keys are in their titles, not legends over plots this small (one hid the win rate's curves)
    assert all(p.legend is None for p in panel.plots)
    assert "greedy test" in panel.plots[1].titleLabel.text and "RES" in panel.plots[7].titleLabel.text


def test_mixer_credit_curves_get_the_height_in_a_small_dock(qtbot):
    """At the Mixer's smallest height the credit plot's view was ~40 px under two stretched heatmaps, a V(s)
    row and a legend over the curves: the heatmaps are capped, V(s) is in a title, the key is in the title."""
    from workbench.panels.mixer import MixerPanel

    panel = MixerPanel()
    qtbot.addWidget(panel)
    panel.setup("qmix", 2)
    panel.resize(400, MixerPanel.MIN_H)
    panel.show()
    qtbot.waitUntil(lambda: panel.credit_plot.getViewBox().height() > 0)
    heat = panel.imgs["w1"][2].getViewBox().height()
    assert panel.credit_plot.getViewBox().height() >= 75 and heat >= 30
    assert panel.credit_plot.legend is None and "agent 1" in panel.credit_plot.titleLabel.text
    rng = np.random.default_rng(0)
    panel.show_snapshot({"probe": {"hyper": {"w1": rng.random((2, 32)), "b1": rng.random(32),
                                             "w2": rng.random(32), "v": 4.25}}})
    assert "V(s) = +4.250" in panel.imgs["b1w2"][2].titleLabel.text


def test_window_opens_ready_on_2c_vs_64zg(window):
    c = window.controls
    assert c.scenario.currentText() == "2c_vs_64zg" and c.algorithm.currentText() == "QMIX"
    assert c.start.isEnabled() and not c.pause.isEnabled()
    assert set(window.docks) >= {"Controls", "Agent Q-values", "Qtot", "Joint-action landscape", "Mixer",
                                 "Training curves"}


@pytest.mark.slow
def test_training_feeds_every_panel_and_obeys_pause_step_force_resume_stop(qtbot, window):
    w = window
    _start(qtbot, w)
    qtbot.waitUntil(lambda: w.state.episodes > 0 and w.state.series["loss"].n > 0, timeout=WAIT)
    qtbot.waitUntil(lambda: len(w.state.snapshot["trace"]["credit"]) > 0, timeout=WAIT)
    snap = w.state.snapshot
    w._show_snapshot()
    probe = snap["probe"]
    assert np.allclose(w.qvalues.heights(0), probe["q"][0])
    assert w.joint.table.shape == (70, 70) and np.allclose(w.joint.table, probe["joint"])
    assert w.mixer.w1.shape == (2, 32) and np.allclose(w.mixer.w1, probe["hyper"]["w1"])
    assert len(w.qtot.cur.getData()[0]) == len(snap["trace"]["qtot"])
    assert w.arena.frames_drawn > 0 and len(np.unique(w.arena.frame.reshape(-1, 3), axis=0)) > 20
    w.curves.show_state(w.state)
    assert len(w.curves.curves["return"][0].getData()[0]) > 0
    assert "env steps" in w.status.text()

    # pause: the trainer stops stepping
    qtbot.mouseClick(w.controls.pause, qtbot_button())
    qtbot.waitUntil(lambda: w.state.paused, timeout=10_000)
    qtbot.wait(300)
    t0 = (w.state.snapshot["episode"], w.state.snapshot["t"])
    steps0 = w.state.t_env
    qtbot.wait(1200)
    assert (w.state.snapshot["episode"], w.state.snapshot["t"]) == t0 and w.state.t_env == steps0

    # single step
    qtbot.mouseClick(w.controls.step, qtbot_button())
    # a step may end the round: the updates and an evaluation come first (seconds on a loaded machine)
    qtbot.waitUntil(lambda: (w.state.snapshot["episode"], w.state.snapshot["t"]) != t0, timeout=WAIT)

    # intervene: force an available action for agent 0 and step once; the next snapshot's executed joint
    # action carries the forced one. A step that ends the rollout lands on t == 0 of a new one, where
    # nothing has been executed yet: then force once more (the step after t == 0 is t == 1).
    for _ in range(2):
        avail = np.asarray(w.state.snapshot["probe"]["avail"][0])
        forced = int(np.flatnonzero(avail)[-1])
        before = (w.state.snapshot["episode"], w.state.snapshot["t"])
        w.force_action(0, forced)
        qtbot.waitUntil(lambda: (w.state.snapshot["episode"], w.state.snapshot["t"]) != before, timeout=WAIT)
        snap = w.state.snapshot
        if snap["t"] > 0:
            break
    assert snap["t"] > 0, "no forced step landed inside an episode"
    assert snap["executed"][0] == forced

    # resume and stop
    qtbot.mouseClick(w.controls.resume, qtbot_button())
    qtbot.waitUntil(lambda: not w.state.paused and w.state.t_env > steps0, timeout=WAIT)
    qtbot.mouseClick(w.controls.stop, qtbot_button())
    qtbot.waitUntil(lambda: not w.client.alive() and w.state.mode == "idle", timeout=30_000)
    assert os.path.exists(os.path.join(w.state.run_dir, "checkpoints", "latest.pt"))
    assert w.controls.start.isEnabled()


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.LeftButton


@pytest.mark.slow
def test_killed_trainer_is_reported_and_the_window_stays_usable(qtbot, window):
    w = window
    _start(qtbot, w)
    run_dir = w.state.run_dir
    learner = w.state.learner_pid
    assert learner is not None  # the 2c preset learns in its own process
    os.kill(w.client.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: w.state.error is not None, timeout=20_000)
    qtbot.waitUntil(lambda: not _exists(learner), timeout=10_000)  # it does not outlive its trainer
    assert "died" in w.log_view.toPlainText() and "TRAINER ERROR" in w.log_view.toPlainText()
    assert w.controls.start.isEnabled() and w.state.mode == "idle"
    assert os.path.exists(os.path.join(run_dir, "metrics.csv"))
    # a user's mistake inside the trainer arrives as the CLI's one line, naming the file, not a traceback
    w.client.start("watch", {"checkpoint": "/nonexistent/ckpt.pt"})
    qtbot.waitUntil(lambda: w.state.error is not None and "/nonexistent/ckpt.pt" in w.state.error, timeout=WAIT)
    assert "does not exist" in w.state.error and "Traceback" not in w.state.error
    qtbot.waitUntil(lambda: not w.client.alive(), timeout=10_000)
    # a bug (here: a mode that does not exist) keeps its traceback
    w.client.start("nonsense", {})
    qtbot.waitUntil(lambda: w.state.error is not None and "Traceback" in w.state.error, timeout=WAIT)


@pytest.mark.slow
def test_checkpoint_saved_from_the_gui_loads_in_watch_mode(qtbot, window):
    w = window
    _start(qtbot, w)
    qtbot.mouseClick(w.controls.save, qtbot_button())
    qtbot.waitUntil(lambda: w.state.last_checkpoint is not None, timeout=30_000)
    path = w.state.last_checkpoint
    w.stop()
    qtbot.waitUntil(lambda: not w.client.alive(), timeout=30_000)
    qtbot.wait(100)
    w.watch_checkpoint(path)
    qtbot.waitUntil(lambda: w.state.mode == "watch" and w.state.snapshots_seen >= 2, timeout=WAIT)
    w._show_snapshot()
    assert np.allclose(w.qvalues.heights(0), w.state.snapshot["probe"]["q"][0])


def test_matrix_game_shows_learned_table_beside_payoff(qtbot, window):
    w = window
    w.controls.scenario.setCurrentText("matrix_nonmono")
    w.start_training(["run.t_max=200000"])
    qtbot.waitUntil(lambda: w.state.snapshots_seen >= 2, timeout=WAIT)
    w._show_snapshot()
    assert w.joint.mode == ("matrix", 3)
    assert w.joint.cells[1][0].toPlainText() == "8.00"  # true payoff [0, 0]


@pytest.mark.slow
def test_non_finite_updates_show_in_red_and_on_the_loss_curve(qtbot, window):
    w = window
    w.controls.scenario.setCurrentText("matrix_mild")
    w.start_training(["learner.lr=1e30", 'run.on_nonfinite="skip"', "run.t_max=200000"])
    qtbot.waitUntil(lambda: len(w.state.nonfinite) >= 2, timeout=WAIT)
    qtbot.waitUntil(lambda: len(w.curves.nonfinite_marks.data) >= 2, timeout=5_000)  # curves redraw at 2 Hz
    assert "non-finite" in w.status.text() and "ff5555" in w.status.styleSheet()
    assert "NON-FINITE" in w.log_view.toPlainText()
    w.stop()
    qtbot.waitUntil(lambda: not w.client.alive(), timeout=30_000)
    # "stop" (the default): the run ends with the CLI's one line, shown as a trainer error in red
    w.start_training(["learner.lr=1e30", "run.t_max=200000"])
    qtbot.waitUntil(lambda: w.state.error is not None, timeout=WAIT)
    assert "diverged at update" in w.state.error and "Traceback" not in w.state.error
    assert "TRAINER ERROR" in w.status.text() and "ff5555" in w.status.styleSheet()


@pytest.mark.slow
def test_closing_leaves_no_child_process(qtbot, tmp_path):
    w = MainWindow(runs_dir=str(tmp_path / "runs"))
    qtbot.addWidget(w)
    w.show()
    _start(qtbot, w)
    pid, learner = w.client.pid, w.state.learner_pid
    w.close()
    assert not w.client.alive()
    assert not [p for p in mp.active_children() if p.pid == pid]
    assert not _exists(pid)
    qtbot.waitUntil(lambda: not _exists(learner), timeout=10_000)


def _exists(pid: int) -> bool:
    """Whether a process is still there (a zombie counts as gone: it no longer runs)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_paints_for_several_seconds_while_training(qtbot, window):
    # guards against PySide6 6.12.0's crash on Python 3.11 ("deallocating None" after a second of painting)
    w = window
    _start(qtbot, w)
    frames = w.arena.frames_drawn
    t = time.monotonic()
    while time.monotonic() - t < 4.0:
        w.repaint()
        w.grab()
        qtbot.wait(50)
    assert w.arena.frames_drawn > frames


def test_open_run_directory_loads_curves_and_watches(qtbot, window, tmp_path):
    from models.config import load_config
    from models.training.train import train

    s = train(load_config("vdn_twostep", ["run.t_max=2000", f'run.runs_dir="{tmp_path}"']), log=lambda *a: None)
    w = window
    w.open_run_dir(s["run_dir"])
    assert w.state.series["return"].n > 0 and w.state.series["loss"].n > 0
    qtbot.waitUntil(lambda: w.state.mode == "watch" and w.state.snapshots_seen >= 1, timeout=WAIT)
    # one battle in watch mode: its last step reaches the trace, so the finished episode and its
    # overestimation show (they never did when the step hook alone fed the trace)
    qtbot.waitUntil(lambda: (w.state.snapshot or {}).get("last_episode") is not None, timeout=WAIT)
    w._show_snapshot()
    assert len(w.state.snapshot["last_episode"]["qtot"]) == 2  # both steps of the two-step game
    assert w.qtot.label.toPlainText().startswith("last episode: mean Qtot - return =")
    w.open_run_dir(str(tmp_path / "nothing-here"))
    assert "not a run directory" in w.log_view.toPlainText()


_CLIENT = r'''
import sys, time
from models.config import load_config
from workbench.client import TrainerClient
from workbench.protocol import Started
if __name__ == "__main__":
    c = TrainerClient()
    cfg = load_config("qmix_2c_vs_64zg", sys.argv[1:])
    c.start("train", {"config": cfg.to_dict()})
    while True:
        for m in c.poll()[0]:
            if isinstance(m, Started):
                print(c.pid, m.learner_pid, m.run_dir, flush=True)
        time.sleep(0.05)
'''


@pytest.mark.slow
def test_a_killed_window_process_stops_and_saves_its_trainer(tmp_path):
    import subprocess
    import sys

    over = TINY + ["run.t_max=100000000", f'run.runs_dir="{tmp_path}"']
    gui = subprocess.Popen([sys.executable, "-c", _CLIENT, *over], stdout=subprocess.PIPE, text=True)
    try:
        trainer, learner, run_dir = gui.stdout.readline().split()
        time.sleep(2.0)
    finally:
        gui.kill()
        gui.wait()
    deadline = time.monotonic() + 30
    while (_exists(int(trainer)) or _exists(int(learner))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _exists(int(trainer)) and not _exists(int(learner))
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "latest.pt"))  # it stopped as if told to


def test_live_change_from_the_controls_reaches_the_learner_and_marks_the_curves(qtbot, window, tmp_path):
    """While a training runs: a learning rate and an epsilon typed into the controls apply at the trainer's next
    round (its learner process too: the update rows' rate), are events of the run, and are drawn on the curves;
    the keys that cannot change are locked with the reason."""
    import csv

    w = window
    _start(qtbot, w, ["run.learner_process=true", f'run.runs_dir="{tmp_path}"'])
    c = w.controls
    assert not c.envs.isEnabled() and "locked while the training runs" in c.envs.toolTip()
    assert c.lr.isEnabled() and "next round" in c.lr.toolTip()
    c.lr.setValue(0.00042)
    c.eps_start.setValue(0.7)
    qtbot.waitUntil(lambda: len(w.state.live_events) == 2, timeout=WAIT)
    assert {(e.key, e.new, e.source) for e in w.state.live_events} == {("learner.lr", 0.00042, "window"),
                                                                       ("run.epsilon_start", 0.7, "window")}
    t_change = w.state.live_events[0].t_env
    # two rounds of updates logged after it: the learner process's first one was in flight at the change
    qtbot.waitUntil(lambda: len({x for x in w.state.series["loss"].x if x > t_change}) >= 2, timeout=WAIT)
    w.curves.show_state(w.state)
    assert len(w.curves.live_marks) == 2 * 8 and w.curves.live_marks[0][1].value() == t_change
    assert any("live change: learner.lr: 0.001 -> 0.00042" in m for m in w.state.messages)
    run = w.state.run_dir
    w.stop()
    qtbot.waitUntil(lambda: w.state.mode == "idle", timeout=WAIT)
    with open(os.path.join(run, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    lrs = [float(r["lr"]) for r in rows if r["kind"] == "update"]
    first = lrs.index(0.00042)  # the learner process is a round ahead: the round in flight at the change keeps the old
    assert first > 0 and set(lrs[:first]) == {0.001} and set(lrs[first:]) == {0.00042}
    eps = [float(r["epsilon"]) for r in rows if r["kind"] == "episode" and int(r["t_env"]) > t_change]
    assert eps and max(eps) == 0.7
    with open(os.path.join(run, "events.csv")) as f:
        assert sorted(r["key"] for r in csv.DictReader(f)) == ["learner.lr", "run.epsilon_start"]
    assert c.envs.isEnabled() and "locked" not in c.envs.toolTip()


def test_breakpoint_on_a_death_pauses_watch_mode_on_that_state_and_replay_playback_too(qtbot, window):
    """Break on > agent dies, watching the shipped IQL policy: Watch mode pauses on the first state where a colossus
    is dead, and the arena shows it; the same breakpoint stops Replay playback of that episode at the timeline's
    marker (one definition of the event: models.core.events)."""
    from models.files.episode_file import load_episode
    from workbench.replay import SPEEDS

    w = window
    w.set_breakpoints(["agent dies"])
    w.controls.watch_speed.setValue(1000)
    assert w.watch_policy("iql")
    qtbot.waitUntil(lambda: w.state.paused and any("breakpoint: agent" in m for m in w.state.messages), timeout=WAIT)
    import re

    paused_in = w.state.episodes  # the episodes finished before the one paused in (Watch records each, in order)
    said = next(m for m in w.state.messages if m.startswith("breakpoint: agent"))
    step = int(re.search(r"episode step (\d+)", said).group(1))
    # the paused state's snapshot (snapshots are latest-wins: an older one may be shown first)
    qtbot.waitUntil(lambda: w.state.snapshot is not None and w.state.snapshot["t"] == step, timeout=10_000)
    snap = w.state.snapshot
    n_dead = int((~np.asarray(snap["world"]["alive"][:2], bool)).sum())
    assert n_dead >= 1
    drawn = w.arena.frames_drawn
    w._show_snapshot()  # the arena draws this state: the dead colossus is not among the living
    assert w.arena.frames_drawn > drawn
    w.set_breakpoints([])
    qtbot.mouseClick(w.controls.resume, qtbot_button())
    # the episode paused in, recorded: the first shipped IQL lost every battle, today's wins most, so the episode
    # with the death is the one paused in, not the first one recorded
    qtbot.waitUntil(lambda: len(w.state.recorded_episodes) > paused_in, timeout=WAIT)
    path = w.state.recorded_episodes[paused_in]
    w._end_watch()
    ep = load_episode(path)
    deaths = [k for k, label in ep.markers() if label.endswith(" dies")]
    assert deaths  # the episode the watch paused in: a colossus died in it
    assert w.open_episode(path)
    w.set_breakpoints(["agent dies"])
    w.state.replay.set_speed(max(SPEEDS))
    w.state.replay.play()
    qtbot.waitUntil(lambda: not w.state.replay.playing, timeout=30_000)
    assert w.state.replay.step == deaths[0] and not w.state.replay.episode.snapshot(deaths[0])["world"]["alive"][:2].all()


def test_break_on_qtot_far_from_the_return_pauses_at_the_episodes_end_and_replay_at_the_step(qtbot, window):
    """|Qtot - return| is known only when the episode has ended: Watch mode pauses then, naming the first step where
    the gap was above the threshold, and Replay playback of the recorded episode stops at that very step."""
    import re

    from models.core.events import first_gap
    from models.files.episode_file import load_episode
    from workbench.replay import SPEEDS

    w = window
    w.set_breakpoints([], gap_above=0.5)
    assert w.gap_break_action.isChecked()
    w.controls.watch_speed.setValue(1000)
    assert w.watch_policy("qmix")
    qtbot.waitUntil(lambda: w.state.paused and any("breakpoint: |Qtot - return|" in m for m in w.state.messages),
                    timeout=WAIT)
    said = next(m for m in w.state.messages if m.startswith("breakpoint: |Qtot - return|"))
    k = int(re.search(r"at step (\d+) of env 0's episode", said).group(1))
    qtbot.waitUntil(lambda: len(w.state.recorded_episodes) >= 1, timeout=WAIT)
    qtbot.wait(500)  # paused: the episode that just ended is the last recorded
    path = w.state.recorded_episodes[-1]
    w._end_watch()
    ep = load_episode(path)
    assert first_gap(ep.arrays["qtot"], ep.return_to_go(), 0.5)[0] == k  # the same episode, the same step
    assert w.open_episode(path)
    w.state.replay.set_speed(max(SPEEDS))
    w.state.replay.play()
    qtbot.waitUntil(lambda: not w.state.replay.playing, timeout=30_000)
    assert w.state.replay.step == k or (k == 0 and w.state.replay.step == ep.length)
    w.set_breakpoints([])
    assert not w.gap_break_action.isChecked() and w.state.replay.gap_above is None


def test_playing_an_experiment_script_from_the_window(qtbot, window, tmp_path):
    script = tmp_path / "demo.toml"
    script.write_text('[[step]]\nat = 100\nset = { "run.epsilon_start" = 0.4 }\n')
    w = window
    w.extra_overrides = TINY
    w.play_script(str(script))
    qtbot.waitUntil(lambda: len(w.state.live_events) == 1, timeout=WAIT)
    ev = w.state.live_events[0]
    assert (ev.key, ev.new, ev.source) == ("run.epsilon_start", 0.4, "script") and ev.t_env >= 100
    bad = tmp_path / "bad.toml"
    bad.write_text('[[step]]\nat = -1\nset = { "learner.lr" = 0.001 }\n')
    w.stop()
    qtbot.waitUntil(lambda: w.state.mode == "idle", timeout=WAIT)
    w.play_script(str(bad))
    assert w.state.mode == "idle" and any("step 1: at = -1" in m for m in w.state.messages)


def test_branching_the_running_training_from_the_window(qtbot, window, tmp_path):
    """File > Branch run... while training: the trainer writes a checkpoint at its next round and branches from it
    (the branch's config names the parent); the training goes on."""
    from models.training.branch import read_branch

    w = window
    _start(qtbot, w, [f'run.runs_dir="{tmp_path}"'])
    w.branch_training({"learner.lr": 0.0007})
    qtbot.waitUntil(lambda: any("branched" in m for m in w.state.messages), timeout=WAIT)
    run = w.state.run_dir
    t0 = w.state.t_env
    qtbot.waitUntil(lambda: w.state.t_env > t0, timeout=WAIT)  # the parent goes on
    w.stop()
    qtbot.waitUntil(lambda: w.state.mode == "idle", timeout=WAIT)
    branches = [p for p in tmp_path.iterdir() if p.name.startswith(os.path.basename(run) + "_branch_t")]
    assert len(branches) == 1
    rec = read_branch(branches[0])
    assert rec["parent"] == run and rec["changes"] == {"learner.lr": 0.0007}
    w.branch_training({"learner.lr": 0.001})  # nothing runs now: said, nothing sent
    assert "no training is running to branch" in w.state.messages[-1]
    assert w.branch_run(str(branches[0]), ["algo.mixing_embed=8"]) is None
    assert any("not branched" in m and "algo.mixing_embed cannot change in a branch" in m for m in w.state.messages)


def test_break_on_the_td_error_pauses_the_training_after_that_update(qtbot, window):
    w = window
    w.set_breakpoints([], td_error_above=0.0)  # any update
    _train_until_break(qtbot, w, "breakpoint: mean |TD error|")
    assert w.td_break_action.isChecked()
    t = w.state.t_env
    qtbot.wait(1000)
    assert w.state.t_env == t  # paused: no more rounds
    w.set_breakpoints([])
    assert not w.td_break_action.isChecked() and w.td_break is None


def test_break_on_qtot_far_from_the_return_pauses_a_training_and_keeps_the_episode(qtbot, window):
    import re

    from models.core.events import first_gap
    from models.files.episode_file import load_episode

    w = window
    w.set_breakpoints([], gap_above=0.0)  # any episode
    said = _train_until_break(qtbot, w, "breakpoint: |Qtot - return|")
    k = int(re.search(r"at step (\d+) of env 0's episode", said).group(1))
    # judged while env 0's recording still holds the whole episode (also when its battle ended the round)
    qtbot.waitUntil(lambda: any(m.startswith("the episode is in ") for m in w.state.messages), timeout=10_000)
    kept = next(m for m in w.state.messages if m.startswith("the episode is in "))
    ep = load_episode(kept.split()[4])
    assert first_gap(ep.arrays["qtot"], ep.return_to_go(), 0.0)[0] == k
    t = w.state.t_env
    qtbot.wait(800)
    assert w.state.t_env == t  # paused
    w.set_breakpoints([])


def test_a_training_paused_by_a_breakpoint_saves_the_episode_so_far_for_replay(qtbot, window, tmp_path):
    from models.files.episode_file import load_episode

    w = window
    w.set_breakpoints(["first damage"])
    _start(qtbot, w, [f'run.runs_dir="{tmp_path}"'])
    qtbot.waitUntil(lambda: w.state.paused and any("break_t" in p for p in w.state.recorded_episodes), timeout=WAIT)
    assert any("breakpoint: an agent first damaged" in m for m in w.state.messages)
    path = w.state.recorded_episodes[-1]
    assert "break_t" in path  # the newest
    ep = load_episode(path)
    step = ep.length  # every step up to the state it paused in: the paused snapshot's
    qtbot.waitUntil(lambda: w.state.snapshot["t"] == step, timeout=10_000)  # (snapshots are latest-wins)
    assert path.endswith(f"_step{step:03d}.npz")
    assert any(label == "an agent first damaged" and k == step for k, label in ep.markers())
    w.stop()
    qtbot.waitUntil(lambda: w.state.mode == "idle", timeout=WAIT)
    assert w.open_episode(path) and w.state.replay.length == step
