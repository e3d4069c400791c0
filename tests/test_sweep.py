"""Sweeps and comparisons: real (tiny) matrix-game runs through the CLI, resuming, the grid, bad input, the
registry, the threads accounting, the statistics on hand-made runs, and the Ray backend where Ray is installed."""
from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from models import registry
from models.sweeps.compare import compare_runs, summarise
from models.config import load_config
from models.sweeps.sweep import RAY_MISSING, SweepSpec, default_workers, plan_sweep, run_sweep

TINY = ["--set", "run.t_max=600", "--set", "run.test_interval=128"]
BASE = ["sweep", "--preset", "qmix_twostep,vdn_twostep", "--seeds", "0,1", *TINY, "--final-episodes", "50"]
# seeds outermost: every configuration gets its first seed before any gets its second
NAMES = ["qmix_twostep_s0", "vdn_twostep_s0", "qmix_twostep_s1", "vdn_twostep_s1"]


_run = run_cli


def _mtimes(d: Path) -> dict:
    return {str(p.relative_to(d)): p.stat().st_mtime_ns for p in sorted(d.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def _endless_sweep(out: Path, seeds: str, workers: int):
    """A sweep of matrix-game runs that never end by themselves, in a process group of its own (as a terminal or a
    job scheduler starts one), for the tests that signal or kill it; never left running after the test."""
    import os
    import signal
    import subprocess

    p = subprocess.Popen([sys.executable, "-m", "workbench.cli", "sweep", "--preset", "qmix_twostep", "--seeds", seeds,
                          "--set", "run.t_max=100000000", "--final-episodes", "0", "--workers", str(workers),
                          "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        yield p
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)


def _wait_until(cond, seconds: float = 120.0) -> None:
    import time

    deadline = time.time() + seconds
    while time.time() < deadline and not cond():
        time.sleep(0.5)


@pytest.fixture(scope="module")
def base_sweep(tmp_path_factory) -> tuple[Path, str]:
    """2 presets x 2 seeds on the two-step game, run to the end by the local pool."""
    d = tmp_path_factory.mktemp("sweep") / "sw"
    rc, out, err = _run([*BASE, "--out", str(d), "--workers", "2"])
    assert rc == 0, out + err
    return d, out


@pytest.mark.slow
def test_local_sweep_writes_runs_and_compare_tables_them(base_sweep, tmp_path):
    d, out = base_sweep
    doc = tomllib.loads((d / "sweep.toml").read_text())
    assert doc["presets"] == ["qmix_twostep", "vdn_twostep"] and doc["seeds"] == [0, 1]
    assert doc["set"] == ["run.t_max=600", "run.test_interval=128"] and doc["backend"] == "local"
    assert [t["name"] for t in doc["trials"]] == NAMES
    for name in NAMES:
        run = d / name
        assert (run / "config.toml").exists() and (run / "checkpoints" / "latest.pt").exists()
        assert json.loads((run / "sweep_done.json").read_text())["status"] == "done"
        assert json.loads((run / "final_eval.json").read_text())["episodes"] == 50
        ab = json.loads((run / "absolute_eval.json").read_text())  # 10 x the presets' 8 test episodes
        assert ab["episodes"] == 80 and ab["checkpoint"] == f"t{ab['run_t_env']:010d}.pt" and ab["run_t_env"] >= 600
        cfg = tomllib.loads((run / "config.toml").read_text())
        assert cfg["run"]["name"] == name and cfg["run"]["threads"] == 1 and cfg["run"]["t_max"] == 600
        assert f"{name}: done in" in out  # one line per run as it ends
    assert "ETA" in out

    png = tmp_path / "cmp.png"
    rc, table, err = _run(["compare", str(d), "--metric", "test_return", "--out", str(png)])
    assert rc == 0, err
    first = table.split("\n\n")[1]  # the group table; the aggregates and the improvement tables follow
    rows = [line for line in first.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[:2] for r in rows] == [["| QMIX", "2"], ["| VDN", "2"]]
    assert "absolute test_return" in table and "over 80 greedy episodes (absolute_eval.json)" in table
    assert "| QMIX | 2 |" in table.split("\n\n")[4]  # the aggregates, with their note
    assert "P(row > column)" in table
    assert "final test_return" in table and "50 episodes, final_eval.json" in table
    assert png.stat().st_size > 5_000 and png.read_bytes()[:4] == b"\x89PNG"

    c = compare_runs([d], metric="test_win_rate", stat="mean", at=[128, 600])
    assert [g.label for g in c.groups] == ["QMIX", "VDN"] and all(g.seeds == [0, 1] for g in c.groups)
    for g in c.groups:
        assert g.by_steps.x.shape == g.by_steps.center.shape == g.by_steps.lo.shape == (200,)
        assert np.isfinite(g.by_steps.center).any() and np.isfinite(g.by_wall.center).any()
        assert all(r.final_episodes == 50 for r in g.runs)


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_rerunning_finished_runs(base_sweep, tmp_path):
    from models.training.train import train

    d = tmp_path / "sw"
    shutil.copytree(base_sweep[0], d, copy_function=shutil.copy2)
    clean, partial = d / "qmix_twostep_s0", d / "vdn_twostep_s1"
    # a run killed before its first checkpoint: marker and checkpoints gone
    (clean / "sweep_done.json").unlink()
    shutil.rmtree(clean / "checkpoints")
    # a run stopped midway: a checkpoint at 256 env steps of the 600
    shutil.rmtree(partial)
    spec = SweepSpec.read(d)
    trial = next(t for t in spec.trials if t.name == partial.name)
    cfg = load_config(trial.preset, spec.overrides(trial, d) + ["run.t_max=256"])
    train(cfg, run_dir=partial, log=lambda *a: None)
    untouched = {n: _mtimes(d / n) for n in ("qmix_twostep_s1", "vdn_twostep_s0")}

    rc, out, err = _run([*BASE, "--out", str(d), "--workers", "2"])
    assert rc == 0, out + err
    assert "2 already finished, skipped" in out
    assert f"{clean.name}: done" in out and f"{partial.name}: done" in out
    for n, before in untouched.items():
        assert _mtimes(d / n) == before, f"{n} was touched"
    assert (d / "logs" / f"{clean.name}.log").read_text().count("clean") == 2  # started clean again
    assert "resuming" in (d / "logs" / f"{partial.name}.log").read_text()
    evals = [line.split(",") for line in (partial / "metrics.csv").read_text().splitlines() if line.startswith("eval")]
    assert int(evals[0][1]) < 256 and int(evals[-1][1]) >= 600  # the rows from before the stop are kept
    for run in (clean, partial):
        assert (run / "sweep_done.json").exists() and (run / "final_eval.json").exists()

    # everything finished: --resume finds nothing to do and touches no run
    before = {n: _mtimes(d / n) for n in NAMES}
    rc, out, err = _run(["sweep", "--resume", str(d)])
    assert rc == 0 and "4 already finished" in out
    assert {n: _mtimes(d / n) for n in NAMES} == before


@pytest.mark.slow
def test_a_sweep_grows_by_seeds_without_rerunning_its_runs(base_sweep, tmp_path):
    d = tmp_path / "sw"
    shutil.copytree(base_sweep[0], d, copy_function=shutil.copy2)
    before = {n: _mtimes(d / n) for n in NAMES}
    grown = [a if a != "0,1" else "0-2" for a in BASE]
    rc, out, err = _run([*grown, "--out", str(d), "--workers", "2"])
    assert rc == 0, out + err
    assert "6 run(s)" in out and "4 already finished, skipped" in out
    assert "qmix_twostep_s2: done" in out and "vdn_twostep_s2: done" in out
    assert {n: _mtimes(d / n) for n in NAMES} == before
    doc = tomllib.loads((d / "sweep.toml").read_text())
    assert doc["seeds"] == [0, 1, 2] and [t["name"] for t in doc["trials"]][:4] == NAMES
    c = compare_runs([d], metric="test_return")
    assert all(g.seeds == [0, 1, 2] for g in c.groups)
    # dropping a seed is another sweep: refused, with what differs and how seeds are added
    shrunk = [a if a != "0,1" else "0" for a in BASE]
    rc, _, err = _run([*shrunk, "--out", str(d)])
    assert rc == 2 and "holds a different sweep" in err and "seeds can be added" in err
    assert tomllib.loads((d / "sweep.toml").read_text())["seeds"] == [0, 1, 2]  # left as it was


@pytest.mark.slow
def test_grid_makes_one_group_per_value(tmp_path):
    d = tmp_path / "grid"
    rc, out, err = _run(["sweep", "--preset", "vdn_twostep", "--grid", "learner.lr=0.001,0.0005",
                         "--set", "run.t_max=300", "--set", "run.test_interval=128", "--final-episodes", "0",
                         "--out", str(d)])
    assert rc == 0, out + err
    names = ["vdn_twostep_lr0.001_s0", "vdn_twostep_lr0.0005_s0"]
    assert [t["name"] for t in tomllib.loads((d / "sweep.toml").read_text())["trials"]] == names
    assert tomllib.loads((d / "sweep.toml").read_text())["grid"] == {"learner.lr": [0.001, 0.0005]}
    for n in names:
        assert (d / n / "sweep_done.json").exists() and not (d / n / "final_eval.json").exists()
    c = compare_runs([d / n for n in names])
    assert [g.label for g in c.groups] == ["VDN learner.lr=0.001", "VDN learner.lr=0.0005"]
    rc, table, err = _run(["compare", str(d), "--at", "128,256"])
    # a matrix game has no win: its own measure, the greedy return, is the default
    assert rc == 0 and "test_return @ 128" in table and "| VDN learner.lr=0.0005 | 1 |" in table
    assert c.metric == "test_return"
    rc, table, err = _run(["compare", str(d), "--at", "128,256", "--metric", "test_win_rate"])
    assert rc == 0 and "win rate @ 128" in table


def test_compare_refuses_to_mix_battles_and_matrix_games_without_a_metric(tmp_path):
    from models.sweeps.compare import CompareError

    battle = _fake_run(tmp_path / "b", 0, 0.001, [(100, 1, 0.5)])
    game = _fake_run(tmp_path / "g", 0, 0.001, [(100, 1, 0.5)])
    (game / "config.toml").write_text((game / "config.toml").read_text() + '[env]\nmap_name = "twostep"\n')
    with pytest.raises(CompareError, match=r"mix matrix games \(twostep: greedy return\) and battles"):
        compare_runs([battle, game])
    assert len(compare_runs([battle, game], metric="test_return").groups) == 2


@pytest.mark.parametrize("args, message", [
    (["--preset", "qmix_nope"], "unknown preset 'qmix_nope'"),
    (["--preset", "qmix_twostep", "--grid", "learner.lr"], "expected section.key=v1,v2,..."),
    (["--preset", "qmix_twostep", "--grid", "learner.lr=0.1,,0.2"], "with none empty"),
    (["--preset", "qmix_twostep", "--grid", "lr=0.1,0.2"], "the key must name its section"),
    (["--preset", "qmix_twostep", "--grid", "learner.lrr=0.1,0.2"], "unknown key 'learner.lrr'"),
    (["--preset", "qmix_twostep", "--grid", "learner.lr=-1,0.1"], "learner.lr: expected a positive value"),
    (["--preset", "qmix_twostep", "--set", "run.nope=1"], "unknown key 'run.nope'"),
    (["--preset", "qmix_twostep", "--grid", "run.seed=1,2"], "give seeds with --seeds"),
    (["--preset", "qmix_twostep", "--seeds", "a,b"], "--seeds 'a,b': expected whole numbers"),
    (["--preset", "qmix_twostep", "--workers", "-1"], "--workers: expected a whole number >= 1"),
    (["--preset", "qmix_twostep", "--workers", "0"], "--workers: expected a whole number >= 1, got 0"),
])
def test_bad_sweep_input_is_one_clear_line(tmp_path, args, message):
    out = tmp_path / "sw"
    rc, _, err = _run(["sweep", *args, "--out", str(out)])
    assert rc == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists()  # nothing is created before every trial's config is checked


def test_bad_compare_input_and_missing_out(tmp_path):
    rc, _, err = _run(["compare", str(tmp_path)])
    assert rc == 2 and "not a run directory (no metrics.csv)" in err
    rc, _, err = _run(["sweep", "--preset", "qmix_twostep"])
    assert rc == 2 and "sweep needs --out SWEEP_DIR" in err
    (tmp_path / "junk.txt").write_text("x")
    rc, _, err = _run(["sweep", "--preset", "qmix_twostep", "--out", str(tmp_path)])
    assert rc == 2 and "not empty and has no sweep.toml" in err


def test_compare_rejects_an_unknown_metric_and_a_different_sweep_in_out(base_sweep):
    d = base_sweep[0]
    rc, _, err = _run(["compare", str(d), "--metric", "test_nope"])
    assert rc == 2 and "--metric 'test_nope': not a column" in err and "test_win_rate" in err
    rc, _, err = _run(["sweep", "--preset", "qmix_twostep", "--out", str(d)])
    assert rc == 2 and "holds a different sweep" in err and f"--resume {d}" in err


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    # Ray is in the dev extra, so it is installed where the tests run: a machine without it is made here (a
    # module set to None in sys.modules is one `import` cannot find)
    for name in ("ray", "ray.tune"):
        monkeypatch.setitem(sys.modules, name, None)
    rc, _, err = _run(["sweep", "--preset", "qmix_twostep", *TINY, "--backend", "ray", "--out", str(tmp_path / "r")])
    assert rc == 2 and err == f"qmix-workbench: error: {RAY_MISSING}\n"


@pytest.mark.slow
def test_ray_backend_runs_a_tiny_sweep(tmp_path):
    try:
        import ray
    except ImportError:
        pytest.skip(RAY_MISSING)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        spec = plan_sweep(["vdn_twostep"], [0, 1], fixed=["run.t_max=300", "run.test_interval=128"],
                          final_episodes=20, backend="ray")
        lines = []
        res = run_sweep(spec, tmp_path / "ray", log=lines.append)
    finally:
        ray.shutdown()
    assert [r.status for r in res.results] == ["done", "done"], lines
    for t in spec.trials:
        assert (tmp_path / "ray" / t.name / "sweep_done.json").exists()
    assert len(compare_runs([tmp_path / "ray"]).groups[0].runs) == 2


def test_threads_accounting_sizes_the_pool():
    # a 2c preset learns in a second process: two cores per run at one thread each
    spec = plan_sweep(["qmix_2c_vs_64zg", "vdn_twostep"], [0])
    cpus = {t.preset: t.cpus for t in spec.trials}
    assert cpus == {"qmix_2c_vs_64zg": 2, "vdn_twostep": 1}
    assert default_workers(spec.trials, n_cores=2) == 1 and default_workers(spec.trials, n_cores=16) == 8
    assert default_workers(spec.trials[1:], n_cores=2) == 2
    assert "run.threads=1" in spec.overrides(spec.trials[0])
    wide = plan_sweep(["qmix_2c_vs_64zg"], [0], threads=3)
    assert wide.trials[0].cpus == 6 and default_workers(wide.trials, n_cores=2) == 1
    fixed = plan_sweep(["vdn_twostep"], [0], fixed=["run.threads=2"])
    assert fixed.trials[0].cpus == 2 and fixed.config(fixed.trials[0]).run.threads == 2


def test_registry_names_every_preset_by_its_algorithm():
    assert [a.name for a in registry.ALGORITHMS] == ["IQL", "VDN", "QMIX", "RES-VDN", "RES-QMIX"]
    assert registry.algorithm("res-qmix") is registry.algorithm("res_qmix") is registry.ALGORITHMS[4]
    assert registry.algorithm_of("none", False).name == "IQL"
    for name in registry.list_presets():
        info = registry.preset_info(name)
        cfg = load_config(name)
        assert (cfg.algo.mixer, cfg.algo.res) == (info.algorithm.mixer, info.algorithm.res), name
        assert info.algorithm.name == cfg.algorithm_name
    assert registry.preset_info("res_qmix_twostep").map_key == "twostep"
    assert registry.algorithm("QMIX").preset("2c_vs_64zg") == "qmix_2c_vs_64zg"
    assert registry.presets_for("RES-VDN", "twostep") == ["res_vdn_twostep"]
    with pytest.raises(ValueError, match="unknown algorithm 'MADDPG'; algorithms: IQL, VDN"):
        registry.algorithm("MADDPG")


def _fake_run(d: Path, seed: int, lr: float, curve: list[tuple[int, float, float]]) -> Path:
    """A run directory by hand: eval rows (t_env, wall_s, win rate)."""
    d.mkdir(parents=True)
    (d / "config.toml").write_text(f'[algo]\nmixer = "qmix"\nres = false\n[learner]\nlr = {lr}\n'
                                   f'[run]\nseed = {seed}\nname = "{d.name}"\n')
    lines = ["kind,t_env,wall_s,test_win_rate,test_return"]
    lines += [f"eval,{t},{w},{v},{20 * v}" for t, w, v in curve]
    (d / "metrics.csv").write_text("\n".join(lines) + "\n")
    return d


def test_compare_statistics_on_hand_made_runs(tmp_path):
    # three seeds per learning rate: linear win-rate curves reaching 0.5 at different times
    for seed, slope in enumerate((1.0, 2.0, 4.0)):
        _fake_run(tmp_path / f"a{seed}", seed, 0.001,
                  [(t, t / 100, min(1.0, slope * t / 1000)) for t in range(0, 1001, 100)])
        _fake_run(tmp_path / f"b{seed}", seed, 0.01, [(t, t / 50, 0.0) for t in range(0, 1001, 100)])
    c = compare_runs([tmp_path], at=[500], points=11)
    a, b = c.groups
    assert [g.label for g in c.groups] == ["QMIX learner.lr=0.001", "QMIX learner.lr=0.01"]
    assert np.allclose(a.by_steps.x, np.arange(0, 1001, 100))
    # at 500 steps the seeds are at 0.5, 1.0, 1.0: median 1.0, quartiles 0.75 and 1.0
    i = 5
    assert (a.by_steps.center[i], a.by_steps.lo[i], a.by_steps.hi[i]) == (1.0, 0.75, 1.0)
    assert [r.first_reaching(0.5) for r in a.runs] == [(5.0, 500), (3.0, 300), (2.0, 200)]
    table = c.table()
    assert "| QMIX learner.lr=0.001 | 3 | 100% [75%, 100%] |" in table
    assert "3 s / 300" in table  # median first time to 50%: 3 s of training, 300 env steps
    assert "| QMIX learner.lr=0.01 | 3 | 0% [0%, 0%] | 0% [0%, 0%] | not reached | not reached | 50 |" in table
    # seed by seed: seed 2 (slope 4) reaches 50% at 200 env steps and 80% at 200 (0.8 at t=200), in 2 s
    runs = c.runs_table()
    assert "| QMIX learner.lr=0.001 | 2 | 200 / 2 s | 200 / 2 s | 100% |" in runs
    assert "| QMIX learner.lr=0.001 | 0 | 500 / 5 s | 800 / 8 s | 100% |" in runs
    assert runs.count("not reached") == 6
    # the mean's bootstrap interval holds the mean and lies within the seeds' range
    c, lo, hi = summarise(np.array([[0.5], [1.0], [1.0]]), "mean")
    assert lo[0] <= c[0] <= hi[0] and 0.5 <= lo[0] and hi[0] <= 1.0
    assert np.isclose(c[0], 2.5 / 3)


def test_compare_an_episode_metric_over_seeds(base_sweep):
    """Overestimation (Qtot - discounted return of training episodes) with bands: windows of training episodes,
    while the evaluations still time the thresholds."""
    from models.sweeps.compare import EPISODE_WINDOW, read_run

    d, _ = base_sweep
    c = compare_runs([d], metric="overestimation", at=[300])
    assert [g.label for g in c.groups] == ["QMIX", "VDN"]
    for g in c.groups:
        # by env steps the seeds overlap; by wall-clock they may not in runs this short (a band needs every seed)
        assert np.isfinite(g.by_steps.center).any() and all(np.isfinite(r.wall_s).all() for r in g.runs)
    run = read_run(d / NAMES[0], "overestimation")
    import csv

    with open(d / NAMES[0] / "metrics.csv") as f:
        over = [float(r["overestimation"]) for r in csv.DictReader(f) if r["kind"] == "episode"]
    assert run.value[0] == pytest.approx(np.mean(over[:EPISODE_WINDOW]))
    assert len(over) % EPISODE_WINDOW and len(over) > EPISODE_WINDOW  # a short last window: not a point of its own
    assert run.final == pytest.approx(np.mean(over[-EPISODE_WINDOW:]))  # the last 100 episodes
    assert len(run.value) == len(over) // EPISODE_WINDOW + 1 and run.t_env[-1] == run.t_env.max()
    assert f"each curve point the mean of {EPISODE_WINDOW} episodes" in c.table()


def test_compare_reads_a_growing_run_incrementally(tmp_path):
    """A run still training: each read sees the rows written since, a row being written waits for its end,
    and a file replaced (a resume's repair) or cut shorter is read again from its start."""
    import os

    from models.sweeps import compare
    from models.sweeps.compare import read_run

    d = _fake_run(tmp_path / "r", 0, 0.001, [(t, t / 10, t / 1000) for t in range(0, 501, 100)])
    csv_path = d / "metrics.csv"
    whole = csv_path.read_text()
    csv_path.write_text("kind,t_env,wa")  # the header being written: no rows yet, and nothing remembered
    assert len(read_run(d).t_env) == 0
    csv_path.write_text(whole)
    assert list(read_run(d).t_env) == [0, 100, 200, 300, 400, 500]
    key = (str(csv_path.resolve()), "test_win_rate")
    read_at = compare._SCANS[key].tail.offset
    with open(csv_path, "a") as f:
        f.write("eval,600,60.0,0.6,12\neval,700,70")  # the second row is being written
    r = read_run(d)
    assert list(r.t_env) == [0, 100, 200, 300, 400, 500, 600] and r.value[-1] == pytest.approx(0.6)
    assert compare._SCANS[key].tail.offset == read_at + len("eval,600,60.0,0.6,12\n")
    with open(csv_path, "a") as f:
        f.write(".0,0.7,14\n")
    r = read_run(d)
    assert list(r.t_env)[-2:] == [600, 700] and r.wall_s[-1] == 70.0 and r.steps_per_s == pytest.approx(10.0)
    compare._SCANS.clear()  # a cold read of the same file agrees
    assert np.array_equal(read_run(d).value, r.value)
    # a resume's repair: a new file, fewer rows past a checkpoint, new rows after them
    tmp = d / "metrics.csv.tmp"
    tmp.write_text("kind,t_env,wall_s,test_win_rate,test_return\neval,0,0.0,0.0,0\neval,100,10.0,0.5,10\n")
    os.replace(tmp, csv_path)
    assert list(read_run(d).t_env) == [0, 100] and read_run(d).value[-1] == 0.5
    csv_path.write_text("kind,t_env,wall_s,test_win_rate,test_return\neval,0,0.0,0.25,0\n")  # shorter, in place
    assert list(read_run(d).value) == [0.25]
    # another run's file copied over it in place (the same inode, longer): read from the start, not from the offset
    ino = csv_path.stat().st_ino
    csv_path.write_text("kind,t_env,wall_s,test_win_rate,test_return\n"
                        + "".join(f"eval,{t},{t / 10},0.75,15\n" for t in range(0, 301, 100)))
    assert csv_path.stat().st_ino == ino
    r = read_run(d)
    assert list(r.t_env) == [0, 100, 200, 300] and list(r.value) == [0.75] * 4


def test_compare_plot_legend_goes_to_the_corner_the_curves_leave_empty():
    from types import SimpleNamespace

    from workbench.plot import _emptiest_corner

    x = np.linspace(0, 2e6, 100)
    rising_late = SimpleNamespace(by_steps=SimpleNamespace(x=x, center=np.clip((x - 1e6) / 1e6, 0, 1)))
    climbing = SimpleNamespace(by_steps=SimpleNamespace(x=x, center=-3.5 * np.exp(-x / 1e5)))
    assert _emptiest_corner([rising_late], "by_steps", unit_y=True) == (5, 5)  # top left
    assert _emptiest_corner([climbing], "by_steps", unit_y=False) == (-5, -5)  # bottom right
    assert _emptiest_corner([], "by_steps", unit_y=True) == (5, 5)


def test_compare_reports_iqm_intervals_and_probability_of_improvement(tmp_path):
    from models.sweeps import stats

    # group a: final win rates 0.5, 0.8, 1.0 (seeds 0-2); group b: 0.0 everywhere
    for seed, slope in enumerate((0.5, 0.8, 1.0)):
        _fake_run(tmp_path / f"a{seed}", seed, 0.001, [(t, t / 100, slope * t / 1000) for t in range(0, 1001, 100)])
        _fake_run(tmp_path / f"b{seed}", seed, 0.01, [(t, t / 50, 0.0) for t in range(0, 1001, 100)])
    c = compare_runs([tmp_path], stat="iqm", at=[1000], points=11)
    a = c.groups[0]
    assert a.by_steps.center[-1] == pytest.approx(stats.iqm([0.5, 0.8, 1.0]))
    assert a.by_steps.lo[-1] <= a.by_steps.center[-1] <= a.by_steps.hi[-1]
    agg = c.aggregate_table()
    assert "| QMIX learner.lr=0.001 | 3 | 77% [50%, 100%] |" in agg  # IQM of 3 runs cuts none: the mean
    assert "fewer than 5" in agg
    poi = c.improvement_table()
    assert "| QMIX learner.lr=0.001 |  | 1.00 [1.00, 1.00] |" in poi
    assert "| QMIX learner.lr=0.01 | 0.00 [0.00, 0.00] |  |" in poi


def test_marl_eval_export_round_trips_and_imports_beside_our_runs(tmp_path):
    import json

    from models.sweeps.marl_eval import export_marl_eval

    for seed, slope in enumerate((1.0, 2.0, 4.0)):
        _fake_run(tmp_path / "runs" / f"a{seed}", seed, 0.001,
                  [(t, t / 100, min(1.0, round(slope * t / 1000 * 32) / 32)) for t in range(0, 1001, 100)])
    ours = compare_runs([tmp_path / "runs"], at=[500], points=11)
    path = export_marl_eval(ours, tmp_path / "runs.json")
    doc = json.loads(path.read_text())
    run0 = doc["smac_qmix_workbench"]["2c_vs_64zg"]["QMIX"]["run_0"]  # the default map: the config names none
    assert run0["step_5"]["step_count"] == 500 and len(run0["step_5"]["win_rate"]) == 32
    assert np.mean(run0["step_5"]["win_rate"]) == pytest.approx(0.5)
    back = compare_runs([path], at=[500], points=11)

    def cells(c):  # the table without its labels and env steps/s (marl-eval keeps no such column)
        return [line.split("|")[2:-2] for line in c.table().splitlines() if line.startswith("| QMIX")]
    assert cells(back) == cells(ours) and "imported" in back.groups[0].label
    both = compare_runs([tmp_path / "runs", path], at=[500], points=11)
    assert len(both.groups) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"env": {"task": {"algo": {"run_0": {"step_0": {"win_rate": [1]}}}}}}')
    rc, _, err = _run(["compare", str(bad)])
    assert rc == 2 and "bad.json: env/task/algo/run_0/step_0: expected step_count" in err


def test_compare_never_replaces_earlier_work_or_an_input_without_force(tmp_path):
    import json

    _fake_run(tmp_path / "runs" / "a0", 0, 0.001, [(t, t / 100, t / 1000) for t in range(0, 1001, 100)])
    runs, out = str(tmp_path / "runs"), tmp_path / "out.json"
    out.write_text("earlier work")
    rc, stdout, err = _run(["compare", runs, "--export-marl-eval", str(out)])
    assert rc == 2 and f"--export-marl-eval {out}: exists; add --force to replace it" in err and "wrote" not in stdout
    assert out.read_text() == "earlier work"
    for flag in ("--out", "--out-stats"):  # refused before any figure is drawn
        rc, stdout, err = _run(["compare", runs, flag, str(out)])
        assert rc == 2 and f"{flag} {out}: exists; add --force" in err and out.read_text() == "earlier work"
    rc, stdout, err = _run(["compare", runs, "--export-marl-eval", str(out), "--force"])
    assert rc == 0 and f"wrote {out}" in stdout and "run_0" in json.loads(out.read_text())["smac_qmix_workbench"][
        "2c_vs_64zg"]["QMIX"]
    imported = out.read_text()
    rc, _, err = _run(["compare", runs, str(out), "--export-marl-eval", str(out), "--force"])
    assert rc == 2 and "is the input" in err and out.read_text() == imported
    rc, _, err = _run(["compare", runs, "--out", str(tmp_path / "f.png"), "--out-stats", str(tmp_path / "f.png")])
    assert rc == 2 and "--out and --out-stats: both are" in err and not (tmp_path / "f.png").exists()


def test_the_best_checkpoint_is_judged_by_the_last_evaluation_at_or_before_it(tmp_path):
    from models.play.evaluate import best_checkpoint

    run = _fake_run(tmp_path / "r", 0, 0.001, [(100, 1, 0.2), (210, 2, 0.9), (290, 3, 0.5), (400, 4, 0.9)])
    (run / "checkpoints").mkdir()
    for t in (200, 300, 400):
        (run / "checkpoints" / f"t{t:010d}.pt").write_bytes(b"")
    # t200 is judged by the eval at 100 (0.2), t300 by 290 (0.5), t400 by 400 (0.9): the best is t400
    assert best_checkpoint(run)[1:] == (400, 0.9)
    (run / "checkpoints" / "t0000000400.pt").unlink()
    assert best_checkpoint(run)[1:] == (300, 0.5)


def test_compare_draws_the_statistics_figure_and_refuses_a_missing_directory(base_sweep, tmp_path):
    d, _ = base_sweep
    png = tmp_path / "stats.png"
    rc, out, err = _run(["compare", str(d), "--metric", "test_return", "--out-stats", str(png)])
    assert rc == 0, err
    assert f"wrote {png}" in out and png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5_000
    for flag in ("--out", "--out-stats"):
        rc, out, err = _run(["compare", str(d), flag, str(tmp_path / "nodir" / "c.png")])
        assert rc == 2 and "nodir/c.png: the directory" in err and "does not exist" in err and "wrote" not in out


@pytest.mark.slow
def test_sigterm_to_the_sweeps_process_group_stops_it_gracefully(tmp_path):
    """`timeout` and job schedulers signal the whole process group: the runs in progress save and stay
    resumable, queued ones stay queued, and the sweep exits within seconds (it used to hang)."""
    import os
    import signal
    import time

    out = tmp_path / "sw"
    with _endless_sweep(out, "0-40", workers=2) as p:
        _wait_until(lambda: len(list(out.glob("*/metrics.csv"))) >= 2)
        time.sleep(2)  # both runs training
        os.killpg(p.pid, signal.SIGTERM)
        stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stdout + stderr  # interrupted: resume it
    assert stdout.count(": stopped") == 2 and "failed" not in stdout, stdout
    assert "sweep --resume" in stderr
    assert len(list(out.glob("*/checkpoints/latest.pt"))) == 2  # the two runs saved where they stopped


@pytest.mark.slow
def test_a_second_ctrl_c_ends_the_sweep_at_once(tmp_path):
    """Ctrl-C twice in quick succession (a terminal's impatient user; `timeout` forwarding a signal the shell sent
    too): the sweep used to hang for good at exit, its ProcessPoolExecutor's thread waiting for a worker Python 3.11
    never started. It exits now, and the run in progress still saves where it stopped."""
    import signal
    import time

    out = tmp_path / "sw"
    with _endless_sweep(out, "0-3", workers=1) as p:
        _wait_until(lambda: list(out.glob("*/metrics.csv")))
        time.sleep(2)  # training
        p.send_signal(signal.SIGINT)
        time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stdout + stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    _wait_until(lambda: list(out.glob("*/checkpoints/latest.pt")), 30)  # a worker outliving the sweep saves
    assert len(list(out.glob("*/checkpoints/latest.pt"))) == 1, stdout


@pytest.mark.slow
def test_a_second_ctrl_c_does_not_wait_for_a_busy_worker(tmp_path):
    """The second Ctrl-C means "stop at once": the sweep exits while its worker is still busy (frozen here with
    SIGSTOP, as a worker saving a large replay buffer is busy for seconds), and the worker, let go, saves its run
    by itself. The sweep used to wait for it in multiprocessing's exit, and a third Ctrl-C raised there. (A
    stopped worker outliving the sweep is also hung up by the kernel, its group orphaned: it ignores SIGHUP.)"""
    import os
    import signal
    import time

    out = tmp_path / "sw"
    with _endless_sweep(out, "0-3", workers=1) as p:
        _wait_until(lambda: list(out.glob("*/metrics.csv")))
        workers = _workers_of(p)
        assert len(workers) == 1, workers
        os.kill(workers[0], signal.SIGSTOP)
        try:
            p.send_signal(signal.SIGINT)
            time.sleep(0.5)
            p.send_signal(signal.SIGINT)
            stdout, stderr = p.communicate(timeout=30)
            assert p.returncode == 130 and "Traceback" not in stderr, stdout + stderr
            assert _alive(workers[0])  # still frozen: the sweep did not wait for it
        finally:
            os.kill(workers[0], signal.SIGCONT)
    _wait_until(lambda: list(out.glob("*/checkpoints/latest.pt")), 30)
    assert len(list(out.glob("*/checkpoints/latest.pt"))) == 1  # the worker, let go, saved its run


def _workers_of(p) -> list[int]:
    """The pids of the sweep process `p`'s trial workers (its spawned children)."""
    import subprocess

    children = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(p.pid)], capture_output=True,
                              text=True).stdout.splitlines()
    return [int(c.split()[0]) for c in children if "multiprocessing.spawn" in c]


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_a_killed_worker_fails_its_run_and_the_sweep_goes_on(tmp_path):
    """A trial's process killed (the OOM killer, a user's kill -9) is that run failing, named with its log; the
    next run starts; the sweep still stops cleanly."""
    import os
    import signal
    import time

    out = tmp_path / "sw"
    with _endless_sweep(out, "0-1", workers=1) as p:
        _wait_until((out / "qmix_twostep_s0" / "metrics.csv").exists)
        workers = _workers_of(p)
        assert len(workers) == 1, workers
        os.kill(workers[0], signal.SIGKILL)
        _wait_until((out / "qmix_twostep_s1" / "metrics.csv").exists)
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    assert "qmix_twostep_s0: failed: its worker process died" in stdout and "logs/qmix_twostep_s0.log" in stdout
    assert "qmix_twostep_s1: stopped" in stdout, stdout
    assert p.returncode != 0 and "run qmix_twostep_s0 failed" in stderr


def test_resume_refuses_seeds_and_set_order_does_not_make_another_sweep(base_sweep, tmp_path):
    d, _ = base_sweep
    rc, _, err = _run(["sweep", "--resume", str(d), "--seeds", "0-4"])
    assert rc == 2 and "drop --seeds" in err
    # the base sweep's two --set values given the other way round: the same sweep (nothing left to run)
    rc, out, err = _run(["sweep", "--preset", "qmix_twostep,vdn_twostep", "--seeds", "0,1", "--set",
                         "run.test_interval=128", "--set", "run.t_max=600", "--final-episodes", "50", "--out", str(d)])
    assert rc == 0 and "already finished, skipped" in out, out + err
