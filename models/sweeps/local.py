"""The local backend: a pool of spawned processes, one trial each, stopped gracefully by Ctrl-C or SIGTERM."""
from __future__ import annotations

import os

from .trial import Progress, TrialJob, TrialResult, _limit_threads, run_trial

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


