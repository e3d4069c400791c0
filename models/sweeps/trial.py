"""One trial of a sweep, in whatever process hosts it (a local pool worker, a Ray actor): skip it when finished,
resume it from its checkpoint, or start it clean; then its final and absolute evaluations and its done marker."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import EVAL_SEED, load_config
from ..files import metrics
from ..files.atomic import write_atomic
from ..files.rundir import RunDir

DONE_MARKER = "sweep_done.json"  # written when a trial ended by its own budget: the rerun skips it
FINAL_EVAL = "final_eval.json"
ABSOLUTE_EVAL = "absolute_eval.json"  # the best checkpoint re-evaluated with more episodes
LOG_DIR = "logs"  # each trial's log lines (train's messages, a failure's traceback)


@dataclass
class TrialJob:
    """What a worker needs to run one trial: plain data, picklable to a spawned process or a Ray actor."""
    name: str
    preset: str
    overrides: list[str]
    run_dir: str
    log_path: str
    final_episodes: int
    absolute_episodes: int  # greedy episodes for the best checkpoint (0: none)
    threads: int  # the most threads one of its processes uses (for OMP/MKL/numba before torch loads)
    cpus: int


@dataclass
class TrialResult:
    name: str
    status: str  # "done" | "skipped" (finished before) | "stopped" | "not started" | "failed"
    wall_s: float = 0.0  # this process's time on the trial (training, start-up and final evaluation)
    t_env: int = 0
    final_win_rate: float = math.nan
    final_episodes: int = 0  # episodes behind final_win_rate
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.status in ("done", "skipped")


# ---- one trial ----------------------------------------------------------------------------------------

def checkpoint_t(run_dir: Path) -> int | None:
    """The env steps of a run directory's newest step checkpoint (from the `t<steps>.pt` names, without
    loading one); None when it has none. `latest.pt` alone counts as a checkpoint at an unknown step (-1)."""
    rd = RunDir(run_dir)
    steps = rd.step_checkpoints()
    if steps:
        return steps[-1][0]
    return -1 if rd.latest.exists() else None


def is_finished(run_dir: Path) -> bool:
    return (run_dir / DONE_MARKER).exists()


def _last_eval(run_dir: Path) -> tuple[int, float]:
    """(t_env, test win rate) of metrics.csv's last eval row; (0, nan) without one."""
    try:
        t, win = metrics.series(run_dir, kinds=("eval",)).get(("eval", "test_win_rate"), ((), ()))
    except ValueError:  # no readable metrics.csv
        return (0, math.nan)
    return (int(t[-1]), float(win[-1])) if len(t) else (0, math.nan)


def _write_json(path: Path, doc: dict) -> None:
    write_atomic(path, json.dumps(doc, indent=2) + "\n")


class _FileLog:
    """A trial's messages, appended to its log file (a worker's stdout would interleave with the others')."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str) -> None:
        with open(self.path, "a") as f:
            f.write(f"{_dt.datetime.now().isoformat(timespec='seconds')} {msg}\n")


def run_trial(job: TrialJob, should_stop: Callable[[], bool] | None = None,
              report: Callable[[dict], None] | None = None) -> TrialResult:
    """Run one trial to its end in this process: skip it when finished, resume it from its checkpoint, or
    start it clean; then evaluate it greedily (`final_eval.json`) and mark it finished (`sweep_done.json`).
    `report` gets every evaluation (Ray Tune); `should_stop` ends training after a round (a checkpoint
    is saved and the trial stays unfinished). Failures come back as a result, not an exception."""
    from ..training.callbacks import Callbacks
    from ..training.train import train

    run_dir = Path(job.run_dir)
    if is_finished(run_dir):
        try:
            done = json.loads((run_dir / DONE_MARKER).read_text())
            return TrialResult(**{**done, "status": "skipped"})
        except (OSError, ValueError, TypeError):
            return TrialResult(job.name, "skipped")
    log = _FileLog(job.log_path)
    t0 = time.monotonic()

    class Hooks(Callbacks):
        def on_eval(self, m):
            if report is not None:
                report({"t_env": m["t_env"], "test_win_rate": m["test_win_rate"], "test_return": m["test_return"]})

        def should_stop(self):
            return should_stop is not None and should_stop()

    try:
        cfg = load_config(job.preset, job.overrides)
        for stale in (FINAL_EVAL, ABSOLUTE_EVAL):  # from an earlier end of a run being redone
            (run_dir / stale).unlink(missing_ok=True)
        at = checkpoint_t(run_dir)
        if at is not None and at >= cfg.run.t_max:  # trained to the end; only the sweep's own ending is missing
            log(f"checkpoint at {at:,} >= run.t_max {cfg.run.t_max:,}: training is done, finishing the trial")
            t_env, win = _last_eval(run_dir)
            summary = {"t_env": max(at, t_env), "final_test_win_rate": win, "stopped": False}
        elif at is not None:
            log(f"resuming {run_dir} from its checkpoint" + (f" at {at:,} env steps" if at >= 0 else ""))
            summary = train(cfg, callbacks=Hooks(), resume=run_dir, log=log)
        else:
            log(f"starting {run_dir} clean")
            summary = train(cfg, callbacks=Hooks(), run_dir=run_dir, overwrite=True, log=log)
        if summary["stopped"]:
            log(f"stopped at {summary['t_env']:,} env steps (a checkpoint was saved; a rerun resumes it)")
            return TrialResult(job.name, "stopped", time.monotonic() - t0, summary["t_env"])
        win, episodes = summary["final_test_win_rate"], cfg.run.test_episodes
        if job.final_episodes:
            from ..play.evaluate import evaluate_checkpoint

            # the step checkpoint, not latest.pt: the same weights without the replay buffer to read
            step = RunDir(run_dir).step_checkpoint(summary["t_env"])
            ev = evaluate_checkpoint(step if step.exists() else run_dir, job.final_episodes)
            win, episodes = ev["win_rate"], ev["episodes"]
            _write_json(run_dir / FINAL_EVAL, {"episodes": ev["episodes"], "win_rate": ev["win_rate"],
                                               "return": ev["return"], "dead_enemies": ev["dead_enemies"],
                                               "t_env": ev["meta"]["t_env"], "seed": EVAL_SEED})
        if job.absolute_episodes:
            from ..play.evaluate import absolute_evaluation

            try:
                ab = absolute_evaluation(run_dir, job.absolute_episodes)
                _write_json(run_dir / ABSOLUTE_EVAL, ab)
                log(f"absolute metric: {ab['checkpoint']} (its evaluation {ab['selected_by_test_win_rate']:.0%}) "
                    f"wins {ab['win_rate']:.1%} of {ab['episodes']} greedy episodes")
            except ValueError as e:  # a run too short to have a checkpoint with an evaluation
                log(f"no absolute metric: {e}")
        result = TrialResult(job.name, "done", round(time.monotonic() - t0, 3), int(summary["t_env"]), win, episodes)
        _write_json(run_dir / DONE_MARKER, dataclasses.asdict(result))
        log(f"done: {result.t_env:,} env steps, final greedy win rate {win:.1%} over {episodes} episodes")
        return result
    except Exception as e:  # noqa: BLE001 - one trial's failure is reported; the sweep goes on
        from ..errors import user_message

        log(traceback.format_exc())
        msg = user_message(e) or f"{type(e).__name__}: {e} (traceback in {job.log_path})"
        return TrialResult(job.name, "failed", time.monotonic() - t0, error=msg)


def _limit_threads(n: int) -> None:
    """Before torch and numba load: their thread pools take this many threads, not one per core."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)


# ---- progress -----------------------------------------------------------------------------------------

def _fmt_dur(s: float) -> str:
    return str(_dt.timedelta(seconds=int(round(s))))


class Progress:
    """One line per trial as it ends (name, wall time, final win rate) and an ETA line for the rest."""

    def __init__(self, total: int, todo: int, log: Callable[[str], None]):
        self.total, self.todo, self.log = total, todo, log
        self.ended = 0
        self.start = time.monotonic()

    def ended_one(self, r: TrialResult) -> None:
        self.ended += 1
        head = f"[{self.ended}/{self.todo}] {r.name}: {r.status}"
        if r.status == "done":
            self.log(f"{head} in {_fmt_dur(r.wall_s)}, {r.t_env:,} env steps, final greedy win rate "
                     f"{r.final_win_rate:.1%} ({r.final_episodes} episodes)")
        elif r.status == "failed":
            self.log(f"{head}: {r.error}")
        else:
            self.log(f"{head}" + (f" at {r.t_env:,} env steps" if r.t_env else ""))
        left = self.todo - self.ended
        if left and r.status == "done":
            # throughput so far, so parallel trials count as they run
            eta = (time.monotonic() - self.start) / self.ended * left
            self.log(f"ETA {_fmt_dur(eta)} for the {left} run(s) left")


