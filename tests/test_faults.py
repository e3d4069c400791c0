"""Faults a hostile user or a bad day brings: divergence, kills, corruption, full disks, reused and escaping
run directories, torn logs, huge settings, and every CLI error path. Each test names the case it covers
(the numbers of the reliability issue) and asserts what survives."""
import csv
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from models.files import checkpoint as ckmod
from models.files.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from models.config import ConfigError, load_config
from models.errors import CheckpointWriteError, DivergenceError, ResourceError, RunDirError
from models.training.callbacks import Callbacks
from models.training.train import Trainer, train
from workbench.cli import main as cli

QUIET = dict(log=lambda *a: None)
TINY_2C = ["env.num_envs=2", "learner.batch_size=2", "learner.replay_ratio=4", "learner.buffer_size=8", "algo.agent_hidden=16",
           "algo.mixing_embed=8", "algo.hypernet_embed=16", "run.test_episodes=2", "run.test_interval=100000",
           "run.save_interval=0"]
MILD = ["run.t_max=640"]
REPO = Path(__file__).resolve().parents[1]


def _rows(run, upto=None):
    with open(Path(run) / "metrics.csv") as f:
        rows = [{k: v for k, v in r.items() if k not in ("wall_s", "steps_per_s")} for r in csv.DictReader(f)]
    return rows if upto is None else [r for r in rows if int(r["t_env"]) <= upto]


def _one_line_error(capsys, rc, expected_rc=2):
    err = capsys.readouterr().err
    assert rc == expected_rc, err
    lines = [ln for ln in err.splitlines() if ln.startswith("qmix-workbench: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _mild_run(tmp_path, name="run", extra=()):
    run = tmp_path / name
    train(load_config("qmix_matrix_mild", MILD + list(extra)), run_dir=run, **QUIET)
    return run


def _cli_subprocess(args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def _wait_for(cond, timeout=120.0, what="condition"):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# ---- 1. divergence ---------------------------------------------------------------------------------------
def test_divergence_stops_with_exit_3_naming_update_quantity_and_no_checkpoint(tmp_path, capsys):
    run = tmp_path / "d"
    rc = cli(["train", "--preset", "qmix_matrix_mild", "--set", "learner.lr=1e30", "--set", "run.t_max=5000",
              "--run-dir", str(run)])
    line = _one_line_error(capsys, rc, expected_rc=3)
    assert "diverged at update" in line and "non-finite loss" in line and "last good checkpoint is none" in line
    assert not (run / "checkpoints").exists()  # nothing written from diverged weights
    nonfinite = [r for r in _rows(run) if r["nonfinite"]]
    assert len(nonfinite) == 1 and nonfinite[0]["kind"] == "update"


def test_divergence_never_replaces_a_good_checkpoint_and_names_it(tmp_path):
    run = _mild_run(tmp_path)
    latest = run / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    cfg = load_config("qmix_matrix_mild", ["learner.lr=1e30", "run.t_max=5000"])
    with pytest.raises(DivergenceError, match=r"non-finite .*the last good checkpoint is .*latest\.pt"):
        train(cfg, resume=run, **QUIET)  # a learning rate may change on resume: this one diverges
    assert latest.read_bytes() == before
    assert load_checkpoint(run)[0]["verified"]


def test_divergence_skip_drops_updates_counts_them_and_keeps_finite_weights(tmp_path):
    run = tmp_path / "s"
    s = train(load_config("qmix_matrix_mild", ["learner.lr=1e30", "run.t_max=2000", 'run.on_nonfinite="skip"']),
              run_dir=run, **QUIET)
    rows = [r for r in _rows(run) if r["kind"] == "update"]
    skipped = [r for r in rows if r["nonfinite"]]
    assert s["skipped_updates"] == len(skipped) > 0
    assert [int(r["skipped_updates"]) for r in skipped] == list(range(1, len(skipped) + 1))
    _, tensors = load_checkpoint(run)
    for part in ("agent", "mixer"):
        for k, v in tensors["learner"][part].items():
            assert torch.isfinite(v).all(), f"{part}.{k}"


# ---- 2. 3. 4. run directories ------------------------------------------------------------------------------
def test_an_existing_run_directory_is_refused_unless_overwrite(tmp_path, capsys):
    run = _mild_run(tmp_path)
    files = {p: p.read_bytes() for p in (run / "config.toml", run / "metrics.csv", run / "checkpoints" / "latest.pt")}
    rc = cli(["train", "--preset", "qmix_matrix_mild", "--set", "run.t_max=320", "--run-dir", str(run)])
    line = _one_line_error(capsys, rc)
    assert "already holds a run" in line and "--resume" in line and "--overwrite" in line
    assert all(p.read_bytes() == b for p, b in files.items())  # untouched
    assert cli(["train", "--preset", "qmix_matrix_mild", "--set", "run.t_max=320", "--run-dir", str(run),
                "--overwrite"]) == 0
    rows = _rows(run)
    assert max(int(r["t_env"]) for r in rows) <= 320 + 64  # one run, started clean
    with open(run / "metrics.csv") as f:
        assert f.read().count("kind,t_env") == 1


def test_run_name_cannot_escape_runs_dir(tmp_path, capsys):
    runs = tmp_path / "runs"
    for name in ("../../x", "a/b", "..", ""):
        with pytest.raises(ConfigError, match="run.name"):
            load_config("qmix_matrix_mild", [f'run.name="{name}"', f'run.runs_dir="{runs}"'])
    rc = cli(["train", "--preset", "qmix_matrix_mild", "--set", 'run.name="../escaped"',
              "--set", f'run.runs_dir="{runs}"'])
    assert "run.name" in _one_line_error(capsys, rc)
    assert not (tmp_path / "escaped").exists() and not runs.exists()


def test_resume_writes_into_the_directory_that_holds_the_checkpoint(tmp_path, monkeypatch):
    run = _mild_run(tmp_path, "orig", ["run.save_interval=320"])
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    orig_rows = (run / "metrics.csv").read_bytes()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # another working directory, a copied run, an absolute checkpoint path
    s = train(None, resume=(copy / "checkpoints" / "latest.pt").resolve(), overrides=["run.t_max=960"], **QUIET)
    assert Path(s["run_dir"]) == copy.resolve()
    assert load_checkpoint(copy)[0]["t_env"] >= 960
    assert (run / "metrics.csv").read_bytes() == orig_rows  # the original is not touched
    assert not list(elsewhere.iterdir())


# ---- 5. 11. checkpoints: integrity, fallback, leftovers -------------------------------------------------------
def _flip_bytes_in_largest_entry(path: Path, n: int = 20) -> None:
    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    o = info.header_offset
    name_len = int.from_bytes(raw[o + 26:o + 28], "little")
    extra_len = int.from_bytes(raw[o + 28:o + 30], "little")
    start = o + 30 + name_len + extra_len + info.file_size // 2
    for i in range(n):
        raw[start + i] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_flipped_bytes_are_a_digest_mismatch_that_names_the_file(tmp_path, capsys):
    run = _mild_run(tmp_path)
    t_file = sorted((run / "checkpoints").glob("t*.pt"))[-1]
    _flip_bytes_in_largest_entry(t_file)
    with pytest.raises(CheckpointError, match=rf"{t_file.name} is corrupted: digest mismatch"):
        load_checkpoint(t_file)
    assert "corrupted: digest mismatch" in _one_line_error(capsys, cli(["eval", str(t_file), "--episodes", "2"]))


def test_missing_or_corrupted_latest_falls_back_to_the_newest_readable_checkpoint(tmp_path, capsys):
    run = _mild_run(tmp_path, extra=["run.save_interval=200"])
    ck = run / "checkpoints"
    newest = sorted(ck.glob("t*.pt"))[-1]
    (ck / "latest.pt").unlink()
    assert cli(["eval", str(run), "--episodes", "2"]) == 0
    assert f"using {newest} instead" in capsys.readouterr().err
    newest.write_bytes(newest.read_bytes()[:1000])  # the newest t*.pt torn too: the one before it
    (ck / "latest.pt").write_bytes(b"garbage")
    meta, _ = load_checkpoint(run)
    assert Path(meta["path"]) == sorted(ck.glob("t*.pt"))[-2] and "latest.pt is not a readable" in meta["fallback"]
    logs = []
    tr = Trainer(None, resume=run, log=logs.append)
    tr.close()
    assert any("instead (the newest readable checkpoint)" in m for m in logs)


def test_leftover_temp_files_are_removed_at_the_next_start(tmp_path):
    run = _mild_run(tmp_path)
    junk = run / "checkpoints" / "latest.pt.abc123.tmp"
    junk.write_bytes(b"half a checkpoint")
    logs = []
    Trainer(None, resume=run, log=logs.append).close()
    assert not junk.exists() and any("left by an interrupted save" in m for m in logs)


def test_checkpoint_without_a_digest_or_with_malformed_metadata_is_an_error(tmp_path, capsys):
    bad = tmp_path / "meta.pt"
    save_checkpoint(bad, {"t_env": 5}, {"learner": {}})  # a valid digest over a file other code wrote
    with pytest.raises(CheckpointError, match="malformed metadata: missing config, fingerprint, algorithm"):
        load_checkpoint(bad)
    assert "malformed metadata" in _one_line_error(capsys, cli(["eval", str(bad)]))
    stripped = tmp_path / "nodigest.pt"
    torch.save({"format": ckmod.FORMAT, "meta_json": "{}", "learner": {}}, stripped)
    with pytest.raises(CheckpointError, match="corrupted: its digest or metadata is missing"):
        load_checkpoint(stripped)


# ---- 6. 7. settings and resume fit -------------------------------------------------------------------------
@pytest.mark.parametrize("override,message", [
    ("run.time_limit_s=nan", "run.time_limit_s: expected a finite number, got nan"),
    ("learner.lr=inf", "learner.lr: expected a finite number, got inf"),
    ("algo.res_beta=-inf", "algo.res_beta: expected a finite number"),
    ("run.seed=99999999999999999999", r"run.seed: expected a whole number in \[0, 2147483647\]"),
    ("run.seed=-1", "run.seed: expected a whole number in"),
])
def test_non_finite_floats_and_bad_seeds_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("qmix_matrix_mild", [override])


def test_resume_checks_every_setting_that_shapes_networks_optimizer_or_env(tmp_path):
    run = _mild_run(tmp_path)
    other = load_config("qmix_matrix_mild", MILD + ['env.profile="liberty"', 'learner.optimizer="adam"',
                                                    "algo.res=true"])
    with pytest.raises(CheckpointError) as e:
        Trainer(other, resume=run, **QUIET)
    for key in ("env.profile", "learner.optimizer", "algo.res"):
        assert key in str(e.value)
    assert not mp.active_children()


# ---- 8. torn metrics.csv -----------------------------------------------------------------------------------
def test_a_torn_last_line_of_metrics_csv_is_cut_on_resume_and_said(tmp_path):
    run = _mild_run(tmp_path)
    with open(run / "metrics.csv", "ab") as f:
        f.write(b"episode,700,12,0,1.2")  # a crash mid-write: no newline
    logs = []
    train(None, resume=run, overrides=["run.t_max=960"], log=logs.append)
    assert any("last line was cut off" in m for m in logs)
    rows = _rows(run)
    assert all(r["t_env"].isdigit() and None not in r.values() for r in rows)
    assert max(int(r["t_env"]) for r in rows) >= 960
    assert list(run.glob("metrics.csv.before-resume-*"))


# ---- 10. graceful stops keep the replay buffer; hard kills lose only the steps since the last checkpoint -------
class StopAfter(Callbacks):
    def __init__(self, rounds):
        self.rounds, self.seen = rounds, 0

    def on_episode(self, m):
        self.seen += 1

    def should_stop(self):
        return self.seen >= self.rounds * 2  # num_envs = 2


@pytest.mark.slow
@pytest.mark.parametrize("learner_process", [True, False])
def test_a_graceful_stop_saves_the_buffer_and_resumes_exactly(tmp_path, learner_process):
    over = TINY_2C + ["run.t_max=1500", f"run.learner_process={str(learner_process).lower()}"]
    straight = train(load_config("qmix_2c_vs_64zg", over), run_dir=tmp_path / "a", **QUIET)
    s = train(load_config("qmix_2c_vs_64zg", over), run_dir=tmp_path / "b", callbacks=StopAfter(3), **QUIET)
    assert s["stopped"]
    meta, tensors = load_checkpoint(tmp_path / "b")
    assert meta["has_buffer"] and tensors["buffer"]["size"] > 0
    logs = []
    train(None, resume=tmp_path / "b", log=logs.append)
    assert not any("without a replay buffer" in m for m in logs)
    assert _rows(tmp_path / "b") == _rows(tmp_path / "a")
    assert straight["t_env"] == load_checkpoint(tmp_path / "b")[0]["t_env"]


def test_resume_without_a_buffer_warns(tmp_path):
    run = _mild_run(tmp_path)
    logs = []
    t_file = sorted((run / "checkpoints").glob("t*.pt"))[-1]  # periodic checkpoints carry no buffer
    Trainer(None, resume=t_file, log=logs.append).close()
    assert any(m.startswith("warning: resuming") and "without a replay buffer" in m for m in logs)


SUBPROCESS_2C = TINY_2C + ["run.learner_process=true", "run.t_max=1000000"]


def _sets(over):
    return [a for o in over for a in ("--set", o)]


@pytest.mark.slow
@pytest.mark.parametrize("sig, group", [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGTERM, True)])
def test_sigterm_is_a_graceful_stop_with_the_buffer(tmp_path, sig, group):
    """To the trainer alone, or to the whole process group, learner process included: what a terminal's Ctrl-C
    and a cluster scheduler's SIGTERM do."""
    run = tmp_path / "t"
    p = _cli_subprocess(["train", "--preset", "qmix_2c_vs_64zg", *_sets(SUBPROCESS_2C), "--run-dir", str(run)])
    _wait_for(lambda: (run / "metrics.csv").exists() and (run / "metrics.csv").stat().st_size > 2000,
              what="training rows")
    if group:
        os.killpg(p.pid, sig)
    else:
        p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert f"{signal.Signals(sig).name}: stopping" in err
    meta, tensors = load_checkpoint(run)
    assert meta["has_buffer"] and tensors["buffer"]["size"] > 0


@pytest.mark.slow
def test_sigkill_during_training_then_resume_matches_the_uninterrupted_run(tmp_path, capsys):
    over = SUBPROCESS_2C + ["run.save_interval=300"]
    run = tmp_path / "k"
    p = _cli_subprocess(["train", "--preset", "qmix_2c_vs_64zg", *_sets(over), "--run-dir", str(run)])
    _wait_for(lambda: len(list((run / "checkpoints").glob("t*.pt"))) >= 2 if (run / "checkpoints").exists()
              else False, what="two checkpoints")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(30)
    t_ck = load_checkpoint(run)[0]["t_env"]
    assert cli(["train", "--resume", str(run), "--set", f"run.t_max={t_ck + 300}"]) == 0
    assert "without a replay buffer" in capsys.readouterr().err
    straight = tmp_path / "u"
    train(load_config("qmix_2c_vs_64zg", over[:-2] + [f"run.t_max={t_ck + 1}", "run.save_interval=300"]),
          run_dir=straight, **QUIET)
    assert _rows(run, upto=t_ck) == _rows(straight, upto=t_ck)
    assert len(_rows(run, upto=t_ck)) > 4


def test_every_metrics_row_up_to_a_checkpoint_is_on_disk_when_the_checkpoint_is(tmp_path):
    """A run killed right after a checkpoint lost that round's rows (they sat in the file's buffer), and its resume
    goes on after them: the CI's one failure of test_sigkill_during_training_then_resume_matches_the_uninterrupted_run,
    a race this checks without one."""
    from models.files import metrics
    from models.files.checkpoint import load_checkpoint as load
    from models.training.callbacks import Callbacks

    seen = []

    class OnDisk(Callbacks):
        def on_checkpoint(self, path):
            t_ck = load(path)[0]["t_env"]
            on_disk = max(int(r["t_env"]) for r in metrics.rows(run) if r["kind"] == "episode")
            seen.append((t_ck, on_disk))

    run = tmp_path / "r"
    train(load_config("qmix_twostep", ["run.t_max=3000", "run.save_interval=500", "run.test_interval=100000"]),
          callbacks=OnDisk(), run_dir=run, **QUIET)
    assert len(seen) >= 5 and all(t_ck == on_disk for t_ck, on_disk in seen), seen


SAVE_LOOP = """
import os, sys
from models.config import load_config
from models.training.train import Trainer
run = sys.argv[1]
if os.path.exists(os.path.join(run, "checkpoints", "latest.pt")):  # what the last kill left
    tr = Trainer(None, resume=run, log=lambda *a: None)
else:
    tr = Trainer(load_config("qmix_2c_vs_64zg", sys.argv[2:]), run_dir=run, log=lambda *a: None)
for _ in range(2):
    tr.round()
tr.save(with_buffer=True)
print("saved", flush=True)
while True:
    tr.save(with_buffer=True)
"""


@pytest.mark.slow
def test_sigkill_during_saves_leaves_the_previous_checkpoint_intact(tmp_path):
    run = tmp_path / "s"
    over = TINY_2C + ["learner.buffer_size=64", "run.learner_process=false"]
    rng = random.Random(0)
    for _ in range(3):
        p = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(run), *over], cwd=REPO, stdout=subprocess.PIPE,
                             text=True)
        assert p.stdout.readline().strip() == "saved"
        time.sleep(rng.uniform(0.05, 0.4))  # saving all the while: the kill lands in a save
        p.kill()
        p.wait(10)
        p.stdout.close()
        meta, tensors = load_checkpoint(run / "checkpoints" / "latest.pt")
        assert meta["verified"] and meta["has_buffer"] and tensors["buffer"]["size"] > 0
    left = list((run / "checkpoints").glob("*.tmp"))
    logs = []
    Trainer(None, resume=run, log=logs.append).close()
    assert not list((run / "checkpoints").glob("*.tmp"))
    assert bool(left) == any("interrupted save" in m for m in logs)


# ---- 12. a full disk ------------------------------------------------------------------------------------------
def _disk_full(monkeypatch):
    real = os.fdopen

    def full(fd, mode="r", *a, **k):
        if "w" in mode:
            os.close(fd)
            return open("/dev/full", mode)  # every write: ENOSPC, from the kernel
        return real(fd, mode, *a, **k)
    monkeypatch.setattr(ckmod.os, "fdopen", full)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_names_the_file_keeps_the_previous_checkpoint_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    run = _mild_run(tmp_path)
    latest = run / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    files_before = sorted(p.name for p in (run / "checkpoints").iterdir())
    tr = Trainer(None, resume=run, overrides=["run.t_max=960"], **QUIET)
    tr.round()
    with monkeypatch.context() as m:
        _disk_full(m)
        with pytest.raises(CheckpointWriteError, match=r"no space left on device while writing .*t0+\d+\.pt; the "
                                                       r"previous checkpoint .*latest\.pt is intact"):
            tr.save(with_buffer=True)
    tr.close()
    assert latest.read_bytes() == before
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == files_before
    _disk_full(monkeypatch)
    rc = cli(["train", "--resume", str(run), "--set", "run.t_max=960"])
    assert "no space left on device while writing" in _one_line_error(capsys, rc)
    assert latest.read_bytes() == before and not list((run / "checkpoints").glob("*.tmp"))


# ---- 13. resources ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("override,key", [("learner.buffer_size=100000000", "learner.buffer_size"),
                                          ("env.num_envs=100000000", "env.num_envs")])
def test_huge_settings_are_refused_before_allocating(tmp_path, override, key):
    cfg = load_config("qmix_2c_vs_64zg", [f'run.runs_dir="{tmp_path}"', override])
    t0 = time.monotonic()
    with pytest.raises(ResourceError, match=rf"{key} = 100,000,000 asks for [\d,.]+ GiB .* only [\d,.]+ GiB are "
                                            rf"available"):
        Trainer(cfg, **QUIET)
    assert time.monotonic() - t0 < 30 and not mp.active_children()


# ---- 14. CLI errors: one line, exit code 2, traceback only with --debug ------------------------------------------
def test_cli_user_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    badtoml = tmp_path / "bad.toml"
    badtoml.write_bytes(b"\xff\xfe[run]\n")
    cases = [
        (["train", "--preset", "qmix_matrix_mild", "--run-dir", "/proc/x"], "cannot create run directory /proc/x"),
        (["train", "--preset", "qmix_matrix_mild", "--run-dir", str(afile / "x")], "cannot create run directory"),
        (["train", "--config", str(tmp_path)], "is a directory; expected a TOML file"),
        (["train", "--config", str(badtoml)], "is not UTF-8 text"),
        (["train", "--config", str(tmp_path / "none.toml")], "does not exist"),
        (["eval", str(tmp_path / "missing")], "does not exist"),
        (["eval", str(afile)], "not a readable qmix-workbench checkpoint"),
        (["train", "--resume", str(tmp_path)], "has no checkpoints"),
        (["plot", str(tmp_path / "missing")], "missing"),
    ]
    for argv, expected in cases:
        line = _one_line_error(capsys, cli(argv))
        assert expected in line, (argv, line)
    with pytest.raises(ConfigError):
        cli(["--debug", "train", "--config", str(tmp_path)])


# ---- 15. the episode trace sees every step, the last one included ------------------------------------------------
class TraceWatcher(Callbacks):
    def __init__(self):
        self.trace, self.episodes = None, []

    def wants_steps(self):
        return True

    def on_step(self, ctx):
        self.trace = ctx.trace

    def on_episode(self, m):
        self.episodes.append((m, self.trace.last))


@pytest.mark.parametrize("preset,over", [("vdn_twostep", ["run.t_max=600"]),
                                         ("qmix_2c_vs_64zg", TINY_2C + ["run.t_max=300"])])
@pytest.mark.slow
def test_watch_mode_trace_holds_every_step_and_the_return_earned(tmp_path, preset, over):
    from models.core.episode import discounted_returns
    from models.play.watch import watch

    s = train(load_config(preset, over), run_dir=tmp_path / "r", **QUIET)
    cb = TraceWatcher()
    watch(s["run_dir"], cb, max_episodes=2)
    assert len(cb.episodes) == 2
    gamma = load_checkpoint(s["run_dir"])[0]["config"]["learner"]["gamma"]
    for m, last in cb.episodes:
        assert last is not None and len(last["qtot"]) == len(last["reward"]) == m["length"]
        assert sum(last["reward"]) == pytest.approx(m["return"], abs=1e-4)
        r = torch.tensor(last["reward"])[None].numpy()
        G = discounted_returns(r, r == r, gamma)[0]
        assert last["return_to_go"] == pytest.approx(G.tolist(), abs=1e-5)


# ---- 16. progress and clean-up defects ------------------------------------------------------------------------
@pytest.mark.slow
def test_resuming_at_t_max_with_a_round_pending_finishes(tmp_path):
    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C + ["run.learner_process=true"]), run_dir=tmp_path / "p",
                 **QUIET)
    for _ in range(3):
        tr.round()
    tr.save()
    assert tr.host.ready  # a round learnt but not yet handed to the actors
    tr.close()
    assert cli(["train", "--resume", str(tmp_path / "p"), "--set", "run.t_max=100"]) == 0


@pytest.mark.slow
def test_a_failing_restore_leaves_no_learner_process(tmp_path):
    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C + ["run.learner_process=true"]), run_dir=tmp_path / "p",
                 **QUIET)
    tr.round()
    path = tr.save()
    tr.close()
    meta, tensors = load_checkpoint(path)
    del meta["rounds"]
    bad = tmp_path / "q" / "checkpoints" / "t1.pt"
    save_checkpoint(bad, meta, tensors)
    with pytest.raises(CheckpointError, match="malformed metadata: missing 'rounds'"):
        Trainer(None, resume=bad, **QUIET)
    assert not mp.active_children()


def test_run_dir_errors_are_workbench_errors():
    assert issubclass(RunDirError, ValueError) and issubclass(CheckpointWriteError, OSError)


def _die_mid_message(msg_q, snap_q):
    """A trainer killed while its queues' feeders were writing: half a message in each pipe, then SIGKILL."""
    import struct

    for q in (msg_q, snap_q):
        os.write(q._writer.fileno(), struct.pack("!i", 100_000) + b"x" * 10)
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_window_never_blocks_on_half_a_message_from_a_dead_trainer():
    """A queue read blocks for the rest of a message once begun: the client must not read what a killed trainer
    left half-written (the window froze when a watch was stopped mid-snapshot)."""
    import threading

    from workbench.client import TrainerClient

    c = TrainerClient()
    c.cmd_q, c.msg_q, c.snap_q = c.ctx.Queue(), c.ctx.Queue(), c.ctx.Queue(maxsize=2)
    c.proc = c.ctx.Process(target=_die_mid_message, args=(c.msg_q, c.snap_q))
    c.proc.start()
    c.proc.join(30)
    assert c.proc.exitcode == -signal.SIGKILL
    out = []
    t = threading.Thread(target=lambda: out.append(c.poll()), daemon=True)
    t.start()
    t.join(10)
    assert out, "poll() blocked on a half-written message"
    msgs, snap, code = out[0]
    assert msgs == [] and snap is None and code == -signal.SIGKILL


def test_a_run_directory_and_a_sweep_directory_take_one_writer_at_a_time(tmp_path):
    """Two trainings of one run directory (or two sweeps into one directory) would interleave their rows: the
    second is refused while the first holds the directory, and the directory is free again once it ends."""
    from models.errors import RunDirError
    from models.sweeps.sweep import plan_sweep, prepare_sweep

    cfg = load_config("qmix_2c_vs_64zg", TINY_2C + ["run.learner_process=false"])
    first = Trainer(cfg, run_dir=tmp_path / "run", log=lambda *a: None)
    with pytest.raises(RunDirError, match=r"run directory .*run is in use by pid \d+"):
        Trainer(cfg, run_dir=tmp_path / "run", overwrite=True, log=lambda *a: None)
    assert (tmp_path / "run" / "config.toml").exists()  # the refused --overwrite cleared nothing
    first.close()
    Trainer(cfg, run_dir=tmp_path / "run", overwrite=True, log=lambda *a: None).close()
    spec = plan_sweep(["qmix_twostep"], [0], fixed=["run.t_max=100"])
    d, lock = prepare_sweep(spec, tmp_path / "sw")
    rc = subprocess.run([sys.executable, "-m", "workbench.cli", "sweep", "--preset", "qmix_twostep", "--seeds", "0",
                         "--set", "run.t_max=100", "--out", str(d)], capture_output=True, text=True, timeout=120)
    assert rc.returncode == 2 and "sweep directory" in rc.stderr and "is in use by pid" in rc.stderr
    lock.release()


def test_tables_says_which_checkpoint_it_loaded_when_latest_is_corrupted(tmp_path, capsys):
    """Every command that loads a run directory's checkpoint says what it loaded and why (it printed another
    checkpoint's tables without a word)."""
    from workbench.cli import main

    cfg = load_config("qmix_twostep", ["run.t_max=400", "run.save_interval=128", "run.test_interval=1000"])
    run = train(cfg, run_dir=tmp_path / "run", log=lambda *a: None)["run_dir"]
    latest = tmp_path / "run" / "checkpoints" / "latest.pt"
    data = bytearray(latest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    latest.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["tables", str(latest)]) == 0
    out, err = capsys.readouterr()
    assert "latest.pt is corrupted" in err and "using" in err and "instead" in err and "Qtot" in out
    assert run


def test_an_edited_config_toml_is_reported_by_resume_and_compare(tmp_path):
    """One source of truth: a config.toml changed after the run wrote it is neither trusted silently by one tool nor
    ignored silently by another; the edit itself is kept."""
    from models.sweeps.compare import compare_runs

    cfg = load_config("qmix_2c_vs_64zg", TINY_2C + ["run.learner_process=false", "run.test_interval=100", "run.t_max=300"])
    run = Path(train(cfg, run_dir=tmp_path / "run", log=lambda *a: None)["run_dir"])
    text = (run / "config.toml").read_text()
    (run / "config.toml").write_text(text.replace('map_name = "2c_vs_64zg"', 'map_name = "3m"'))
    c = compare_runs([run])
    assert any("config.toml was edited after the run wrote it" in n for n in c.notes)
    assert "note: " in c.table()
    logs = []
    tr = Trainer(None, resume=run, log=logs.append, overrides=["run.t_max=600"])
    tr.close()
    msg = next(m for m in logs if "was edited after the run wrote it" in m)
    assert "env.map_name: '3m' in the file, '2c_vs_64zg' in the run" in msg and "config.toml.edited" in msg
    assert 'map_name = "3m"' in (run / "config.toml.edited").read_text()
    assert 'map_name = "2c_vs_64zg"' in (run / "config.toml").read_text()
    assert not compare_runs([run]).notes  # the run's own config again
