"""Run directories: where a run lives on disk, and the rules that keep one run from overwriting another.

A run directory holds `config.toml`, `metrics.csv`, `tb/` and `checkpoints/`. Paths are resolved to
absolute ones when a run starts, so a run never writes somewhere else because the working directory
changed or the directory was copied; a resumed run writes into the directory that holds its checkpoint.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import os
import shutil
import time
from pathlib import Path

from ..errors import RunDirError

RUN_ENTRIES = ("config.toml", "metrics.csv", "checkpoints", "tb")


def holds_run(d: Path) -> bool:
    return d.is_dir() and any((d / e).exists() for e in RUN_ENTRIES)


def _absolute(p: str | Path) -> Path:
    return Path(p).expanduser().resolve()


def prepare(d: Path) -> Path:
    """Create `d` (and its parents) and check it is writable; a clear error when it cannot be."""
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create run directory {d}: {e.strerror}; expected a writable directory") from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise RunDirError(f"run directory {d} is not writable; expected a writable directory")
    return d


def new_run_dir(runs_dir: str, name: str, seed: int) -> Path:
    """`runs_dir/<name>_<time>_s<seed>`, made unique."""
    base_dir = _absolute(runs_dir)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = base_dir / f"{name}_{stamp}_s{seed}"
    p, k = base, 1
    while p.exists():
        k += 1
        p = base.with_name(base.name + f"_{k}")
    if p.parent != base_dir:  # config checks run.name; this keeps the promise if that check is bypassed
        raise RunDirError(f"run.name {name!r} would put the run outside runs_dir {base_dir}")
    return p


def for_new_run(run_dir: str | Path, overwrite: bool) -> Path:
    """An explicit directory for a new run: refused when it holds a run, unless `overwrite` (then
    `clear` removes that run once every other check has passed)."""
    d = _absolute(run_dir)
    if d.exists() and not d.is_dir():
        raise RunDirError(f"run directory {d} exists and is not a directory")
    if holds_run(d) and not overwrite:
        raise RunDirError(f"run directory {d} already holds a run; continue it with --resume {d}, choose "
                          f"another --run-dir, or pass --overwrite to delete it and start clean")
    return d


def clear(d: Path) -> None:
    """Delete a run's files (and nothing else) from `d`: what `--overwrite` asks for."""
    for e in RUN_ENTRIES:
        p = d / e
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for p in d.glob("metrics.csv.*"):
        p.unlink()


def of_checkpoint(resume: str | Path) -> Path:
    """The run directory a checkpoint belongs to: the directory given, or the one whose `checkpoints/`
    holds the file. Never the path stored inside the checkpoint, which may be stale or relative."""
    p = _absolute(resume)
    if p.is_dir():
        return p
    if p.parent.name == "checkpoints":
        return p.parent.parent
    raise RunDirError(f"{resume} is not inside a run directory's checkpoints/ folder, so it is not clear where "
                      f"the resumed run should write; pass --run-dir")


def repair_metrics(path: Path, t_env: int, columns: list[str], log) -> None:
    """On resume: drop a torn last line (a crash mid-write), unreadable rows and rows past the checkpoint
    (they will be written again), and write the current header; a backup keeps the file as it was."""
    if not path.exists():
        return
    raw = path.read_bytes()
    torn = b""
    if raw and not raw.endswith(b"\n"):
        cut = raw.rfind(b"\n") + 1
        raw, torn = raw[:cut], raw[cut:]
    text = raw.decode("utf-8", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    keep, bad = [], 0
    for r in rows:
        if None in r or None in r.values():  # too many or too few fields: a glued or cut row
            bad += 1
            continue
        try:
            t = int(r["t_env"])
        except (KeyError, ValueError):
            bad += 1
            continue
        if t <= t_env:
            keep.append(r)
    later = len(rows) - bad - len(keep)
    if not (torn or bad or later or reader.fieldnames != columns):
        return
    backup = path.with_name(f"metrics.csv.before-resume-{int(time.time())}")
    shutil.copy2(path, backup)
    tmp = path.with_name("metrics.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(keep)
    os.replace(tmp, path)
    if torn:
        log(f"metrics.csv: its last line was cut off ({len(torn)} bytes, a crash while writing); truncated to the "
            f"last complete row (the file as it was: {backup.name})")
    if bad:
        log(f"metrics.csv: dropped {bad} unreadable row(s) (the file as it was: {backup.name})")
    if later:
        log(f"metrics.csv: dropped {later} row(s) written after the checkpoint (t_env > {t_env:,}); the resumed run "
            f"writes them again")


LOCK_FILE = ".lock"


class DirLock:
    """An exclusive lock on a directory (`.lock` in it, flock'ed) held while a process writes there: a second
    training of the same run directory, or a second sweep into the same sweep directory, is refused with the
    holder's pid. The operating system releases it when the holder exits, however it exits (no stale locks)."""

    def __init__(self, d: Path, what: str):
        import fcntl

        self.path = Path(d) / LOCK_FILE
        self._f = open(self.path, "a+")
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._f.seek(0)
            holder = self._f.read().strip() or "another process"
            self._f.close()
            raise RunDirError(f"{what} {d} is in use by {holder}; wait for it to end (or stop it) "
                              f"before starting another in the same directory") from None
        self._f.seek(0)
        self._f.truncate()
        self._f.write(f"pid {os.getpid()}")
        self._f.flush()

    def release(self) -> None:
        if not self._f.closed:
            self._f.close()


CONFIG_FILE = "config.toml"
_CONFIG_HEAD = "# written by qmix-workbench; sha256 of what follows: "


def write_config(d: Path, text: str) -> Path:
    """The run's resolved config, atomically, headed by a digest of itself: an edit made afterwards is noticed
    (`config_edited`), so no tool trusts a config.toml that no longer says what the run did."""
    import hashlib

    tmp = d / (CONFIG_FILE + ".tmp")
    tmp.write_text(f"{_CONFIG_HEAD}{hashlib.sha256(text.encode()).hexdigest()}\n{text}")
    tmp.replace(d / CONFIG_FILE)
    return d / CONFIG_FILE


def config_edited(d: Path) -> bool:
    """Whether the run's config.toml was changed after the run wrote it (False for one written before digests)."""
    import hashlib

    try:
        raw = (Path(d) / CONFIG_FILE).read_text()
    except OSError:
        return False
    first, _, body = raw.partition("\n")
    if not first.startswith(_CONFIG_HEAD):
        return False
    return first[len(_CONFIG_HEAD):].strip() != hashlib.sha256(body.encode()).hexdigest()


def keep_edited_config(d: Path) -> Path:
    """Move an edited config.toml aside (config.toml.edited, .edited.2, ...): the person's edit is kept."""
    p = d / (CONFIG_FILE + ".edited")
    k = 1
    while p.exists():
        k += 1
        p = d / f"{CONFIG_FILE}.edited.{k}"
    (d / CONFIG_FILE).replace(p)
    return p


def run_dir_of_checkpoint(meta: dict) -> Path | None:
    p = Path(meta["path"]).resolve()
    return p.parent.parent if p.parent.name == "checkpoints" else None
