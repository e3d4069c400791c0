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
    # SIGHUP too: a worker left busy by a second Ctrl-C outlives the sweep in a group of its own, and the kernel
    # hangs up an orphaned group that holds a stopped process (one paused in a debugger, say), which would end it
    # unsaved.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
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


def _worker(index: int, job: TrialJob, stop, parent: int, results) -> None:
    """One trial in a fresh spawned process; its result (or why it failed) goes to `results` as (index, result)."""
    _pool_init(stop, parent)
    try:
        r = _pool_run(job)
    except BaseException as e:  # noqa: BLE001 - whatever ended the trial is its result, never a silent exit
        r = TrialResult(job.name, "failed", error=f"{type(e).__name__}: {e}")
    results.put((index, r))


def _died(job: TrialJob) -> TrialResult:
    return TrialResult(job.name, "failed", error=f"its worker process died (killed, or out of memory?); see "
                                                 f"{job.log_path}")


def _leave_behind(procs) -> None:
    """Let this process exit without waiting for `procs`: multiprocessing joins every child it started at exit,
    so a second Ctrl-C waited there for a worker saving its run (seconds with a 2c replay buffer), and a third
    raised inside that wait. The workers need no one to wait: they ignore the signals, see the sweep gone after
    their round, save and exit. (`_children` is multiprocessing's own registry of what its exit joins; were it
    ever renamed, this is only the old wait.)"""
    import multiprocessing.process as mpp

    children = getattr(mpp, "_children", None)
    if isinstance(children, set):
        for p in procs:
            children.discard(p)


def _run_local(jobs: list[TrialJob], workers: int, progress: Progress, log) -> tuple[list[TrialResult], bool]:
    """Run `jobs`, at most `workers` at a time, each in a fresh spawned process (its own thread settings, its
    memory given back), reporting each end to `progress`; (results, interrupted). Ctrl-C or SIGTERM stops the
    runs in progress after their round (they save) and starts no more; a second one stops waiting for them.

    Not a ProcessPoolExecutor: on Python 3.11 one with max_tasks_per_child hangs the interpreter's exit after
    shutdown(wait=False) (CPython gh-119592), which a second Ctrl-C ran into: the sweep never exited."""
    import multiprocessing as mp
    import queue
    import time

    ctx = mp.get_context("spawn")
    stop, results_q = ctx.Event(), ctx.Queue()
    todo, running, results, gone = list(enumerate(jobs)), {}, {}, {}
    interrupted = False

    def end(i: int, r: TrialResult) -> None:
        if i in results:
            return
        if r.status != "not started":
            progress.ended_one(r)
        results[i] = r

    with _TermAsInterrupt():
        while todo or running:
            try:
                while todo and len(running) < workers and not interrupted:
                    i, job = todo.pop(0)
                    p = ctx.Process(target=_worker, args=(i, job, stop, os.getpid(), results_q), name=job.name)
                    p.start()
                    running[i] = p
                try:
                    i, r = results_q.get(timeout=1.0)
                    end(i, r)
                    if (p := running.pop(i, None)) is not None:  # None: counted as died before its result came
                        p.join()
                except queue.Empty:
                    # a worker gone without a result died; one that exited cleanly put its result first, which
                    # is read here unless it was lost to a Ctrl-C between the read and `end` (then it counts as
                    # died after a grace period, rather than being waited for for ever)
                    now = time.monotonic()
                    for i, p in list(running.items()):
                        if p.exitcode is not None:
                            gone.setdefault(i, now)
                            if p.exitcode != 0 or now - gone[i] > 5.0:
                                end(i, _died(jobs[i]))
                                del running[i]
            except KeyboardInterrupt:
                if interrupted:  # the runs in progress save after their round, and exit when they see we are gone
                    log("stopping now: the runs in progress save after their round and exit by themselves")
                    _leave_behind(running.values())
                    raise
                interrupted = True
                stop.set()
                for i, job in todo:
                    end(i, TrialResult(job.name, "not started"))
                todo = []
                log("interrupted: the runs in progress stop after their round and save a checkpoint "
                    "(Ctrl-C again to stop at once); rerun the same command to resume")
    return [results[i] for i in sorted(results)], interrupted
