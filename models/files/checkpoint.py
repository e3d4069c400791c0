"""Checkpoints: the files a run resumes and a policy loads from.

- Written atomically (temp file, fsync, rename): a kill or a full disk during a save leaves the previous
  file as it was and no partial file behind.
- Loaded without executing pickled code (`torch.load(weights_only=True)`: tensors and plain containers;
  everything else travels as JSON).
- Each carries a SHA-256 digest of its payload (the metadata and every tensor), checked on load: a file
  changed on disk is an error that names it, never weights that merely differ.
- A run directory's `latest.pt` falls back to the newest readable `t*.pt`, and says so.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from ..errors import NO_SPACE, CheckpointWriteError, WorkbenchError
from .atomic import atomic_file, fsync_dir
from .rundir import LATEST, RunDir, step_of

FORMAT = "qmix-workbench-checkpoint/2"
LEGACY_FORMATS = ("qmix-workbench-checkpoint/1",)  # before digests: loaded, marked unverified
REQUIRED_META = ("config", "fingerprint", "t_env", "algorithm")


class CheckpointError(WorkbenchError, ValueError):
    pass


def payload_digest(meta_json: str, tensors: dict) -> str:
    """SHA-256 over the metadata and a canonical walk of the tensors (keys sorted; dtype, shape, bytes)."""
    h = hashlib.sha256()
    h.update(meta_json.encode())

    def walk(x):
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            if t.numel():
                h.update(t.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(x, dict):
            h.update(b"{")
            for k in sorted(x, key=lambda k: (type(k).__name__, str(k))):
                h.update(f"{type(k).__name__}:{k}=".encode())
                walk(x[k])
            h.update(b"}")
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for v in x:
                walk(v)
            h.update(b"]")
        else:
            h.update(f"{type(x).__name__}:{x!r};".encode())

    walk(tensors)
    return h.hexdigest()


def save_checkpoint(path: str | Path, meta: dict, tensors: dict) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointWriteError(f"cannot create the checkpoint directory {path.parent}: {e.strerror}") from None
    meta_json = json.dumps(meta)
    payload = {"format": FORMAT, "meta_json": meta_json, "digest": payload_digest(meta_json, tensors), **tensors}
    try:
        with atomic_file(path) as f:
            torch.save(payload, f)
    except OSError as e:
        raise CheckpointWriteError(_write_failure(path, e)) from None
    except RuntimeError as e:  # torch's zip writer reports a failed write as RuntimeError, with errno lost
        raise CheckpointWriteError(_write_failure(path, e)) from None
    return path


def link_checkpoint(src: Path, dst: Path) -> Path:
    """Make `dst` (e.g. latest.pt) the same file as `src`, atomically: a hard link where the file system
    has them (no second write), else a copy."""
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.link.tmp")
    try:
        if tmp.exists():
            tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            import shutil

            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        fsync_dir(dst.parent)
    except OSError as e:
        raise CheckpointWriteError(_write_failure(dst, e)) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return dst


def _write_failure(path: Path, e: Exception) -> str:
    latest = path.parent / LATEST
    before = path if path.exists() else latest if latest.exists() else None
    prev = f"the previous checkpoint {before} is intact" if before else "no checkpoint had been written before"
    no_space = isinstance(e, OSError) and e.errno in NO_SPACE
    if not no_space and isinstance(e, RuntimeError):
        no_space = "No space left" in str(e) or "file write failed" in str(e)
    if no_space:
        return f"no space left on device while writing {path}; {prev}"
    reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
    return f"cannot write checkpoint {path}: {reason}; {prev}"


def _candidates(path: Path) -> tuple[list[Path], bool]:
    """The files to try for `path`, newest first, and whether falling back to older ones is allowed
    (for a run directory or its latest.pt; a file named by the user is that file or an error)."""
    if path.is_dir():
        ck = RunDir(path).checkpoints
    elif path.name == LATEST:
        ck = path.parent
    else:
        return [path], False
    older = sorted(((t, p) for p in ck.glob("t*.pt") if (t := step_of(p)) is not None), reverse=True)
    return [ck / LATEST] + [p for _, p in older], True


def load_checkpoint(path: str | Path, device="cpu") -> tuple[dict, dict]:
    """(meta, tensors) of a checkpoint file, or of a run directory's latest checkpoint.

    When a run directory's latest.pt is missing, unreadable or corrupted, the newest readable `t*.pt` is
    used instead and `meta["fallback"]` says so (the caller shows it)."""
    path = Path(path)
    cands, fallback = _candidates(path)
    if fallback and not any(c.exists() for c in cands):
        where = path if path.is_dir() else path.parent
        raise CheckpointError(f"{where} has no checkpoints (no latest.pt, no t*.pt): is it a run directory "
                              f"with a checkpoint?")
    first_error = None
    for c in cands:
        try:
            meta, tensors = _load_file(c, device)
        except CheckpointError as e:
            if not fallback:
                raise
            first_error = first_error or e
            continue
        if c != cands[0]:
            meta["fallback"] = f"{first_error}; using {c} instead (the newest readable checkpoint)"
        return meta, tensors
    raise CheckpointError(f"{first_error} (and no older readable checkpoint beside it)")


def _load_file(path: Path, device) -> tuple[dict, dict]:
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory without checkpoints/; expected a checkpoint file or a run "
                              f"directory")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated file, not a torch file, or pickled code
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path} is not a readable qmix-workbench checkpoint: {reason}") from None
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt != FORMAT and fmt not in LEGACY_FORMATS:
        raise CheckpointError(f"{path} is not a qmix-workbench checkpoint (format {FORMAT!r} expected)")
    meta_json = payload.pop("meta_json", None)
    payload.pop("format")
    digest = payload.pop("digest", None)
    if fmt == FORMAT:
        if not isinstance(digest, str) or not isinstance(meta_json, str):
            raise CheckpointError(f"{path} is corrupted: its digest or metadata is missing")
        if payload_digest(meta_json, payload) != digest:
            raise CheckpointError(f"{path} is corrupted: digest mismatch (the file changed after it was written)")
    try:
        meta = json.loads(meta_json)
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path} has malformed metadata: {e}") from None
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"{path} has malformed metadata: missing {', '.join(missing)}")
    if "learner" not in payload:
        raise CheckpointError(f"{path} has no network weights ('learner' missing)")
    meta["path"] = str(path)
    meta["verified"] = fmt == FORMAT
    meta["digest"] = digest if fmt == FORMAT else None
    return meta, payload


def fingerprint_differences(saved: dict, current: dict) -> list[str]:
    return [f"{k}: checkpoint has {saved.get(k)!r}, this run has {v!r}" for k, v in current.items()
            if saved.get(k) != v]


def check_compatible(meta: dict, fingerprint: dict, path="checkpoint") -> None:
    """Raise a clear error, listing every difference, when a checkpoint was made for another map,
    architecture or learner."""
    diffs = fingerprint_differences(meta.get("fingerprint", {}), fingerprint)
    if diffs:
        raise CheckpointError(f"{path} does not fit this configuration — " + "; ".join(diffs))
