"""Run directories: where a run lives on disk, and the rules that keep one run from overwriting another.

A run directory holds `config.toml`, `metrics.csv`, `tb/` and `checkpoints/`. Paths are resolved to
absolute ones when a run starts, so a run never writes somewhere else because the working directory
changed or the directory was copied; a resumed run writes into the directory that holds its checkpoint.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
from pathlib import Path

from ..errors import RunDirError
from . import metrics as _metrics
from .atomic import write_atomic

CONFIG_FILE = "config.toml"
CHECKPOINTS = "checkpoints"
LATEST = "latest.pt"
_STEP_NAME = re.compile(r"t(\d+)\.pt")
EVENTS_FILE = "events.csv"  # the live changes (models.training.live)
REQUESTS_FILE = "live_requests.jsonl"  # live changes asked for from outside the training (`qmix-workbench set`)
RUN_ENTRIES = (CONFIG_FILE, _metrics.FILE, CHECKPOINTS, "tb", EVENTS_FILE, REQUESTS_FILE)


class RunDir:
    """A run directory's paths, named in this one place: `config.toml`, `metrics.csv`, `tb/`, `episodes/` and
    `checkpoints/` with a `t<env steps>.pt` per save and `latest.pt` (the newest, with the replay buffer when
    the run stopped gracefully)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    config = property(lambda self: self.path / CONFIG_FILE)
    metrics = property(lambda self: self.path / _metrics.FILE)
    checkpoints = property(lambda self: self.path / CHECKPOINTS)
    latest = property(lambda self: self.path / CHECKPOINTS / LATEST)
    episodes = property(lambda self: self.path / "episodes")
    tb = property(lambda self: self.path / "tb")

    def step_checkpoint(self, t_env: int) -> Path:
        return self.checkpoints / f"t{int(t_env):010d}.pt"

    def step_checkpoints(self) -> list[tuple[int, Path]]:
        """(env steps, path) of each step checkpoint, oldest first (from the names: nothing is loaded)."""
        found = [(t, p) for p in self.checkpoints.glob("t*.pt") if (t := step_of(p)) is not None]
        return sorted(found)

    def has_checkpoint(self) -> bool:
        return self.latest.exists() or bool(self.step_checkpoints())

    @staticmethod
    def of_checkpoint_file(path: str | Path) -> "RunDir | None":
        """The run directory whose `checkpoints/` holds `path`; None for a file elsewhere."""
        p = Path(path)
        return RunDir(p.parent.parent) if p.parent.name == CHECKPOINTS else None


def step_of(path: str | Path) -> int | None:
    """The env steps in a step checkpoint's name (`t0000200033.pt` -> 200033); None for any other name."""
    m = _STEP_NAME.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


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
    for p in d.glob(_metrics.FILE + ".*"):
        p.unlink()


def of_checkpoint(resume: str | Path) -> Path:
    """The run directory a checkpoint belongs to: the directory given, or the one whose `checkpoints/`
    holds the file. Never the path stored inside the checkpoint, which may be stale or relative."""
    p = _absolute(resume)
    if p.is_dir():
        return p
    if (rd := RunDir.of_checkpoint_file(p)) is not None:
        return rd.path
    raise RunDirError(f"{resume} is not inside a run directory's checkpoints/ folder, so it is not clear where "
                      f"the resumed run should write; pass --run-dir")


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


_CONFIG_HEAD = "# written by qmix-workbench; sha256 of what follows: "


def write_config(d: Path, text: str) -> Path:
    """The run's resolved config, atomically, headed by a digest of itself: an edit made afterwards is noticed
    (`config_edited`), so no tool trusts a config.toml that no longer says what the run did."""
    import hashlib

    return write_atomic(d / CONFIG_FILE, f"{_CONFIG_HEAD}{hashlib.sha256(text.encode()).hexdigest()}\n{text}")


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
    rd = RunDir.of_checkpoint_file(Path(meta["path"]).resolve())
    return None if rd is None else rd.path
