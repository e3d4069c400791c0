"""The Compare runs window over a real (tiny) sweep: two groups of two matrix-game runs drawn with bands, options
that update the same plot items, runs added one by one, bad directories as a red line, and the File menu entry."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from models.sweeps.sweep import jobs_for, plan_sweep, prepare_sweep, run_trial  # noqa: E402
from workbench.panels.compare import CompareWindow  # noqa: E402

NAMES = ["qmix_twostep_s0", "qmix_twostep_s1", "vdn_twostep_s0", "vdn_twostep_s1"]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """2 presets x 2 seeds on the two-step game, each trial run here in turn (no pool: one process, one thread)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = plan_sweep(["qmix_twostep", "vdn_twostep"], [0, 1], final_episodes=0,
                          fixed=["run.t_max=600", "run.test_interval=128", "run.test_episodes=4"])
        d, lock = prepare_sweep(spec, tmp_path_factory.mktemp("cmp") / "sw")
        for job in jobs_for(spec, d):
            r = run_trial(job)
            assert r.status == "done", r
        lock.release()
    finally:
        torch.set_num_threads(threads)
    return d


def _window(qtbot, paths=None) -> CompareWindow:
    w = CompareWindow(paths)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _data(curve) -> tuple[np.ndarray, np.ndarray]:
    x, y = curve.getData()
    return (np.array([]), np.array([])) if x is None else (np.asarray(x), np.asarray(y))


def _legend(w) -> list[str]:
    return [label.text for _, label in w.legend.items]


def _shows(w, attr="by_steps"):
    """Every group's items hold its band from the window's comparison (finite part), and the fill is drawn."""
    for items, g in zip(w.groups, w.comparison.groups):
        b = getattr(g, attr)
        ok = np.isfinite(b.center)
        assert ok.sum() >= 2
        for curve, want in ((items.lo, b.lo), (items.hi, b.hi), (items.centre, b.center)):
            x, y = _data(curve)
            assert np.allclose(x, b.x[ok]) and np.allclose(y, want[ok])
        assert not items.fill.path().isEmpty()


def _table(w) -> list[list[str]]:
    return [[w.table.item(r, k).text() for k in range(w.table.columnCount())] for r in range(w.table.rowCount())]


def test_sweep_draws_two_groups_with_bands_and_a_table(qtbot, sweep_dir):
    w = _window(qtbot, [sweep_dir])
    assert not w.message.isVisible()
    assert [g.label for g in w.comparison.groups] == ["QMIX", "VDN"]
    assert len(w.groups) == 2 and len({id(i.fill) for i in w.groups}) == 2
    _shows(w)
    assert _legend(w) == ["QMIX (2 seeds)", "VDN (2 seeds)"]
    rows = _table(w)
    assert [r[:2] for r in rows] == [["QMIX", "2"], ["VDN", "2"]]
    head = [w.table.horizontalHeaderItem(k).text() for k in range(w.table.columnCount())]
    assert head[:2] == ["group", "seeds"] and "final test_return" in head  # a matrix game: its return
    assert "median [IQR]" in w.title.text()
    assert "4 runs from" in w.sources.text()
    # the aggregates with their intervals and the probability of improvement, in tabs beside the table
    agg = [[w.aggregates.item(r, k).text() for k in range(w.aggregates.columnCount())]
           for r in range(w.aggregates.rowCount())]
    assert [r[:2] for r in agg] == [["QMIX", "2"], ["VDN", "2"]] and "fewer than 5" in agg[0][-1]
    assert w.aggregates.horizontalHeaderItem(2).text() == "IQM"
    assert w.improvement.rowCount() == 2 and w.improvement.item(0, 2).text().count("[") == 1
    w.stat_choice.setCurrentIndex(2)  # IQM curves
    assert w.comparison.stat == "iqm" and "IQM and 95% bootstrap CI" in w.plot.titleLabel.text
    w.stat_choice.setCurrentIndex(0)
    w.metric_choice.setCurrentText("test_return")  # the two-step game's returns differ; its "win" is rare
    w.resize(1200, 820)
    qtbot.wait(50)
    assert w.grab().save("/tmp/compare.png")


def test_options_update_the_same_items(qtbot, sweep_dir):
    w = _window(qtbot, [sweep_dir])
    items = [(i.lo, i.hi, i.fill, i.centre) for i in w.groups]
    steps_x = _data(w.groups[0].centre)[0]

    w.axis_choice.setCurrentIndex(1)  # wall-clock
    assert [(i.lo, i.hi, i.fill, i.centre) for i in w.groups] == items
    wall_x = _data(w.groups[0].centre)[0]
    assert wall_x[-1] < steps_x[-1]  # seconds of a 600-step run, not its steps
    _shows(w, "by_wall")
    assert w.plot.getAxis("bottom").labelText == "training wall time"

    w.stat_choice.setCurrentIndex(1)  # mean and bootstrap CI
    assert w.comparison.stat == "mean"
    assert [(i.lo, i.hi, i.fill, i.centre) for i in w.groups] == items
    _shows(w, "by_wall")
    assert "mean [95% CI]" in w.title.text() and "95% bootstrap CI" in w.plot.titleLabel.text

    w.metric_choice.setCurrentText("test_return")
    assert w.comparison.metric == "test_return"
    assert [(i.lo, i.hi, i.fill, i.centre) for i in w.groups] == items
    _shows(w, "by_wall")
    assert any("test_return @" in h for h in
               (w.table.horizontalHeaderItem(k).text() for k in range(w.table.columnCount())))

    w.axis_choice.setCurrentIndex(0)
    w.stat_choice.setCurrentIndex(0)
    w.metric_choice.setCurrentText("test_win_rate")
    assert [(i.lo, i.hi, i.fill, i.centre) for i in w.groups] == items
    assert np.allclose(_data(w.groups[0].centre)[0], steps_x)
    assert _legend(w) == ["QMIX (2 seeds)", "VDN (2 seeds)"]


def test_runs_added_one_by_one(qtbot, sweep_dir):
    w = _window(qtbot)
    assert w.groups == [] and "no runs yet" in w.sources.text()
    assert w.add_paths([sweep_dir / "qmix_twostep_s0"])
    assert _legend(w) == ["QMIX (1 seed)"]
    assert w.add_paths([sweep_dir / "vdn_twostep_s0"])
    assert _legend(w) == ["QMIX (1 seed)", "VDN (1 seed)"]
    items = [i.fill for i in w.groups]
    assert w.add_paths([sweep_dir / "qmix_twostep_s1", sweep_dir / "vdn_twostep_s1"])
    assert [i.fill for i in w.groups] == items  # the same groups: the same items, one more seed each
    assert _legend(w) == ["QMIX (2 seeds)", "VDN (2 seeds)"]
    _shows(w)
    assert w.add_paths([sweep_dir])  # the same runs again, through the sweep: each counted once
    assert _legend(w) == ["QMIX (2 seeds)", "VDN (2 seeds)"]
    w.clear()
    assert w.groups == [] and w.table.rowCount() == 0 and w.plot.listDataItems() == []


def test_bad_directories_are_a_red_line(qtbot, sweep_dir, tmp_path):
    w = _window(qtbot)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not w.add_paths([empty])
    assert w.message.isVisible() and "not a run directory (no metrics.csv)" in w.message.text()
    assert str(empty) in w.message.text() and w.groups == [] and w.paths == []

    no_runs = tmp_path / "no_runs"
    (no_runs / "notes").mkdir(parents=True)
    (no_runs / "notes" / "readme.txt").write_text("not a run")
    assert not w.add_paths([no_runs])
    assert "directory of runs" in w.message.text()

    assert not w.add_paths([tmp_path / "missing"])
    assert "no such directory" in w.message.text()

    fresh = tmp_path / "fresh"  # a run that has not evaluated yet
    fresh.mkdir()
    (fresh / "config.toml").write_text((sweep_dir / "qmix_twostep_s0" / "config.toml").read_text())
    (fresh / "metrics.csv").write_text((sweep_dir / "qmix_twostep_s0" / "metrics.csv").read_text().splitlines()[0]
                                       + "\n")
    assert not w.add_paths([fresh])
    assert "no run has an evaluation yet" in w.message.text()

    assert w.add_paths([sweep_dir])
    assert not w.message.isVisible() and len(w.groups) == 2
    assert not w.add_paths([empty])  # a bad addition leaves what is shown as it was
    assert w.message.isVisible() and len(w.groups) == 2 and w.paths == [sweep_dir]
    _shows(w)


def test_file_menu_opens_compare(qtbot, sweep_dir, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from workbench.app import MainWindow

    w = MainWindow(runs_dir=str(tmp_path / "runs"))
    qtbot.addWidget(w)
    w.show()
    try:
        assert w.compare_action in w.file_menu.actions() and w.compare_action.text() == "Compare runs\u2026"
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(sweep_dir)))
        w.compare_action.trigger()
        cw = w.compare_window
        assert cw is not None and cw.isVisible() and len(cw.groups) == 2
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path)))
        cw.add_button.click()  # tmp_path holds no runs
        assert cw.message.isVisible() and len(cw.groups) == 2
        w.compare_action.trigger()  # the same window again
        assert w.compare_window is cw
    finally:
        w.close()


def test_follows_runs_that_are_still_training(qtbot, sweep_dir, tmp_path):
    """A directory of runs where a run starts and another writes more rows after the window opened: the
    window reads them again (and only then), as it does every few seconds while "follow" is on."""
    import shutil

    runs = tmp_path / "runs"
    for name in ("qmix_twostep_s0", "vdn_twostep_s0", "vdn_twostep_s1"):
        shutil.copytree(sweep_dir / name, runs / name)
    full = (runs / "vdn_twostep_s1" / "metrics.csv").read_text().splitlines(keepends=True)
    (runs / "vdn_twostep_s1" / "final_eval.json").unlink(missing_ok=True)
    (runs / "vdn_twostep_s1" / "metrics.csv").write_text("".join(full[: len(full) // 2]))  # mid-training
    w = _window(qtbot, [runs])
    assert w.follow.isChecked() and w.follow_timer.isActive()
    assert _legend(w) == ["QMIX (1 seed)", "VDN (2 seeds)"]
    def last_eval(name):
        return next(r for g in w.comparison.groups for r in g.runs if r.run_dir.name == name).t_env[-1]

    t_before = last_eval("vdn_twostep_s1")
    assert not w.reload_if_changed()  # nothing changed: nothing read
    shutil.copytree(sweep_dir / "qmix_twostep_s1", runs / "qmix_twostep_s1")  # a run starts
    (runs / "vdn_twostep_s1" / "metrics.csv").write_text("".join(full))  # another one goes on
    items = [i.fill for i in w.groups]
    assert w.reload_if_changed()
    assert _legend(w) == ["QMIX (2 seeds)", "VDN (2 seeds)"] and [i.fill for i in w.groups] == items
    assert last_eval("vdn_twostep_s1") > t_before
    assert "4 runs from" in w.sources.text()
    _shows(w)
    w.metric_choice.setCurrentText("test_return")  # an option read after the change is over the new rows too
    assert sum(len(g.runs) for g in w.comparison.groups) == 4
    w.follow.setChecked(False)
    assert not w.follow_timer.isActive()


def test_a_branch_and_its_parent_overlaid_with_the_branch_point_marked(qtbot, sweep_dir, tmp_path):
    """A branch of a two-step run (learning rate changed at its latest checkpoint): two groups, the branch's curve
    starting at its branch point, a dashed line there in its colour; on the wall-time axis no line."""
    import shutil

    from models.training.branch import branch

    parent = tmp_path / "parent"
    shutil.copytree(sweep_dir / "qmix_twostep_s0", parent)
    b = branch(parent, ["learner.lr=0.0002"], out=tmp_path / "b", log=lambda *a: None)
    from models.training.train import Trainer

    # a control branch: the same settings from the same point, only allowed to go further
    ctl = branch(parent, ["run.t_max=1200"], out=tmp_path / "ctl", log=lambda *a: None)
    for run in (b, ctl):
        tr = Trainer(None, resume=run, overrides=["run.t_max=1200"], log=lambda *a: None)
        while tr.t_env < 1200:
            tr.round()
        tr.close()
    w = _window(qtbot, [parent, b, ctl])
    c = w.comparison
    assert len(c.groups) == 3 and any("lr=0.0002" in g.label for g in c.groups)
    t_branch = next(g for g in c.groups if "0.0002" in g.label).runs[0].events[0].t_env
    # the change's line, and the control's (its t_max is no setting: "branch"), labelled one under the other
    assert [line.value() for line in w.event_lines] == [t_branch, t_branch]
    assert sorted(line.label.toPlainText() for line in w.event_lines) == ["branch", "lr=0.0002"]
    assert len({line.label.orthoPos for line in w.event_lines}) == 2
    w.axis_choice.setCurrentIndex(1)  # training wall time: a branch point is an env step
    assert w.event_lines == []
