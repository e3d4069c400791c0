"""Hostile use of the commands that write (issue 32): no output may replace or write into an input or a run/sweep
directory the command does not own, a branch is all or nothing and never touches its parent, a branch's request
log is its own. Property-based (Hypothesis) generation of output paths against a real sweep of real runs: no
input file changes and no traceback escapes."""
import os
from pathlib import Path

import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.files.guard import Output, OutputRefused, check_outputs
from workbench.cli import main as cli


_run = run_cli


def _tree(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real sweep of one preset x 2 seeds on the two-step game."""
    d = tmp_path_factory.mktemp("hostile") / "SWF"
    rc, out, err = _run(["sweep", "--preset", "qmix_twostep", "--seeds", "0,1", "--set", "run.t_max=300",
                         "--set", "run.test_interval=128", "--final-episodes", "8", "--out", str(d), "--workers", "1"])
    assert rc == 0, out + err
    return d


# ---- row 1: compare (and the other writers) never write into an input ----------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("target", ["qmix_twostep_s0/metrics.csv", "sweep.toml", "qmix_twostep_s0/checkpoints/latest.pt",
                                    "qmix_twostep_s1/final_eval.json", "new_figure.png"])
@pytest.mark.parametrize("flag", ["--out", "--out-stats", "--export-marl-eval"])
def test_compare_refuses_an_output_in_its_input_even_with_force(sweep, target, flag):
    before = _tree(sweep)
    rc, out, err = _run(["compare", str(sweep), flag, str(sweep / target), "--force"])
    assert rc == 2 and "input" in err and "Traceback" not in err, err
    assert _tree(sweep) == before


@pytest.mark.slow
def test_an_output_through_a_link_into_an_input_is_refused(sweep, tmp_path):
    link = tmp_path / "innocent.csv"
    link.symlink_to(sweep / "qmix_twostep_s0" / "metrics.csv")
    before = _tree(sweep)
    rc, _, err = _run(["compare", str(sweep), "--out", str(link), "--force"])
    assert rc == 2 and "lies inside the input" in err
    alias = tmp_path / "alias"
    alias.symlink_to(sweep, target_is_directory=True)
    rc, _, err = _run(["plot", str(sweep / "qmix_twostep_s0"), "--out", str(alias / "sweep.toml"), "--force"])
    assert rc == 2 and "sweep directory" in err
    assert _tree(sweep) == before


@pytest.mark.slow
def test_plot_writes_beside_a_run_but_never_over_its_records(sweep, tmp_path):
    run = sweep / "qmix_twostep_s1"
    before = _tree(run)
    rc, _, err = _run(["plot", str(run), "--out", str(run / "metrics.csv"), "--force"])
    assert rc == 2 and "records" in err
    assert _tree(run) == before
    rc, out, _ = _run(["plot", str(run), "--out", str(tmp_path / "c.png")])
    assert rc == 0 and (tmp_path / "c.png").stat().st_size > 0


# ---- row 2: a branch never writes into its parent, nor inside any run directory; all or nothing --------------------
@pytest.mark.slow
@pytest.mark.parametrize("out", [".", "checkpoints", "inside", "../qmix_twostep_s1", "../qmix_twostep_s1/b", ".."])
def test_branch_into_a_run_or_sweep_directory_is_refused_and_the_parent_is_untouched(sweep, out):
    parent = sweep / "qmix_twostep_s0"
    before = _tree(sweep)
    for source in (parent, parent / "checkpoints" / "latest.pt"):
        rc, _, err = _run(["branch", str(source), "--set", "learner.lr=0.003", "--out", str(parent / out)])
        assert rc == 2 and "Traceback" not in err, err
    assert _tree(sweep) == before
    assert not list(sweep.rglob(".*partial-*"))


@pytest.mark.slow
def test_a_bad_branch_leaves_nothing_and_a_retry_works(sweep, tmp_path):
    parent = sweep / "qmix_twostep_s0"
    before = _tree(sweep)
    b = tmp_path / "b"
    for bad in (["learner.lr=0.003", "learner.td_lambda=7"], ["learner.lr=0.003", "learner.lrr=1"],
                ["algo.hypernet_embed=3"]):
        rc, _, err = _run(["branch", str(parent), *sum((["--set", c] for c in bad), []), "--out", str(b)])
        assert rc == 2 and "Traceback" not in err, err
        assert not b.exists() and not list(tmp_path.glob(".b.partial-*"))
    rc, out, err = _run(["branch", str(parent), "--set", "learner.lr=0.003", "--out", str(b)])
    assert rc == 0, err
    assert (b / "config.toml").exists() and (b / "branch.json").exists()
    assert _tree(sweep) == before


# ---- row 4: a branch starts its own request log ------------------------------------------------------------------
@pytest.mark.slow
def test_a_branch_applies_its_own_requests(tmp_path):
    from models.config import load_config
    from models.training.train import Trainer

    from conftest import TINY_2C

    quiet = {"log": lambda *a: None}
    parent = tmp_path / "P"
    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C + ["run.t_max=100000"]), run_dir=parent, **quiet)
    tr.round()
    tr.save()
    tr.close()
    assert _run(["set", str(parent), "learner.lr=0.001", "learner.td_lambda=0.3"])[0] == 0
    tr = Trainer(None, resume=parent, **quiet)
    tr.round()
    assert [e.request for e in tr.events] == [0, 1]
    tr.save(with_buffer=True)
    tr.close()
    assert _run(["branch", str(parent), "--set", "learner.lr=0.002", "--out", str(tmp_path / "B")])[0] == 0
    assert _run(["set", str(tmp_path / "B"), "learner.td_lambda=0.5"])[0] == 0
    b = Trainer(None, resume=tmp_path / "B", **quiet)
    b.round()
    assert b.cfg.learner.td_lambda == 0.5 and b.cfg.learner.lr == 0.002
    assert [(e.key, e.source) for e in b.events][-1] == ("learner.td_lambda", "cli")
    b.close()


# ---- the guard itself, over generated paths ----------------------------------------------------------------------
PARTS = st.sampled_from(["qmix_twostep_s0", "qmix_twostep_s1", "checkpoints", "latest.pt", "metrics.csv",
                         "sweep.toml", "final_eval.json", "x.png", "..", ".", "episodes", "new"])


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(PARTS, min_size=0, max_size=4), force=st.booleans(), as_dir=st.booleans())
def test_no_generated_output_lands_in_an_input_or_a_run(sweep, parts, force, as_dir):
    path = Path(os.path.normpath(sweep.joinpath(*parts))) if parts else sweep
    try:
        p = check_outputs([Output("--out", path, directory=as_dir)], inputs=[sweep], force=force)[0]
    except OutputRefused as e:
        assert "\n" not in str(e) and "--out" in str(e)
        return
    resolved_sweep = sweep.resolve()
    assert p != resolved_sweep and resolved_sweep not in p.parents  # anything accepted lies outside the input


# ---- row 3 and the "Also" cases: live settings ---------------------------------------------------------------------
@pytest.fixture
def finished(tmp_path) -> Path:
    from conftest import TINY_2C

    d = tmp_path / "fin"
    args = sum((["--set", s] for s in TINY_2C + ["run.learner_process=false"]), [])
    rc, out, err = _run(["train", "--preset", "qmix_2c_vs_64zg", *args, "--run-dir", str(d)])
    assert rc == 0, err
    return d


def _rows(d: Path, kind: str) -> list[dict]:
    import csv

    return [r for r in csv.DictReader(open(d / "metrics.csv")) if r["kind"] == kind]


@pytest.mark.slow
def test_a_finished_run_told_to_train_longer_does_and_applies_what_was_set(finished):
    t_end = int(_rows(finished, "eval")[-1]["t_env"])
    evals = len(_rows(finished, "eval"))
    rc, out, err = _run(["train", "--resume", str(finished)])  # nothing asked: nothing trained, no second eval row
    assert rc == 0 and "nothing to train" in out + err
    assert len(_rows(finished, "eval")) == evals
    assert _run(["set", str(finished), f"run.t_max={t_end + 300}", "learner.lr=0.002"])[0] == 0
    rc, out, err = _run(["train", "--resume", str(finished)])
    assert rc == 0, err
    ups = _rows(finished, "update")
    assert int(_rows(finished, "episode")[-1]["t_env"]) >= t_end + 300
    assert float(ups[-1]["lr"]) == pytest.approx(0.002)
    final = [r for r in _rows(finished, "eval") if int(r["t_env"]) == t_end]
    assert len(final) == 1  # the first end's evaluation once, not again at the resume


@pytest.mark.slow
def test_set_is_all_or_nothing_and_checked_against_the_settings_as_changed(finished):
    from models.config import load_config

    req = finished / "live_requests.jsonl"
    for bad, why in ((["learner.lr=0.001", "learner.lrr=1"], "not a setting"),
                     (["run.epsilon_start=0.005", "run.epsilon_finish=0.001"], "epsilon_finish must not exceed"),
                     (["algo.res_beta=3"], "does nothing for this run"),
                     (["learner.replay_ratio=1000000"], "expected a value in [0.01, 256]"),
                     (["learner.batch_size=9"], "must not exceed learner.buffer_size")):
        rc, _, err = _run(["set", str(finished), *bad])
        assert rc == 2 and why in err and "Traceback" not in err, (bad, err)
        assert not req.exists()  # nothing written, not even the valid first change
    # a sequence that is valid step by step: against the starting config the second would be refused
    assert load_config(finished / "config.toml").run.epsilon_finish == 0.01
    assert _run(["set", str(finished), "run.epsilon_finish=0.001"])[0] == 0
    assert _run(["set", str(finished), "run.epsilon_start=0.005"])[0] == 0
    assert _run(["set", str(finished), "run.epsilon_finish=0.0005", "run.epsilon_start=0.0006"])[0] == 0
    assert len(req.read_text().splitlines()) == 4


def test_every_live_bound_is_in_the_help(capsys):
    from models.training.live import LIVE_BOUNDS

    with pytest.raises(SystemExit):
        cli(["set", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for key in LIVE_BOUNDS:
        assert key in text


# ---- row 5 of "Also": compare and marl-eval import never raise a traceback -------------------------------------------
def _marl(steps: dict, absolute=None) -> str:
    import json

    run = dict(steps)
    if absolute is not None:
        run["absolute_metrics"] = absolute
    return json.dumps({"smac": {"2c_vs_64zg": {"QMIX": {"run_0": run}}}}, allow_nan=True)


@pytest.mark.parametrize("text, field", [
    (_marl({"step_0": {"step_count": 1e400, "win_rate": [1.0]}}).replace("Infinity", "1e400"), "step_count"),
    (_marl({"step_0": {"step_count": 10**20, "win_rate": [1.0]}}), "step_count"),
    (_marl({"step_0": {"step_count": "100", "win_rate": [1.0]}}), "step_count"),
    (_marl({"step_0": {"step_count": 100, "win_rate": ["won"]}}), "win_rate"),
    (_marl({"step_0": {"step_count": 100, "win_rate": [float("nan")]}}), "win_rate"),
    (_marl({"step_0": {"step_count": 100, "win_rate": 0.5}}), "win_rate"),
    (_marl({"step_0": {"step_count": 100, "win_rate": [1.0]}}, {"win_rate": ["x"]}), "absolute_metrics"),
    (_marl({"step_0": [1, 2]}), "step_count"),
    ("[" * 100_000 + "]" * 100_000, "nested too deep"),
])
def test_hostile_marl_eval_files_are_one_line_errors(tmp_path, text, field):
    f = tmp_path / "bad.json"
    f.write_text(text)
    rc, out, err = _run(["compare", str(f)])
    assert rc == 2 and str(f) in err and field in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


JSON = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3),
                    max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(step=JSON, absolute=JSON)
def test_generated_marl_eval_steps_never_raise_a_traceback(tmp_path, step, absolute):
    f = tmp_path / "gen.json"
    f.write_text(_marl({"step_0": step}, absolute))
    rc, out, err = _run(["compare", str(f)])
    assert rc in (0, 2) and "Traceback" not in err, err


# ---- item 4: scripts checked whole before the run starts ----------------------------------------------------------
def _script(tmp_path, text: str) -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(text)
    return p


def test_a_script_is_checked_whole_in_the_order_it_plays(tmp_path):
    from models.config import ConfigError, load_config
    from models.training.script import load_script

    cfg = load_config("qmix_2c_vs_64zg", ["run.t_max=1000"])
    # step 2 is valid only once step 1 (listed after it) has applied: checked in play order, as changed
    ok = _script(tmp_path, '[[step]]\nat = 200\nset = { "run.epsilon_start" = 0.005 }\n'
                           '[[step]]\nat = 100\nset = { "run.epsilon_finish" = 0.001 }\n'
                           '[[step]]\nat = 5000\nbreak_on = ["agent dies"]\n')
    said = []
    steps = load_script(ok, cfg, log=said.append)
    assert [s.at for s in steps] == [100, 200, 5000]
    assert any("step 3" in m and "past run.t_max" in m for m in said)
    for text, why in (('[[step]]\nat = 900\nbranch = { "learner.td_lambda" = 7 }\n', "step 1: branch: learner.td_lambda"),
                      ('[[step]]\nat = 900\nbranch = { "algo.mixer" = "vdn" }\n', "cannot change in a branch"),
                      ('step = [1, 2]\n', "expected a [[step]] table"),
                      ('[[step]]\nat = 1\nbreak_on = [{}]\n', "break_on"),
                      ('[[step]]\nat = 1.5\nset = { "learner.lr" = 0.001 }\n', "whole number")):
        with pytest.raises(ConfigError, match=why.replace("[", r"\[").replace("]", r"\]")):
            load_script(_script(tmp_path, text), cfg)


@pytest.mark.slow
def test_an_edited_script_is_noticed_at_the_resume(tmp_path):
    from conftest import TINY_2C

    from models.config import load_config
    from models.training.train import Trainer

    p = _script(tmp_path, '[[step]]\nat = 0\nset = { "learner.lr" = 0.002 }\n'
                          '[[step]]\nat = 100000\nset = { "learner.lr" = 0.003 }\n')
    said = []
    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C + [f'run.script="{p}"', "run.t_max=200000"]),
                 run_dir=tmp_path / "r", log=said.append)
    tr.round()
    tr.save()
    tr.close()
    p.write_text('[[step]]\nat = 0\nset = { "learner.lr" = 0.002 }\n[[step]]\nat = 150000\nset = { "learner.lr" = 0.004 }\n')
    b = Trainer(None, resume=tmp_path / "r", log=said.append)
    b.close()
    assert any("changed since the checkpoint" in m and "1 step(s) ahead" in m and "150,000" in m for m in said)


@pytest.mark.slow
def test_resume_set_wins_over_earlier_live_changes_and_is_an_event(finished):
    t_end = int(_rows(finished, "eval")[-1]["t_env"])
    assert _run(["set", str(finished), "learner.lr=0.002", f"run.t_max={t_end + 200}"])[0] == 0
    assert _run(["train", "--resume", str(finished)])[0] == 0  # the live lr 0.002 is an event of the run now
    rc, out, err = _run(["train", "--resume", str(finished), "--set", "learner.lr=0.0007", "--set",
                         f"run.t_max={t_end + 400}"])
    assert rc == 0, err
    assert float(_rows(finished, "update")[-1]["lr"]) == pytest.approx(0.0007)
    from models.training.live import read_events

    ev = read_events(finished)
    assert [(e.key, e.new, e.source) for e in ev if e.key == "learner.lr"] == [("learner.lr", 0.002, "cli"),
                                                                             ("learner.lr", 0.0007, "resume")]


@pytest.mark.slow
def test_record_and_ship_policy_never_write_into_another_run(sweep, tmp_path):
    before = _tree(sweep)
    run0, run1 = sweep / "qmix_twostep_s0", sweep / "qmix_twostep_s1"
    rc, _, err = _run(["record", str(run0), "--episodes", "1", "--out", str(run1 / "episodes")])
    assert rc == 2 and "run directory" in err
    rc, _, err = _run(["record", str(run0), "--episodes", "1", "--out", str(run0 / "checkpoints")])
    assert rc == 2 and "records" in err
    rc, _, err = _run(["ship-policy", str(run0), "--name", "x", "--episodes", "2", "--out", str(run1)])
    assert rc == 2 and "already holds a run" in err
    assert _tree(sweep) == before


def test_a_replaced_or_truncated_request_log_is_said_and_read_anew(tmp_path):
    from models.training.live import REQUESTS_FILE, RequestReader

    log = tmp_path / REQUESTS_FILE
    log.write_text('{"key": "learner.lr", "value": 0.001}\n{"key": "learner.lr", "value": 0.002}\n')
    r = RequestReader(tmp_path, -1)
    assert [i for i, _ in r.new()] == [0, 1]
    log.unlink()
    log.write_text('{"key": "learner.td_lambda", "value": 0.5}\n')  # made again: one line, fewer bytes
    got = r.new()
    assert "replaced or truncated" in got[0][1]["error"] and [(i, d.get("key")) for i, d in got[1:]] == \
        [(0, "learner.td_lambda")]
    assert r.new() == []
