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

import dataclasses
import datetime as _dt
import itertools
import json
import math
import os
import re
import time
import tomllib
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import tomli_w

from ..config import (
    EVAL_SEED,
    Config,
    ConfigError,
    check_seed,
    load_config,
    parse_override,
)
from ..errors import WorkbenchError
from ..files.rundir import LOCK_FILE, DirLock

SWEEP_FILE = "sweep.toml"
FORMAT = "qmix-workbench-sweep/1"
DONE_MARKER = "sweep_done.json"  # written when a trial ended by its own budget: the rerun skips it
FINAL_EVAL = "final_eval.json"
ABSOLUTE_EVAL = "absolute_eval.json"  # the best checkpoint re-evaluated with more episodes
LOG_DIR = "logs"  # each trial's log lines (train's messages, a failure's traceback)
BACKENDS = ("local", "ray")
RAY_MISSING = 'the ray backend needs Ray: pip install "qmix-workbench[ray]"'
# keys the sweep sets itself for each trial
RESERVED_KEYS = {"run.seed": "give seeds with --seeds", "run.name": "the sweep names each run",
                 "run.runs_dir": "runs go under the sweep directory (--out)"}


class SweepError(WorkbenchError, ValueError):
    """A sweep cannot be planned or run as asked; the message names the option or file."""


@dataclass
class Trial:
    name: str  # its run directory under the sweep directory
    preset: str
    seed: int
    grid: dict[str, Any] = field(default_factory=dict)  # this trial's value of each grid key
    cpus: int = 1  # cores its processes use: run.threads, times 2 with a learner process


@dataclass
class SweepSpec:
    presets: list[str]
    seeds: list[int]
    grid: dict[str, list] = field(default_factory=dict)  # key -> values, in the order given
    fixed: list[str] = field(default_factory=list)  # --set overrides, as given
    threads: int = 1  # torch/numba threads per process of a trial (unless --set/--grid run.threads)
    final_episodes: int = 200  # greedy episodes evaluated at the end of each trial (0: none)
    # the absolute metric: each trial's best checkpoint re-evaluated with this many times run.test_episodes (0: none)
    absolute_factor: int = 10
    backend: str = "local"
    address: str | None = None  # Ray: "auto", "ray://host:port"; None starts a local Ray
    workers: int = 0  # trials at once (0: sized to the machine)
    trials: list[Trial] = field(default_factory=list)
    created: str = ""  # when the sweep was first planned (kept by reruns)

    def overrides(self, trial: Trial, sweep_dir: Path | None = None) -> list[str]:
        """The `--set` list that makes this trial's config from its preset."""
        out = list(self.fixed) + [f"{k}={_toml_value(v)}" for k, v in trial.grid.items()]
        keys = {parse_override(o)[0] for o in out}
        if "run.threads" not in keys:
            out.append(f"run.threads={self.threads}")
        out += [f"run.seed={trial.seed}", f"run.name={_toml_value(trial.name)}"]
        if sweep_dir is not None:
            out.append(f"run.runs_dir={_toml_value(str(sweep_dir))}")
        return out

    def config(self, trial: Trial, sweep_dir: Path | None = None) -> Config:
        return load_config(trial.preset, self.overrides(trial, sweep_dir))

    def identity(self) -> dict:
        """What makes two sweeps the same sweep (how many workers or threads, or the backend, do not)."""
        # --set values in another order are the same sweep (a key given twice keeps its order: the last wins)
        fixed = sorted(self.fixed, key=lambda o: parse_override(o)[0])
        return {"presets": self.presets, "seeds": self.seeds, "grid": self.grid, "set": fixed}

    def to_toml(self) -> str:
        created = self.created or _dt.datetime.now().isoformat(timespec="seconds")
        doc: dict[str, Any] = {"format": FORMAT, "created": created,
                               "presets": self.presets, "seeds": self.seeds, "set": self.fixed,
                               "threads": self.threads, "final_episodes": self.final_episodes,
                               "absolute_factor": self.absolute_factor,
                               "backend": self.backend, "workers": self.workers, "grid": self.grid,
                               "trials": [dataclasses.asdict(t) for t in self.trials]}
        if self.address is not None:  # TOML has no null
            doc["address"] = self.address
        return tomli_w.dumps(doc)

    @classmethod
    def read(cls, sweep_dir: str | Path) -> "SweepSpec":
        """The spec a sweep directory's sweep.toml describes."""
        path = Path(sweep_dir) / SWEEP_FILE
        if not path.exists():
            raise SweepError(f"{sweep_dir} has no {SWEEP_FILE}: not a sweep directory")
        try:
            doc = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SweepError(f"{path}: not valid TOML: {e}") from None
        if doc.get("format") != FORMAT:
            raise SweepError(f"{path}: not a qmix-workbench sweep file (format {FORMAT!r} expected, "
                             f"got {doc.get('format')!r})")
        try:
            trials = [Trial(**t) for t in doc.get("trials", [])]
            return cls(presets=list(doc["presets"]), seeds=list(doc["seeds"]), grid=dict(doc.get("grid", {})),
                       fixed=list(doc.get("set", [])), threads=int(doc.get("threads", 1)),
                       final_episodes=int(doc.get("final_episodes", 200)),
                       absolute_factor=int(doc.get("absolute_factor", 10)), backend=doc.get("backend", "local"),
                       address=doc.get("address"), workers=int(doc.get("workers", 0)), trials=trials,
                       created=str(doc.get("created", "")))
        except (KeyError, TypeError) as e:
            raise SweepError(f"{path}: malformed sweep file ({e})") from None


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


# ---- planning ---------------------------------------------------------------------------------------

def _toml_value(v) -> str:
    """`v` as a TOML literal, the form `--set key=value` parses back to the same value."""
    return tomli_w.dumps({"v": v})[len("v = "):].strip()


def parse_grid(items: list[str]) -> dict[str, list]:
    """`--grid key=v1,v2,...` items (values as in --set: TOML literals, bare words are strings)."""
    grid: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise SweepError(f"--grid {item!r}: expected section.key=v1,v2,... (e.g. learner.lr=0.001,0.0005)")
        key, raw = (s.strip() for s in item.split("=", 1))
        if "." not in key or not key.split(".", 1)[1]:
            raise SweepError(f"--grid {item!r}: the key must name its section, e.g. learner.lr=0.001,0.0005")
        if key in RESERVED_KEYS:
            raise SweepError(f"--grid {key}: not a grid key ({RESERVED_KEYS[key]})")
        if key in grid:
            raise SweepError(f"--grid {key}: given twice; put every value in one --grid {key}=v1,v2,...")
        parts = [p.strip() for p in raw.split(",")]
        if not raw or any(not p for p in parts):
            raise SweepError(f"--grid {item!r}: expected a comma-separated list of values after '=', "
                             f"with none empty")
        values = [parse_override(f"{key}={p}")[1] for p in parts]
        if len({_toml_value(v) for v in values}) != len(values):
            raise SweepError(f"--grid {item!r}: a value is repeated")
        grid[key] = values
    return grid


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` or a range `0-4` (both ends included)."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d+\s*-\s*\d+", text):
            lo, hi = (int(s) for s in text.split("-"))
            if hi < lo:
                raise ValueError
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise SweepError(f"--seeds {text!r}: expected whole numbers separated by commas (0,1,2) or a range "
                         f"(0-4)") from None
    for s in seeds:
        check_seed("--seeds", s)
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {text!r}: a seed is repeated")
    return seeds


def _short_keys(keys: list[str]) -> dict[str, str]:
    """Each grid key's part in a run name: its last component (`lr`), or the whole key when two would clash."""
    last = [k.rsplit(".", 1)[1] for k in keys]
    return {k: (s if last.count(s) == 1 else k.replace(".", "-")) for k, s in zip(keys, last)}


def _name_part(v) -> str:
    s = ("true" if v else "false") if isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)
    s = re.sub(r"[^A-Za-z0-9.+-]+", "-", s)
    return re.sub(r"\.{2,}", "-", s)


def trial_name(preset: str, grid_values: dict, seed: int, short: dict[str, str]) -> str:
    """The run directory's name: preset, each grid value, seed (`qmix_twostep_lr0.001_s0`)."""
    base = Path(preset).stem if preset.endswith(".toml") else preset
    return base + "".join(f"_{short[k]}{_name_part(v)}" for k, v in grid_values.items()) + f"_s{seed}"


def cores() -> int:
    """Cores this process may run on (its affinity, where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def trial_cpus(cfg: Config) -> int:
    """Cores a run uses: its threads, in each of its processes (actors, and the learner when it has one)."""
    threads = cfg.run.threads or 1
    return threads + ((cfg.run.learner_threads or threads) if cfg.run.learner_process else 0)


def plan_sweep(presets: list[str], seeds: list[int], grid: dict[str, list] | None = None,
               fixed: list[str] | None = None, threads: int = 1, final_episodes: int = 200, absolute_factor: int = 10,
               backend: str = "local", address: str | None = None, workers: int = 0) -> SweepSpec:
    """Every trial of presets x grid x seeds, with each trial's config built (and so checked) now: a bad
    preset, key or value is an error before anything runs."""
    grid, fixed = dict(grid or {}), list(fixed or [])
    if not presets:
        raise SweepError("a sweep needs at least one --preset (see `qmix-workbench presets`)")
    if len(set(presets)) != len(presets):
        raise SweepError(f"--preset: a preset is given twice ({', '.join(presets)})")
    if not seeds:
        raise SweepError("a sweep needs at least one seed (--seeds 0,1,2)")
    if backend not in BACKENDS:
        raise SweepError(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise SweepError("--address is for the ray backend; add --backend ray")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SweepError(f"--threads: expected a whole number >= 1, got {threads!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise SweepError(f"--workers: expected a whole number >= 1, got {workers!r}")
    if isinstance(final_episodes, bool) or not isinstance(final_episodes, int) or not 0 <= final_episodes <= 100_000:
        raise SweepError(f"--final-episodes: expected a whole number in [0, 100000], got {final_episodes!r}")
    if isinstance(absolute_factor, bool) or not isinstance(absolute_factor, int) or not 0 <= absolute_factor <= 1000:
        raise SweepError(f"--absolute-factor: expected a whole number in [0, 1000], got {absolute_factor!r}")
    for item in fixed:
        key = parse_override(item)[0]
        if key in RESERVED_KEYS:
            raise SweepError(f"--set {key}: not settable in a sweep ({RESERVED_KEYS[key]})")
        if key in grid:
            raise SweepError(f"{key} is both in --set and in --grid; keep one")
    from ..registry import check_preset

    resolved = []
    for p in presets:  # a file is kept by its absolute path, so a resume from elsewhere finds it
        if p.endswith(".toml") or os.sep in p:
            if not Path(p).is_file():
                raise SweepError(f"--preset {p!r}: no such config file")
            resolved.append(str(Path(p).resolve()))
        else:
            resolved.append(check_preset(p))
    spec = SweepSpec(presets=resolved, seeds=list(seeds), grid=grid, fixed=fixed, threads=threads,
                     final_episodes=final_episodes, absolute_factor=absolute_factor, backend=backend, address=address,
                     workers=workers)
    short = _short_keys(list(grid))
    names: dict[str, Trial] = {}
    combos = list(itertools.product(*grid.values())) if grid else [()]
    # seeds outermost: a sweep cut short (or still running) has every configuration at its first seeds,
    # so the comparison it can already draw is across configurations rather than one of them alone
    for seed in seeds:
        for preset in resolved:
            for combo in combos:
                values = dict(zip(grid, combo))
                t = Trial(trial_name(preset, values, seed, short), preset, seed, values)
                if t.name in names:
                    raise SweepError(f"two trials would share the run directory {t.name!r} ({names[t.name]} and "
                                     f"{t}); make the presets' file names or the grid values differ")
                try:
                    cfg = spec.config(t)
                except ConfigError as e:
                    where = f"preset {Path(preset).name}" + (f" with {values}" if values else "")
                    raise SweepError(f"{where}: {e}") from None
                t.cpus = trial_cpus(cfg)
                names[t.name] = t
    spec.trials = list(names.values())
    return spec


def default_workers(trials: list[Trial], n_cores: int | None = None) -> int:
    """As many trials at once as the cores hold (the widest trial sets the size), at least one."""
    need = max((t.cpus for t in trials), default=1)
    return max(1, (n_cores or cores()) // need)


# ---- one trial ----------------------------------------------------------------------------------------

def checkpoint_t(run_dir: Path) -> int | None:
    """The env steps of a run directory's newest step checkpoint (from the `t<steps>.pt` names, without
    loading one); None when it has none. `latest.pt` alone counts as a checkpoint at an unknown step (-1)."""
    ck = run_dir / "checkpoints"
    steps = [int(m.group(1)) for p in ck.glob("t*.pt") if (m := re.fullmatch(r"t(\d+)\.pt", p.name))]
    if steps:
        return max(steps)
    return -1 if (ck / "latest.pt").exists() else None


def is_finished(run_dir: Path) -> bool:
    return (run_dir / DONE_MARKER).exists()


def _last_eval(run_dir: Path) -> tuple[int, float]:
    """(t_env, test win rate) of metrics.csv's last eval row; (0, nan) without one."""
    import csv

    last = (0, math.nan)
    try:
        with open(run_dir / "metrics.csv", newline="") as f:
            for row in csv.DictReader(f):
                if row.get("kind") == "eval" and row.get("test_win_rate"):
                    last = (int(float(row["t_env"])), float(row["test_win_rate"]))
    except (OSError, ValueError):
        pass
    return last


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


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
            step = run_dir / "checkpoints" / f"t{summary['t_env']:010d}.pt"
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
        tmp = d / (SWEEP_FILE + ".tmp")
        tmp.write_text(spec.to_toml())
        tmp.replace(d / SWEEP_FILE)
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


# ---- local backend ------------------------------------------------------------------------------------

_STOP = None  # the pool's stop event, in each worker
_PARENT = None  # the sweep's process: a worker whose sweep is gone stops its run (and saves) at once


def _pool_init(stop, parent: int) -> None:
    import signal

    global _STOP, _PARENT
    _STOP, _PARENT = stop, parent
    # A terminal's Ctrl-C and a scheduler's SIGTERM (`timeout`, Slurm) go to the sweep's whole process group: a
    # worker killed by one breaks the pool. Workers leave that group; the sweep's own process takes the signal
    # and sets `stop`, which training workers see after their round (they save), and idle ones before a trial.
    # Ignoring both covers the moment before this line runs, and a learner process inherits the ignoring.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.setpgid(0, 0)
    except OSError:
        pass


def _pool_stop() -> bool:
    return (_STOP is not None and _STOP.is_set()) or (_PARENT is not None and os.getppid() != _PARENT)


def _pool_run(job: TrialJob) -> TrialResult:
    if _pool_stop():
        return TrialResult(job.name, "not started")
    _limit_threads(job.threads)
    return run_trial(job, should_stop=_pool_stop)


class _TermAsInterrupt:
    """SIGTERM to the sweep stops it as Ctrl-C does (runs save and stay resumable), in the main thread."""

    def __enter__(self):
        import signal
        import threading

        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        import signal

        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


def _run_local(jobs: list[TrialJob], workers: int, progress: Progress, log) -> tuple[list[TrialResult], bool]:
    """Run `jobs` in a pool of `workers` spawned processes, reporting each end to `progress`; (results,
    interrupted). Ctrl-C or SIGTERM stops the runs in progress after their round (they save) and starts
    no more."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    # a fresh process per trial: each starts with its own thread settings and gives its memory back
    ex = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_pool_init,
                             initargs=(stop, os.getpid()), max_tasks_per_child=1)
    futures = {ex.submit(_pool_run, j): j for j in jobs}
    pending, results, interrupted = set(futures), [], False
    with _TermAsInterrupt():
        try:
            while pending:
                try:
                    finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                    if not finished and getattr(ex, "_broken", False):
                        # a worker died while futures were cancelled: on Python 3.11 the pool's own thread then
                        # fails and would leave the rest pending for ever; what is left is ended here
                        finished, pending = set(pending), set()
                except KeyboardInterrupt:
                    if interrupted:
                        raise
                    interrupted = True
                    stop.set()
                    for f in pending:
                        f.cancel()
                    log("interrupted: the runs in progress stop after their round and save a checkpoint "
                        "(Ctrl-C again to stop at once); rerun the same command to resume")
                    continue
                for f in finished:
                    job = futures[f]
                    if f.cancelled() or (not f.done() and interrupted):
                        r = TrialResult(job.name, "not started")
                    elif not f.done():
                        r = TrialResult(job.name, "failed", error="its worker process died (killed, or out of "
                                                                  f"memory?); see {job.log_path}")
                    else:
                        try:
                            r = f.result()
                        except BrokenProcessPool:
                            r = TrialResult(job.name, "failed", error="its worker process died (killed, or out of "
                                                                      f"memory?); see {job.log_path}")
                        except Exception as e:  # noqa: BLE001 - e.g. a job that could not reach its worker
                            r = TrialResult(job.name, "failed", error=f"{type(e).__name__}: {e}")
                    if r.status != "not started":
                        progress.ended_one(r)
                    results.append(r)
        except KeyboardInterrupt:
            ex.shutdown(wait=False, cancel_futures=True)
            raise
    ex.shutdown(wait=not getattr(ex, "_broken", False))
    return results, interrupted


# ---- Ray backend --------------------------------------------------------------------------------------

def _import_ray():
    try:
        import ray
        from ray import tune
    except ImportError:
        raise SweepError(RAY_MISSING) from None
    return ray, tune


def _ray_report() -> Callable[[dict], None]:
    """Tune's report function: `ray.tune.report(metrics)` in current Ray, `ray.train.report(metrics)` in
    the 2.9-2.40 releases (where `ray.tune.report` is the removed keyword-argument form)."""
    import inspect

    from ray import tune

    fn = getattr(tune, "report", None)
    if fn is not None:
        try:
            if "metrics" in inspect.signature(fn).parameters:
                return fn
        except (TypeError, ValueError):
            pass
    from ray import train

    return train.report


def _ray_trainable(config: dict) -> None:
    """The function trainable: one trial, every evaluation and then its end reported to Tune."""
    job = TrialJob(**config["job"])
    _limit_threads(job.threads)
    report = _ray_report()
    r = run_trial(job, report=report)
    report({**dataclasses.asdict(r), "trial_end": True})


def _ray_resources(config: dict):
    """A trial's cores, by the same accounting as the local pool (one bundle: its processes share a node)."""
    from ray.tune import PlacementGroupFactory

    return PlacementGroupFactory([{"CPU": config["job"]["cpus"]}])


def _ray_trial_name(trial) -> str:
    return trial.config["job"]["name"]


def _ray_result(job: TrialJob, metrics: dict | None, error=None) -> TrialResult:
    if error is not None:
        return TrialResult(job.name, "failed", error=str(error).strip().splitlines()[-1] if str(error) else "error")
    if not metrics or not metrics.get("trial_end"):
        return TrialResult(job.name, "stopped", t_env=int((metrics or {}).get("t_env", 0)))
    keys = {f.name for f in dataclasses.fields(TrialResult)}
    return TrialResult(**{k: v for k, v in metrics.items() if k in keys})


def _run_ray(jobs: list[TrialJob], workers: int, progress: Progress, log, address: str | None = None,
             storage: Path | None = None) -> tuple[list[TrialResult], bool]:
    """The local pool's contract on Ray Tune: run `jobs` (at most `workers` at once; 0: as Ray's CPUs allow),
    report each end to `progress`; (results, interrupted). Tune's own files go under `storage`."""
    ray, tune = _import_ray()
    if not ray.is_initialized():
        ray.init(address=address)  # None: a local Ray on this machine's cores
    by_name = {j.name: j for j in jobs}
    run_config_cls = getattr(tune, "RunConfig", None)
    if run_config_cls is None:  # Ray before the Train/Tune split keeps it in ray.train
        from ray.train import RunConfig as run_config_cls

    class Lines(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            progress.ended_one(_ray_result(by_name[trial.config["job"]["name"]], trial.last_result))

        def on_trial_error(self, iteration, trials, trial, **info):
            progress.ended_one(TrialResult(trial.config["job"]["name"], "failed",
                                           error=f"the Ray trial failed (see {storage})"))

    log(f"running {len(jobs)} run(s) on Ray"
        + (f" at {address}" if address else " (local)")
        + (f", at most {workers} at a time" if workers else ", as many at a time as its CPUs hold"))
    tuner = tune.Tuner(
        tune.with_resources(_ray_trainable, _ray_resources),
        param_space={"job": tune.grid_search([dataclasses.asdict(j) for j in jobs])},
        tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=workers or None,
                                    trial_name_creator=_ray_trial_name, trial_dirname_creator=_ray_trial_name),
        run_config=run_config_cls(name="tune", storage_path=str(storage) if storage else None, callbacks=[Lines()],
                                  verbose=0),
    )
    grid = tuner.fit()
    results, seen = [], set()
    for r in grid:
        name = (getattr(r, "config", None) or {}).get("job", {}).get("name")
        if name not in by_name:
            continue
        seen.add(name)
        results.append(_ray_result(by_name[name], r.metrics, r.error))
    results += [TrialResult(n, "not started") for n in by_name if n not in seen]
    interrupted = any(r.status in ("stopped", "not started") for r in results)
    return results, interrupted
