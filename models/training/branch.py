"""Branching a run: a new run directory that goes on from one of a run's checkpoints with some settings changed.

The branch starts where the checkpoint stands (env steps, weights, optimizer, random streams and, when the file
holds it, the replay buffer), so its first rows continue the parent's env steps; its config names the parent
(`run.branch_of = "PARENT_DIR@STEPS"`), and `branch.json` says what changed. Settings that may change live are
applied as live changes at the branch point (events of the branch, source "branch"); the others (how the run
records, saves, its processes) change the branch's starting config; the networks, the environment and the buffer's
size cannot change (the checkpoint must fit). The parent's files are only read.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..config import ConfigError, apply_overrides, load_config, parse_override
from ..errors import RunDirError
from ..files.atomic import write_atomic
from ..files.checkpoint import load_checkpoint
from ..files.guard import Output, check_outputs
from ..files.rundir import RunDir
from . import live

BRANCH_FILE = "branch.json"


def check_changes(cfg, changes: dict) -> None:
    """Refuse, before anything is written, a branch that changes nothing or a key a checkpoint cannot take."""
    from ..config import flatten, from_dict

    if not changes:
        raise ConfigError("a branch changes at least one setting (--set section.key=value)")
    flat = flatten(cfg.to_dict())
    for key, value in changes.items():
        if key not in flat:
            raise ConfigError(f"{key}: not a setting")
        why = live.locked_reason(key)
        if key not in live.LIVE_KEYS and why is not None and not key.startswith("run."):
            raise ConfigError(f"{key} cannot change in a branch: {why}")
        section, _, name = key.partition(".")
        from_dict({section: {name: value}}, cfg)


def branch(source: str | Path, changes: list[str], out: str | Path | None = None, log=print) -> Path:
    """Make the branch (a run directory that `train --resume` continues); its path. All or nothing: every change
    is checked and the output place too before anything is written, the branch is built in a hidden directory
    beside `out` and renamed into place, and a failure leaves nothing. The parent's files are only read."""
    from .train import Trainer

    parsed = [parse_override(c) for c in changes]
    if not parsed:
        raise ConfigError("a branch changes at least one setting (--set section.key=value)")
    meta, _ = load_checkpoint(source)
    parent = RunDir.of_checkpoint_file(meta["path"])
    parent_dir = (parent.path if parent is not None else Path(meta["path"]).parent).resolve()
    t_env = int(meta["t_env"])
    if out is None:
        slug = "_".join(f"{k.rpartition('.')[2]}{v}" for k, v in parsed)[:60]
        out = parent_dir.parent / f"{parent_dir.name}_branch_t{t_env}_{slug}"
    out = check_outputs([Output("--out", out, directory=True)], inputs=[parent_dir, meta["path"]])[0]
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunDirError(f"--out {out}: exists; a branch is made in a new directory")
    if not out.parent.is_dir():
        raise RunDirError(f"--out {out}: the directory {out.parent} does not exist")
    cfg = load_config(parent.config) if parent is not None and parent.config.is_file() else None
    if cfg is not None:  # the whole --set against the parent's settings, before anything is written
        check_changes(cfg, {k: v for k, v in parsed})
        apply_overrides(cfg, changes)
    live_changes = [(k, v) for k, v in parsed if k in live.LIVE_KEYS]
    start_changes = [c for c, (k, _) in zip(changes, parsed) if k not in live.LIVE_KEYS]
    start_changes.append(f'run.branch_of={json.dumps(f"{parent_dir}@{t_env}")}')
    if not any(k == "run.script" for k, _ in parsed):  # the parent's experiment script stays the parent's
        start_changes.append('run.script=""')
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        tr = Trainer(None, resume=meta["path"], run_dir=tmp, overrides=start_changes, log=log)
        try:
            # the parent's live requests are the parent's: the branch's request log starts empty
            tr.forget_requests()
            for key, value in live_changes:
                tr.set(key, value, source="branch")
            tr.apply_now()  # at the branch point: the branch's first rows already learn with them
            write_atomic(tr.run_dir / BRANCH_FILE, json.dumps({
                "parent": str(parent_dir), "checkpoint": meta["path"], "checkpoint_digest": meta.get("digest"),
                "t_env": t_env, "changes": {k: v for k, v in parsed}, "with_buffer": bool(meta.get("has_buffer")),
            }, indent=2) + "\n")
            tr.save(with_buffer=True)
        finally:
            tr.close()
        if out.exists():
            out.rmdir()  # an empty directory the user made for it
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"branched {parent_dir} at {t_env:,} env steps into {out} ({', '.join(changes)}); "
        f"train it with: qmix-workbench train --resume {out}")
    return out


def read_branch(run_dir: str | Path) -> dict | None:
    """The branch record of a run directory (None for a run that is not a branch)."""
    p = Path(run_dir) / BRANCH_FILE
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None
