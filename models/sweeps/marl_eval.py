"""Runs in marl-eval's JSON layout (Gorsane et al. 2022; the `marl-eval` tool behind Mava's and BenchMARL's
plots), out and in.

    {environment: {task: {algorithm: {run_k: {step_i: {"step_count": int, metric: [per-episode values]},
                                              "absolute_metrics": {metric: [...]}}}}}}

Out (`export_marl_eval`): each evaluation of a run is a step. `win_rate` is the list of its episodes' 0/1
outcomes (the count is exact: the evaluation's win rate times its episodes); `return` is a one-element list
(metrics.csv keeps an evaluation's mean return, not each episode's); `wall_time_s` is the run's training
clock at that step. `absolute_metrics` holds the run's absolute evaluation (its best checkpoint re-evaluated
with 10x the episodes) when it has one, else its final evaluation.

In (`import_marl_eval`): every run of such a file becomes a `RunCurve` that `compare` groups by
(environment, task, algorithm) and draws beside ours.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..config import MAX_EPISODES
from ..files.atomic import write_atomic
from .compare import CompareError, Comparison, RunCurve

ENVIRONMENT = "smac_qmix_workbench"  # our simulator, not SC2: the environment key says so
SOURCE_KEY = "marl_eval.source"  # config keys of an imported run (kept out of our own runs' configs)


def _algorithm(r: RunCurve) -> str:
    if "marl_eval.algorithm" in r.config:
        return str(r.config["marl_eval.algorithm"])
    from ..registry import algorithm_of

    try:
        return algorithm_of(r.config.get("algo.mixer", "qmix"), r.config.get("algo.res", False)).name
    except ValueError:
        return str(r.config.get("algo.mixer"))


def export_marl_eval(c: Comparison, path: str | Path, environment: str = ENVIRONMENT) -> Path:
    """Write the comparison's runs (win rate and return at every evaluation) to `path`. Groups that share
    an algorithm and a map but differ in other settings get the group's label as the algorithm name."""
    if c.metric not in ("test_win_rate", "test_return"):
        raise CompareError(f"--export-marl-eval writes evaluations (win rate and return); --metric {c.metric} is "
                           f"of training episodes")
    from .compare import read_run

    doc: dict = {}
    names = {}
    for g in c.groups:
        key = (_algorithm(g.runs[0]), g.runs[0].config.get("env.map_name", "?"))
        names.setdefault(key, []).append(g.label)
    for g in c.groups:
        algo, task = _algorithm(g.runs[0]), str(g.runs[0].config.get("env.map_name", "?"))
        if len(names[(algo, task)]) > 1:
            algo = g.label
        runs = doc.setdefault(environment, {}).setdefault(task, {}).setdefault(algo, {})
        for r in g.runs:
            win = read_run(r.run_dir, "test_win_rate") if r.config.get(SOURCE_KEY) is None else r
            ret = read_run(r.run_dir, "test_return") if r.config.get(SOURCE_KEY) is None else r
            n_ep = int(r.config.get("run.test_episodes", 32))
            run: dict = {}
            for i, t in enumerate(win.t_env):
                wins = int(round(win.win_rate[i] * n_ep))
                step = {"step_count": int(t), "win_rate": [1.0] * wins + [0.0] * (n_ep - wins)}
                j = np.searchsorted(ret.t_env, t)
                if j < len(ret.t_env) and ret.t_env[j] == t and ret.value[j] == ret.value[j]:
                    step["return"] = [float(ret.value[j])]
                if win.wall_s[i] == win.wall_s[i]:
                    step["wall_time_s"] = [float(win.wall_s[i])]
                run[f"step_{i}"] = step
            absolute = _absolute(r.run_dir) if r.config.get(SOURCE_KEY) is None else None
            if absolute is not None:
                run["absolute_metrics"] = absolute
            doc[environment][task][algo][f"run_{len(runs)}"] = run
    path = Path(path)
    if not path.parent.is_dir():
        raise CompareError(f"--export-marl-eval {path}: the directory {path.parent} does not exist")
    return write_atomic(path, json.dumps(doc, separators=(",", ":")))


def _absolute(run_dir: Path) -> dict | None:
    """The absolute evaluation's episodes as marl-eval lists, else the final evaluation's."""
    for name in ("absolute_eval.json", "final_eval.json"):
        f = Path(run_dir) / name
        if f.is_file():
            try:
                d = json.loads(f.read_text())
                n, w = int(d["episodes"]), float(d["win_rate"])
                ret = float(d["return"]) if "return" in d else None
            except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
                continue
            if not (0 < n <= MAX_EPISODES and 0.0 <= w <= 1.0) or (ret is not None and not math.isfinite(ret)):
                continue  # a damaged file: the curves' last evaluation stands in for it
            wins = int(round(w * n))
            out = {"win_rate": [1.0] * wins + [0.0] * (n - wins)}
            if ret is not None:
                out["return"] = [ret]
            return out
    return None


def import_marl_eval(path: str | Path, metric: str = "test_win_rate") -> list[RunCurve]:
    """Every run of a marl-eval file as a `RunCurve` of `metric` (test_win_rate: the mean of each step's
    `win_rate` list; test_return: of its `return` list)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CompareError(f"{path}: not a readable marl-eval JSON file ({e})") from None
    except RecursionError:
        raise CompareError(f"{path}: not a marl-eval JSON file (nested too deep)") from None
    key = {"test_win_rate": "win_rate", "test_return": "return"}.get(metric)
    if key is None:
        raise CompareError(f"{path}: a marl-eval file has evaluation metrics only; --metric {metric} is not one")
    runs = []
    if not isinstance(doc, dict) or not doc:
        raise CompareError(f"{path}: expected {{environment: {{task: {{algorithm: {{run: {{step: ...}}}}}}}}}}")
    for env, tasks in doc.items():
        for task, algos in _items(tasks, path, env):
            for algo, rs in _items(algos, path, f"{env}/{task}"):
                for k, (name, steps) in enumerate(_items(rs, path, f"{env}/{task}/{algo}")):
                    where = f"{path}: {env}/{task}/{algo}/{name}"
                    pts = []
                    for sname, st in _items(steps, path, f"{env}/{task}/{algo}/{name}"):
                        if sname == "absolute_metrics":
                            continue
                        if not isinstance(st, dict) or "step_count" not in st:
                            raise CompareError(f"{where}/{sname}: expected step_count and lists of numbers")
                        t = _step_count(st["step_count"], f"{where}/{sname}/step_count")
                        val, win, wall = (_mean(st.get(k), f"{where}/{sname}/{k}")
                                          for k in (key, "win_rate", "wall_time_s"))
                        pts.append((t, wall, val, win))
                    pts.sort()
                    a = np.array(pts, dtype=float).reshape(-1, 4)
                    absolute = steps.get("absolute_metrics") if isinstance(steps, dict) else None
                    final = _mean(absolute[key], f"{where}/absolute_metrics/{key}") \
                        if isinstance(absolute, dict) and absolute.get(key) else (float(a[-1, 2]) if len(a) else math.nan)
                    n_final = len(absolute[key]) if isinstance(absolute, dict) and absolute.get(key) and \
                        key == "win_rate" else None
                    runs.append(RunCurve(run_dir=path, seed=k, config={
                        "marl_eval.algorithm": algo, "env.map_name": task, "marl_eval.environment": env,
                        SOURCE_KEY: str(path)}, t_env=a[:, 0], wall_s=a[:, 1], value=a[:, 2], win_rate=a[:, 3],
                        final=final, final_episodes=n_final,
                        steps_per_s=a[-1, 0] / a[-1, 1] if len(a) and a[-1, 1] > 0 else math.nan))
    return runs


MAX_STEPS = 10**13  # more env steps than any run makes: a larger count is a damaged file


def _step_count(x, where: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x != int(x) \
            or not 0 <= x <= MAX_STEPS:
        raise CompareError(f"{where}: expected a whole number of env steps in [0, {MAX_STEPS:.0e}], got {x!r:.40}")
    return int(x)


def _mean(xs, where: str) -> float:
    """The mean of a list of finite numbers (NaN for an absent or empty one); anything else is an error naming it."""
    if xs is None or xs == []:
        return math.nan
    if not isinstance(xs, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs):
        raise CompareError(f"{where}: expected a list of numbers, got {str(xs)!r:.60}")
    if not all(math.isfinite(v) for v in xs):
        raise CompareError(f"{where}: expected finite numbers, got {[v for v in xs if not math.isfinite(v)][:3]}")
    return float(np.mean(xs))


def _items(d, path: Path, where: str):
    if not isinstance(d, dict):
        raise CompareError(f"{path}: {where}: expected a JSON object, got {type(d).__name__}")
    return list(d.items())
