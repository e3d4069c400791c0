"""Recording episodes to files: the header every file carries, the policy behind a file (for forks), the ring
of Watch mode's last N episodes, and `record_episodes` (the `record` command)."""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import torch

from ..config import check_episodes
from ..files.episode_file import Episode, EpisodeFileError, EpisodeRecorder

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


def _find_checkpoint(path: Path, digest: str | None, wdigest: str | None):
    """The checkpoint the episode was played with: `path` if it still holds those weights, else a sibling that does
    (latest.pt moves on as a run trains, or is rewritten with the replay buffer; the t*.pt it pointed to stays).
    Matched by the weights' own digest when the episode has one, else by the file's."""
    from ..files.checkpoint import CheckpointError, load_checkpoint

    tried = [path] + sorted(path.parent.glob("t*.pt"), reverse=True)
    for p in tried:
        if not p.is_file():
            continue
        try:
            meta, tensors = load_checkpoint(p)
        except CheckpointError:
            continue
        if wdigest is not None:
            if weights_digest(tensors["learner"]) == wdigest:
                return meta, tensors
        elif digest is None or meta.get("digest") == digest:
            return meta, tensors
    return None


def episode_policy(ep: Episode, device="cpu"):
    """(config, agent, mixer) that played `ep`: embedded weights, or its checkpoint or shipped policy (checked by
    digest)."""
    from ..config import from_dict
    from ..training.learner_host import build_networks, load_actor_weights

    cfg = from_dict(ep.header["config"])
    dims = ep.header["dims"]
    agent, mixer = build_networks(cfg, dims, device)
    if ep.header.get("weights") == "embedded":
        try:
            agent.load_state_dict(_weights_of(ep, "agent"))
            if mixer is not None:
                mixer.load_state_dict(_weights_of(ep, "mixer"))
        except RuntimeError as e:  # missing or misshapen arrays
            reason = str(e).splitlines()[0]
            raise EpisodeFileError(f"{ep.name}: its embedded weights do not fit its config: {reason}") from None
        return cfg, agent, mixer
    ck = ep.header.get("checkpoint") or {}
    path = ck.get("path")
    if not path:
        raise EpisodeFileError(f"{ep.name}: forking needs the policy's weights, and this episode names no "
                               f"checkpoint (replay still works)")
    if ck.get("policy") or str(path).endswith(".npz"):
        agent, mixer = _shipped_policy(ep, ck, device)
        return cfg, agent, mixer
    found = _find_checkpoint(Path(path), ck.get("digest"), ck.get("weights_digest"))
    if found is None:
        why = "no longer exists" if not Path(path).exists() else "has changed since the episode was recorded " \
                                                                  "(its digest differs)"
        raise EpisodeFileError(f"{ep.name}: forking needs the policy's weights, and its checkpoint {path} {why} "
                               f"(replay still works)")
    load_actor_weights(agent, mixer, found[1]["learner"])
    return cfg, agent, mixer


def _shipped_policy(ep: Episode, ck: dict, device):
    """The networks of the shipped policy that played `ep`: the file it names if its digest still matches, else
    the policy of that name in today's policies directory if that one matches (an app installed elsewhere)."""
    from ..files.policies import PolicyError, find_policy, load_policy_file

    tried = [Path(ck["path"])]
    if ck.get("policy"):
        try:
            tried.append(find_policy(ck["policy"]).weights)
        except PolicyError:
            pass
    seen = []
    for p in tried:
        if not p.is_file():
            continue
        try:
            _, agent, mixer, card = load_policy_file(p, device)
        except PolicyError as e:
            seen.append(str(e))
            continue
        if ck.get("digest") in (None, card.digest):
            return agent, mixer
        seen.append(f"{p} has changed since the episode was recorded (its digest differs)")
    why = "; ".join(seen) if seen else f"its shipped policy {ck['path']} no longer exists"
    raise EpisodeFileError(f"{ep.name}: forking needs the policy's weights, and {why} (replay still works)")


class EpisodeRing:
    """An `episodes/` directory that keeps the newest `keep` files of one prefix (Watch mode's ring)."""

    def __init__(self, directory: str | Path, prefix: str, keep: int):
        if keep < 1:
            raise ValueError(f"keep: expected at least 1 episode, got {keep}")
        self.dir, self.prefix, self.keep = Path(directory), prefix, int(keep)

    def _indexed(self) -> list[tuple[int, Path]]:
        # only the ring's own files: a fork saved beside one (NAME_fork_....npz) is the user's, never pruned
        pat = re.compile(re.escape(self.prefix) + r"_(\d+)\.npz$")
        found = ((pat.match(p.name), p) for p in self.dir.glob(f"{self.prefix}_*.npz"))
        return sorted((int(m.group(1)), p) for m, p in found if m)

    def files(self) -> list[Path]:
        return [p for _, p in self._indexed()]

    def save(self, ep: Episode) -> Path:
        """Write the next file of the ring (numbering goes on from the newest kept, so a later session never
        overwrites or prunes its own newest), then drop the oldest beyond `keep`."""
        have = self._indexed()
        path = ep.save(self.dir / f"{self.prefix}_{(have[-1][0] + 1) if have else 0:05d}.npz")
        for old in self.files()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path


def checkpoint_ref(meta: dict, agent=None, mixer=None) -> dict:
    """An episode header's `checkpoint`: the file that played it, its digest, the digest of the weights themselves
    (found again in a sibling checkpoint when the file moves on) and, for a shipped policy, its name (a fork finds it
    again in an app installed elsewhere)."""
    from ..training.learner_host import actor_weights

    ref = {"path": str(Path(meta["path"]).resolve()), "digest": meta.get("digest")}
    if agent is not None:
        ref["weights_digest"] = weights_digest(actor_weights(agent, mixer))
    if meta.get("policy"):
        ref["policy"] = meta["policy"]
    return ref


def run_dir_of_checkpoint(meta: dict) -> Path | None:
    p = Path(meta["path"]).resolve()
    return p.parent.parent if p.parent.name == "checkpoints" else None


def record_episodes(checkpoint, episodes: int, out_dir=None, seed: int = 0, device="cpu", log=print,
                    force: bool = False) -> list[Path]:
    """Play `episodes` greedy episodes of a checkpoint, one battle at a time, and write each to a file named by its
    source, seed and index (`qmix_s7_00000.npz`, `t0000200000_s7_00000.npz`): recordings of another policy or
    seed never replace these, and existing files of the same ones are refused unless `force`."""
    from ..config import check_seed
    from ..core.envs import make_env_for
    from .evaluate import load_policy
    from ..core.probe import Probe
    from ..core.runner import Runner

    check_episodes(episodes)
    check_seed("--seed", seed)
    cfg, agent, mixer, meta = load_policy(checkpoint, device)
    if meta.get("fallback"):
        log(meta["fallback"])
    out = Path(out_dir) if out_dir else (run_dir_of_checkpoint(meta) or Path("runs")) / "episodes"
    # what played: a shipped policy's name, else the checkpoint's file name without .pt (latest, t0000200000)
    source = meta.get("policy") or Path(meta.get("path", "checkpoint")).stem
    names = [out / f"{source}_s{seed}_{i:05d}.npz" for i in range(episodes)]
    there = [p for p in names if p.exists()]
    if there and not force:
        raise ValueError(f"{there[0]} exists ({len(there)} of the {episodes} files would be replaced); add --force "
                         f"to replace them, or choose another --out or --seed")
    env = make_env_for(cfg, 1, seed, autoreset=False)
    if not hasattr(env, "world"):
        raise ValueError(f"{cfg.env.map_name} is a matrix game: its one-step episodes have no battle to record")
    runner = Runner(env, agent, torch.device(device), cfg.learner.gamma)
    runner.recorder = EpisodeRecorder(0)
    probe = Probe(agent, mixer, cfg.algo.res_beta if cfg.algo.res else None)
    dims = meta["fingerprint"]
    rng = np.random.default_rng(seed)
    paths = []
    ref = checkpoint_ref(meta, agent, mixer)
    for i in range(episodes):
        b = runner.run(0.0, rng)
        hdr = episode_header(cfg, "record", checkpoint=ref, t_env=meta["t_env"], epsilon=0.0,
                             seed=seed, episode_index=i, algorithm=meta["algorithm"], dims=dims)
        ep = runner.recorder.finish(probe, hdr)
        path = ep.save(names[i])
        paths.append(path)
        log(f"{path}: {'won' if b.won[0] else 'lost'} in {int(b.length[0])} steps, return "
            f"{float(b.episode_return[0]):.2f}, {int(b.dead_enemies[0])} enemies killed")
    return paths
