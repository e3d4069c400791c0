"""`train(config, callbacks)`: the one training loop — used by the CLI, the GUI's trainer
process, sweeps and tests. Writes a run directory: config.toml, metrics.csv, TensorBoard
events (tb/) and checkpoints (checkpoints/)."""
from __future__ import annotations

import csv
import datetime as _dt
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .buffer import describe_buffer
from .checkpoint import check_compatible, load_checkpoint, save_checkpoint
from .config import Config, from_dict
from .envs import make_env_for
from .learner_host import (InlineLearner, LearnerProcess, RoundResult, actor_weights, build_networks,
                           load_actor_weights)
from .probe import Probe
from .runner import Runner, epsilon_at

CSV_COLUMNS = ["kind", "t_env", "episodes", "updates", "wall_s", "return", "won", "length", "dead_enemies",
               "epsilon", "overestimation", "loss", "td_error", "grad_norm", "qtot_taken", "target", "res_reg",
               "res_softmax_value", "max_value", "test_win_rate", "test_return", "steps_per_s"]


class Callbacks:
    """Hooks into `train`. Every method is optional; with none given training pays nothing."""

    def on_start(self, info: dict) -> None: ...
    def on_episode(self, m: dict) -> None: ...
    def on_update(self, m: dict) -> None: ...
    def on_eval(self, m: dict) -> None: ...
    def on_checkpoint(self, path: str) -> None: ...
    def on_end(self, summary: dict) -> None: ...

    def wants_steps(self) -> bool:
        """True to get `on_step` every env step (snapshots, pausing, forced actions)."""
        return False

    def on_step(self, ctx: "StepContext") -> np.ndarray | None:
        """Called every env step when `wants_steps()`; may return actions [B, n] to use instead."""
        return None

    def should_stop(self) -> bool:
        return False


class StopRequested(Exception):
    """Raised from `Callbacks.on_step` to end training at once (the round in progress is dropped)."""


class StepContext:
    """What `Callbacks.on_step` sees: one acting step (before the env steps), with probes on demand."""

    def __init__(self, probe: Probe, env, t: int, rec, q: torch.Tensor, actions: np.ndarray, t_env: int,
                 epsilon: float):
        self.probe_, self.env, self.t, self.rec, self.q, self.actions = probe, env, t, rec, q, actions
        self.t_env, self.epsilon = t_env, epsilon

    @property
    def world(self):
        return getattr(self.env, "world", None)

    def probe(self, env_index: int = 0, chosen=None, joint_table: bool = True):
        return self.probe_.from_q(self.q[env_index], self.rec.state[env_index], self.rec.avail[env_index],
                                  self.actions[env_index] if chosen is None else chosen, joint_table=joint_table)


def _as_tensors(w: dict) -> dict:
    return {part: {k: torch.as_tensor(v) for k, v in sd.items()} for part, sd in w.items()}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("run.device = 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(name)


def _rng_state(g: np.random.Generator) -> dict:
    return g.bit_generator.state


def _set_rng_state(g: np.random.Generator, st: dict) -> None:
    g.bit_generator.state = st


class Trainer:
    """Everything one run holds. `train()` drives it; the GUI's trainer process drives it too."""

    def __init__(self, cfg: Config, run_dir: str | Path | None = None, resume: str | Path | None = None,
                 callbacks: Callbacks | None = None, log=print):
        self.cb = callbacks or Callbacks()
        self.log = log
        ckpt = None
        if resume is not None:
            meta, tensors = load_checkpoint(resume)
            ckpt = (meta, tensors)
            if cfg is None:  # a config given with a checkpoint may change run.* keys (e.g. train longer)
                cfg = from_dict(meta["config"])
            if run_dir is None:
                run_dir = Path(meta["run_dir"]) if Path(resume).is_file() else Path(resume)
        self.cfg = cfg
        R = cfg.run
        threads = R.threads or (1 if R.learner_process else 0)
        if threads:  # with a learner process, acting keeps one core and learning the other
            import numba

            torch.set_num_threads(threads)
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        self.device = resolve_device(R.device)
        torch.manual_seed(R.seed)
        self.rng = np.random.default_rng(R.seed)
        self.env = make_env_for(cfg, cfg.env.num_envs, R.seed, autoreset=False)
        self.test_env = make_env_for(cfg, R.test_episodes, R.seed + 10_007, autoreset=False)
        e = self.env
        dims = {"obs_dim": e.obs_dim, "state_dim": e.state_dim, "n_agents": e.n_agents, "n_actions": e.n_actions,
                "episode_limit": e.episode_limit}
        # the actors' networks; with an inline learner they are also the ones it trains
        self.agent, self.mixer = build_networks(cfg, dims, self.device)
        if R.learner_process:
            self.host = LearnerProcess(cfg, dims, self.device, self.agent, self.mixer, threads=R.threads or 1)
        else:
            self.host = InlineLearner(cfg, dims, self.device, self.agent, self.mixer)
        self.updates = 0
        self.runner = Runner(e, self.agent, self.device, cfg.learner.gamma, cfg.learner.bootstrap_timeouts)
        self.runner.mixer = self.mixer
        self.test_runner = Runner(self.test_env, self.agent, self.device, cfg.learner.gamma)
        self.probe = Probe(self.agent, self.mixer, cfg.algo.res_beta if cfg.algo.res else None)
        self.t_env = self.episodes = self.rounds = 0
        self.last_test = -10**18
        self.last_save = 0
        self.wall = 0.0
        self.fingerprint = {"map_name": cfg.env.map_name, "n_agents": e.n_agents, "n_actions": e.n_actions,
                            "obs_dim": e.obs_dim, "state_dim": e.state_dim, "mixer": cfg.algo.mixer,
                            "agent_hidden": cfg.algo.agent_hidden, "mixing_embed": cfg.algo.mixing_embed,
                            "hypernet_embed": cfg.algo.hypernet_embed}
        self.run_dir = Path(run_dir) if run_dir is not None else self._new_run_dir()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if ckpt is not None:
            self._restore(*ckpt)
        (self.run_dir / "config.toml").write_text(cfg.to_toml())
        self._csv_file = open(self.run_dir / "metrics.csv", "a", newline="")
        self._csv = csv.DictWriter(self._csv_file, CSV_COLUMNS, extrasaction="ignore")
        if self._csv_file.tell() == 0:
            self._csv.writeheader()
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(self.run_dir / "tb"))
        self.log(describe_buffer(cfg.learner.buffer_size, e.episode_limit, e.n_agents, e.obs_dim, e.state_dim,
                                 e.n_actions) + (" (in a learner process)" if R.learner_process else ""))

    # ---- run directory -------------------------------------------------------------------------
    def _new_run_dir(self) -> Path:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path(self.cfg.run.runs_dir) / f"{self.cfg.run.name}_{stamp}_s{self.cfg.run.seed}"
        p, k = base, 1
        while p.exists():
            k += 1
            p = base.with_name(base.name + f"_{k}")
        return p

    def _truncate_csv(self, t_env: int) -> None:
        """On resume, rows written after the checkpoint would be written again: keep a backup, drop them."""
        path = self.run_dir / "metrics.csv"
        if not path.exists():
            return
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if int(r["t_env"]) <= t_env]
        if len(keep) == len(rows):
            return
        shutil.copy2(path, path.with_name(f"metrics.csv.before-resume-{int(time.time())}"))
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(keep)
        os.replace(tmp, path)

    def _row(self, kind: str, m: dict) -> None:
        self._csv.writerow({"kind": kind, "t_env": self.t_env, "episodes": self.episodes,
                            "updates": self.updates, "wall_s": round(self.wall, 3), **m})

    # ---- checkpoints ----------------------------------------------------------------------------
    def _world_rngs(self, env) -> list:
        w = getattr(env, "world", None)
        return [] if w is None else [_rng_state(g) for g in w.rngs]

    def save(self, path: str | Path | None = None) -> Path:
        ck_dir = self.run_dir / "checkpoints"
        path = Path(path) if path is not None else ck_dir / f"t{self.t_env:010d}.pt"
        meta = {"config": self.cfg.to_dict(), "fingerprint": self.fingerprint, "run_dir": str(self.run_dir),
                "t_env": self.t_env, "episodes": self.episodes, "rounds": self.rounds, "last_test": self.last_test,
                "last_save": self.last_save, "wall": self.wall, "rng": _rng_state(self.rng), "updates": self.updates,
                "env_rngs": self._world_rngs(self.env), "test_env_rngs": self._world_rngs(self.test_env),
                "algorithm": self.cfg.algorithm_name, "saved_at": _dt.datetime.now().isoformat(timespec="seconds")}
        st = self.host.state(self.cfg.run.save_buffer)
        meta["learner_rng"] = st["rng"]
        tensors = {"learner": st["learner"], "torch_rng": torch.get_rng_state()}
        if self.cfg.run.save_buffer:
            tensors["buffer"] = st["buffer"]
        if self.host.lag:
            # what the actors use now, and the rounds learnt but not yet handed to them: a resumed run
            # continues on the same schedule
            tensors["actor"] = _as_tensors(actor_weights(self.agent, self.mixer))
            meta["pending_updates"] = [r.updates for r in self.host.ready]
            tensors["pending_weights"] = [_as_tensors(r.weights) for r in self.host.ready]
        save_checkpoint(path, meta, tensors)
        if path.parent == ck_dir:
            save_checkpoint(ck_dir / "latest.pt", meta, tensors)
        self.cb.on_checkpoint(str(path))
        return path

    def _restore(self, meta: dict, tensors: dict) -> None:
        check_compatible(meta, self.fingerprint, meta.get("path", "checkpoint"))
        self.host.load({"learner": tensors["learner"], "rng": meta.get("learner_rng"),
                        "buffer": tensors.get("buffer")})
        torch.set_rng_state(tensors["torch_rng"])
        # updates logged so far: a pending round's are logged when the actors take it, after the resume
        self.updates = int(meta.get("updates", tensors["learner"]["updates"]))
        if self.host.lag:
            actor = tensors.get("actor") or {k: tensors["learner"][k] for k in ("agent", "mixer")
                                             if k in tensors["learner"]}
            load_actor_weights(self.agent, self.mixer, actor)
            for ums, w in zip(meta.get("pending_updates", []), tensors.get("pending_weights", [])):
                self.host.ready.append(RoundResult(ums, w))
        self.t_env, self.episodes, self.rounds = meta["t_env"], meta["episodes"], meta["rounds"]
        self.last_test, self.last_save, self.wall = meta["last_test"], meta["last_save"], meta["wall"]
        _set_rng_state(self.rng, meta["rng"])
        for env, key in ((self.env, "env_rngs"), (self.test_env, "test_env_rngs")):
            w = getattr(env, "world", None)
            for g, st in zip([] if w is None else w.rngs, meta[key]):
                _set_rng_state(g, st)
        self._truncate_csv(self.t_env)

    def load_weights(self, path) -> dict:
        """Load only the networks of a checkpoint (for watching or evaluating)."""
        meta, tensors = load_checkpoint(path, self.device)
        check_compatible(meta, self.fingerprint, meta.get("path", str(path)))
        load_actor_weights(self.agent, self.mixer, tensors["learner"])
        return meta

    # ---- the loop ---------------------------------------------------------------------------------
    def epsilon(self) -> float:
        R = self.cfg.run
        return epsilon_at(self.t_env, R.epsilon_start, R.epsilon_finish, R.epsilon_anneal_steps)

    def evaluate(self, n_rounds: int = 1) -> dict:
        wins, rets = [], []
        for _ in range(n_rounds):
            b = self.test_runner.run(0.0, self.rng)
            wins.append(b.won)
            rets.append(b.episode_return)
        won, ret = np.concatenate(wins), np.concatenate(rets)
        return {"test_win_rate": float(won.mean()), "test_return": float(ret.mean()), "episodes": int(len(won))}

    def round(self) -> dict:
        """One round: collect num_envs episodes, store them, update; evaluate and save when due."""
        cfg = self.cfg
        t0 = time.perf_counter()
        eps = self.epsilon()
        self.runner.hook = self._step_hook if self.cb.wants_steps() else None
        batch = self.runner.run(eps, self.rng)
        self.host.submit(batch)  # a learner process starts on it at once
        steps = int(batch.length.sum())
        self.t_env += steps
        self.episodes += batch.size
        self.rounds += 1
        over = self.runner.overestimation(batch)
        for b in range(batch.size):
            m = {"return": float(batch.episode_return[b]), "won": int(batch.won[b]), "length": int(batch.length[b]),
                 "dead_enemies": int(batch.dead_enemies[b]), "epsilon": eps, "overestimation": float(over[b])}
            self._row("episode", m)
            self.cb.on_episode({"t_env": self.t_env, "episodes": self.episodes, **m})
        self.tb.add_scalar("episode/return", float(batch.episode_return.mean()), self.t_env)
        self.tb.add_scalar("episode/win_rate", float(batch.won.mean()), self.t_env)
        self.tb.add_scalar("episode/overestimation", float(over.mean()), self.t_env)
        self.tb.add_scalar("episode/epsilon", eps, self.t_env)
        ums = self._take_results(self.host.lag)
        dt = time.perf_counter() - t0
        self.wall += dt
        sps = steps / max(dt, 1e-9)
        self._log_updates(ums, {"steps_per_s": sps})
        um = ums[-1] if ums else None
        self.tb.add_scalar("perf/steps_per_s", sps, self.t_env)
        ev = None
        if self.t_env - self.last_test >= cfg.run.test_interval:
            self.last_test = self.t_env
            ev = self.evaluate()
            self._row("eval", {"test_win_rate": ev["test_win_rate"], "test_return": ev["test_return"]})
            self.tb.add_scalar("test/win_rate", ev["test_win_rate"], self.t_env)
            self.tb.add_scalar("test/return", ev["test_return"], self.t_env)
            self.cb.on_eval({"t_env": self.t_env, **ev})
        if cfg.run.save_interval and self.t_env - self.last_save >= cfg.run.save_interval:
            self.last_save = self.t_env
            self.save()
        self._csv_file.flush()
        return {"t_env": self.t_env, "episodes": self.episodes, "epsilon": eps, "steps_per_s": sps,
                "win_rate": float(batch.won.mean()), "return": float(batch.episode_return.mean()),
                "eval": ev, "update": um}

    def _take_results(self, keep: int) -> list:
        """Hand finished rounds to the actors until `keep` are outstanding; their update metrics."""
        ums = []
        while self.host.pending > keep:
            res = self.host.result()
            if res.weights is not None:
                load_actor_weights(self.agent, self.mixer, res.weights)
            ums += res.updates
        if ums:
            self.updates = ums[-1]["updates"]
        return ums

    def catch_up(self) -> None:
        """Give the actors the latest weights (end of training: evaluate and save what was learnt).
        Logs the updates this brings in."""
        self._log_updates(self._take_results(0), {})

    def _log_updates(self, ums: list, extra: dict) -> None:
        for um in ums:  # every update is logged
            self._row("update", {**um, **extra})  # the row's update count is this update's
            for k, v in um.items():
                if k != "updates":
                    self.tb.add_scalar(f"update/{k}", v, um["updates"])
            self.cb.on_update({"t_env": self.t_env, **extra, **um})

    def _step_hook(self, runner, t, rec, q, actions):
        return self.cb.on_step(StepContext(self.probe, self.env, t, rec, q, actions, self.t_env, self.epsilon()))

    def close(self) -> None:
        self.host.close()
        self._csv_file.close()
        self.tb.close()


def train(config: Config, callbacks: Callbacks | None = None, run_dir=None, resume=None, log=print) -> dict:
    """Train until `run.t_max` env steps (or `callbacks.should_stop()`); returns a summary."""
    tr = Trainer(config, run_dir=run_dir, resume=resume, callbacks=callbacks, log=log)
    cb = tr.cb
    cb.on_start({"mode": "train", "run_dir": str(tr.run_dir), "config": tr.cfg.to_dict(), "device": str(tr.device),
                 "env_info": tr.env.get_env_info(), "t_env": tr.t_env, "algorithm": tr.cfg.algorithm_name,
                 "learner_pid": tr.host.proc.pid if isinstance(tr.host, LearnerProcess) else None,
                 "save": tr.save})  # `save()` writes a checkpoint now, e.g. from on_step
    last = None
    try:
        limit = tr.cfg.run.time_limit_s
        stopped = False
        while tr.t_env < tr.cfg.run.t_max:
            if cb.should_stop() or (limit and tr.wall >= limit):
                stopped = cb.should_stop()
                break
            try:
                last = tr.round()
            except StopRequested:
                stopped = True
                break
        tr.catch_up()
        final_eval = {"test_win_rate": float("nan"), "test_return": float("nan")}
        if not stopped:  # a user's stop should be quick: skip the final evaluation
            final_eval = tr.evaluate()
            tr._row("eval", {"test_win_rate": final_eval["test_win_rate"], "test_return": final_eval["test_return"]})
        ck = tr.save()
        summary = {"run_dir": str(tr.run_dir), "t_env": tr.t_env, "episodes": tr.episodes,
                   "updates": tr.updates, "final_test_win_rate": final_eval["test_win_rate"],
                   "final_test_return": final_eval["test_return"], "checkpoint": str(ck), "last_round": last,
                   "stopped": stopped}
        cb.on_end(summary)
        return summary
    finally:
        tr.close()
