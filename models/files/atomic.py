"""The one way files are written here: a temporary file beside the target, flushed to disk, then renamed over
it. A kill, a crash or a full disk mid-write leaves the earlier file as it was and no half-written one under the
target's name; what is left is a `*.tmp` (`remove_stale_temps` clears them where a run writes). A failure is a
`FileWriteError` that names the file (and says when the disk is full)."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from ..errors import FileWriteError

TEMP_SUFFIX = ".tmp"


def fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _temp_beside(path: Path, ext: str) -> Iterator[tuple[int, Path]]:
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=TEMP_SUFFIX + ext, dir=path.parent)
    except OSError as e:
        raise FileWriteError(path, e) from None
    tmp = Path(tmp)
    try:
        yield fd, tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a shipped policy is read by every user of an install
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except FileWriteError:
        raise
    except OSError as e:  # the writer's own failures (a full disk mid-write) and the rename's
        raise FileWriteError(path, e) from None
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path, ext: str = "") -> Iterator[Path]:
    """A temporary path beside `path` for a writer that wants a file name; renamed to `path` when the block ends
    without an error, deleted when it raises. `ext` ends the temporary name (".gif": writers that choose their
    container by the name)."""
    with _temp_beside(Path(path), ext) as (fd, tmp):
        os.close(fd)
        yield tmp


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """An open binary file that becomes `path` (flushed and fsync'ed first) when the block ends without an error."""
    with _temp_beside(Path(path), "") as (fd, _):
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write `data` (text as UTF-8) to `path` atomically."""
    with atomic_file(path) as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete the temp files an interrupted write left in `directory` (they are never valid files)."""
    gone = []
    if directory.is_dir():
        for p in directory.glob("*" + TEMP_SUFFIX):
            try:
                p.unlink()
                gone.append(p)
            except OSError:
                pass
    return gone
