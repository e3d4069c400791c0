"""Recording episodes to files: the header every file carries, the policy behind a file (for forks), the ring
of Watch mode's last N episodes, and `record_episodes` (the `record` command)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..config import check_episodes
from ..files.episode_file import (
    Episode,
    EpisodeRecorder,
    checkpoint_ref,
    episode_header,
)
from ..files.rundir import run_dir_of_checkpoint


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


def record_episodes(checkpoint, episodes: int, out_dir=None, seed: int = 0, device="cpu", log=print,
                    force: bool = False) -> list[Path]:
    """Play `episodes` greedy episodes of a checkpoint, one battle at a time, and write each to a file named by its
    source, seed and index (`qmix_s7_00000.npz`, `t0000200000_s7_00000.npz`): recordings of another policy or
    seed never replace these, and existing files of the same ones are refused unless `force`."""
    from ..config import check_seed
    from ..core.envs import make_env_for
    from ..core.probe import Probe
    from ..core.runner import Runner
    from ..files.loading import load_policy

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
