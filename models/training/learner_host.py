"""Where the learner and its episode buffer live, and when acting sees their updates.

`InlineLearner` keeps them in this process: a round's updates finish before the next round is collected
(PyMARL's schedule; acting and learning share the process's threads).

`LearnerProcess` keeps them in a spawned worker: while the worker runs the updates of round r, this
process collects round r+1 with the weights from after round r-1 (acting is one round behind). Acting and
learning then each own a core with no fine-grained synchronisation between them, which is what lets a
window beside the trainer take CPU without stalling a parallel loop. The schedule is fixed, not a race,
so a run is reproducible and resumes exactly.

Both hand back, for each submitted round, a `RoundResult`: its update metrics and (worker only) the
weights the actors should use next.
"""
from __future__ import annotations

import collections
import io
import os
import queue
import signal
import threading
import time
import traceback
from dataclasses import dataclass

import numpy as np
import torch

from ..config import Config
from ..core.buffer import EpisodeBuffer
from ..core.episode import EpisodeBatch
from ..core.learner import Learner
from ..core.networks import actor_weights, build_networks, load_actor_weights
from ..errors import CheckpointWriteError
from ..files.checkpoint import save_checkpoint
from .resources import available_memory


@dataclass
class RoundResult:
    updates: list  # one metrics dict per update of the round
    weights: dict | None  # {"agent": ..., "mixer": ...} as numpy arrays; None when the actors share the learner's


def compact(batch: EpisodeBatch) -> dict:
    """What the buffer needs of a round, cut to its longest episode (the runner pads to the episode limit)."""
    T = batch.max_len
    return {"obs": batch.obs[:, :T + 1].astype(np.float16), "state": batch.state[:, :T + 1].astype(np.float16),
            "avail": batch.avail[:, :T + 1], "actions": batch.actions[:, :T], "reward": batch.reward[:, :T],
            "terminal": batch.terminal[:, :T], "filled": batch.filled[:, :T], "mc_return": batch.mc_return[:, :T],
            "length": batch.length}


class LearnerCore:
    """Learner + buffer + the sampling generator: the state both hosts run, and what a checkpoint keeps."""

    def __init__(self, cfg: Config, dims: dict, device, agent, mixer):
        self.cfg, self.device = cfg, device
        self.learner = Learner(agent, mixer, cfg, device)
        self.buffer = EpisodeBuffer(cfg.learner.buffer_size, dims["episode_limit"], dims["n_agents"],
                                    dims["obs_dim"], dims["state_dim"], dims["n_actions"], can_grow=_memory_allows)
        self._told_capped = False
        self.rng = np.random.default_rng([cfg.run.seed, 1])
        self.credit = 0.0  # updates earned by the replay ratio and not yet taken (a fraction of one)

    def round(self, batch: dict, t_env: int | None = None) -> list:
        """Store a round's episodes and take the updates they earn: `replay_ratio` sampled episodes per
        collected one, so `num_envs * replay_ratio / batch_size` updates a round, the fraction carried.
        `t_env`: the env steps collected with this round (the learning-rate schedule's clock)."""
        if t_env is not None:
            self.learner.set_t_env(t_env)
        self.buffer.add(batch)
        L = self.cfg.learner
        if not self.buffer.can_sample(L.batch_size):
            return []
        self.credit += len(batch["length"] if isinstance(batch, dict) else batch.length) * L.replay_ratio / L.batch_size
        n = int(self.credit + 1e-9)  # 16 x 8 / 32 is 4 updates, never 3 and a remainder of 0.999...
        self.credit = max(0.0, self.credit - n)
        out = []
        for _ in range(n):
            m = self.learner.update(self.buffer.sample(L.batch_size, self.rng, self.device),
                                    self.buffer.episodes_added)
            if self.buffer.capped and not self._told_capped:
                m["warning"] = self.buffer.capped
                self._told_capped = True
            out.append(m)
            if "nonfinite" in m and self.cfg.run.on_nonfinite == "stop":
                break  # the run ends at this update: learning on would only hide where it went wrong
        return out

    def set_config(self, cfg: Config) -> None:
        """A live change (`models.training.live`): the next updates use `cfg`."""
        self.cfg = cfg
        self.learner.set_config(cfg)

    def state(self) -> dict:
        """The learner, the sampling generator and the update credit (the buffer goes to files directly:
        `save_with_buffer`)."""
        return {"learner": {**self.learner.state_dict(), "credit": self.credit}, "rng": self.rng.bit_generator.state}

    def load(self, d: dict) -> None:
        self.learner.load_state_dict(d["learner"])
        self.credit = float(d["learner"].get("credit", 0.0))
        if d.get("rng") is not None:
            self.rng.bit_generator.state = d["rng"]
        if d.get("buffer") is not None:
            self.buffer.load_state_dict(d["buffer"])


def _memory_allows(nbytes: int) -> bool:
    """Whether the episode buffer may grow to `nbytes`: it keeps a quarter of what is available free."""
    avail = available_memory()
    return avail is None or nbytes <= 0.75 * avail


class InlineLearner:
    """Learner and buffer in this process; the actors share the learner's networks (no lag)."""

    lag = 0

    def __init__(self, cfg: Config, dims: dict, device, agent, mixer):
        self.core = LearnerCore(cfg, dims, device, agent, mixer)
        self.ready: collections.deque = collections.deque()

    @property
    def pending(self) -> int:
        return len(self.ready)

    def submit(self, batch: EpisodeBatch | dict, t_env: int | None = None) -> None:
        self.ready.append(RoundResult(self.core.round(batch, t_env), None))

    def result(self) -> RoundResult:
        return self.ready.popleft()

    def state(self) -> dict:
        return self.core.state()

    def set_config(self, cfg: Config) -> None:
        self.core.set_config(cfg)

    def load(self, d: dict, path=None) -> None:
        self.core.load(d)

    def save_with_buffer(self, path, meta: dict, tensors: dict) -> None:
        """Write a checkpoint of `tensors` plus the replay buffer (kept where the buffer lives)."""
        save_checkpoint(path, meta, {**tensors, "buffer": self.core.buffer.state_dict()})

    def close(self) -> None:
        pass


class LearnerProcess:
    """Learner and buffer in a spawned worker process, one round ahead of the actors."""

    lag = 1

    def __init__(self, cfg: Config, dims: dict, device, agent, mixer, threads: int = 1):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        # queues, not a bare pipe: each side sends from a feeder thread, so a big round going down while a
        # result comes up cannot block both ends
        self.down, self.up = ctx.Queue(), ctx.Queue()
        # daemonic: the worker goes when this process exits; it also exits when it sees this process gone
        self.proc = ctx.Process(target=_worker_main, name="qmix-learner", daemon=True,
                                args=(self.down, self.up, os.getpid(), cfg.to_dict(), dims, str(device),
                                      actor_weights(agent, mixer), threads))
        self.proc.start()
        self.in_flight = 0
        self.ready: collections.deque = collections.deque()

    @property
    def pending(self) -> int:
        return self.in_flight + len(self.ready)

    def _call(self, msg):
        self.down.put(msg)

    def _recv(self):
        while True:
            try:
                kind, payload = self.up.get(timeout=1.0)
                break
            except queue.Empty:
                if not self.proc.is_alive():
                    raise RuntimeError(f"the learner process (pid {self.proc.pid}) ended unexpectedly "
                                       f"(exit code {self.proc.exitcode})") from None
        if kind == "error":
            raise RuntimeError(f"the learner process failed:\n{payload}")
        return kind, payload

    def _receive_round(self) -> None:
        kind, payload = self._recv()
        assert kind == "round", kind
        self.ready.append(RoundResult(*payload))
        self.in_flight -= 1

    def _drain(self) -> None:
        """Wait for every submitted round; their results stay queued, in order, for `result()`."""
        while self.in_flight:
            self._receive_round()

    def submit(self, batch: EpisodeBatch | dict, t_env: int | None = None) -> None:
        self._call(("round", (compact(batch) if isinstance(batch, EpisodeBatch) else batch, t_env)))
        self.in_flight += 1

    def result(self) -> RoundResult:
        if not self.ready:
            self._receive_round()
        return self.ready.popleft()

    def set_config(self, cfg: Config) -> None:
        """Sent after the rounds already submitted (they learn with the settings they were sent under)."""
        self._call(("config", cfg.to_dict()))

    def state(self) -> dict:
        self._drain()
        self._call(("state", None))
        return _from_bytes(self._recv()[1])

    def load(self, d: dict, path=None) -> None:
        """Restore the learner; a buffer from checkpoint `path` is read there by the worker itself rather than
        sent down the pipe (about 8 s for a full 2c buffer)."""
        self._drain()
        if path is not None and d.get("buffer") is not None:
            d = {**d, "buffer": None}
        else:
            path = None
        self._call(("load", (_to_bytes(d), None if path is None else str(path))))
        self._recv()

    def save_with_buffer(self, path, meta: dict, tensors: dict) -> None:
        """The worker writes the checkpoint: `tensors` go down (small), the buffer (up to ~0.8 GiB) never
        crosses the pipe (that took 8 of the 10 s a graceful stop's save took on 2c_vs_64zg)."""
        self._drain()
        self._call(("save", (str(path), meta, _to_bytes(tensors))))
        kind, payload = self._recv()
        if kind == "save_failed":
            raise CheckpointWriteError(payload)

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self._call(("close", None))
            except (ValueError, OSError):
                pass
            self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        for q in (self.down, self.up):
            q.cancel_join_thread()  # what is still queued is not needed
            q.close()


def _worker_main(down, up, parent: int, cfg_dict: dict, dims: dict, device: str, init_weights: dict,
                 threads: int) -> None:
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    # a terminal's Ctrl-C and a scheduler's SIGTERM reach the whole process group: the trainer turns them into a
    # graceful stop whose last checkpoint this process writes (with the buffer), so it must outlive them; the
    # trainer closes it, and it exits by itself if the trainer dies
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        torch.set_num_threads(max(1, threads))
        from ..config import from_dict

        cfg = from_dict(cfg_dict)
        agent, mixer = build_networks(cfg, dims, torch.device(device))
        load_actor_weights(agent, mixer, init_weights)  # the actors' initial networks, before targets copy them
        core = LearnerCore(cfg, dims, torch.device(device), agent, mixer)
        while True:
            kind, payload = down.get()
            if kind == "round":
                ums = core.round(*payload)
                up.put(("round", (ums, actor_weights(agent, mixer))))
            elif kind == "state":
                up.put(("state", _to_bytes(core.state())))
            elif kind == "config":
                core.set_config(from_dict(payload))
            elif kind == "load":
                state, path = payload
                d = _from_bytes(state)
                if path is not None:
                    from ..files.checkpoint import load_checkpoint

                    d["buffer"] = load_checkpoint(path)[1]["buffer"]
                core.load(d)
                up.put(("loaded", None))
            elif kind == "save":
                path, meta, tensors = payload
                try:
                    save_checkpoint(path, meta, {**_from_bytes(tensors), "buffer": core.buffer.state_dict()})
                    up.put(("saved", None))
                except CheckpointWriteError as e:  # a full disk is the trainer's to report, not a crash
                    up.put(("save_failed", str(e)))
            elif kind == "close":
                return
    except BaseException:
        up.put(("error", traceback.format_exc()))
        # deliver the traceback, but do not hang on a trainer that is gone or stopped reading
        t = threading.Thread(target=up.join_thread, daemon=True)
        up.close()
        t.start()
        t.join(10)
    finally:
        # results nobody will read (the trainer closed us, or died) must not keep this process alive
        up.cancel_join_thread()


def _exit_when_orphaned(parent: int) -> None:
    """A killed trainer can leave this process blocked for good (on a half-written round, or writing a
    result nobody reads); it holds nothing worth saving, so it just goes."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


# Tensors cross the pipe as torch.save bytes: pickling them directly would go through torch's
# shared-memory reductions (file descriptors passed between processes), which a state dict does not need.
# The replay buffer does not cross it: the worker writes and reads it in checkpoint files itself.
def _to_bytes(d: dict) -> tuple:
    f = io.BytesIO()
    torch.save({k: v for k, v in d.items() if k != "rng"}, f)
    return f.getvalue(), d.get("rng")


def _from_bytes(b: tuple) -> dict:
    d = torch.load(io.BytesIO(b[0]), weights_only=True)
    d["rng"] = b[1]
    return d
