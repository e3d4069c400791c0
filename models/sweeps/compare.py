"""Comparing runs: group run directories by configuration, put each run's evaluation curve on a common grid
(of env steps, and of training wall-clock seconds), and summarise each group across its seeds.

The summary follows SMAC's convention by default: the median and the interquartile range across seeds;
`stat="mean"` gives the mean and a 95% bootstrap interval instead. `compare_runs` returns plain arrays in
dataclasses (no Qt): the CLI prints `Comparison.table()` and draws the bands; the app's Compare window can
be a view over the same object.
"""
from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Config, convert_legacy, flatten
from ..errors import WorkbenchError
from ..files import metrics
from ..files.rundir import config_edited
from ..training.live import read_events
from . import stats

STATS = ("median", "mean", "iqm")
EVAL_METRICS = ("test_win_rate", "test_return")  # the evaluation columns training writes to metrics.csv
# per-episode columns (training episodes): a curve point is the mean over a window of episodes
EPISODE_METRICS = ("overestimation", "return", "won")
METRICS = EVAL_METRICS + EPISODE_METRICS
EPISODE_WINDOW = 100  # training episodes per curve point of an episode metric
THRESHOLDS = (0.5, 0.8)  # greedy win rates whose first crossing is timed
# run bookkeeping: where and under what name a run was written, how often it saved or recorded, how long it
# was allowed to go. Two runs that differ only here are seeds of one configuration.
BOOKKEEPING = frozenset({"run.name", "run.seed", "run.runs_dir", "run.device", "run.threads", "run.learner_threads",
                         "run.snapshot_hz",
                         "run.save_interval", "run.save_buffer", "run.record_interval", "run.record_first_win",
                         "run.t_max", "run.time_limit_s", "run.on_nonfinite", "run.branch_of"})
BRANCHED_AT = "run.branched_at"  # not a setting: compare's mark of a branch (its branch point, `branch_points`)
BOOTSTRAP_RESAMPLES = 2000
# the final evaluation's field (final_eval.json, written by a sweep) for a metrics.csv eval column
FINAL_EVAL_FIELDS = {"test_win_rate": "win_rate", "test_return": "return"}


class CompareError(WorkbenchError, ValueError):
    """The runs cannot be compared as asked; the message names the directory or option."""


@dataclass
class RunCurve:
    """One run's evaluations (eval rows of metrics.csv, one per env step count, the last one kept)."""
    run_dir: Path
    seed: int
    config: dict  # flat: "section.key" -> value
    t_env: np.ndarray
    wall_s: np.ndarray  # training wall time at each evaluation
    value: np.ndarray  # the compared metric
    win_rate: np.ndarray  # greedy test win rate (for the threshold times)
    final: float  # the metric at the end: final_eval.json's (win rate, return), else the last eval row's
    final_episodes: int | None  # episodes behind `final` when it is final_eval.json's
    steps_per_s: float  # env steps over training wall time
    # the evaluations' (env steps, wall s, win rate) when the curve is of training episodes, for the threshold times
    evals: np.ndarray | None = None
    absolute: float = math.nan  # the absolute metric: the best checkpoint re-evaluated (absolute_eval.json)
    absolute_episodes: int | None = None
    events: list = field(default_factory=list)  # its live changes (models.training.live.LiveEvent), oldest first

    def at(self, t: float, x: str = "t_env") -> float:
        """The metric at env steps (or wall seconds) `t`, linearly interpolated; nan outside the run."""
        xs = self.t_env if x == "t_env" else self.wall_s
        if not len(xs) or t < xs[0] or t > xs[-1]:
            return math.nan
        return float(np.interp(t, xs, self.value))

    def first_reaching(self, threshold: float) -> tuple[float, int] | None:
        """(wall s, env steps) of the first evaluation with win rate >= threshold; None when none."""
        t, wall, win = (self.t_env, self.wall_s, self.win_rate) if self.evals is None else self.evals.T
        hit = np.nonzero(win >= threshold)[0]
        return None if not len(hit) else (float(wall[hit[0]]), int(t[hit[0]]))


@dataclass
class Band:
    """A group's curve on a grid: the centre (median or mean) and a band (IQR or 95% CI); nan where some
    seed has no evaluation yet or any more."""
    x: np.ndarray
    center: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@dataclass
class Group:
    label: str
    config: dict  # flat config shared by its runs (bookkeeping keys left out)
    runs: list[RunCurve]
    by_steps: Band
    by_wall: Band

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    @property
    def legend(self) -> str:
        """The label with how many seeds are behind the band (a plot's legend)."""
        n = len(self.runs)
        return f"{self.label} ({n} seed{'' if n == 1 else 's'})"


@dataclass
class Comparison:
    metric: str
    stat: str
    at: list[int]  # env steps the table reports the metric at
    groups: list[Group]
    skipped: list[str] = field(default_factory=list)  # runs left out, with why
    notes: list[str] = field(default_factory=list)  # what a reader should know about some runs

    def table(self) -> str:
        return format_table(self)

    def runs_table(self) -> str:
        return format_runs_table(self)

    def finals(self) -> dict[str, np.ndarray]:
        """Each group's final metric, a value per run (runs without one left out)."""
        return {g.label: np.array([r.final for r in g.runs if r.final == r.final]) for g in self.groups}

    def aggregate_table(self, reps: int = stats.REPS, seed: int = 0) -> str:
        return format_aggregate_table(self, reps, seed)

    def improvement_table(self, reps: int = stats.REPS, seed: int = 0) -> str:
        return format_improvement_table(self, reps, seed)


# ---- reading runs ---------------------------------------------------------------------------------------

def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories from run directories, sweep directories (their trials, in sweep order) or
    directories of runs."""
    from .sweep import SWEEP_FILE, SweepSpec

    runs: list[Path] = []
    for p in map(Path, paths):
        if metrics.path_of(p).is_file():
            runs.append(p)
        elif (p / SWEEP_FILE).is_file():
            found = [p / t.name for t in SweepSpec.read(p).trials if metrics.path_of(p / t.name).is_file()]
            if not found:
                raise CompareError(f"{p}: a sweep directory none of whose runs has started (no metrics.csv)")
            runs += found
        elif p.is_dir():
            found = sorted(c for c in p.iterdir() if metrics.path_of(c).is_file())
            if not found:
                raise CompareError(f"{p}: not a run directory (no metrics.csv), a sweep directory (no sweep.toml) "
                                   f"or a directory of runs")
            runs += found
        else:
            raise CompareError(f"{p}: no such directory; expected a run or sweep directory")
    seen, out = set(), []
    for r in runs:
        key = r.resolve()
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


@dataclass
class _Scan:
    """What `read_run` takes from one metrics.csv for one metric, read with a `metrics.Tail`: a run still training
    only appends, so the next read parses only the rows added since (the Compare window follows a sweep under way
    by reading every few seconds)."""
    tail: metrics.Tail
    evals: dict = field(default_factory=dict)  # t_env -> (wall s, metric, win rate); a repeated step: last wins
    episodes: list = field(default_factory=list)  # (t_env, wall s, value) of an episode metric
    t_last: int = 0
    wall_max: float = 0.0


_SCANS: dict[tuple[str, str], _Scan] = {}
_SCANS_MAX = 1024  # (file, metric) pairs remembered; past that the memory starts again


def _scan(path: Path, metric: str) -> _Scan:
    """The scan of `path` for `metric`, brought up to the file's last whole row (a file replaced, rewritten in
    place or cut shorter is read again from its start)."""
    key = (str(path.resolve()), metric)
    sc = _SCANS.get(key) or _Scan(metrics.Tail(path))
    try:
        new, restarted = sc.tail.read()
    except metrics.MetricsMissing:
        raise CompareError(f"{path.parent}: no {metrics.FILE}; expected a run directory") from None
    if restarted:
        sc = _Scan(sc.tail)
        if not sc.tail.fields:  # not even a whole header yet: nothing to read, nothing to remember
            _SCANS.pop(key, None)
            return sc
        if metric not in sc.tail.fields:
            cols = [c for c in sc.tail.fields if c.startswith("test_")]
            raise CompareError(f"--metric {metric!r}: not a column of {path}; evaluation columns: {', '.join(cols)}")
        if len(_SCANS) >= _SCANS_MAX:
            _SCANS.clear()
        _SCANS[key] = sc
    episode_metric = metric in EPISODE_METRICS
    for row in new:
        t = row["t_env"]
        try:
            wall = float(row["wall_s"]) if row.get("wall_s") else math.nan
        except ValueError:
            continue  # an unreadable row; the resume repairs it
        sc.t_last = max(sc.t_last, t)
        if wall == wall:
            sc.wall_max = max(sc.wall_max, wall)
        kind = row.get("kind")
        try:
            if kind == "eval" and row.get("test_win_rate"):
                value = float(row[metric]) if row.get(metric) else math.nan
                sc.evals[t] = (wall, value, float(row["test_win_rate"]))
            elif kind == "episode" and episode_metric and row.get(metric):
                sc.episodes.append((t, wall, float(row[metric])))
        except ValueError:
            continue
    return sc


def read_run(run_dir: str | Path, metric: str = "test_win_rate") -> RunCurve:
    d = Path(run_dir)
    try:
        # a run of an earlier version is read in today's keys: the equivalents of its schedule keys, and
        # the defaults (what it did) for keys added since
        config = {**flatten(Config().to_dict()),
                  **flatten(convert_legacy(tomllib.loads((d / "config.toml").read_text()))[0])}
    except FileNotFoundError:
        raise CompareError(f"{d}: no config.toml; expected a run directory") from None
    except tomllib.TOMLDecodeError as e:
        raise CompareError(f"{d / 'config.toml'}: not valid TOML: {e}") from None
    events = read_events(d)
    for ev in events:  # changed live (or at a branch point): grouped by the settings the run ended with
        config[ev.key] = ev.new
    at = branch_step(config.get("run.branch_of"))
    if at is not None:  # a branch shares its parent's history: never a seed of the parent's group
        config[BRANCHED_AT] = at
    sc = _scan(metrics.path_of(d), metric)
    evals, episodes, t_last, wall_max = sc.evals, sc.episodes, sc.t_last, sc.wall_max
    steps_per_s = t_last / wall_max if wall_max > 0 else math.nan
    seed = int(config.get("run.seed", 0))
    if metric in EPISODE_METRICS:  # windows of training episodes; the evaluations still time the thresholds
        ts = np.array(sorted(evals), dtype=float)
        cols = np.array([evals[int(t)] for t in ts], dtype=float).reshape(-1, 3)
        ep = np.array(episodes, dtype=float).reshape(-1, 3)
        # windows of 100 from the first episode, and the last point over the last 100 (overlapping the window
        # before it): a short last window would make the run's final value the noisiest of its points
        n, w = len(ep), EPISODE_WINDOW
        starts = list(range(0, n - w + 1, w)) if n >= w else [0]
        if n >= w and starts[-1] + w < n:
            starts.append(n - w)
        wins = (ep[i:i + w] for i in starts)
        pts = np.array([[w[-1, 0], w[-1, 1], w[:, 2].mean()] for w in wins], dtype=float).reshape(-1, 3)
        return RunCurve(run_dir=d, seed=seed, config=config, t_env=pts[:, 0], wall_s=pts[:, 1], value=pts[:, 2],
                        win_rate=np.full(len(pts), math.nan), final=float(pts[-1, 2]) if len(pts) else math.nan,
                        final_episodes=None, steps_per_s=steps_per_s,
                        evals=np.column_stack([ts, cols[:, 0], cols[:, 2]]), events=events)
    keep = [t for t in sorted(evals) if not math.isnan(evals[t][1])]  # eval rows that have the metric
    ts = np.array(keep, dtype=float)
    cols = np.array([evals[t] for t in keep], dtype=float).reshape(-1, 3)
    final, final_episodes = (float(cols[-1, 1]) if len(cols) else math.nan), None
    got = _end_eval(d / "final_eval.json", metric, sc.t_last)
    if got is not None:
        final, final_episodes = got
    absolute = _end_eval(d / "absolute_eval.json", metric, sc.t_last, key="run_t_env")
    return RunCurve(run_dir=d, seed=seed, config=config, t_env=ts, wall_s=cols[:, 0], value=cols[:, 1],
                    win_rate=cols[:, 2], final=final, final_episodes=final_episodes, steps_per_s=steps_per_s,
                    absolute=absolute[0] if absolute else math.nan, absolute_episodes=absolute[1] if absolute else None,
                    events=events)


def _end_eval(path: Path, metric: str, t_last: int, key: str = "t_env") -> tuple[float, int] | None:
    """(value, episodes) of an evaluation file a sweep writes at a run's end, unless it is damaged or stale:
    a run resumed and trained on after it (its `key` below the run's last row) is judged by its last eval row."""
    if not path.is_file() or metric not in FINAL_EVAL_FIELDS:
        return None
    try:
        doc = json.loads(path.read_text())
        value, episodes = float(doc[FINAL_EVAL_FIELDS[metric]]), int(doc["episodes"])
        at = int(doc[key])
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return None
    if not math.isfinite(value) or not 0 < episodes <= 10**7:
        return None  # damaged: the run's last eval row stands in for it
    return None if at < t_last else (value, episodes)


# ---- statistics -----------------------------------------------------------------------------------------

def summarise(values: np.ndarray, stat: str, rng: np.random.Generator | None = None) -> tuple:
    """(centre, lo, hi) over axis 0 (the seeds) of `values` [seeds, points]: median and quartiles; or the
    mean, or the IQM, with a 95% bootstrap interval (resampling seeds, a fixed stream: the same runs give the
    same table)."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    if stat == "median":
        c, lo, hi = np.percentile(values, [50, 25, 75], axis=0)
        return c, lo, hi
    if stat == "iqm":
        return stats.curve_bands(values, "iqm", BOOTSTRAP_RESAMPLES)
    c = values.mean(axis=0)
    n = values.shape[0]
    if n < 2:
        return c, c.copy(), c.copy()
    rng = rng or np.random.default_rng(0)
    idx = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
    means = values[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5], axis=0)
    return c, lo, hi


def _band(runs: list[RunCurve], x: np.ndarray, axis: str, stat: str) -> Band:
    ys = np.full((len(runs), len(x)), np.nan)
    for i, r in enumerate(runs):
        xs = r.t_env if axis == "t_env" else r.wall_s
        if len(xs):
            inside = (x >= xs[0]) & (x <= xs[-1])
            ys[i, inside] = np.interp(x[inside], xs, r.value)
    c = np.full(len(x), np.nan)
    lo, hi = c.copy(), c.copy()
    full = np.all(np.isfinite(ys), axis=0)  # where every seed has a value: the band never mixes seed counts
    if full.any():
        c[full], lo[full], hi[full] = summarise(ys[:, full], stat)
    return Band(x, c, lo, hi)


def branch_step(branch_of) -> int | None:
    """The env step a branch left its parent at (run.branch_of = "PARENT@STEP")."""
    if not branch_of or "@" not in str(branch_of):
        return None
    try:
        step = int(str(branch_of).rpartition("@")[2])
    except ValueError:
        return None
    return max(step, 0)


def branch_points(steps) -> dict[int, int]:
    """Each branch step -> the branch point it belongs to. Branches of several seeds made "at 600k" each leave at
    their own round boundary or checkpoint, at or a little after the step asked for (up to a round of battles
    later): steps within 2% (or 6,400 env steps, a round of 16 battles of 400 steps) of the first of a run of
    them are one point, named by the first (labels round it down to two significant digits)."""
    out: dict[int, int] = {}
    first = None
    for s in sorted(set(steps)):
        if first is None or not same_branch_point(first, s):
            first = s
        out[s] = first
    return out


def same_branch_point(a: int, b: int) -> bool:
    """Two branch steps one branch point: the later within 2% (or a round of 16 400-step battles) of the earlier."""
    lo, hi = min(a, b), max(a, b)
    return hi - lo <= max(0.02 * lo, 6400)


def _floor2(n: int) -> int:
    if n < 100:
        return n
    e = 10 ** (len(str(n)) - 2)
    return n // e * e


def _fmt_steps(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k" if n >= 1000 else str(n)


def group_key(config: dict) -> tuple:
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in config.items() if k not in BOOKKEEPING))


def _labels(configs: list[dict]) -> list[str]:
    """Algorithm (and map, when they differ), then the keys whose values differ between the groups."""
    from ..registry import algorithm_of

    ours = [c for c in configs if "marl_eval.algorithm" not in c]  # imported runs are labelled by their file
    keys = sorted({k for c in ours for k in c})
    differ = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in ours}) > 1]
    maps_differ = len({c.get("env.map_name") for c in configs}) > 1
    labels = []
    for c in configs:
        if "marl_eval.algorithm" in c:
            labels.append(f"{c['marl_eval.algorithm']} on {c['env.map_name']} ({c['marl_eval.environment']}, "
                          f"imported)")
            continue
        try:
            name = algorithm_of(c.get("algo.mixer", "qmix"), c.get("algo.res", False)).name
        except ValueError:
            name = f"mixer {c.get('algo.mixer')}"
        if maps_differ:
            name += f" on {c.get('env.map_name')}"
        extra = [f"{k}={c.get(k)}" for k in differ if k not in ("algo.mixer", "algo.res", "env.map_name", BRANCHED_AT)]
        if c.get(BRANCHED_AT) is not None:
            extra.append(f"(branch at {_fmt_steps(_floor2(c[BRANCHED_AT]))})")
        labels.append(" ".join([name, *extra]))
    seen: dict[str, int] = {}
    for i, lab in enumerate(labels):
        seen[lab] = seen.get(lab, 0) + 1
        if seen[lab] > 1:
            labels[i] = f"{lab} ({seen[lab]})"
    return labels


def default_metric(paths: list[str | Path]) -> str:
    """Each map's own measure: the greedy win rate of a battle, the greedy return of a matrix game (which has
    no win). Runs that mix the two are refused: a table of both would be half "n/a" (choose --metric)."""
    from sims import list_matrix_games

    games = set(list_matrix_games())
    local = [p for p in paths if not (Path(p).suffix == ".json" and Path(p).is_file())]
    maps = set()
    for d in find_runs(local) if local else []:
        try:
            maps.add(tomllib.loads((d / "config.toml").read_text()).get("env", {}).get("map_name", "2c_vs_64zg"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
    kinds = {m in games for m in maps}
    if kinds == {True, False}:
        raise CompareError(f"the runs mix matrix games ({', '.join(sorted(maps & games))}: greedy return) and "
                           f"battles ({', '.join(sorted(maps - games))}: greedy win rate); compare them separately, "
                           f"or choose the measure with --metric")
    return "test_return" if kinds == {True} else "test_win_rate"


def compare_runs(paths: list[str | Path], metric: str | None = None, stat: str = "median",
                 at: list[int] | None = None, points: int = 200) -> Comparison:
    """Read the runs under `paths`, group them by configuration and summarise each group (see module doc).
    `metric`: default each map's own (`default_metric`). `at`: env steps for the table (default: a quarter,
    half and all of the shortest run)."""
    if metric is None:
        metric = default_metric(paths)
    if stat not in STATS:
        raise CompareError(f"--stat: expected one of {', '.join(STATS)}, got {stat!r}")
    if at is not None and any(t < 0 for t in at):
        raise CompareError(f"--at: expected env steps >= 0, got {at}")
    runs, skipped, notes = [], [], []
    imported = [p for p in paths if Path(p).suffix == ".json" and Path(p).is_file()]
    local = [p for p in paths if p not in imported]
    for d in find_runs(local) if local else []:
        r = read_run(d, metric)
        if config_edited(d):
            notes.append(f"{d}: config.toml was edited after the run wrote it; its group and label follow the edit")
        if len(r.t_env):
            runs.append(r)
        else:
            skipped.append(f"{d}: no evaluation yet")
    if imported:
        from .marl_eval import import_marl_eval

        runs += [r for p in imported for r in import_marl_eval(p, metric) if len(r.t_env)]
    if not runs:
        raise CompareError("no run has an evaluation yet: " + "; ".join(skipped))
    branched = branch_points(r.config[BRANCHED_AT] for r in runs if r.config.get(BRANCHED_AT) is not None)
    order: dict[tuple, list[RunCurve]] = {}
    for r in runs:
        if r.config.get(BRANCHED_AT) is not None:  # grouped by branch point, not by each seed's exact step
            r.config[BRANCHED_AT] = branched[r.config[BRANCHED_AT]]
        order.setdefault(group_key(r.config), []).append(r)
    for g in order.values():
        seeds = [r.seed for r in g if "marl_eval.algorithm" not in r.config]
        shared = sorted({s for s in seeds if seeds.count(s) > 1})
        if shared:  # branches of one run: they share its history up to the branch point
            notes.append(f"{len(g)} runs of one group share seed {', '.join(map(str, shared))} (repeats, or branches "
                          f"of one run): not independent samples, so its bands and intervals are too narrow")
    configs = [{k: v for k, v in g[0].config.items() if k not in BOOKKEEPING} for g in order.values()]
    labels = _labels(configs)
    x_steps = np.linspace(0.0, max(r.t_env[-1] for r in runs), points)
    walls = [float(np.nanmax(r.wall_s)) for r in runs if np.isfinite(r.wall_s).any()]  # imported: maybe none
    x_wall = np.linspace(0.0, max(walls) if walls else 1.0, points)
    groups = [Group(label, cfg, g, _band(g, x_steps, "t_env", stat), _band(g, x_wall, "wall_s", stat))
              for label, cfg, g in zip(labels, configs, order.values())]
    if at is None:
        shortest = min(r.t_env[-1] for r in runs)
        at = sorted({int(shortest * f) for f in (0.25, 0.5, 1.0)})
    return Comparison(metric, stat, list(at), groups, skipped, notes)


# ---- the table --------------------------------------------------------------------------------------------

def fmt_steps(t: float) -> str:
    if t >= 1e6:
        return f"{t / 1e6:.2f}M"
    if t >= 1e4:
        return f"{t / 1e3:.0f}k"
    return f"{t:,.0f}"


def _fmt_value(v: float, rate: bool) -> str:
    if v != v:
        return "n/a"
    return f"{v:.0%}" if rate else f"{v:.2f}"


def _fmt_stat(vals: list[float], stat: str, rate: bool, n: int) -> str:
    v = np.array([x for x in vals if x == x])
    if not len(v):
        return "n/a"
    c, lo, hi = (float(a[0]) for a in summarise(v, stat))
    s = f"{_fmt_value(c, rate)} [{_fmt_value(lo, rate)}, {_fmt_value(hi, rate)}]"
    return s if len(v) == n else f"{s} ({len(v)} of {n} seeds)"


def _fmt_first(runs: list[RunCurve], thr: float) -> str:
    hits = [r.first_reaching(thr) for r in runs]
    reached = [h for h in hits if h is not None]
    walls = [h[0] if h else math.inf for h in hits]
    steps = [h[1] if h else math.inf for h in hits]
    w, t = float(np.median(walls)), float(np.median(steps))
    if not math.isfinite(w) or not math.isfinite(t):
        return "not reached" + (f" ({len(reached)} of {len(runs)})" if reached else "")
    s = f"{w:,.0f} s / {fmt_steps(t)}"
    return s if len(reached) == len(runs) else f"{s} ({len(reached)} of {len(runs)})"


def _matrix_games() -> set:
    from sims import list_matrix_games

    return set(list_matrix_games())


def format_table(c: Comparison) -> str:
    """A markdown table: one row per group (see `compare_runs`)."""
    rate = c.metric in ("test_win_rate", "won")
    what = "win rate" if rate else c.metric
    band = "[IQR]" if c.stat == "median" else "[95% CI]"
    if c.stat == "iqm":
        band = "(interquartile mean) [95% CI]"
    absolute = any(r.absolute == r.absolute for g in c.groups for r in g.runs)
    # the times to a win rate, where there are wins to time: a matrix game (measured by its return) has none
    wins = any(r.config.get("env.map_name") not in _matrix_games() for g in c.groups for r in g.runs)
    head = (["group", "seeds"] + [f"{what} @ {fmt_steps(t)}" for t in c.at]
            + [f"final {what}"] + ([f"absolute {what}"] if absolute else [])
            + (["first eval win rate >= 50% (wall / env steps)", "win rate >= 80%"] if wins else [])
            + ["env steps/s"])
    rows = []
    for g in c.groups:
        n = len(g.runs)
        rows.append([g.label, str(n)] + [_fmt_stat([r.at(t) for r in g.runs], c.stat, rate, n) for t in c.at]
                    + [_fmt_stat([r.final for r in g.runs], c.stat, rate, n)]
                    + ([_fmt_stat([r.absolute for r in g.runs], c.stat, rate, n)] if absolute else [])
                    + ([_fmt_first(g.runs, thr) for thr in THRESHOLDS] if wins else [])
                    + [f"{np.nanmedian([r.steps_per_s for r in g.runs]):,.0f}"])
    episodes = sorted({r.final_episodes for g in c.groups for r in g.runs if r.final_episodes})
    lines = [f"{what}: {c.stat} {band} over seeds; times are training wall time (median over seeds)",
             "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    note = (f"final {what}: each run's final greedy evaluation"
            + (f" ({', '.join(map(str, episodes))} episodes, final_eval.json)" if episodes else "")
            + (", else its last eval row" if any(r.final_episodes is None for g in c.groups for r in g.runs)
               else ""))
    if absolute:
        eps = sorted({r.absolute_episodes for g in c.groups for r in g.runs if r.absolute_episodes})
        note += (f"; absolute {what}: each run's best checkpoint (by its evaluations) re-evaluated over "
                 f"{', '.join(map(str, eps))} greedy episodes (absolute_eval.json)")
    if c.metric in EPISODE_METRICS:
        note = (f"{what}: training episodes, each curve point the mean of {EPISODE_WINDOW} episodes; final {what}: "
                f"each run's last {EPISODE_WINDOW}")
    lines += ["", note]
    lines += [f"left out: {s}" for s in c.skipped]
    lines += [f"note: {s}" for s in c.notes]
    return "\n".join(lines)


def format_runs_table(c: Comparison) -> str:
    """A markdown table with a row per run: when it first reached each threshold (env steps, training wall time)
    and its final value, so that "k of n seeds" can be read seed by seed."""
    rate = c.metric in ("test_win_rate", "won")
    what = "win rate" if rate else c.metric
    head = (["group", "seed"] + [f"first eval >= {thr:.0%} (env steps / wall)" for thr in THRESHOLDS]
            + [f"final {what}"])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---:"] + ["---:"] * (len(head) - 2)) + "|"]
    for g in c.groups:
        for r in sorted(g.runs, key=lambda r: r.seed):
            cells = []
            for thr in THRESHOLDS:
                h = r.first_reaching(thr)
                cells.append("not reached" if h is None else f"{fmt_steps(h[1])} / {h[0]:,.0f} s")
            final = _fmt_value(r.final, rate) + (f" ({r.final_episodes} ep.)" if r.final_episodes else "")
            lines.append("| " + " | ".join([g.label, str(r.seed), *cells, final]) + " |")
    return "\n".join(lines)


# one task (a map) per comparison: the median is the median of the runs (rliable's is over task means)
GROUP_AGGREGATES = {"IQM": stats.iqm, "median": stats.run_median, "mean": stats.mean,
                    "optimality gap": stats.optimality_gap}


def format_aggregate_table(c: Comparison, reps: int = stats.REPS, seed: int = 0) -> str:
    """The final metric of each group as IQM, median, mean and optimality gap (win rates only), each with its
    95% stratified-bootstrap interval over the group's runs, and a note where a group has few runs."""
    rate = c.metric in ("test_win_rate", "won")
    what = "win rate" if rate else c.metric
    names = [n for n in GROUP_AGGREGATES if rate or n != "optimality gap"]
    lines = [f"final {what} over runs: point estimate [95% stratified-bootstrap interval] ({reps:,} resamples, "
             f"seed {seed})", "",
             "| group | runs | " + " | ".join(names) + " | note |",
             "|---|---:|" + "---:|" * len(names) + "---|"]
    absolutes = {g.label: np.array([r.absolute for r in g.runs if r.absolute == r.absolute]) for g in c.groups}
    for kind, values in (("final", c.finals()), ("absolute", absolutes)):
        if kind == "absolute":
            if not any(len(x) for x in values.values()):
                break
            lines += ["", f"absolute {what} (each run's best checkpoint re-evaluated) over runs:", "",
                      lines[2], lines[3]]
        for label, x in values.items():
            cells = [stats.aggregate(x, GROUP_AGGREGATES[n], reps, seed).fmt(rate) if len(x) else "n/a"
                     for n in names]
            lines.append(f"| {label} | {len(x)} | " + " | ".join(cells) + f" | {stats.runs_note(len(x)) or ''} |")
    return "\n".join(lines)


def format_improvement_table(c: Comparison, reps: int = stats.REPS, seed: int = 0) -> str:
    """P(row > column) of the final metric for every pair of groups, with its 95% interval."""
    finals = c.finals()
    labels = [k for k, v in finals.items() if len(v)]
    if len(labels) < 2:
        return "probability of improvement: needs two groups with a final value"
    what = "win rate" if c.metric in ("test_win_rate", "won") else c.metric
    lines = [f"probability of improvement P(row > column) of the final {what}: a run of the row's group beats one "
             f"of the column's (ties count half) [95% interval]", "",
             "| | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for a in labels:
        cells = ["" if a == b else stats.improvement(finals[a], finals[b], reps, seed).fmt(rate=False)
                 for b in labels]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
