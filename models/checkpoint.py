"""Checkpoints: written atomically (temp file + rename), loaded without executing pickled code
(`torch.load(weights_only=True)`: tensors and plain containers; everything else travels as JSON)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

FORMAT = "qmix-workbench-checkpoint/1"


class CheckpointError(ValueError):
    pass


def save_checkpoint(path: str | Path, meta: dict, tensors: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "meta_json": json.dumps(meta), **tensors}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path, device="cpu") -> tuple[dict, dict]:
    """(meta, tensors) of a checkpoint file, or a run directory (its latest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        cand = path / "checkpoints" / "latest.pt"
        if not cand.exists():
            raise CheckpointError(f"{path} has no checkpoints/latest.pt: is it a run directory with a checkpoint?")
        path = cand
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # truncated file, not a torch file, or pickled code
        raise CheckpointError(f"{path} is not a readable qmix-workbench checkpoint: {e}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a qmix-workbench checkpoint (format {FORMAT!r} expected)")
    meta = json.loads(payload.pop("meta_json"))
    payload.pop("format")
    meta["path"] = str(path)
    return meta, payload


def check_compatible(meta: dict, fingerprint: dict, path="checkpoint") -> None:
    """Raise a clear error when a checkpoint was made for another map or architecture."""
    saved = meta.get("fingerprint", {})
    diffs = [f"{k}: checkpoint has {saved.get(k)!r}, this run has {v!r}" for k, v in fingerprint.items()
             if saved.get(k) != v]
    if diffs:
        raise CheckpointError(f"{path} does not fit this configuration — " + "; ".join(diffs))
