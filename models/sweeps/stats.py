"""Statistics over runs, to the protocol of Agarwal et al. (NeurIPS 2021, "Deep RL at the Edge of the
Statistical Precipice"; the `rliable` library) as cooperative MARL reports it (Gorsane et al. 2022).

Scores are arrays [runs, tasks] (a 1-D array is one task). Every interval is a 95% percentile interval of a
*stratified* bootstrap: runs are resampled with replacement within each task, never across tasks; with a
single task that is the plain bootstrap over runs. The resampling stream is seeded, so a table reproduces
exactly; `reps` sets the number of resamples. Qt-free and numpy-only: `compare`, the Compare window and
docs/results.md use the same functions; the tests check them against `rliable` where it installs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REPS = 2000  # bootstrap resamples unless asked otherwise (rliable's examples use 2,000-50,000)
CONFIDENCE = 0.95
MIN_RUNS = 10  # the protocol's minimum runs per group; fewer earn a note
FEW_RUNS = 5  # below this the intervals are too wide to rank anything: a stronger note


def _as_2d(scores) -> np.ndarray:
    a = np.asarray(scores, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"scores: expected [runs] or [runs, tasks], got shape {a.shape}")
    return a


# ---- point estimates (of [runs, tasks]) -------------------------------------------------------------------

def iqm(scores) -> float:
    """Interquartile mean: the mean of the middle 50% of all run x task scores (a 25% trimmed mean, as
    scipy.stats.trim_mean cuts it: int(0.25 n) scores off each end)."""
    a = np.sort(_as_2d(scores), axis=None)
    cut = int(0.25 * a.size)
    return float(a[cut:a.size - cut].mean())


def median(scores) -> float:
    """The median over tasks of each task's mean score (rliable's aggregate median)."""
    return float(np.median(_as_2d(scores).mean(axis=0)))


def run_median(scores) -> float:
    """The median of all run x task scores (with one task: the median run)."""
    return float(np.median(_as_2d(scores)))


def mean(scores) -> float:
    return float(_as_2d(scores).mean(axis=0).mean())


def optimality_gap(scores, gamma: float = 1.0) -> float:
    """How far the scores fall short of `gamma` on average (scores above it count as `gamma`)."""
    return float(gamma - np.minimum(_as_2d(scores), gamma).mean())


AGGREGATES = {"IQM": iqm, "median": median, "mean": mean, "optimality gap": optimality_gap}


def probability_of_improvement(x, y) -> float:
    """P(X > Y): the chance that a run of X scores above a run of Y on the same task (ties count half; the
    Mann-Whitney U statistic over n_x n_y), averaged over tasks."""
    x, y = _as_2d(x), _as_2d(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"probability of improvement: {x.shape[1]} tasks against {y.shape[1]}")
    p = [(np.sign(x[:, t][:, None] - y[:, t][None, :]).mean() + 1) / 2 for t in range(x.shape[1])]
    return float(np.mean(p))


def performance_profile(scores, taus) -> np.ndarray:
    """The fraction of run x task scores above each threshold tau (a run score distribution)."""
    a = _as_2d(scores).reshape(-1)
    return (a[None, :] > np.asarray(taus, dtype=float)[:, None]).mean(axis=1)


# ---- stratified bootstrap ---------------------------------------------------------------------------------

def _resample(a: np.ndarray, rng: np.random.Generator, reps: int) -> np.ndarray:
    """[reps, runs, tasks]: runs drawn with replacement within each task."""
    n, m = a.shape
    idx = rng.integers(0, n, size=(reps, n, m))
    return np.take_along_axis(np.broadcast_to(a, (reps, n, m)), idx, axis=1)


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its 95% stratified-bootstrap interval, and how many runs are behind it."""
    value: float
    lo: float
    hi: float
    runs: int

    def fmt(self, rate: bool = True) -> str:
        f = (lambda v: f"{v:.0%}") if rate else (lambda v: f"{v:.2f}")
        if self.value != self.value:
            return "n/a"
        return f"{f(self.value)} [{f(self.lo)}, {f(self.hi)}]"


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    q = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(samples, [q, 100 - q])
    return float(lo), float(hi)


def aggregate(scores, fn=iqm, reps: int = REPS, seed: int = 0, confidence: float = CONFIDENCE) -> Estimate:
    """`fn` of the scores with its percentile interval over `reps` stratified bootstrap resamples."""
    a = _as_2d(scores)
    if a.shape[0] == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    point = fn(a)
    if a.shape[0] == 1:  # one run: nothing to resample; the interval is the point (and a note says why)
        return Estimate(point, point, point, 1)
    boots = _resample(a, np.random.default_rng(seed), reps)
    samples = np.array([fn(b) for b in boots])
    return Estimate(point, *_interval(samples, confidence), a.shape[0])


def aggregates(scores, reps: int = REPS, seed: int = 0) -> dict[str, Estimate]:
    """Every aggregate of `AGGREGATES` with its interval (the same resamples for each, as rliable does)."""
    a = _as_2d(scores)
    if a.shape[0] < 2:
        return {name: aggregate(a, fn, reps, seed) for name, fn in AGGREGATES.items()}
    boots = _resample(a, np.random.default_rng(seed), reps)
    out = {}
    for name, fn in AGGREGATES.items():
        samples = np.array([fn(b) for b in boots])
        out[name] = Estimate(fn(a), *_interval(samples, CONFIDENCE), a.shape[0])
    return out


def improvement(x, y, reps: int = REPS, seed: int = 0) -> Estimate:
    """P(X > Y) with its interval: the runs of X and of Y resampled independently within each task."""
    x, y = _as_2d(x), _as_2d(y)
    point = probability_of_improvement(x, y)
    if min(x.shape[0], y.shape[0]) < 2:
        return Estimate(point, point, point, min(x.shape[0], y.shape[0]))
    rng = np.random.default_rng(seed)
    bx, by = _resample(x, rng, reps), _resample(y, rng, reps)
    samples = np.array([probability_of_improvement(a, b) for a, b in zip(bx, by)])
    return Estimate(point, *_interval(samples, CONFIDENCE), min(x.shape[0], y.shape[0]))


def profile_bands(scores, taus, reps: int = REPS, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The performance profile at `taus` and its pointwise 95% band."""
    a = _as_2d(scores)
    point = performance_profile(a, taus)
    if a.shape[0] < 2:
        return point, point.copy(), point.copy()
    boots = _resample(a, np.random.default_rng(seed), reps)
    samples = np.array([performance_profile(b, taus) for b in boots])
    q = (1 - CONFIDENCE) / 2 * 100
    lo, hi = np.percentile(samples, [q, 100 - q], axis=0)
    return point, lo, hi


def _iqm_axis(a: np.ndarray, axis: int) -> np.ndarray:
    a = np.sort(a, axis=axis)
    n = a.shape[axis]
    cut = int(0.25 * n)
    return np.take(a, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


CURVE_STATS = {"iqm": _iqm_axis, "median": lambda a, axis: np.median(a, axis=axis),
               "mean": lambda a, axis: a.mean(axis=axis)}


def curve_bands(values, stat: str = "iqm", reps: int = REPS, seed: int = 0):
    """A sample-efficiency curve: `stat` over the runs at each point of `values` [runs, points] (one task), with
    pointwise 95% bootstrap bands (the same resampled runs at every point)."""
    v = np.asarray(values, dtype=float)
    fn = CURVE_STATS[stat]
    point = fn(v, 0)
    if v.shape[0] < 2:
        return point, point.copy(), point.copy()
    idx = np.random.default_rng(seed).integers(0, v.shape[0], size=(reps, v.shape[0]))
    samples = fn(v[idx], 1)  # [reps, points]
    q = (1 - CONFIDENCE) / 2 * 100
    lo, hi = np.percentile(samples, [q, 100 - q], axis=0)
    return point, lo, hi


def runs_note(n: int) -> str | None:
    """What a reader should know about a group of `n` runs, or None when it meets the protocol's minimum."""
    if n <= 1:
        return "1 run: no interval (a bootstrap needs at least 2)"
    if n < FEW_RUNS:
        return f"{n} runs: fewer than {FEW_RUNS}, the intervals are too wide to rank groups"
    if n < MIN_RUNS:
        return f"{n} runs: fewer than the {MIN_RUNS} the protocol asks for; read the intervals as rough"
    return None
