"""Live settings (models.training.live): a change applies at the next round, in the learner process too, is an
event in events.csv and the checkpoints, and a resume re-applies the events so the run goes on as the
uninterrupted one would."""
import csv
import json

import pytest
import torch

from models.config import ConfigError, load_config
from models.core.learner import lr_at
from models.core.runner import epsilon_at
from models.files.checkpoint import load_checkpoint
from models.training import live
from models.training.callbacks import Callbacks
from models.training.train import Trainer
from workbench.cli import main as cli

TINY_2C = ["env.num_envs=2", "learner.batch_size=2", "learner.replay_ratio=4", "learner.buffer_size=8",
           "algo.agent_hidden=16", "algo.mixing_embed=8", "algo.hypernet_embed=16", "run.test_episodes=2",
           "run.test_interval=100000", "run.t_max=100000", "run.save_interval=0", "run.save_buffer=true",
           "run.epsilon_anneal_steps=200"]
QUIET = dict(log=lambda *a: None)


def _rows(run, kind):
    with open(run / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r["kind"] == kind]


@pytest.mark.parametrize("learner_process", [False, True])
def test_a_change_applies_at_the_next_round_in_the_learner_too_and_is_an_event(tmp_path, learner_process):
    seen = []

    class Cb(Callbacks):
        def on_live_change(self, event):
            seen.append(event)

    cfg = load_config("qmix_2c_vs_64zg", TINY_2C + [f"run.learner_process={str(learner_process).lower()}"])
    tr = Trainer(cfg, run_dir=tmp_path / "r", callbacks=Cb(), **QUIET)
    for _ in range(3):
        tr.round()
    t_change, eps_before = tr.t_env, tr.epsilon()
    tr.set("learner.lr", 0.0002, source="test")
    tr.set("run.epsilon_start", 0.9, source="test")  # a new schedule from now: 0.9 annealing over 200 steps
    assert tr.cfg.learner.lr == cfg.learner.lr  # asked for, not applied: the round boundary applies it
    for _ in range(3):
        tr.round()
    tr.catch_up()
    ups = _rows(tmp_path / "r", "update")
    lrs = {float(r["lr"]) for r in ups}
    assert lrs == {cfg.learner.lr, 0.0002}  # the learner (in its own process too) took the new rate
    after = [r for r in ups if float(r["lr"]) == 0.0002]
    assert after and all(int(r["t_env"]) > t_change for r in after)
    eps = [(int(r["t_env"]), float(r["epsilon"])) for r in _rows(tmp_path / "r", "episode")]
    assert max(e for t, e in eps if t > t_change) > eps_before + 0.3  # exploration went back up
    assert tr.epsilon() == pytest.approx(epsilon_at(tr.t_env - t_change, 0.9, cfg.run.epsilon_finish, 200))
    with open(tmp_path / "r" / "events.csv") as f:
        ev = list(csv.DictReader(f))
    assert [(e["key"], json.loads(e["old"]), json.loads(e["new"]), e["source"], int(e["t_env"])) for e in ev] == [
        ("learner.lr", cfg.learner.lr, 0.0002, "test", t_change), ("run.epsilon_start", 1.0, 0.9, "test", t_change)]
    assert [e.key for e in seen] == ["learner.lr", "run.epsilon_start"]
    text = (tmp_path / "r" / "config.toml").read_text()
    assert f"lr = {cfg.learner.lr}" in text and "changed live while training (2 change(s))" in text
    tr.close()


@pytest.mark.parametrize("learner_process", [False, True])
def test_the_learning_rate_follows_its_schedule_over_env_steps_and_a_live_change_redraws_it(tmp_path,
                                                                                           learner_process):
    """learner.lr_anneal_steps: the rate goes linearly from learner.lr to learner.lr_finish over env steps (not
    updates: the same whatever the replay ratio), in the learner process too; changing the finish live gives the
    new schedule's rate from the next round."""
    over = TINY_2C + ["learner.lr_anneal_steps=300", "learner.lr_finish=0.0001",
                      f"run.learner_process={str(learner_process).lower()}"]
    cfg = load_config("qmix_2c_vs_64zg", over)
    tr = Trainer(cfg, run_dir=tmp_path / "r", **QUIET)
    schedule = set()
    while tr.t_env < 450:
        tr.round()
        schedule.add(lr_at(tr.t_env, cfg.learner))  # the rate of the updates this round's episodes earned
    tr.set("learner.lr_finish", 0.0002)
    tr.round()
    tr.catch_up()  # the learner process's last round
    tr.close()  # writes its rows
    lrs = [float(r["lr"]) for r in _rows(tmp_path / "r", "update")]
    before, after = lrs[:-4], lrs[-4:]  # 2 envs x ratio 4 / batch 2: 4 updates a round
    assert all(any(abs(x - y) < 1e-12 for y in schedule) for x in before)  # each the schedule's at its round
    assert before == sorted(before, reverse=True) and before[0] < cfg.learner.lr  # decaying from the first round
    assert before[-1] == pytest.approx(0.0001) and after == [pytest.approx(0.0002)] * 4  # past 300 steps: the finish
    with pytest.raises(ConfigError, match=r"learner.lr_finish: expected a value >= 0"):
        load_config("qmix_2c_vs_64zg", ["learner.lr_finish=-0.001"])


def test_locked_keys_and_bad_values_are_refused_with_the_reason(tmp_path):
    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C), run_dir=tmp_path / "r", **QUIET)
    with pytest.raises(ConfigError, match=r"algo.mixing_embed cannot change while the run trains: the networks' sizes"):
        tr.set("algo.mixing_embed", 16)
    with pytest.raises(ConfigError, match=r"learner.buffer_size cannot change .* sized when the run starts"):
        tr.set("learner.buffer_size", 10)
    with pytest.raises(ConfigError, match=r"learner.lr"):
        tr.set("learner.lr", -1.0)
    with pytest.raises(ConfigError, match=r"learner.nothing: not a setting"):
        tr.set("learner.nothing", 1)
    tr.close()
    assert live.locked_reason("learner.lr") is None and "environments" in live.locked_reason("env.num_envs")


@pytest.mark.parametrize("learner_process", [False, True])
def test_resume_reapplies_the_events_and_matches_the_uninterrupted_run(tmp_path, learner_process):
    # with a learning-rate schedule running through the checkpoint: the resumed run's rates are the same
    over = TINY_2C + [f"run.learner_process={str(learner_process).lower()}", "learner.lr_anneal_steps=400",
                      "learner.lr_finish=0.0001"]
    a = Trainer(load_config("qmix_2c_vs_64zg", over), run_dir=tmp_path / "a", **QUIET)
    for _ in range(2):
        a.round()
    a.set("learner.lr", 0.0003)
    a.set("run.epsilon_finish", 0.3)
    a.round()
    a.save()
    ck = tmp_path / "a" / "checkpoints" / "latest.pt"
    for _ in range(2):
        a.round()
    meta = load_checkpoint(ck)[0]
    assert meta["config"]["learner"]["lr"] != 0.0003 and [e["key"] for e in meta["events"]] == [
        "learner.lr", "run.epsilon_finish"]  # the starting config, and the changes made since
    b = Trainer(None, resume=ck, run_dir=tmp_path / "b", **QUIET)
    assert b.cfg.learner.lr == 0.0003 and b.cfg.run.epsilon_finish == 0.3 and b.epsilon() == a._epsilon_at(b.t_env)
    assert b.start_cfg.learner.lr == a.start_cfg.learner.lr
    for _ in range(2):
        b.round()
    for (k, p), q in zip(a.agent.state_dict().items(), b.agent.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=k)
    a.close()
    b.close()
    t_ck = meta["t_env"]

    def rows(run):
        with open(run / "metrics.csv") as f:
            return [{k: v for k, v in r.items() if k not in ("wall_s", "steps_per_s")} for r in csv.DictReader(f)]
    assert rows(tmp_path / "b") == [r for r in rows(tmp_path / "a") if int(r["t_env"]) > t_ck]
    assert [e.key for e in live.read_events(tmp_path / "b")] == ["learner.lr", "run.epsilon_finish"]


def test_cli_set_reaches_a_running_training_once(tmp_path, capsys):
    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C), run_dir=tmp_path / "r", **QUIET)
    tr.round()
    assert cli(["set", str(tmp_path / "r"), "learner.lr=0.0004", "run.test_interval=5000"]) == 0
    out = capsys.readouterr().out
    assert "learner.lr = 0.0004" in out and "next round" in out
    assert cli(["set", str(tmp_path / "r"), "--list"]) == 0 and "learner.lr" in capsys.readouterr().out
    assert cli(["set", str(tmp_path / "r")]) == 2 and "at least one SECTION.KEY=VALUE" in capsys.readouterr().err
    assert cli(["set", str(tmp_path / "r"), "algo.agent_hidden=8"]) == 2
    assert "algo.agent_hidden cannot change while the run trains" in capsys.readouterr().err
    tr.round()
    assert tr.cfg.learner.lr == 0.0004 and tr.cfg.run.test_interval == 5000
    assert [(e.source, e.request) for e in tr.events] == [("cli", 0), ("cli", 1)]
    tr.round()
    assert len(tr.events) == 2  # each line once
    tr.save()
    tr.close()
    # a line appended while the run is stopped applies at its resume, and the ones applied before do not again
    assert cli(["set", str(tmp_path / "r"), "learner.td_lambda=0.8"]) == 0
    b = Trainer(None, resume=tmp_path / "r", **QUIET)
    b.round()
    assert [e.key for e in b.events] == ["learner.lr", "run.test_interval", "learner.td_lambda"]
    assert b.cfg.learner.td_lambda == 0.8
    b.close()


def _tree_bytes(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()
            and p.name != ".lock"}


def test_branch_continues_the_parent_with_a_change_and_leaves_it_untouched(tmp_path, capsys):
    from models.sweeps.compare import compare_runs, find_runs
    from models.training.branch import read_branch

    parent = tmp_path / "parent"
    a = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C + ["run.test_interval=100"]), run_dir=parent, **QUIET)
    for _ in range(4):
        a.round()
    a.save(with_buffer=True)
    a.close()
    before = _tree_bytes(parent)
    t_ck = load_checkpoint(parent)[0]["t_env"]
    assert cli(["branch", str(parent), "--set", "learner.lr=0.0002", "--set", "run.record_interval=0",
                "--out", str(tmp_path / "b")]) == 0
    assert "train it with: qmix-workbench train --resume" in capsys.readouterr().out
    assert cli(["branch", str(parent), "--set", "algo.mixing_embed=4", "--out", str(tmp_path / "bad")]) == 2
    assert "algo.mixing_embed cannot change in a branch" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad.partial-*"))  # nothing left
    rec = read_branch(tmp_path / "b")
    assert rec["t_env"] == t_ck and rec["changes"] == {"learner.lr": 0.0002, "run.record_interval": 0}
    assert rec["with_buffer"] is True
    b = Trainer(None, resume=tmp_path / "b", overrides=["run.t_max=100000"], **QUIET)
    assert b.t_env == t_ck and b.cfg.learner.lr == 0.0002 and b.cfg.run.record_interval == 0
    assert b.cfg.run.branch_of == f"{parent.resolve()}@{t_ck}"
    assert [(e.key, e.source, e.t_env) for e in b.events] == [("learner.lr", "branch", t_ck)]
    for _ in range(3):
        b.round()
    b.close()
    rows = _rows(tmp_path / "b", "episode")
    assert rows and int(rows[0]["t_env"]) > t_ck  # its first rows continue the parent's env steps
    # the updates the parent's learner process had made but not handed to its actors are logged first (old rate)
    pending = sum(len(u) for u in load_checkpoint(parent)[0].get("pending_updates", []))
    lrs = [float(r["lr"]) for r in _rows(tmp_path / "b", "update")]
    assert lrs.index(0.0002) == pending and set(lrs[pending:]) == {0.0002}
    assert _tree_bytes(parent) == before  # the parent: byte for byte as it was
    # a branch changing nothing that groups (a control: the same settings from the same point) shares the
    # parent's history, so it is never pooled with it as a second seed
    assert cli(["branch", str(parent), "--set", "run.record_interval=0", "--out", str(tmp_path / "c")]) == 0
    c = Trainer(None, resume=tmp_path / "c", overrides=["run.t_max=100000"], **QUIET)
    for _ in range(3):
        c.round()
    c.close()
    cmp = compare_runs(find_runs([parent, tmp_path / "b", tmp_path / "c"]), metric="test_win_rate")
    assert len(cmp.groups) == 3 and all(len(g.runs) == 1 for g in cmp.groups)
    branch_group = next(g for g in cmp.groups if "0.0002" in g.label)
    assert branch_group.runs[0].t_env[0] > t_ck  # drawn from its branch point on the parent's axis
    assert sum("(branch at " in g.label for g in cmp.groups) == 2
    import shutil

    shutil.copytree(parent, tmp_path / "again")  # the same seed twice in one group: said, not hidden
    cmp = compare_runs(find_runs([parent, tmp_path / "again"]), metric="test_win_rate")
    assert len(cmp.groups) == 1 and any("share seed 0" in n for n in cmp.notes)


def test_branches_of_several_seeds_made_at_one_step_are_one_branch_point():
    """Each seed leaves at its own round boundary, at or up to a round after the step asked for."""
    from models.sweeps.compare import _labels, branch_points

    pts = branch_points([600_639, 603_200, 606_400, 1_000_000, 1_040_000, 20_400, 20_600])
    assert pts[600_639] == pts[603_200] == pts[606_400] == 600_639
    assert pts[1_000_000] == 1_000_000 and pts[1_040_000] == 1_040_000 and pts[20_600] == 20_400
    labels = _labels([{"algo.mixer": "qmix", "learner.lr": 0.001, "run.branched_at": 606_400},
                      {"algo.mixer": "qmix", "learner.lr": 0.001}])
    assert labels == ["QMIX (branch at 600k)", "QMIX"]


def test_an_experiment_script_sets_branches_and_breaks_at_its_env_steps(tmp_path, capsys):
    script = tmp_path / "lecture.toml"
    script.write_text('[[step]]\nat = 0\nbreak_on = ["agent dies"]\n\n'
                      '[[step]]\nat = 150\nset = { "learner.lr" = 0.0003, "run.epsilon_start" = 0.6 }\n\n'
                      '[[step]]\nat = 300\nbranch = { "learner.td_lambda" = 0.9 }\n')
    breaks = []

    class Cb(Callbacks):
        def on_script_break(self, kinds):
            breaks.append((tr.t_env, kinds))

    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C + [f'run.script="{script}"']), run_dir=tmp_path / "r",
                 callbacks=Cb(), **QUIET)
    while tr.t_env < 450:
        tr.round()
    assert breaks == [(0, ["agent dies"])]
    ev = [(e.key, e.source) for e in tr.events]
    assert ev == [("learner.lr", "script"), ("run.epsilon_start", "script")]
    assert tr.events[0].t_env >= 150 and tr.cfg.learner.lr == 0.0003
    branches = [p for p in tmp_path.iterdir() if p.name.startswith("r_branch_t")]
    assert len(branches) == 1
    b = Trainer(None, resume=branches[0], **QUIET)
    assert b.cfg.learner.td_lambda == 0.9 and b.cfg.learner.lr == 0.0003 and b.cfg.run.script == ""
    assert b.t_env >= 300
    b.close()
    tr.save(with_buffer=True)
    tr.close()
    # a resume does not play the steps it has played
    r = Trainer(None, resume=tmp_path / "r", **QUIET)
    r.round()
    assert len(r.events) == 2 and r._script_i == 3
    r.close()
    # a bad script is refused before anything is written, naming the step
    script.write_text('[[step]]\nat = 10\nset = { "algo.mixing_embed" = 4 }\n')
    assert cli(["train", "--preset", "qmix_2c_vs_64zg", "--script", str(script), "--run-dir",
                str(tmp_path / "never")]) == 2
    assert "step 1: algo.mixing_embed cannot change" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_a_duck_typed_callback_like_the_cli_progress_bar_takes_live_changes(tmp_path):
    from workbench.cli import ProgressBar
    import io

    bar = ProgressBar(stream=io.StringIO())
    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C), run_dir=tmp_path / "r", callbacks=bar, **QUIET)
    tr.round()
    tr.set("learner.lr", 0.0005)
    tr.round()  # the hooks it lacks (on_live_change, wants_episode, ...) are the defaults
    assert tr.cfg.learner.lr == 0.0005 and len(tr.events) == 1
    tr.close()


def test_a_branch_that_cannot_be_made_is_said_and_the_training_goes_on(tmp_path):
    logs = []
    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C), run_dir=tmp_path / "r", log=logs.append)
    tr.round()
    tr.branch_now({"learner.lr": 0.0002})
    tr.branch_now({"learner.lr": 0.0002})  # the same branch again at the same step: its directory holds a run
    tr.round()
    assert any("branched" in m for m in logs) and any("warning: no branch made" in m and "already holds a run" in m
                                                      for m in logs)
    tr.round()  # the training went on
    tr.close()
    s = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C), run_dir=tmp_path / "s", **QUIET)
    with pytest.raises(ConfigError, match="algo.mixer cannot change in a branch"):
        s.branch_now({"algo.mixer": "vdn"})
    s.close()


def test_a_new_run_from_a_branchs_config_is_no_branch(tmp_path):
    """A branch's config.toml reused for a run from scratch: run.branch_of would group it as a branch."""
    said = []
    cfg = load_config("qmix_2c_vs_64zg", TINY_2C + ['run.branch_of="/somewhere/parent@1000"'])
    t = Trainer(cfg, run_dir=tmp_path / "fresh", log=said.append)
    t.close()
    assert t.cfg.run.branch_of == "" and any("run.branch_of" in s and "cleared" in s for s in said)
    assert "/somewhere/parent" not in (tmp_path / "fresh" / "config.toml").read_text()
