"""Replay mode: the real window on a real recorded episode file (offscreen), its Qt-free model, bad files,
forks from the timeline, and the File menu's recorded episodes."""
import json
import shutil
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402

from workbench.replay import SPEEDS, STEPS_PER_S_AT_1X, ReplayModel  # noqa: E402
from workbench import protocol as P  # noqa: E402
from workbench.state import WorkbenchState  # noqa: E402



@pytest.fixture(scope="module")
def episode(episode_path):
    from models.files.episode_file import load_episode

    return load_episode(episode_path)


def _death_step(ep) -> int:
    return int(np.flatnonzero(~ep.arrays["alive"][:, 0])[0])


def _rewrite(src, dst, edit_header=None, drop=()):
    """A copy of an episode file with its JSON header edited (and arrays dropped), as np.savez writes it."""
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    hdr = json.loads(arrays["header"].tobytes().decode())
    if edit_header:
        edit_header(hdr)
    arrays["header"] = np.frombuffer(json.dumps(hdr).encode(), dtype=np.uint8)
    np.savez(dst, **arrays)
    return str(dst)


# ---- the Qt-free model ------------------------------------------------------------------------------------------
def _points(curve) -> int:
    x = curve.getData()[0]  # pyqtgraph gives None for a curve emptied
    return 0 if x is None else len(x)


def test_replay_model_without_a_window(episode):
    rp = ReplayModel(episode)
    T = rp.length
    assert T == episode.length and rp.step == 0 and not rp.playing
    assert rp.env_info()["n_agents"] == 2 and rp.env_info()["n_actions"] == 70
    assert rp.algorithm == "RES-QMIX" and rp.map_name == "2c_vs_64zg"
    assert rp.step_by(-1) is False and rp.step == 0  # clamped at the ends
    assert rp.seek(5) and rp.snapshot()["cursor"] == 5 and rp.snapshot()["replay"]
    assert rp.step_by(-1) and rp.step == 4
    assert rp.end() and rp.step == T and rp.step_by(1) is False
    assert rp.home() and rp.step == 0
    # marker jumps visit every marker step in order, then stay
    visited = []
    while rp.next_marker():
        visited.append(rp.step)
    assert visited == sorted({s for s, _ in rp.markers if s > 0})
    assert _death_step(episode) in visited and "agent 0 dies" in rp.markers_at(_death_step(episode))
    assert rp.prev_marker() and rp.step == visited[-2]
    # playback by the clock: 1x = STEPS_PER_S_AT_1X steps per second; it stops at the last state
    rp.home()
    rp.set_speed(2.0)
    with pytest.raises(ValueError, match="not one of"):
        rp.set_speed(3.0)
    rp.play()
    assert rp.advance(100.0) is False  # the first tick starts the clock
    assert rp.advance(100.5) and rp.step == int(0.5 * 2 * STEPS_PER_S_AT_1X)
    rp.advance(1000.0)
    assert rp.step == T and not rp.playing
    rp.play()  # from the end: starts over
    assert rp.step == 0 and rp.playing
    assert rp.toggle() is False and rp.advance(2000.0) is False
    assert SPEEDS == (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    assert rp.status() == f"replay  step 0/{T}  {episode.path}"
    assert rp.fork_path(5, 1, 12).name == f"{Path(episode.path).stem}_fork_s5_a1_12.npz"


def test_state_records_watched_episode_files_and_opens_a_replay(episode):
    st = WorkbenchState()
    st.ingest([P.EpisodeRecorded("/runs/r/episodes/watch_s0_00000.npz"),
               P.EpisodeRecorded("/runs/r/episodes/watch_s0_00001.npz")])
    assert st.recorded_episodes[-1].endswith("00001.npz") and "episode recorded" in st.messages[-1]
    st.open_replay(ReplayModel(episode))
    assert st.mode == "replay" and st.env_info["n_agents"] == 2 and st.config["algo"]["mixer"] == "qmix"
    st.process_ended(0)  # a run that ended before the replay opened does not end Replay mode
    assert st.mode == "replay"


# ---- the window -----------------------------------------------------------------------------------------------------
def test_open_scrub_step_and_jump_to_the_death_step(qtbot, window, episode, episode_path):
    w = window
    assert not w.timeline.isVisible()
    assert w.open_episode(episode_path)
    st = w.state
    T = episode.length
    assert st.mode == "replay" and w.timeline.isVisible()
    assert w.timeline.slider.maximum() == T and w.timeline.slider.markers == episode.markers()
    assert f"replay  step 0/{T}  {episode_path}" in w.status.text()
    k = 7
    w.timeline.slider.setValue(k)  # as a drag of the slider does
    assert st.replay.step == k and st.snapshot["cursor"] == k
    for i in range(2):
        assert np.allclose(w.qvalues.heights(i), episode.arrays["q"][k][i])
    assert np.allclose(w.joint.table, episode.joint_table(k))
    assert w.qtot.cursor.isVisible() and w.qtot.cursor.value() == k
    # the replayed episode's Qtot is drawn once, and the return beside it is called this episode's
    legend = w.qtot.key_names
    assert not any("last" in t for t in legend), legend
    assert "return earned" in legend and "return earned" in w.qtot.getPlotItem().titleLabel.text
    assert _points(w.qtot.cur) == T and _points(w.qtot.last_q) == 0
    assert np.allclose(w.mixer.w1, episode.arrays["w1"][k])
    assert w.arena.frames_drawn > 0 and f"step {k}/{T}" in w.status.text()
    w.timeline.back.click()
    assert st.replay.step == k - 1 and np.allclose(w.qvalues.heights(0), episode.arrays["q"][k - 1][0])
    # next marker, repeatedly from 0, reaches the step where agent 0 dies
    w.seek(0)
    death = _death_step(episode)
    for _ in range(len(episode.markers())):
        if st.replay.step == death:
            break
        w.timeline.next_marker.click()
    assert st.replay.step == death and "agent 0 dies" in w.timeline.label.text()
    assert not st.snapshot["world"]["alive"][0]
    # keys: window-wide shortcuts while the timeline shows
    w.activateWindow()
    qtbot.waitUntil(lambda: w.isActiveWindow(), timeout=5_000)
    qtbot.keyClick(w.timeline, Qt.Key_Home)
    assert st.replay.step == 0
    qtbot.keyClick(w.timeline, Qt.Key_Right)
    qtbot.keyClick(w.timeline, Qt.Key_Right)
    qtbot.keyClick(w.timeline, Qt.Key_Left)
    assert st.replay.step == 1
    qtbot.keyClick(w.timeline, Qt.Key_End)
    assert st.replay.step == T
    qtbot.keyClick(w.timeline, Qt.Key_PageUp)
    assert st.replay.step == max(s for s, _ in episode.markers() if s < T)
    qtbot.keyClick(w.timeline, Qt.Key_Space)
    assert st.replay.playing
    qtbot.keyClick(w.timeline, Qt.Key_Space)
    assert not st.replay.playing
    w.grab().save("/tmp/replay_test.png")


def test_plays_for_a_second_with_the_timer(qtbot, window, episode_path):
    w = window
    w.open_episode(episode_path)
    frames = w.arena.frames_drawn
    w.timeline.speed.setCurrentIndex(SPEEDS.index(4.0))
    assert w.state.replay.speed == 4.0
    w.timeline.play.click()
    assert w.state.replay.playing and "pause" in w.timeline.play.text()
    t = time.monotonic()
    while time.monotonic() - t < 1.0:
        w.repaint()
        qtbot.wait(50)
    assert w.state.replay.step > 0 and w.arena.frames_drawn > frames
    assert "playing 4x" in w.status.text() or not w.state.replay.playing
    assert w.state.error is None and w.state.alert is None


def test_bad_episode_files_are_one_line_and_the_window_keeps_working(window, episode_path, tmp_path):
    w = window
    assert w.open_episode(episode_path)
    w.seek(3)
    data = Path(episode_path).read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    cases = [(str(truncated), "truncated"),
             (_rewrite(episode_path, tmp_path / "v99.npz", lambda h: h.update(version=99)), "version 99"),
             (str(tmp_path / "nowhere.npz"), "does not exist"),
             (_rewrite(episode_path, tmp_path / "map.npz", lambda h: h.update(map="3s_vs_nowhere")), "3s_vs_nowhere")]
    for path, words in cases:
        assert not w.open_episode(path)
        assert words in w.status.text() and path in w.status.text(), w.status.text()
        assert "ff5555" in w.status.styleSheet()
        assert words in w.log_view.toPlainText().splitlines()[-1]
        # the episode that was open stays open and usable
        assert w.state.mode == "replay" and w.state.replay.path == episode_path and w.state.replay.step == 3
    w.timeline.forward.click()
    assert w.state.replay.step == 4
    assert w.open_episode(episode_path)  # a good file clears the red status
    assert "ff5555" not in w.status.styleSheet()


def test_open_is_refused_while_a_trainer_runs(window, episode_path, monkeypatch):
    w = window
    monkeypatch.setattr(w.client, "alive", lambda: True)
    assert not w.open_episode(episode_path)
    assert "stop the current run" in w.log_view.toPlainText() and w.state.mode == "idle"


def test_drop_menu_and_last_recorded_episode(window, episode_path, tmp_path):
    w = window
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(episode_path)])
    ev = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    w.dropEvent(ev)
    assert w.state.mode == "replay" and w.state.replay.path == episode_path
    names = [a.text() for a in w.file_menu.actions()]
    assert "Open episode\u2026" in names and "Open last recorded episode" in names
    # Watch mode's ("recorded", path) messages; the newest that still exists is opened
    copy = tmp_path / "watch_s0_00001.npz"
    shutil.copy(episode_path, copy)
    w.state.ingest([P.EpisodeRecorded(str(copy)), P.EpisodeRecorded(str(tmp_path / "deleted_by_the_ring.npz"))])
    assert w.last_recorded_episode() == str(copy)
    w.open_last_recorded()
    assert w.state.replay.path == str(copy)


def test_watch_payload_carries_the_ring_size(window, tiny_run, monkeypatch):
    w = window
    sent = {}
    monkeypatch.setattr(w.client, "start", lambda mode, payload, hz=30.0: sent.update(payload))
    w.controls.keep_episodes.setValue(7)
    w.watch_checkpoint(str(tiny_run))
    assert sent["keep"] == 7


def test_fork_from_the_timeline_shows_the_table_and_opens_the_fork(qtbot, window, episode_path, tmp_path):
    from workbench.panels.fork import GREEDY, ForkDialog

    src = tmp_path / "ep.npz"
    shutil.copy(episode_path, src)  # the fork's file is written beside it
    w = window
    w.open_episode(str(src))
    ep = w.state.replay.episode
    k = 6
    w.seek(k)
    dlg = ForkDialog(w.state.replay, 1)
    assert dlg.agent.currentIndex() == 1 and dlg.episodes.value() == 20
    items = [dlg.action.itemData(i) for i in range(dlg.action.count())]
    assert items[0] == GREEDY and items[1:] == np.flatnonzero(ep.arrays["avail"][k, 1]).tolist()
    assert "greedy instead of recorded" in dlg.action.itemText(0)
    assert dlg.action.currentData() != int(ep.arrays["actions"][k, 1])  # preselects a change
    dlg.agent.setCurrentIndex(0)
    other = [a for a in np.flatnonzero(ep.arrays["avail"][k, 0]) if a != ep.arrays["actions"][k, 0]][0]
    dlg.action.setCurrentIndex(dlg.action.findData(int(other)))
    dlg.episodes.setValue(2)
    agent, action, n = dlg.choice()
    assert (agent, action, n) == (0, int(other), 2)
    dlg.deleteLater()

    r = w.run_fork(agent, action, n)
    assert r is not None and len(r.fork.won) == 2
    assert w.docks["Fork"].isVisible() and "win rate" in w.fork_view.table.toPlainText()
    assert "win rate" in w.log_view.toPlainText() and f"fork at step {k}" in w.log_view.toPlainText()
    assert w.open_fork_as_replay()
    forked = tmp_path / f"ep_fork_s{k}_a0_{int(other)}.npz"
    assert forked.is_file() and w.state.replay.path == str(forked)
    assert w.state.replay.episode.header["source"] == "fork"
    assert int(w.state.replay.episode.arrays["actions"][k, 0]) == int(other)

    # a fork whose policy cannot be found is a message; the replay stays usable
    gone = _rewrite(src, tmp_path / "no_ckpt.npz",
                    lambda h: h.update(checkpoint={"path": str(tmp_path / "gone" / "latest.pt"), "digest": None}))
    w.open_episode(gone)
    w.seek(2)
    assert w.run_fork(0, GREEDY, 2) is None
    assert "fork failed" in w.status.text() and "no longer exists" in w.log_view.toPlainText()
    w.timeline.forward.click()
    assert w.state.replay.step == 3


def test_export_calls_the_exporter_with_the_episode_file(window, episode_path, tmp_path, monkeypatch):
    calls = []

    def export_episode(path_or_episode, out, fmt="gif", panels=("arena",), fps=8.0):
        calls.append((path_or_episode, out, fmt, list(panels), fps))
        if "fail" in str(out):
            raise ValueError(f"cannot write {out}")
        return Path(out), 24

    monkeypatch.setitem(sys.modules, "workbench.export", types.SimpleNamespace(export_episode=export_episode))
    w = window
    w.open_episode(episode_path)
    assert w.export_to(str(tmp_path / "out.mp4")) == (tmp_path / "out.mp4", 24)
    assert calls[-1] == (episode_path, str(tmp_path / "out.mp4"), "mp4", ["arena", "qvalues", "qtot"], 8)
    w.export_to(str(tmp_path / "clip"), "gif")
    assert calls[-1][1:3] == (str(tmp_path / "clip.gif"), "gif")
    assert "exported 24 frames" in w.log_view.toPlainText()
    assert w.export_to(str(tmp_path / "fail.gif")) is None and "export failed" in w.status.text()
    assert w.state.mode == "replay"


def test_qtot_key_wraps_in_a_narrow_dock_and_its_title_gets_the_height(qtbot):
    """At 1800x1120 the Qtot dock is ~220 px wide: a one-line key was cut at both ends; it wraps now, and the
    title's row (fixed at 30 px by pyqtgraph, which clipped even a title with a one-line key) holds its lines."""
    from workbench.panels.qtot import QtotPanel

    panel = QtotPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.resize(600, 250)
    qtbot.waitUntil(lambda: panel.width() == 600)
    label = panel.getPlotItem().titleLabel
    assert "<br>" not in label.text.split("<br>", 1)[1]  # the key on one line
    wide = label.maximumHeight()
    assert wide > 30 and wide >= label.item.boundingRect().height()  # two lines: 30 px cut the key's lower half
    panel.resize(220, 250)
    qtbot.waitUntil(lambda: panel.width() == 220)
    assert label.text.count("<br>") >= 2 and all(n in label.text for n in panel.key_names)
    assert label.maximumHeight() > wide and label.maximumHeight() >= label.item.boundingRect().height()


def test_mixer_credit_key_wraps_under_its_title_in_a_narrow_dock(qtbot):
    """At 1800x1120 the Mixer dock cut "credit per step - agent 0 - agent 1" at its right end: in a narrow dock
    the key goes on the lines under the title, in a wide one it stays beside it."""
    from workbench.panels.mixer import MixerPanel

    panel = MixerPanel()
    qtbot.addWidget(panel)
    panel.setup("qmix", 2)
    panel.show()
    panel.resize(700, 400)
    qtbot.waitUntil(lambda: panel.width() == 700)
    label = panel.credit_plot.titleLabel
    assert "<br>" not in label.text and "agent 0" in label.text and "agent 1" in label.text
    panel.resize(160, 400)
    qtbot.waitUntil(lambda: panel.width() == 160)
    first, *under = label.text.split("<br>")
    assert first == "credit per step" and len(under) == 2  # one agent per line at 100 px
    assert "agent 0" in under[0] and "agent 1" in under[1]
    assert label.maximumHeight() >= label.item.boundingRect().height() > 30


def test_qtot_panel_legend_follows_the_mode(qtbot):
    from workbench.panels.qtot import QtotPanel

    panel = QtotPanel()
    qtbot.addWidget(panel)
    ep = {"qtot": [1.0, 2.0, 3.0], "return_to_go": [0.5, 1.0, 1.5]}
    live = {"trace": {"qtot": [1.0], "greedy": [1.5], "res": []}, "last_episode": ep}
    replay = {"trace": {"qtot": ep["qtot"], "greedy": [1.5] * 3, "res": []}, "last_episode": ep,
              "replay": True, "cursor": 1}

    def legend():
        assert all(name in panel.getPlotItem().titleLabel.text for name in panel.key_names)  # the key is in the title
        return panel.key_names

    panel.show_trace(live)
    assert panel.getPlotItem().legend is None  # nothing over the curves: a legend covered most of a laptop's panel
    assert "last ep. Qtot" in legend() and _points(panel.last_q) == 3
    panel.show_trace(replay)
    assert "last ep. Qtot" not in legend() and _points(panel.last_q) == 0
    assert legend()[-1] == "return earned" and "this episode" in panel.toolTip()
    assert panel.label.toPlainText().startswith("this episode: mean Qtot - return = +1.00")
    panel.show_trace(live)  # back to live: the legend is as it was, in its order
    assert legend()[-2:] == ["last ep. Qtot", "last ep. return"]
    assert _points(panel.last_q) == 3
    assert "RES target" not in legend()  # no key for a line a run without RES never draws
    panel.set_res(True)
    assert legend()[2] == "RES target" and len(legend()) == 5 and "RES's softmax target" in panel.toolTip()
