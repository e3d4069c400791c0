"""The Ray backend: each trial one `train()` inside a Ray Tune function trainable, reporting every evaluation."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from .spec import SweepError
from .trial import Progress, TrialJob, TrialResult, _limit_threads, run_trial

RAY_MISSING = 'the ray backend needs Ray: pip install "qmix-workbench[ray]"'


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
