"""Sweeps: presets x seeds x a grid of config values, each trial an ordinary run directory under one sweep
directory, run by a local pool of processes or by Ray Tune.

This module owns the sweep's plan (`SweepSpec`, written to `sweep.toml` and read back to resume), the
rules that decide whether a trial is finished, resumable or to be started clean, the one function a
trial runs in whatever process hosts it (`run_trial`), and the two backends:

- local (default): a pool of spawned processes sized so that the trials' threads do not oversubscribe
  the cores (a trial uses `run.threads` cores, twice that with `run.learner_process`);
- ray: each trial is one `train()` inside a Ray Tune function trainable, reporting every evaluation to
  Tune; Tune schedules the trials on the cluster's CPUs (with `--address`, the sweep directory must be
  a path every node can write).

A trial's run directory is `SWEEP_DIR/<name>` with a name made from its preset, grid values and seed, so
a rerun of the same sweep finds it: a trial with `sweep_done.json` is finished and skipped, one with a
checkpoint resumes from it, one without starts clean. Never imports Qt.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..files.atomic import write_atomic
from ..files.rundir import LOCK_FILE, DirLock
from .local import _run_local
from .ray_backend import RAY_MISSING, _import_ray, _run_ray  # noqa: F401 (RAY_MISSING: the message, for its tests)
from .spec import (  # noqa: F401
    BACKENDS,
    FORMAT,
    RESERVED_KEYS,
    SWEEP_FILE,
    SweepError,
    SweepSpec,
    Trial,
    cores,
    default_workers,
    parse_grid,
    parse_seeds,
    plan_sweep,
    trial_cpus,
    trial_name,
)
from .trial import (  # noqa: F401
    ABSOLUTE_EVAL,
    DONE_MARKER,
    FINAL_EVAL,
    LOG_DIR,
    Progress,
    TrialJob,
    TrialResult,
    checkpoint_t,
    is_finished,
    run_trial,
)


@dataclass
class SweepResult:
    sweep_dir: Path
    results: list[TrialResult]
    interrupted: bool = False

    @property
    def failed(self) -> list[TrialResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def unfinished(self) -> list[TrialResult]:
        return [r for r in self.results if not r.finished]


# ---- the sweep ----------------------------------------------------------------------------------------

def prepare_sweep(spec: SweepSpec, sweep_dir: str | Path) -> tuple[Path, DirLock]:
    """Create the sweep directory, lock it and write sweep.toml; refuse one that holds a different sweep, but let
    one grow by seeds (the same presets, grid and overrides with more seeds), so 3 seeds become 5 without a rerun.
    The caller releases the lock when the sweep ends."""
    d = Path(sweep_dir).expanduser().resolve()
    if d.exists() and not d.is_dir():
        raise SweepError(f"--out {d}: exists and is not a directory")
    if (d / SWEEP_FILE).exists():
        old = SweepSpec.read(d)
        there, now = old.identity(), spec.identity()
        differ = [k for k in now if there[k] != now[k]]
        # more seeds of the same configurations grow the sweep: the finished runs count, the new seeds' runs join
        grows = differ == ["seeds"] and set(there["seeds"]) < set(now["seeds"])
        if differ and not grows:
            diffs = [f"{k}: {there[k]!r} there, {now[k]!r} now" for k in differ]
            more = " (seeds can be added: give its seeds and the new ones)" if differ == ["seeds"] else ""
            raise SweepError(f"{d} holds a different sweep ({'; '.join(diffs)}){more}; resume it with "
                             f"`qmix-workbench sweep --resume {d}` or choose another --out")
        spec.created = old.created
    elif d.is_dir() and any(p.name != LOCK_FILE for p in d.iterdir()):
        raise SweepError(f"--out {d}: not empty and has no {SWEEP_FILE}; expected a new or empty directory, or "
                         f"a sweep directory to resume")
    d.mkdir(parents=True, exist_ok=True)
    lock = DirLock(d, "sweep directory")  # held until the sweep ends: a second one here is refused
    try:
        write_atomic(d / SWEEP_FILE, spec.to_toml())
    except BaseException:
        lock.release()
        raise
    return d, lock


def jobs_for(spec: SweepSpec, sweep_dir: Path) -> list[TrialJob]:
    jobs = []
    for t in spec.trials:
        cfg = spec.config(t, sweep_dir)
        jobs.append(TrialJob(name=t.name, preset=t.preset, overrides=spec.overrides(t, sweep_dir),
                             run_dir=str(sweep_dir / t.name), log_path=str(sweep_dir / LOG_DIR / f"{t.name}.log"),
                             final_episodes=spec.final_episodes,
                             absolute_episodes=spec.absolute_factor * cfg.run.test_episodes,
                             threads=cfg.run.threads or 1, cpus=t.cpus))
    return jobs


def run_sweep(spec: SweepSpec, sweep_dir: str | Path, log: Callable[[str], None] = print) -> SweepResult:
    """Run every unfinished trial of `spec` under `sweep_dir` with its backend; finished ones are skipped."""
    if spec.backend == "ray":
        _import_ray()  # before anything is written: without Ray this is the one line the user sees
    d, lock = prepare_sweep(spec, sweep_dir)
    try:
        return _run_sweep(spec, d, log)
    finally:
        lock.release()


def _run_sweep(spec: SweepSpec, d: Path, log: Callable[[str], None]) -> SweepResult:
    jobs = jobs_for(spec, d)
    done = [j for j in jobs if is_finished(Path(j.run_dir))]
    todo = [j for j in jobs if not is_finished(Path(j.run_dir))]
    log(f"sweep {d}: {len(jobs)} run(s) ({len(spec.presets)} preset(s) x "
        f"{math.prod(len(v) for v in spec.grid.values())} grid point(s) x {len(spec.seeds)} seed(s))"
        + (f"; {len(done)} already finished, skipped" if done else ""))
    results = [run_trial(j) for j in done]  # reads their markers
    if not todo:
        return SweepResult(d, results)
    workers = spec.workers or default_workers([t for t in spec.trials if t.name in {j.name for j in todo}])
    progress = Progress(len(jobs), len(todo), log)
    if spec.backend == "ray":
        ran, interrupted = _run_ray(todo, spec.workers, progress, log, address=spec.address,
                                    storage=d / "ray_results")
    else:
        log(f"running {len(todo)} run(s), {min(workers, len(todo))} at a time "
            f"({cores()} cores, {max(j.cpus for j in todo)} per run)")
        ran, interrupted = _run_local(todo, workers, progress, log)
    return SweepResult(d, results + ran, interrupted)


