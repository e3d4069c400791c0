"""Episode files: one played episode on disk — what the arena draws, what the networks said at every step,
and enough of the battle's full state to re-simulate it bit-exactly (docs/episode_format.md).

`EpisodeRecorder` collects one environment's episode while it is played (the `Runner` feeds it), `Episode`
is an episode in memory (`save` / `load_episode`), and `Episode.snapshot(k)` gives step k as the same
snapshot type live training and Watch mode produce, so Replay mode is one more source for the same panels.
No Qt here: the CLI and the app share it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.mixers import QMixer
from ..core.networks import actor_weights
from ..core.snapshot import make_snapshot, probe_dict
from ..errors import WorkbenchError
from .atomic import atomic_file

FORMAT = "qmix-workbench-episode"
VERSION = 1
KEYFRAME_EVERY = 20  # full battle state every this many steps; a restore re-simulates at most 19 steps
# what the arena draws, per state (0..T), at drawing precision
DRAW_FIELDS = {"pos": np.float32, "health": np.float32, "shield": np.float32, "cooldown": np.float32,
               "alive": bool, "fire_tick": np.int32, "fire_point": np.float32, "order_kind": np.int8,
               "order_target": np.int16}
HYPER_FIELDS = ("w1", "b1", "w2", "v")


class EpisodeFileError(WorkbenchError, ValueError):
    """An episode file cannot be read or used as asked; the message names the file."""


@dataclass
class Episode:
    header: dict
    arrays: dict = field(default_factory=dict)
    path: str | None = None

    # ---- sizes and names --------------------------------------------------------------------------
    @property
    def length(self) -> int:
        """Executed steps T; states are 0..T (state T is the one the episode ended in)."""
        return int(self.arrays["actions"].shape[0])

    @property
    def n_agents(self) -> int:
        return int(self.arrays["actions"].shape[1])

    @property
    def n_actions(self) -> int:
        return int(self.arrays["avail"].shape[-1])

    @property
    def name(self) -> str:
        return self.path or "(unsaved episode)"

    def return_to_go(self) -> np.ndarray:
        """The discounted return earned from every step [T] (what Qtot predicts)."""
        r = self.arrays["reward"].astype(np.float64)
        g, out = 0.0, np.zeros(len(r))
        gamma = float(self.header.get("gamma", 0.99))
        for t in range(len(r) - 1, -1, -1):
            g = r[t] + gamma * g
            out[t] = g
        return out

    # ---- the battle's full state (for forks) ---------------------------------------------------------
    def keyframe(self, step: int) -> tuple[int, dict]:
        """(k0, full battle state at k0) for the last keyframe at or before `step`."""
        steps = self.arrays["key_steps"]
        i = int(np.searchsorted(steps, step, side="right") - 1)
        if i < 0:
            raise EpisodeFileError(f"{self.name} has no keyframe at or before step {step}")
        st = {k[4:]: self.arrays[k][i] for k in self.arrays if k.startswith("key.")}
        return int(steps[i]), st

    # ---- what a debugger looks for ----------------------------------------------------------------
    def markers(self) -> list[tuple[int, str]]:
        """(step, label) of the events a debugger looks for (`models.core.events`, the breakpoints' definition
        too), in step order. A state-index step: the event is visible in state k (after the action of step k-1)."""
        from ..core.events import EventDetector

        a = self.arrays
        out = []
        if "health" in a:
            import sims

            height = sims.load_scenario(self.header["map"], profile=self.header.get("profile", "lotv")).terrain.height
            det = EventDetector(self.n_agents, height)
            fields = ("health", "shield", "alive", "pos")
            for k in range(len(a["health"])):
                state = {f: a[f][k] for f in fields}
                labels = det.reset(state) if k == 0 else det.step(state)
                out += [(k, label) for label in labels]
        if "qtot" in a and self.length:
            gap = np.abs(a["qtot"].astype(np.float64) - self.return_to_go())
            k = int(np.argmax(gap))
            out.append((k, f"largest |Qtot - return| ({gap[k]:.2f})"))
        return sorted(out)

    # ---- step k as a snapshot (the panels' input) --------------------------------------------------------
    def joint_table(self, k: int) -> np.ndarray | None:
        """The whole joint-action Qtot table of step k (2 agents), recomputed from the stored Qi and the mixer's
        stored weights for that state (the table itself is not stored)."""
        a = self.arrays
        if self.n_agents != 2 or k >= self.length:
            return None
        q = a["q"][k].astype(np.float32)
        if "w1" in a:  # the mixer's own formula, with the weights it had in that state
            hyper = {f: torch.from_numpy(np.asarray(a[f][k], dtype=np.float32)) for f in HYPER_FIELDS}
            n_act = q.shape[1]
            cand = torch.from_numpy(np.stack(np.meshgrid(q[0], q[1], indexing="ij"), -1).reshape(-1, 2))
            return QMixer.mix(cand, hyper).reshape(n_act, n_act).numpy()
        if self.header.get("mixer") == "vdn":
            return q[0][:, None] + q[1][None, :]
        return None

    def snapshot(self, k: int) -> dict:
        """State k (0..T) in the live snapshot's shape; its network values are those of the decision taken
        in state k (for the final state, the last decision's)."""
        a, T = self.arrays, self.length
        if not 0 <= k <= T:
            raise IndexError(f"step {k} is outside the episode (0..{T})")
        d = min(k, T - 1)
        hyper = {f: a[f][d] for f in HYPER_FIELDS if f in a}
        joint = self.joint_table(d)
        av = a["avail"][d]
        probe = probe_dict(a["q"][d], av, a["actions"][d].astype(np.int64), a["greedy"][d].astype(np.int64),
                           _opt(a, "qtot", d), _opt(a, "qtot_greedy", d), joint,
                           None if joint is None else av[0][:, None] & av[1][None, :], hyper,
                           a["credit"][d] if "credit" in a else None, _opt(a, "res", d))
        world = None
        if "pos" in a:
            world = {f: a[f][k] for f in DRAW_FIELDS}
            world["tick"] = int(a["tick"][k])
        full = self._full_trace()
        return make_snapshot(t=k, t_env=int(self.header.get("t_env", 0)), epsilon=float(self.header.get("epsilon", 0.0)),
                             episode=int(self.header.get("episode_index", 0)), paused=True, probe=probe, world=world,
                             payoff=None, trace=full, last_episode=full, env0_done=k == T,
                             reward=float(a["reward"][k - 1]) if k > 0 else 0.0,
                             executed=None if k == 0 else a["actions"][k - 1].tolist(), cursor=k, replay=True)

    def _full_trace(self) -> dict:
        if getattr(self, "_trace_cache", None) is None:
            a = self.arrays
            T = self.length
            none = [None] * T
            self._trace_cache = {
                "qtot": a["qtot"].tolist() if "qtot" in a else a["q_taken_sum"].tolist(),
                "greedy": a["qtot_greedy"].tolist() if "qtot_greedy" in a else none,
                "res": a["res"].tolist() if "res" in a else none,
                "credit": a["credit"].tolist() if "credit" in a else none,
                "reward": a["reward"].tolist(), "return_to_go": self.return_to_go().tolist()}
        return self._trace_cache

    # ---- files ------------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write atomically: a temporary file beside the target, then a rename, so an interrupted write never
        leaves a torn episode file nor touches an earlier one."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        hdr = dict(self.header, format=FORMAT, version=VERSION, length=self.length)
        payload = {"header": np.frombuffer(json.dumps(hdr).encode(), dtype=np.uint8)}
        payload.update(self.arrays)
        with atomic_file(path) as f:
            np.savez_compressed(f, **payload)
        self.path = str(path)
        self.header = hdr
        return path


def _opt(a: dict, key: str, k: int):
    return float(a[key][k]) if key in a else None


def load_episode(path: str | Path) -> Episode:
    """Read an episode file; every way it can be unusable is an `EpisodeFileError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise EpisodeFileError(f"episode file {str(path)!r} does not exist")
    if path.is_dir():
        raise EpisodeFileError(f"{path} is a directory; expected an episode file (.npz)")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a lone .npy array
            raise ValueError("a single array, not an .npz archive")
        with z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - truncation, a corrupt deflate stream, pickled objects, not a zip...
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise EpisodeFileError(f"{path} is not a readable episode file (truncated or not an .npz): {reason}") from None
    if "header" not in arrays:
        raise EpisodeFileError(f"{path} is not a qmix-workbench episode file (no header)")
    try:
        header = json.loads(arrays.pop("header").tobytes().decode())
        if not isinstance(header, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as e:
        raise EpisodeFileError(f"{path} has a malformed header: {e}") from None
    if header.get("format") != FORMAT:
        raise EpisodeFileError(f"{path} is not a qmix-workbench episode file (format {header.get('format')!r}, "
                               f"expected {FORMAT!r})")
    if header.get("version") != VERSION:
        raise EpisodeFileError(f"{path} has episode format version {header.get('version')!r}; this version of "
                               f"qmix-workbench reads version {VERSION}")
    import sims

    known = sims.list_scenarios()
    if header.get("map") not in known:
        raise EpisodeFileError(f"{path} is an episode of map {header.get('map')!r}, which this simulator does not "
                               f"have (maps: {', '.join(known)})")
    missing = [k for k in ("actions", "avail", "q", "reward", "greedy", "key_steps", *DRAW_FIELDS, "tick")
               if k not in arrays]
    if missing:
        raise EpisodeFileError(f"{path} is incomplete: missing {', '.join(missing)}")
    _check_shapes(path, header, arrays)
    return Episode(header, arrays, str(path))


def _check_shapes(path, header: dict, a: dict) -> None:
    """The arrays agree with each other and the header, so that replaying any step cannot index past them."""
    def bad(what):
        raise EpisodeFileError(f"{path} is inconsistent: {what}")

    for key, typ in (("length", int), ("gamma", (int, float)), ("t_env", int), ("episode_index", int)):
        if key in header and (isinstance(header[key], bool) or not isinstance(header[key], typ)):
            bad(f"header field {key!r} is {header[key]!r}, expected a number")
    if a["actions"].ndim != 2 or a["q"].ndim != 3 or a["pos"].ndim != 3 or a["avail"].ndim != 3:
        bad("actions, q, pos or avail has the wrong number of dimensions")
    T, n = a["actions"].shape
    if T < 1:
        bad("it holds no steps")
    A, U = a["q"].shape[2], a["pos"].shape[1]
    want = {"q": (T, n, A), "greedy": (T, n), "reward": (T,), "avail": (T + 1, n, A), "pos": (T + 1, U, 2),
            "tick": (T + 1,), **{f: (T + 1, U) for f in DRAW_FIELDS if f not in ("pos", "fire_point")},
            "fire_point": (T + 1, U, 2)}
    for f, shape in want.items():
        if a[f].shape != shape:
            bad(f"{f} has shape {a[f].shape}, expected {shape} for {T} steps")
    if header.get("length") != T:
        bad(f"header says {header.get('length')} steps, the arrays hold {T}")
    if not np.issubdtype(a["actions"].dtype, np.integer) or a["actions"].min() < 0 or a["actions"].max() >= A:
        bad(f"actions must be integers in 0..{A - 1}")


class EpisodeRecorder:
    """Collects one environment's episode while a `Runner` (or a fork) plays it.

    `begin(env, start_step)` after a reset or restore; `step(...)` after each env step with what the agents
    saw and did; `finish(probe)` computes the networks' per-step values in one batch and returns the arrays.
    Cheap per step: a few small copies of one battle's arrays.
    """

    def __init__(self, env_index: int = 0):
        self.env_index = env_index
        self.active = False

    def begin(self, env, start_step: int = 0) -> None:
        self.active = True
        self.final_avail = None
        self.start = start_step
        self.draw = {f: [] for f in DRAW_FIELDS}
        self.tick, self.keys, self.key_steps = [], [], []
        self.steps = {"actions": [], "forced": [], "avail": [], "q": [], "greedy": [], "reward": [],
                      "hidden": [], "state": []}
        self.key_at_start = int(env.world.rng_key[self.env_index])
        self._capture(env, start_step)

    def _capture(self, env, k: int) -> None:
        b, w = self.env_index, env.world
        for f, dt in DRAW_FIELDS.items():
            self.draw[f].append(np.array(getattr(w, f)[b], dtype=dt))  # a copy: alive is bool already
        self.tick.append(int(w.tick[b]))
        if (k - self.start) % KEYFRAME_EVERY == 0:
            self.keys.append(env.save_state(b))
            self.key_steps.append(k)

    def step(self, env, k: int, q, hidden, state, avail, actions, forced, reward: float, terminated: bool) -> None:
        """Step k (the decision in state k) of this env: Qs [n, A], the GRU state before it [n, H], the global
        state and masks it acted in, the executed joint action, which of it was forced, and its outcome."""
        if not self.active:
            return
        s = self.steps
        s["q"].append(_np(q).astype(np.float32))
        s["hidden"].append(_np(hidden).astype(np.float32))
        s["state"].append(np.asarray(state, dtype=np.float32))
        av = np.asarray(avail, dtype=bool)
        s["avail"].append(av)
        s["actions"].append(np.asarray(actions, dtype=np.int16))
        s["forced"].append(np.asarray(forced, dtype=bool))
        qa = np.where(av, s["q"][-1], -np.inf)
        s["greedy"].append(qa.argmax(-1).astype(np.int16))
        s["reward"].append(np.float32(reward))
        self._capture(env, k + 1)
        if terminated:
            self.final_avail = np.asarray(env._avail[self.env_index], dtype=bool) if hasattr(env, "_avail") else av
            self.active = False

    def finish(self, probe, header: dict) -> Episode:
        """The episode as an `Episode` (from the recorder's start step on); `probe` computes Qtot, greedy Qtot,
        credit, the mixer's weights and RES's target for all steps in one batch."""
        s = self.steps
        a = {f: np.stack(v) for f, v in self.draw.items()}
        a["tick"] = np.asarray(self.tick, dtype=np.int32)
        for f in ("actions", "forced", "q", "greedy", "hidden"):
            a[f] = np.stack(s[f])
        a["reward"] = np.asarray(s["reward"], dtype=np.float32)
        final = s["avail"][-1] if self.final_avail is None else self.final_avail
        a["avail"] = np.stack(s["avail"] + [final])
        a["key_steps"] = np.asarray(self.key_steps, dtype=np.int32)
        for name in self.keys[0]:
            a["key." + name] = np.stack([k[name] for k in self.keys])
        a.update(network_values(probe, a["q"], np.stack(s["state"]), a["avail"][:-1], a["actions"]))
        hdr = dict(header)
        hdr["episode_key"] = str(self.key_at_start)
        hdr["forced"] = [[int(t) + self.start, int(i), int(a["actions"][t, i])] for t, i in np.argwhere(a["forced"])]
        return Episode(hdr, a)


def network_values(probe, q: np.ndarray, state: np.ndarray, avail: np.ndarray, actions: np.ndarray) -> dict:
    """Per-step Qtot (taken, greedy), credit, hypernetwork outputs and RES target for K states, one batch."""
    dev = next(probe.agent.parameters()).device
    qt = torch.from_numpy(np.ascontiguousarray(q)).to(dev)
    v = probe.trace_batch(qt, state, avail, actions.astype(np.int64))
    out = {"qtot": v["qtot"].astype(np.float32), "qtot_greedy": v["greedy"].astype(np.float32)}
    if probe.mixer is not None:
        out["credit"] = np.asarray(v["credit"], dtype=np.float32)
        with torch.no_grad():
            hyper = probe.mixer.hyper(torch.from_numpy(state).to(dev))
        for f in HYPER_FIELDS:
            if f in hyper:
                out[f] = hyper[f].cpu().numpy().astype(np.float32)
    if v["res"] is not None:
        out["res"] = np.asarray(v["res"], dtype=np.float32)
    return out


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def concat(prefix: Episode, k: int, tail: Episode) -> Episode:
    """`prefix`'s steps before k followed by `tail`, recorded from state k on (a fork's continuation as a whole
    episode)."""
    a, b = prefix.arrays, tail.arrays
    # per-state arrays of the tail start at state k and per-step ones at step k: both follow prefix[:k]
    out = {f: np.concatenate([a[f][:k], v]) for f, v in b.items()
           if f in a and f != "key_steps" and not f.startswith("key.")}
    out.update({f: v for f, v in a.items() if f.startswith("w.")})  # embedded weights: the policy that played it
    keep = a["key_steps"] < k
    out["key_steps"] = np.concatenate([a["key_steps"][keep], b["key_steps"]])
    for f in b:
        if f.startswith("key."):
            out[f] = np.concatenate([a[f][keep], b[f]])
    hdr = dict(tail.header)
    hdr["forced"] = [x for x in prefix.header.get("forced", []) if x[0] < k] + tail.header.get("forced", [])
    hdr["episode_key"] = prefix.header.get("episode_key")
    return Episode(hdr, out)


# ---- the header and the weights a file carries (what `record`, Watch mode and training write) ----------------
WEIGHT_PREFIX = "w."  # embedded network weights: "w.agent.<param>", "w.mixer.<param>"


def episode_header(cfg, source: str, *, checkpoint: dict | None, t_env: int, epsilon: float, seed: int,
                   episode_index: int, algorithm: str, dims: dict) -> dict:
    """What a file says about where its episode came from (docs/episode_format.md)."""
    return {"map": cfg.env.map_name, "profile": cfg.env.profile, "env_options": dict(cfg.env.options),
            "seed": int(seed), "episode_index": int(episode_index), "algorithm": algorithm,
            "mixer": cfg.algo.mixer, "res": bool(cfg.algo.res), "gamma": float(cfg.learner.gamma),
            "config": cfg.to_dict(), "dims": dict(dims), "checkpoint": checkpoint, "t_env": int(t_env),
            "epsilon": float(epsilon), "source": source,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def embed_weights(ep: Episode, agent, mixer) -> None:
    """Put the acting networks' weights into the episode (training recordings: no checkpoint holds them)."""
    for name, net in (("agent", agent), ("mixer", mixer)):
        if net is None:
            continue
        for k, v in net.state_dict().items():
            ep.arrays[f"{WEIGHT_PREFIX}{name}.{k}"] = v.detach().cpu().numpy().copy()
    ep.header["weights"] = "embedded"


def _weights_of(ep: Episode, name: str) -> dict:
    pre = f"{WEIGHT_PREFIX}{name}."
    return {k[len(pre):]: torch.from_numpy(np.array(v)) for k, v in ep.arrays.items() if k.startswith(pre)}


def weights_digest(w: dict) -> str:
    """SHA-256 over the acting networks' weights ({"agent": {name: array}, "mixer": {...}}, as `actor_weights`
    gives them and checkpoints store them): the same weights have the same digest whichever file holds them."""
    import hashlib

    h = hashlib.sha256()
    for net in ("agent", "mixer"):
        for k in sorted(w.get(net) or {}):
            a = np.ascontiguousarray(np.asarray(w[net][k].detach().cpu() if hasattr(w[net][k], "detach")
                                                else w[net][k], dtype=np.float32))
            h.update(f"{net}.{k}:{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def checkpoint_ref(meta: dict, agent=None, mixer=None) -> dict:
    """An episode header's `checkpoint`: the file that played it, its digest, the digest of the weights themselves
    (found again in a sibling checkpoint when the file moves on) and, for a shipped policy, its name (a fork finds it
    again in an app installed elsewhere)."""
    ref = {"path": str(Path(meta["path"]).resolve()), "digest": meta.get("digest")}
    if agent is not None:
        ref["weights_digest"] = weights_digest(actor_weights(agent, mixer))
    if meta.get("policy"):
        ref["policy"] = meta["policy"]
    return ref
