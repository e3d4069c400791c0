"""`train(config, callbacks)`: the one training loop — used by the CLI, the GUI's trainer
process, sweeps and tests. Writes a run directory: config.toml, metrics.csv, TensorBoard
events (tb/) and checkpoints (checkpoints/)."""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import json
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch

from ..config import Config, ConfigError, apply_overrides, flatten, from_dict, parse_override
from ..core.buffer import describe_buffer
from ..core.envs import make_env_for
from ..core.networks import actor_weights, build_networks, load_actor_weights
from ..core.probe import Probe
from ..core.runner import ExplorationHold, Runner, env_epsilons, epsilon_at
from ..core.trace import EpisodeTrace
from ..errors import DivergenceError, RunDirError
from ..files import rundir
from ..files.checkpoint import (
    CheckpointError,
    check_compatible,
    fingerprint_differences,
    link_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from ..files import metrics
from . import live
from .script import load_script, script_digest
from ..files.atomic import remove_stale_temps
from ..files.rundir import RunDir
from ..files.episode_file import EpisodeRecorder
from .callbacks import Callbacks, StepContext, StopRequested, complete
from .learner_host import InlineLearner, LearnerProcess, RoundResult
from .resources import check_memory

# what a checkpoint must agree on with the run that resumes it: everything that shapes the networks, the
# optimizer's state or the environment (run.* keys and learning rates may change)
RESUME_KEYS = ("env.map_name", "env.profile", "env.options", "env.num_envs", "algo.mixer", "algo.res",
               "algo.res_beta", "algo.res_lambda", "algo.res_exact", "algo.agent_hidden", "algo.mixing_embed",
               "algo.hypernet_embed", "learner.optimizer", "learner.buffer_size")


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


def _config_keys(cfg_dict: dict, keys) -> dict:
    out = {}
    for k in keys:
        section, name = k.split(".", 1)
        out[k] = cfg_dict.get(section, {}).get(name)
    return out


class Trainer:
    """Everything one run holds. `train()` drives it; the GUI's trainer process drives it too.

    `resume` is a checkpoint file or run directory; the run then writes into the directory holding that
    checkpoint (or `run_dir`, to continue it elsewhere). A new run refuses a `run_dir` that holds a run
    unless `overwrite`."""

    def __init__(self, cfg: Config, run_dir: str | Path | None = None, resume: str | Path | None = None,
                 callbacks: Callbacks | None = None, log=print, overwrite: bool = False,
                 overrides: list[str] | None = None):
        self.cb = complete(callbacks)
        self.log = log
        ckpt = None
        clear_first = False  # --overwrite: the run already in run_dir goes, once every check has passed
        if resume is not None:
            meta, tensors = load_checkpoint(resume)
            if meta.get("fallback"):
                log(meta["fallback"])
            ckpt = (meta, tensors)
            if cfg is None:  # the checkpoint's own config; overrides may change run.* keys (e.g. train longer)
                notes: list = []
                # learner/algo keys that change live are not the run's start: they apply as events (below)
                start_sets = [o for o in overrides or [] if parse_override(o)[0].startswith("run.")
                              or parse_override(o)[0] not in live.LIVE_KEYS]
                cfg = apply_overrides(from_dict(meta["config"], notes=notes), start_sets)
                if notes:
                    log(f"{meta['path']} was written by an earlier version; its schedule keys are read as their "
                        f"equivalents (the same updates per episode and the same refresh period): " + "; ".join(notes))
            if run_dir is None:
                run_dir = rundir.of_checkpoint(resume)
            else:  # continuing elsewhere: a new directory, unless it is the checkpoint's own
                target = Path(run_dir).expanduser().resolve()
                try:
                    same = target == rundir.of_checkpoint(resume)
                except RunDirError:
                    same = False
                run_dir = target if same else rundir.for_new_run(target, overwrite)
                clear_first = overwrite and not same
        elif run_dir is not None:
            run_dir = rundir.for_new_run(run_dir, overwrite)
            clear_first = overwrite
        else:
            run_dir = rundir.new_run_dir(cfg.run.runs_dir, cfg.run.name, cfg.run.seed)
        if resume is None and cfg.run.branch_of:  # a branch's config.toml used for a new run: not a branch
            log(f"a new run from scratch: run.branch_of ({cfg.run.branch_of}) does not apply and is cleared")
            cfg = apply_overrides(cfg, ['run.branch_of=""'])
        self.cfg = cfg
        # a resume's --set of keys that change live: applied after the run's events, as events of their own
        self._resume_sets = list(overrides or []) if resume is not None else []
        # the config the run started with (config.toml, checkpoints); `cfg` is it with the live changes applied
        self.start_cfg = cfg
        self.events: list[live.LiveEvent] = []
        self._pending: list[tuple[str, object, str, int]] = []  # changes asked for, applied at the next round
        self._branch_requests: list[dict] = []  # branches asked for (branch_now), made at the next round
        self.eps_anchor: tuple[int, float] | None = None  # (env step, epsilon) the schedule restarted from
        run_dir = Path(run_dir).expanduser().resolve()  # created once every check below has passed
        R = cfg.run
        threads = R.threads or (1 if R.learner_process else 0)
        if threads:  # with a learner process, acting keeps one core and learning the other
            import numba

            torch.set_num_threads(threads)
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        self.device = resolve_device(R.device)
        torch.manual_seed(R.seed)
        self.rng = np.random.default_rng(R.seed)
        probe_env = make_env_for(cfg, 1, R.seed, autoreset=False)  # the dimensions, before sizing anything
        dims = {"obs_dim": probe_env.obs_dim, "state_dim": probe_env.state_dim, "n_agents": probe_env.n_agents,
                "n_actions": probe_env.n_actions, "episode_limit": probe_env.episode_limit}
        check_memory(cfg, dims)
        self.env = make_env_for(cfg, cfg.env.num_envs, R.seed, autoreset=False)
        self.test_env = make_env_for(cfg, R.test_episodes, R.seed + 10_007, autoreset=False)
        e = self.env
        self.fingerprint = {"map_name": cfg.env.map_name, "n_agents": e.n_agents, "n_actions": e.n_actions,
                            "obs_dim": e.obs_dim, "state_dim": e.state_dim, "mixer": cfg.algo.mixer,
                            "agent_hidden": cfg.algo.agent_hidden, "mixing_embed": cfg.algo.mixing_embed,
                            "hypernet_embed": cfg.algo.hypernet_embed}
        if ckpt is not None:  # before a learner process exists: a checkpoint that does not fit leaks nothing
            self._check_resume_fits(ckpt[0])
        self.run_dir = rundir.prepare(run_dir)
        self._lock = rundir.DirLock(self.run_dir, "run directory")  # one training per run directory
        self.rd = RunDir(self.run_dir)
        if clear_first and rundir.holds_run(run_dir):
            rundir.clear(run_dir)
            rundir.prepare(run_dir)
        self.host = None
        try:
            # the actors' networks; with an inline learner they are also the ones it trains
            self.agent, self.mixer = build_networks(cfg, dims, self.device)
            if R.learner_process:
                self.host = LearnerProcess(cfg, dims, self.device, self.agent, self.mixer,
                                           threads=R.learner_threads or R.threads or 1)
            else:
                self.host = InlineLearner(cfg, dims, self.device, self.agent, self.mixer)
            self._open(ckpt, dims)
        except BaseException:
            if self.host is not None:
                self.host.close()
            self._lock.release()
            raise

    def _open(self, ckpt, dims) -> None:
        cfg, e = self.cfg, self.env
        self.updates = 0
        self.skipped_updates = 0
        self.runner = Runner(e, self.agent, self.device, cfg.learner.gamma, cfg.learner.bootstrap_timeouts)
        self.runner.mixer = self.mixer
        if cfg.run.epsilon_hold > 0:
            self.runner.hold = ExplorationHold(e.num_envs, e.n_agents, cfg.run.epsilon_hold)
        self.test_runner = Runner(self.test_env, self.agent, self.device, cfg.learner.gamma)
        self.probe = Probe(self.agent, self.mixer, cfg.algo.res_beta if cfg.algo.res else None)
        self._recorder = EpisodeRecorder(0)
        self._next_record = None  # the first multiple of record_interval at or after the (resumed) start
        self._first_win = any(self.rd.episodes.glob("*_firstwin.npz"))
        self.t_env = self.episodes = self.rounds = 0
        self.last_test = -10**18
        self.last_save = 0
        self.wall = 0.0
        self.last_checkpoint: str | None = None  # the newest checkpoint known good (for a divergence message)
        gone = remove_stale_temps(self.rd.checkpoints)
        if gone:
            self.log(f"removed {len(gone)} temp file(s) left by an interrupted save: "
                     + ", ".join(p.name for p in gone))
        if ckpt is not None:
            try:
                self._restore(*ckpt)
            except KeyError as e:  # a digest guards against corruption; this is a file written by other code
                raise CheckpointError(f"{ckpt[0]['path']} has malformed metadata: missing {e}") from None
        if ckpt is not None and rundir.config_edited(self.run_dir):
            self._report_edited_config(ckpt[0])
        self._write_config()
        self._requests = live.RequestReader(self.run_dir, max((e.request for e in self.events), default=-1))
        self.script = load_script(cfg.run.script, cfg, log=self.log) if cfg.run.script else []
        self._script_i = int(ckpt[0].get("script_done", 0)) if ckpt is not None else 0
        self._script_digest = script_digest(cfg.run.script) if cfg.run.script else None
        if ckpt is not None and cfg.run.script:
            self._report_edited_script(ckpt[0])
        self._csv_file = open(self.rd.metrics, "a", newline="")
        self._csv = csv.DictWriter(self._csv_file, metrics.COLUMNS, extrasaction="ignore")
        if self._csv_file.tell() == 0:
            self._csv.writeheader()
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(self.rd.tb))
        self.log(describe_buffer(cfg.learner.buffer_size, dims["episode_limit"], dims["n_agents"], dims["obs_dim"],
                                 dims["state_dim"], dims["n_actions"])
                 + (" (in a learner process)" if cfg.run.learner_process else ""))

    def _report_edited_config(self, meta: dict) -> None:
        """config.toml was edited after the run wrote it: the checkpoint's config is what the run is (a config
        changes on resume with --set), so say what the edit changed and keep it beside the new config.toml."""
        import tomllib

        from ..config import convert_legacy, flatten

        try:
            edited = flatten(convert_legacy(tomllib.loads((self.run_dir / "config.toml").read_text()))[0])
        except (OSError, tomllib.TOMLDecodeError, ConfigError):
            edited = {}
        ran = flatten(self.start_cfg.to_dict())
        diffs = [f"{k}: {edited[k]!r} in the file, {ran.get(k)!r} in the run" for k in edited if edited[k] != ran.get(k)]
        kept = rundir.keep_edited_config(self.run_dir)
        self.log(f"warning: {self.run_dir / 'config.toml'} was edited after the run wrote it"
                 + (f" ({'; '.join(diffs)})" if diffs else "") + f"; the run goes on with its checkpoint's config "
                 f"(change keys on resume with --set) and the edited file is kept as {kept.name}")

    def _check_resume_fits(self, meta: dict) -> None:
        diffs = fingerprint_differences(meta.get("fingerprint", {}), self.fingerprint)
        saved = _config_keys(meta["config"], RESUME_KEYS)
        diffs += [f"{k}: checkpoint has {saved[k]!r}, this run has {v!r}"
                  for k, v in _config_keys(self.cfg.to_dict(), RESUME_KEYS).items() if saved[k] != v]
        if diffs:
            raise CheckpointError(f"{meta['path']} does not fit this configuration — " + "; ".join(dict.fromkeys(diffs)))

    # ---- run directory -------------------------------------------------------------------------
    def _row(self, kind: str, m: dict) -> None:
        self._csv.writerow({"kind": kind, "t_env": self.t_env, "episodes": self.episodes,
                            "updates": self.updates, "wall_s": round(self.wall, 3), **m})

    # ---- checkpoints ----------------------------------------------------------------------------
    def _world_rngs(self, env) -> list:
        w = getattr(env, "world", None)
        return [] if w is None else [_rng_state(g) for g in w.rngs]

    def save(self, path: str | Path | None = None, with_buffer: bool | None = None) -> Path:
        """Write a checkpoint: `checkpoints/t<steps>.pt` (without the replay buffer) and `latest.pt` (with it
        when `with_buffer`, default `run.save_buffer`; graceful stops pass True). Refuses non-finite weights.
        `path`: one file elsewhere instead (with the buffer when asked)."""
        with_buffer = self.cfg.run.save_buffer if with_buffer is None else with_buffer
        # every metrics row up to this checkpoint's t_env reaches the file first: a run killed just after the
        # checkpoint lost its last round's rows (still in the file's buffer), and a resume starts after them
        self._csv_file.flush()
        rd = self.rd
        meta = {"config": self.start_cfg.to_dict(), "events": [dataclasses.asdict(e) for e in self.events],
                "script_done": getattr(self, "_script_i", 0),
                "script_digest": getattr(self, "_script_digest", None),
                "fingerprint": self.fingerprint, "run_dir": str(self.run_dir),
                "t_env": self.t_env, "episodes": self.episodes, "rounds": self.rounds, "last_test": self.last_test,
                "last_save": self.last_save, "wall": self.wall, "rng": _rng_state(self.rng), "updates": self.updates,
                "skipped_updates": self.skipped_updates,
                "env_rngs": self._world_rngs(self.env), "test_env_rngs": self._world_rngs(self.test_env),
                "algorithm": self.cfg.algorithm_name, "saved_at": _dt.datetime.now().isoformat(timespec="seconds")}
        st = self.host.state()  # the buffer, when asked for, is written where it lives (save_with_buffer)
        bad = [f"{part}.{k}" for part in ("agent", "mixer") for k, v in st["learner"].get(part, {}).items()
               if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise DivergenceError(f"not writing a checkpoint at {self.t_env:,} env steps: the weights hold non-finite "
                                  f"values ({', '.join(bad[:3])}); the last good checkpoint is "
                                  f"{self.last_checkpoint or 'none'}")
        meta["learner_rng"] = st["rng"]
        tensors = {"learner": st["learner"], "torch_rng": torch.get_rng_state()}
        if self.host.lag:
            # what the actors use now, and the rounds learnt but not yet handed to them: a resumed run
            # continues on the same schedule
            tensors["actor"] = _as_tensors(actor_weights(self.agent, self.mixer))
            meta["pending_updates"] = [r.updates for r in self.host.ready]
            tensors["pending_weights"] = [_as_tensors(r.weights) for r in self.host.ready]
        if path is not None:
            path = Path(path)
            if with_buffer:
                self.host.save_with_buffer(path, {**meta, "has_buffer": True}, tensors)
            else:
                save_checkpoint(path, {**meta, "has_buffer": False}, tensors)
        else:
            path = save_checkpoint(rd.step_checkpoint(self.t_env), {**meta, "has_buffer": False}, tensors)
            latest = rd.latest
            if with_buffer:
                self.host.save_with_buffer(latest, {**meta, "has_buffer": True}, tensors)
            else:
                link_checkpoint(path, latest)
        self.last_checkpoint = str(path)
        self.cb.on_checkpoint(str(path))
        return path

    def _restore(self, meta: dict, tensors: dict) -> None:
        self.last_checkpoint = meta["path"]
        # the live changes up to the checkpoint, in order, before the learner's state (its rate is the config's)
        for d in meta.get("events", []):
            self._apply_change(live.LiveEvent(**d), replay=True)
        for key, value in (parse_override(o) for o in self._resume_sets):
            # `train --resume --set` wins over the run's earlier events of the key, and is an event itself
            if key in live.LIVE_KEYS and flatten(live.changed(self.cfg, key, value)[0].to_dict())[key] != \
                    flatten(self.cfg.to_dict())[key]:
                self._pending.append((key, value, "resume", -1))
        live.write_events(self.run_dir, self.events)  # changes made after the checkpoint are made again, or not
        if tensors.get("buffer") is None:
            self.log(f"warning: resuming from {meta['path']} without a replay buffer (only checkpoints written at a "
                     f"graceful stop, or with run.save_buffer = true, hold one): learning restarts from an empty "
                     f"buffer, so this run will not match an uninterrupted one exactly")
        self.host.load({"learner": tensors["learner"], "rng": meta.get("learner_rng"),
                        "buffer": tensors.get("buffer")}, path=meta["path"])
        torch.set_rng_state(tensors["torch_rng"])
        # updates logged so far: a pending round's are logged when the actors take it, after the resume
        self.updates = int(meta.get("updates", tensors["learner"]["updates"]))
        self.skipped_updates = int(meta.get("skipped_updates", 0))
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
        metrics.repair(self.rd.metrics, self.t_env, self.log)

    def load_weights(self, path) -> dict:
        """Load only a checkpoint's networks into this run's actors (warm-starting from another run's policy);
        they must fit this run's networks and environment. Watching and evaluating use `load_policy`."""
        meta, tensors = load_checkpoint(path, self.device)
        check_compatible(meta, self.fingerprint, meta.get("path", str(path)))
        load_actor_weights(self.agent, self.mixer, tensors["learner"])
        return meta

    # ---- the loop ---------------------------------------------------------------------------------
    def epsilon(self) -> float:
        return self._epsilon_at(self.t_env)

    def _epsilon_at(self, t: int) -> float:
        R = self.cfg.run
        if self.eps_anchor is None:
            return epsilon_at(t, R.epsilon_start, R.epsilon_finish, R.epsilon_anneal_steps)
        t0, start = self.eps_anchor  # restarted by a live change: annealing from there
        return epsilon_at(t - t0, start, R.epsilon_finish, R.epsilon_anneal_steps)

    # ---- live settings (models.training.live) ------------------------------------------------------
    def set(self, key: str, value, source: str = "api") -> None:
        """Change a setting of the running training: checked now (a ConfigError names a locked key or a bad
        value), applied at the next round boundary, recorded as an event."""
        live.changed(self.cfg, key, value)
        self._pending.append((key, value, source, -1))

    def branch_now(self, changes: dict) -> None:
        """Branch this training at the next round boundary (`models.training.branch`): a checkpoint is written
        then and the branch made from it; this run goes on unchanged. The changes are checked now."""
        from .branch import check_changes

        check_changes(self.cfg, changes)
        self._branch_requests.append(dict(changes))

    def _report_edited_script(self, meta: dict) -> None:
        """A script edited between a stop and this resume: say what is replayed and what is not."""
        was = meta.get("script_digest")
        if was is None or was == self._script_digest:
            return
        done = self._script_i
        ahead = [st.at for st in self.script if st.at > self.t_env]
        self.log(f"warning: the experiment script {self.cfg.run.script} changed since the checkpoint at "
                 f"{self.t_env:,} env steps: the {done} step(s) played before it are not played again (their changes "
                 f"are among the run's events); the file as it is now plays from here: "
                 f"{len(ahead)} step(s) ahead" + (f", the first at {min(ahead):,} env steps" if ahead else ""))
        # the steps counted as played are the first `done` of the old file; in the new one, those at or before
        # the checkpoint are the ones already behind
        self._script_i = sum(1 for st in self.script if st.at <= self.t_env)

    def apply_now(self) -> None:
        """The live changes asked for so far, applied at once (a branch applies its own at its branch point)."""
        self._apply_pending()

    def forget_requests(self) -> None:
        """From here this run's request log is its own: events inherited from a parent no longer count its lines
        (a branch starts an empty log in its own directory)."""
        for e in self.events:
            e.request = -1
        self._requests = live.RequestReader(self.run_dir, -1)

    def _apply_pending(self) -> None:
        branches, self._branch_requests = self._branch_requests, []
        while self._script_i < len(self.script) and self.script[self._script_i].at <= self.t_env:
            st = self.script[self._script_i]
            self._script_i += 1
            self._pending += [(k, v, "script", -1) for k, v in st.set.items()]
            if st.break_on is not None:
                self.log(f"experiment script: break on {', '.join(st.break_on) or 'nothing'} from "
                         f"{self.t_env:,} env steps")
                self.cb.on_script_break(list(st.break_on))
            if st.branch:
                branches.append(st.branch)
        for line, d in self._requests.new():
            if "error" in d:
                self.log(f"warning: ignored {d['error']}")
                continue
            self._pending.append((d["key"], d["value"], str(d.get("source", "cli")), line))
        pending, self._pending = self._pending, []
        for key, value, source, line in pending:
            try:
                new_cfg, old = live.changed(self.cfg, key, value)
            except ConfigError as e:  # valid when asked, not now (another change came first), or from the file
                self.log(f"warning: live change not applied: {e}")
                continue
            new = flatten(new_cfg.to_dict())[key]
            self._apply_change(live.LiveEvent(self.t_env, self.updates, self.episodes, round(self.wall, 3), key, old,
                                              new, source, line))
        for changes in branches:  # from a checkpoint written now (with the buffer); this run goes on as it was
            from .branch import branch

            ck = self.save(with_buffer=True)
            try:
                branch(self.rd.latest, [f"{k}={json.dumps(v)}" for k, v in changes.items()],
                       log=self.log)
            except (ValueError, OSError) as e:  # a branch that cannot be made never stops this training
                self.log(f"warning: no branch made at {self.t_env:,} env steps (from {ck}): {e}")

    def _apply_change(self, ev: "live.LiveEvent", replay: bool = False) -> None:
        new_cfg, _ = live.changed(self.cfg, ev.key, ev.new)
        if ev.key in live.EPSILON_KEYS:
            start = new_cfg.run.epsilon_start if ev.key == "run.epsilon_start" else self._epsilon_at(ev.t_env)
            self.eps_anchor = (ev.t_env, float(start))
        self.cfg = new_cfg
        if ev.key.startswith(("learner.", "algo.")):
            self.host.set_config(new_cfg)  # a learner process takes it before the next round's updates
        if ev.key == "algo.res_beta" and self.probe.res_beta is not None:
            self.probe.res_beta = new_cfg.algo.res_beta
        self.events.append(ev)
        if not replay:
            live.write_events(self.run_dir, self.events)
            self._write_config()
            self.log(f"live change: {ev.describe()}")
            self.cb.on_live_change(ev)

    def _write_config(self) -> None:
        text = self.start_cfg.to_toml()
        if self.events:
            text += (f"\n# changed live while training ({len(self.events)} change(s)): see {live.EVENTS_FILE}; "
                     f"a resume re-applies them\n")
        rundir.write_config(self.run_dir, text)

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
        self._apply_pending()  # the live changes asked for since the last round (a stat of the control file)
        cfg = self.cfg
        t0 = time.perf_counter()
        eps = self.epsilon()
        watched = self.cb.wants_steps()
        self.runner.hook = self._step_hook if watched else None
        if watched and self.runner.tracer is None:
            self.runner.tracer = EpisodeTrace(self.probe, cfg.learner.gamma)
        t_before = self.t_env
        self.runner.recorder = self._recorder if (self._record_due(t_before) or self.cb.wants_episode()) else None
        eps_env = env_epsilons(eps, self.env.num_envs, cfg.run.epsilon_spread)
        batch = self.runner.run(eps_env if cfg.run.epsilon_spread > 0 else eps, self.rng)
        if self.runner.recorder is not None:  # before an inline learner changes the weights that played it
            self._keep_recording(batch, t_before, float(eps_env[0]))
        steps = int(batch.length.sum())
        self.host.submit(batch, self.t_env + steps)  # a learner process starts on it at once
        self.t_env += steps
        self.episodes += batch.size
        self.rounds += 1
        over = self.runner.overestimation(batch)
        for b in range(batch.size):
            m = {"return": float(batch.episode_return[b]), "won": int(batch.won[b]), "length": int(batch.length[b]),
                 "dead_enemies": int(batch.dead_enemies[b]), "epsilon": float(eps_env[b]),
                 "overestimation": float(over[b])}
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

    def _record_due(self, t: int) -> bool:
        R = self.cfg.run
        if not hasattr(self.env, "world"):  # matrix games: nothing to replay
            return False
        if self._next_record is None and R.record_interval > 0:
            self._next_record = -(-t // R.record_interval) * R.record_interval
        return (R.record_interval > 0 and t >= self._next_record) or (R.record_first_win and not self._first_win)

    def save_episode_so_far(self) -> str | None:
        """Write environment 0's episode up to the state it is in now (the round's recording must be on:
        `Callbacks.wants_episode`), for Replay and forks; its path, or None when nothing is recorded."""
        from ..files.episode_file import embed_weights, episode_header

        rec = self._recorder
        if self.runner.recorder is None or not getattr(rec, "steps", {}).get("actions"):
            return None
        k = len(rec.steps["actions"])
        hdr = episode_header(self.cfg, "train", checkpoint=None, t_env=self.t_env, epsilon=self.epsilon(),
                             seed=self.cfg.run.seed, episode_index=self.episodes, algorithm=self.cfg.algorithm_name,
                             dims=self.fingerprint)
        ep = rec.finish(self.probe, hdr)  # the recorder goes on recording the episode
        embed_weights(ep, self.agent, self.mixer)
        path = ep.save(self.rd.episodes / f"break_t{self.t_env:010d}_step{k:03d}.npz")
        self.cb.on_recorded(str(path))
        return str(path)

    def _keep_recording(self, batch, t_before: int, eps: float) -> None:
        """Keep environment 0's episode when an interval is due or it is the run's first win (env 0 is recorded
        every round until then: a few copies per step)."""
        from ..files.episode_file import embed_weights, episode_header

        R = self.cfg.run
        due = R.record_interval > 0 and t_before >= self._next_record
        first_win = R.record_first_win and not self._first_win and bool(batch.won[0])
        if not (due or first_win):
            return
        hdr = episode_header(self.cfg, "train", checkpoint=None, t_env=t_before, epsilon=eps, seed=self.cfg.run.seed,
                             episode_index=self.episodes, algorithm=self.cfg.algorithm_name,
                             dims=self.fingerprint)
        ep = self._recorder.finish(self.probe, hdr)
        embed_weights(ep, self.agent, self.mixer)
        name = f"train_t{t_before:010d}" + ("_firstwin" if first_win else "")
        try:
            self.cb.on_recorded(str(ep.save(self.rd.episodes / f"{name}.npz")))
        except OSError as e:  # a recording is a convenience: training goes on without it
            self.log(f"could not write the episode file {name}.npz: {e}")
        if due:
            self._next_record = (t_before // R.record_interval + 1) * R.record_interval
        if first_win:
            self._first_win = True

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
            bad = um.get("nonfinite")
            if bad:
                self.skipped_updates += 1
                um = {**um, "skipped_updates": self.skipped_updates}
            self._row("update", {**um, **extra})  # the row's update count is this update's
            if um.get("warning"):
                self.log(f"warning: {um['warning']}")
            for k, v in um.items():
                if k not in ("updates", "nonfinite", "warning"):
                    self.tb.add_scalar(f"update/{k}", v, um["updates"])
            self.cb.on_update({"t_env": self.t_env, **extra, **um})
            if bad and self.cfg.run.on_nonfinite == "stop":
                self._csv_file.flush()
                raise DivergenceError(
                    f"training diverged at update {um['updates']:,} ({self.t_env:,} env steps): non-finite {bad} "
                    f"(loss {um['loss']}); stopped without writing a checkpoint (run.on_nonfinite = \"stop\"); "
                    f"the last good checkpoint is {self.last_checkpoint or 'none (none was written yet)'}. "
                    f"Lower learner.lr, or set run.on_nonfinite = \"skip\" to drop such updates")
            if bad:
                self.log(f"warning: update {um['updates']:,} skipped: non-finite {bad} (run.on_nonfinite = \"skip\"; "
                         f"{self.skipped_updates} skipped so far)")

    def _step_hook(self, runner, t, rec, q, actions):
        return self.cb.on_step(StepContext(self.probe, self.env, t, rec, q, actions, self.t_env, self.epsilon(),
                                           runner.tracer))

    def close(self) -> None:
        self.host.close()
        self._csv_file.close()
        self.tb.close()
        self._lock.release()


class GracefulStop:
    """Ctrl-C and SIGTERM ask the loop to stop after the round in progress and save (with the replay
    buffer); a second Ctrl-C stops at once. Only in the main thread, where Python delivers signals."""

    def __init__(self, log):
        self.requested = False
        self.log = log
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.requested:
            self.requested = True
            self.log(f"{signal.Signals(signum).name}: stopping after this round and saving a checkpoint "
                     f"with the replay buffer (Ctrl-C again to stop at once)")

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def train(config: Config | None, callbacks: Callbacks | None = None, run_dir=None, resume=None, log=print,
          overwrite: bool = False, overrides: list[str] | None = None) -> dict:
    """Train until `run.t_max` env steps (or `callbacks.should_stop()`, Ctrl-C, SIGTERM); returns a summary.
    Every end but a divergence saves a checkpoint with the replay buffer. With `resume` and no `config`,
    the checkpoint's config plus `overrides` is used."""
    tr = Trainer(config, run_dir=run_dir, resume=resume, callbacks=callbacks, log=log, overwrite=overwrite,
                 overrides=overrides)
    cb = tr.cb
    cb.on_start({"mode": "train", "run_dir": str(tr.run_dir), "config": tr.cfg.to_dict(), "device": str(tr.device),
                 "env_info": tr.env.get_env_info(), "t_env": tr.t_env, "algorithm": tr.cfg.algorithm_name,
                 "learner_pid": tr.host.proc.pid if isinstance(tr.host, LearnerProcess) else None,
                 "save": tr.save,  # `save()` writes a checkpoint now, e.g. from on_step
                 "set": tr.set,  # a live change, applied at the next round
                 "branch": tr.branch_now,  # a branch of the training as it stands at the next round
                 "save_episode": tr.save_episode_so_far})  # env 0's episode so far (a breakpoint's)
    last = None
    try:
        with GracefulStop(log) as sig:
            stopped = False
            # what was asked of the run while it was stopped (`set`, a raised run.t_max) applies now, before the
            # end is judged: a finished run told to train longer does
            tr.apply_now()
            start_t = tr.t_env
            while tr.t_env < tr.cfg.run.t_max:
                limit = tr.cfg.run.time_limit_s  # both may change live
                if cb.should_stop() or sig.requested or (limit and tr.wall >= limit):
                    stopped = cb.should_stop() or sig.requested
                    break
                try:
                    last = tr.round()
                except StopRequested:
                    stopped = True
                    break
            final_eval = {"test_win_rate": float("nan"), "test_return": float("nan")}
            # a stop keeps the learner's rounds pending in the checkpoint, so a resume goes on exactly as if
            # never stopped; the end of training hands them to the actors, evaluates and saves what was learnt
            if not stopped and tr.t_env == start_t and resume is not None:
                stopped = True  # nothing trained: its final evaluation stands (no second row); say how to go on
                log(f"nothing to train: {tr.run_dir} is at {tr.t_env:,} env steps and run.t_max is "
                    f"{tr.cfg.run.t_max:,}; raise it (--set run.t_max=N, or qmix-workbench set DIR run.t_max=N)")
            if not stopped:
                tr.catch_up()
                final_eval = tr.evaluate()
                tr._row("eval", {"test_win_rate": final_eval["test_win_rate"],
                                 "test_return": final_eval["test_return"]})
            ck = tr.save(with_buffer=True)
        summary = {"run_dir": str(tr.run_dir), "t_env": tr.t_env, "episodes": tr.episodes,
                   "updates": tr.updates, "final_test_win_rate": final_eval["test_win_rate"],
                   "final_test_return": final_eval["test_return"], "checkpoint": str(ck), "last_round": last,
                   "stopped": stopped, "skipped_updates": tr.skipped_updates}
        cb.on_end(summary)
        return summary
    finally:
        tr.close()
