"""Shipping a policy: a checkpoint's acting networks evaluated greedily and written as a shipped policy (weights and
card, in the format `models.files.policies` reads). It evaluates, so it lives with the other uses of a saved policy."""
from __future__ import annotations

import datetime as _dt
import io
import os
from pathlib import Path

import numpy as np

from ..config import EVAL_SEED
from ..core.networks import actor_weights
from ..files import policies as policy_files
from ..files.loading import load_policy
from ..files.policies import (
    DIM_KEYS,
    ENV_DIR,
    Card,
    PolicyError,
    check_name,
    file_digest,
    policies_dir,
    preset_of,
    training_curves,
)
from ..files.atomic import write_atomic
from ..files.rundir import run_dir_of_checkpoint
from .evaluate import evaluate_policy


def ship_policy(checkpoint, name: str, episodes: int = 200, seed: int = EVAL_SEED, out_dir: str | Path | None = None,
                command: str | None = None, device="cpu", log=None, force: bool = False) -> Card:
    """Turn a checkpoint (file or run directory) into the shipped policy `name`: evaluate its networks greedily over
    `episodes` episodes from `seed`, then write `name.npz` and `name.json` into `out_dir` (default:
    `$QMIX_WORKBENCH_POLICIES`; the installed package's own directory only when named), each atomically.
    An existing policy of that name is replaced only with `force`."""
    check_name(name)
    if out_dir is None and not os.environ.get(ENV_DIR):
        raise PolicyError(f"ship-policy writes into --out DIR (or ${ENV_DIR}); the package's own policies "
                          f"({policies_dir()}) are replaced only when named with --out")
    out = policies_dir(out_dir)
    if (out / f"{name}.json").exists() or (out / f"{name}.npz").exists():
        if not force:
            raise PolicyError(f"policy {name!r} exists in {out}; add --force to replace it, or choose another --name")
    cfg, agent, mixer, meta = load_policy(checkpoint, device)
    if meta.get("policy"):
        raise PolicyError(f"{checkpoint} is already a shipped policy ({meta['policy']}); ship from its checkpoint")
    if meta.get("fallback") and log is not None:
        log(meta["fallback"])
    # the weights written are the ones evaluated: one load, no second read of a latest.pt that may move on
    flat = {f"{net}.{k}": v for net, params in actor_weights(agent, mixer).items() for k, v in params.items()}
    buf = io.BytesIO()
    np.savez_compressed(buf, **flat)
    data = buf.getvalue()
    if len(data) > policy_files.MAX_WEIGHTS_BYTES:
        raise PolicyError(f"policy {name!r}: its weights take {len(data):,} bytes compressed, more than the "
                          f"{policy_files.MAX_WEIGHTS_BYTES:,} a shipped policy may (smaller networks: algo.agent_hidden, "
                          f"algo.hypernet_embed, algo.mixing_embed)")
    res = evaluate_policy(cfg, agent, meta, episodes, seed, device, where=checkpoint)
    dims = {k: int(meta["fingerprint"][k]) for k in DIM_KEYS}
    if command is None:
        command = (f"qmix-workbench ship-policy {meta['path']} --name {name} --episodes {episodes} "
                   f"--seed {seed}")
    card = Card(name=name, algorithm=meta["algorithm"], preset=preset_of(cfg), map=cfg.env.map_name,
                config=cfg.to_dict(), dims=dims, t_env=int(meta["t_env"]), seed=int(cfg.run.seed),
                win_rate=res["win_rate"], eval_episodes=res["episodes"], eval_seed=int(seed),
                mean_return=res["return"], dead_enemies=res["dead_enemies"], command=command,
                digest=file_digest(data), source_checkpoint={"path": meta["path"], "digest": meta.get("digest")},
                created=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                curves=training_curves(run_dir_of_checkpoint(meta) or meta.get("run_dir"), int(meta["t_env"])),
                path=out / f"{name}.json")
    try:
        out.mkdir(parents=True, exist_ok=True)
        # weights first: a card never names weights that are not there yet (a crash between the two leaves new
        # weights under the old card, which the digest check then refuses with a message saying so)
        write_atomic(card.weights, data)
        write_atomic(card.path, card.to_json().encode())
    except OSError as e:
        raise PolicyError(f"cannot write the policy {name!r} into {out}: {e.strerror or e}") from None
    return card
