"""The trainer process: `models.training.train` (or `models.play.watch`) in a spawned process that never imports Qt.

Down: a command queue. Up: a lossless message queue (episode/update/eval metrics, errors) and a
latest-wins snapshot queue (bounded; a snapshot that does not fit is dropped).
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback

import numpy as np

from models.core.snapshot import from_probe, make_snapshot

from . import protocol as P


_NOT_YET = object()  # a gap breakpoint just set: the next finished episode is the first judged


class ProcessCallbacks:
    """`models.training.train.Callbacks` that talks to the GUI through queues."""

    def __init__(self, cmd_q, msg_q, snap_q, snapshot_hz: float):
        self.cmd_q, self.msg_q, self.snap_q = cmd_q, msg_q, snap_q
        self.period = 1.0 / snapshot_hz if snapshot_hz > 0 else float("inf")
        self.paused = False
        self.stop = False
        self.step_once = False
        self.forced: dict[int, int] = {}
        self.last_snap = 0.0
        self.save_fn = None
        self.set_fn = None  # a training's live settings (Trainer.set); None while watching
        self.branch_fn = None  # Trainer.branch_now
        self.save_episode_fn = None  # Trainer.save_episode_so_far (a training's; a watch records every episode)
        self.breakpoints: tuple = ()  # event kinds that pause env 0 (models.core.events)
        self.td_break: float | None = None  # pause after an update with a larger mean |TD error|
        self.gap_break: float | None = None  # pause after an env-0 episode with a larger |Qtot - return|
        self._gap_seen = None  # the finished episode last checked (a new breakpoint skips those before it)
        self._trace = None  # env 0's EpisodeTrace, for the check after a round
        self.detector = None
        self._world_snap = None  # env 0's battle arrays at this step, once copied
        self.dropped = 0
        self.prev_actions = None  # env 0's joint action of the previous step (what was executed)
        self.last_poll = 0.0
        self.step_period = 0.0  # watch mode: seconds per env step, so a person can follow the battle
        self.last_step = 0.0
        self.parent = os.getppid()

    # ---- messages up ----------------------------------------------------------------------------
    def send(self, message: P.Message) -> None:
        self.msg_q.put(message)

    def log(self, text):
        self.send(P.Info(str(text)))

    def on_start(self, info):
        self.save_fn = info.pop("save", None)
        self.set_fn = info.pop("set", None)
        self.branch_fn = info.pop("branch", None)
        self.save_episode_fn = info.pop("save_episode", None)
        self.send(P.Started(mode=info.get("mode", "train"), config=info.get("config") or {},
                            env_info=info.get("env_info") or {}, algorithm=info.get("algorithm", ""),
                            t_env=int(info.get("t_env") or 0), run_dir=str(info.get("run_dir") or ""),
                            device=str(info.get("device", "cpu")), learner_pid=info.get("learner_pid"),
                            checkpoint=info.get("checkpoint"), policy=info.get("policy")))

    def on_episode(self, m):
        self.send(P.EpisodeEnded(m))
        if self.gap_break is not None and not self.paused and self._trace is not None:
            self._check_gap(self._trace, int(m.get("t_env", 0)))

    def on_update(self, m):
        if self.td_break is not None and not self.paused and m.get("td_error", 0.0) > self.td_break:
            self.paused = True  # the next step waits (on_step)
            self.send(P.PausedChanged(True))
            self.send(P.Info(f"breakpoint: mean |TD error| {m['td_error']:.3g} > {self.td_break:g} at update "
                             f"{m.get('updates', 0):,} ({m.get('t_env', 0):,} env steps)"))
        self.send(P.UpdateDone(m))

    def on_eval(self, m):
        self.send(P.Evaluated(m))

    def on_checkpoint(self, path):
        self.send(P.CheckpointSaved(str(path)))

    def on_recorded(self, path):
        self.send(P.EpisodeRecorded(str(path)))

    def on_live_change(self, ev):
        self.send(P.LiveChanged(t_env=ev.t_env, key=ev.key, old=ev.old, new=ev.new, source=ev.source))

    def on_script_break(self, kinds):
        self.breakpoints = tuple(kinds)

    def on_end(self, summary):
        self.send(P.Ended({k: v for k, v in summary.items() if k != "last_round"}))

    def should_stop(self):
        self._poll()
        return self.stop

    def wants_episode(self):
        # a breakpoint in a training saves env 0's episode (so far)
        return bool(self.breakpoints) or self.gap_break is not None

    def wants_steps(self):
        return True

    # ---- commands down ---------------------------------------------------------------------------
    def _handle(self, cmd: P.Command, ctx=None):
        match cmd:
            case P.Pause():
                self.paused = True
                self.send(P.PausedChanged(True))
            case P.Resume():
                self.paused = False
                self.send(P.PausedChanged(False))
            case P.Step():
                self.step_once = True
            case P.Stop():
                self.stop = True
            case P.SetSnapshotRate(hz=hz):
                self.period = 1.0 / hz if hz > 0 else float("inf")
            case P.SetWatchSpeed(steps_per_s=v):
                self.step_period = 1.0 / v if v > 0 else 0.0
            case P.Save(path=path):
                if self.save_fn is None:
                    self.send(P.Warning("this mode has no checkpoint to save"))
                else:
                    self.send(P.CheckpointSaved(str(self.save_fn(path) if path else self.save_fn()), requested=True))
            case P.ForceAction(agent=agent, action=action):
                if ctx is not None:
                    avail = ctx.rec.avail[0]
                    if not (0 <= agent < avail.shape[0] and 0 <= action < avail.shape[1]) or not avail[agent, action]:
                        ok = np.flatnonzero(avail[agent]).tolist() if 0 <= agent < avail.shape[0] else []
                        self.send(P.Warning(f"agent {agent} cannot take action {action} now; available: {ok}"))
                        return
                self.forced[agent] = action
                if ctx is not None:
                    self._snapshot(ctx, self._apply_forced(ctx.actions))
            case P.ClearForced():
                self.forced.clear()
            case P.SetBreakpoints(kinds=kinds, td_error_above=td, gap_above=gap):
                self.td_break = td
                if gap is not None and self.gap_break is None:
                    self._gap_seen = _NOT_YET  # episodes that ended before it was set are not judged
                self.gap_break = gap
                from models.core.events import BREAK_KINDS

                bad = [k for k in kinds if k not in BREAK_KINDS]
                if bad:
                    self.send(P.Warning(f"breakpoint {bad[0]!r}: expected one of {', '.join(BREAK_KINDS)}"))
                    return
                self.breakpoints = tuple(kinds)
            case P.BranchNow(changes=changes):
                if self.branch_fn is None:
                    self.send(P.Warning("only a training can be branched; File > Branch run... branches a run "
                                        "directory or a checkpoint"))
                    return
                from models.config import ConfigError

                try:
                    self.branch_fn(changes)
                except ConfigError as e:
                    self.send(P.Warning(f"not branched: {e}"))
            case P.SetSetting(key=key, value=value):
                if self.set_fn is None:
                    self.send(P.Warning("only a training changes its settings live"))
                    return
                from models.config import ConfigError

                try:
                    self.set_fn(key, value, "window")
                except ConfigError as e:
                    self.send(P.Warning(f"not changed: {e}"))
            case _:
                raise TypeError(f"not a command of workbench.protocol: {cmd!r}")

    def _check_parent(self):
        if os.getppid() != self.parent:  # the window is gone without saying so: stop (and save)
            self.stop = True

    def _poll(self, ctx=None):
        self._check_parent()
        while True:
            try:
                cmd = self.cmd_q.get_nowait()
            except queue.Empty:
                return
            self._handle(cmd, ctx)

    def _apply_forced(self, actions):
        if not self.forced:
            return actions
        acts = actions.copy()
        for agent, action in self.forced.items():
            acts[0, agent] = action
        return acts

    # ---- the step hook ------------------------------------------------------------------------------------
    def on_step(self, ctx):
        from models.training.callbacks import StopRequested

        self._world_snap = None  # a new state
        now = time.monotonic()
        if now - self.last_poll >= 0.01:  # a queue poll costs more than a step of bookkeeping
            self.last_poll = now
            self._poll(ctx)
        if self.stop:
            raise StopRequested
        if self.gap_break is not None and not self.paused:
            self._check_gap(ctx.trace, ctx.t_env)
        if self.breakpoints and not self.paused:
            self._check_breakpoints(ctx)
        if self.paused:
            self._snapshot(ctx, self._apply_forced(ctx.actions))
            while self.paused and not self.step_once and not self.stop:
                try:
                    self._handle(self.cmd_q.get(timeout=0.1), ctx)
                except queue.Empty:
                    self._check_parent()
            if self.stop:
                raise StopRequested
            self.step_once = False
        acts = self._apply_forced(ctx.actions)
        self.forced.clear()
        if self.step_period > 0:
            wait = self.last_step + self.step_period - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.last_step = time.monotonic()
        now = time.monotonic()
        if now - self.last_snap >= self.period:
            self.last_snap = now
            self._snapshot(ctx, acts)
        self.prev_actions = acts[0].copy()
        return acts if acts is not ctx.actions else None

    def _check_gap(self, tr, t_env: int) -> None:
        """Pause once env 0's episode has ended if |Qtot - return| went above the threshold in it. Called at the
        next step (a round's other battles go on) and after the round (env 0's may have ended it): whichever
        comes first judges it, while env 0's recording still holds the whole episode."""
        from models.core.events import first_gap

        self._trace = tr
        last = tr.last if tr is not None else None
        if self._gap_seen is _NOT_YET:
            self._gap_seen = last
            return
        if last is None or last is self._gap_seen:
            return
        self._gap_seen = last
        hit = first_gap(last["qtot"], last["return_to_go"], self.gap_break)
        if hit is None:
            return
        k, gap = hit
        self.paused = True
        self.send(P.PausedChanged(True))
        self.send(P.Info(f"breakpoint: |Qtot - return| {gap:.3g} > {self.gap_break:g} at step {k} of env 0's "
                         f"episode that just ended ({t_env:,} env steps)"))
        if self.save_episode_fn is None:  # watching: every episode is recorded
            self.send(P.Info(f"File > Open last recorded episode shows it; step {k} is where the gap starts"))
            return
        path = None
        if tr.done:  # the round goes on with other battles: env 0's recording still holds the whole episode
            try:
                path = self.save_episode_fn()
            except OSError as e:
                self.send(P.Warning(f"could not save the episode at the breakpoint: {e}"))
                return
        if path:
            self.send(P.Info(f"the episode is in {path} (File > Open last recorded episode); step {k} is where "
                             f"the gap starts"))
        else:
            self.send(P.Warning("the episode's recording was not kept"))

    def _check_breakpoints(self, ctx) -> None:
        """Pause on the state where env 0 first shows a chosen event (the Replay timeline's definitions)."""
        from models.core.events import EventDetector, matches

        world = ctx.world
        if world is None or (ctx.trace is not None and ctx.trace.done):
            return
        snap = self._world_snapshot(ctx)
        state = {k: snap[k] for k in ("health", "shield", "alive", "pos")}
        if ctx.t == 0 or self.detector is None:  # a new episode of env 0
            self.detector = EventDetector(int(ctx.env.n_agents), world.scenario.terrain.height)
            labels = self.detector.reset(state)
        else:
            labels = self.detector.step(state)
        hit = [label for label in labels if any(matches(k, label) for k in self.breakpoints)]
        if hit:
            self.paused = True
            self.send(P.PausedChanged(True))
            self.send(P.Info(f"breakpoint: {', '.join(hit)} (env 0, episode step {ctx.t}, "
                             f"{ctx.t_env:,} env steps)"))
            if self.save_episode_fn is not None:  # training: the episode so far, to open in Replay and fork
                try:
                    path = self.save_episode_fn()
                except OSError as e:
                    self.send(P.Warning(f"could not save the episode at the breakpoint: {e}"))
                else:
                    if path:
                        self.send(P.Info(f"the episode so far is in {path} (File > Open last recorded episode)"))

    def _world_snapshot(self, ctx):
        """Env 0's battle arrays, copied once per step even when a breakpoint check and a snapshot both read them."""
        if self._world_snap is None:
            self._world_snap = ctx.world.snapshot(0)
        return self._world_snap

    def _snapshot(self, ctx, actions):
        world = ctx.world
        pr = ctx.probe(0, chosen=actions[0])
        tr = ctx.trace  # env 0's episode, kept by the runner (it sees every step, the last one included)
        snap = make_snapshot(t=ctx.t, t_env=ctx.t_env, epsilon=ctx.epsilon, episode=tr.episode, paused=self.paused,
                             probe=from_probe(pr), world=self._world_snapshot(ctx) if world is not None else None,
                             payoff=ctx.env.payoff_of(0) if hasattr(ctx.env, "payoff_of") else None,
                             trace=tr.current(), last_episode=tr.last, env0_done=tr.done,
                             reward=float(ctx.rec.reward[0]),
                             executed=None if ctx.t == 0 or self.prev_actions is None else self.prev_actions.tolist())
        # latest wins: when the GUI has not drained the queue, drop the oldest snapshot, not this one
        for _ in range(3):
            try:
                self.snap_q.put_nowait(snap)
                return
            except queue.Full:
                self.dropped += 1
                try:
                    self.snap_q.get_nowait()
                except queue.Empty:
                    pass


def trainer_main(mode: str, payload: dict, cmd_q, msg_q, snap_q, snapshot_hz: float = 30.0) -> None:
    """Entry point of the spawned process."""
    code = 0
    cb = None
    try:
        cb = ProcessCallbacks(cmd_q, msg_q, snap_q, snapshot_hz)
        if payload.get("start_paused"):
            cb.paused = True
        if payload.get("steps_per_s"):
            cb.step_period = 1.0 / payload["steps_per_s"]
        if payload.get("torch_threads"):
            # beside the window, torch's busy-waiting worker threads would take the core the GUI paints with
            import numba
            import torch

            torch.set_num_threads(int(payload["torch_threads"]))
            nt = int(payload.get("numba_threads", payload["torch_threads"]))
            numba.set_num_threads(min(nt, numba.config.NUMBA_NUM_THREADS))
        if mode == "train":
            from models.config import from_dict
            from models.training.train import train

            cfg = from_dict(payload["config"]) if payload.get("config") is not None else None
            train(cfg, callbacks=cb, run_dir=payload.get("run_dir"), resume=payload.get("resume"), log=cb.log)
        elif mode == "watch":
            from models.play.watch import watch

            watch(payload["checkpoint"], cb, seed=payload.get("seed", 0), keep=int(payload.get("keep", 20)),
                  record=payload.get("record", "auto"))
        else:
            raise RuntimeError(f"unknown trainer mode {mode!r}")  # the window sends only the two above
    except BaseException as exc:
        from models.errors import user_message

        # a user's mistake (a missing file, a full disk, a diverged run) is one line, as in the CLI
        msg = user_message(exc) if isinstance(exc, Exception) else None
        msg_q.put(P.Error(msg if msg is not None else traceback.format_exc()))
        code = 1
    finally:
        msg_q.close()
        if cb is not None and cb.stop and os.getppid() != cb.parent:
            msg_q.cancel_join_thread()  # the window is gone: nobody will read the rest
        else:
            msg_q.join_thread()
        # snapshots are disposable, but half of one would block the window's next read: let the feeder finish the
        # one it is writing while the window still reads (bounded: a window that stopped reading must not hold us)
        snap_q.close()
        flush = threading.Thread(target=snap_q.join_thread, daemon=True)
        flush.start()
        flush.join(2.0)
        if flush.is_alive():
            snap_q.cancel_join_thread()
    sys.exit(code)
