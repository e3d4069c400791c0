"""The one loader: any path a user gives (a checkpoint file, a run directory, a shipped policy's .npz, an episode
file) into networks ready to act, with the errors of the file kinds it reads (CheckpointError, PolicyError,
EpisodeFileError), each naming the file. `eval`, `watch`, `record`, `tables`, `fork`, shipping and the app all
load through here, so they all say what they loaded and why (a fallback from a corrupted latest.pt is in the
checkpoint's `meta["fallback"]`)."""
from __future__ import annotations

from pathlib import Path

from ..config import from_dict
from ..core.networks import build_networks, load_actor_weights
from .checkpoint import CheckpointError, load_checkpoint
from .episode_file import Episode, EpisodeFileError, _weights_of, weights_digest
from .policies import PolicyError, find_policy, is_policy_file, load_policy_file
from .rundir import RunDir


def load_policy(path, device="cpu"):
    """(config, agent, mixer, meta) from a checkpoint file, a run directory, or a shipped policy's `.npz` file
    (`models.files.policies`; its `meta` reads like a checkpoint's, with `"policy"`: its name)."""
    if is_policy_file(path):
        cfg, agent, mixer, card = load_policy_file(path, device)
        return cfg, agent, mixer, card.meta()
    meta, tensors = load_checkpoint(path, device)
    cfg = from_dict(meta["config"])
    agent, mixer = build_networks(cfg, meta["fingerprint"], device)  # the fingerprint holds the env's dims
    load_actor_weights(agent, mixer, tensors["learner"])
    return cfg, agent, mixer, meta


def _find_checkpoint(path: Path, digest: str | None, wdigest: str | None):
    """The checkpoint the episode was played with: `path` if it still holds those weights, else a sibling that does
    (latest.pt moves on as a run trains, or is rewritten with the replay buffer; the t*.pt it pointed to stays).
    Matched by the weights' own digest when the episode has one, else by the file's."""
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
    if found is None and ep.path:
        # the run directory moved (or was copied) with its episodes: RUN/episodes/E.npz played RUN/checkpoints/C.pt,
        # and the same weights are there under the directory's new name (the digest still has to match)
        moved = RunDir(Path(ep.path).resolve().parent.parent).checkpoints / Path(path).name
        if moved != Path(path):
            found = _find_checkpoint(moved, ck.get("digest"), ck.get("weights_digest"))
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
