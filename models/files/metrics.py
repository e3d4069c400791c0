"""A run's `metrics.csv`: its schema (written by training), the one reader, and the repair a resume makes.

Everything that reads the file goes through here: `rows` (each readable row, parsed step), `series` (columns as
arrays: the app's curves, `plot`, a policy card's history, choosing the best checkpoint) and `Tail` (only the
rows added since the last read: `compare` and the Compare window follow sweeps under way with it). A row being
written, or torn by a crash, is never read; a resume (`repair`) drops it, with rows past the checkpoint.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

FILE = "metrics.csv"
# a row per training episode ("episode"), per learner update ("update"), per greedy evaluation ("eval"), with the
# columns that apply to it; the others are blank
COLUMNS = ["kind", "t_env", "episodes", "updates", "wall_s", "return", "won", "length", "dead_enemies",
           "epsilon", "overestimation", "loss", "td_error", "grad_norm", "qtot_taken", "target", "res_reg",
           "res_softmax_value", "max_value", "test_win_rate", "test_return", "steps_per_s", "nonfinite",
           "skipped_updates", "lr"]


class MetricsMissing(ValueError):
    """A directory without a readable metrics.csv where a run directory was expected."""


def path_of(run_dir) -> Path:
    return Path(run_dir) / FILE


def rows(run_dir) -> Iterator[dict]:
    """Each whole, readable row of a run's metrics.csv, with `t_env` as an int; a torn or unreadable row is left
    out. `MetricsMissing` names the directory when there is no file to read."""
    path = path_of(run_dir)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise MetricsMissing(f"{run_dir} is not a run directory: no readable {FILE} ({e.strerror})") from None
    yield from _parse(raw[:raw.rfind(b"\n") + 1], None)


def _parse(raw: bytes, fields: list[str] | None) -> Iterator[dict]:
    for row in csv.DictReader(io.StringIO(raw.decode("utf-8", "replace"), newline=""), fieldnames=fields):
        try:
            row["t_env"] = int(float(row["t_env"]))
        except (KeyError, TypeError, ValueError):
            continue
        yield row


def series(run_dir, kinds=None, t_max: float | None = None) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """{(kind, column): (t_env array, value array)}: every non-blank, finite number of the rows of `kinds` (all
    when None) up to env step `t_max`."""
    pairs: dict = {}
    for row in rows(run_dir):
        kind, t = row.get("kind"), row["t_env"]
        if (kinds is not None and kind not in kinds) or (t_max is not None and t > t_max):
            continue
        for k, v in row.items():
            if k in ("kind", "t_env") or v in ("", None) or not isinstance(v, str):
                continue
            try:
                y = float(v)
            except ValueError:
                continue
            if np.isfinite(y):
                pairs.setdefault((kind, k), []).append((t, y))
    return {key: (np.array([p[0] for p in v], float), np.array([p[1] for p in v], float)) for key, v in pairs.items()}


@dataclass
class Tail:
    """Reads a metrics.csv a growing run appends to: each `read` returns the whole rows added since the last one.
    A file replaced (a resume's repair writes a new one), rewritten in place or cut shorter is read again from its
    start, and `read` says so (`restarted`), so a reader summing rows starts its sums again."""
    path: Path
    ino: int = -1
    fields: list[str] = field(default_factory=list)
    offset: int = 0
    last_row: bytes = b""  # the bytes just before `offset`: still there when the file was only appended to

    def read(self) -> tuple[list[dict], bool]:
        """(the new whole rows, whether reading started again from the file's start)."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            raise MetricsMissing(f"{self.path.parent}: no {FILE}; expected a run directory") from None
        restarted = False
        with f:
            ino = os.fstat(f.fileno()).st_ino
            same = self.offset > 0 and ino == self.ino and os.fstat(f.fileno()).st_size >= self.offset
            if same and self.last_row:
                f.seek(self.offset - len(self.last_row))
                same = f.read(len(self.last_row)) == self.last_row
            if not same:
                f.seek(0)
                header = f.readline()
                if not header.endswith(b"\n"):  # not even a whole header yet: nothing to read, nothing to remember
                    self.ino, self.fields, self.offset, self.last_row = ino, [], 0, b""
                    return [], True
                self.ino, self.offset, self.last_row = ino, len(header), b""
                self.fields = next(csv.reader([header.decode("utf-8", "replace")]), [])
                restarted = True
            f.seek(self.offset)
            raw = f.read()
        cut = raw.rfind(b"\n") + 1  # a row being written (or torn by a crash) waits for its end
        self.offset += cut
        if cut:
            self.last_row = raw[raw.rfind(b"\n", 0, cut - 1) + 1:cut][-256:]
        return list(_parse(raw[:cut], self.fields)), restarted


def repair(path: Path, t_env: int, log) -> None:
    """On resume: drop a torn last line (a crash mid-write), unreadable rows and rows past the checkpoint
    (they will be written again), and write the current header; a backup keeps the file as it was."""
    from .atomic import write_atomic

    if not path.exists():
        return
    raw = path.read_bytes()
    torn = b""
    if raw and not raw.endswith(b"\n"):
        cut = raw.rfind(b"\n") + 1
        raw, torn = raw[:cut], raw[cut:]
    text = raw.decode("utf-8", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    found = list(reader)
    keep, bad = [], 0
    for r in found:
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
    later = len(found) - bad - len(keep)
    if not (torn or bad or later or reader.fieldnames != COLUMNS):
        return
    backup = path.with_name(f"{FILE}.before-resume-{int(time.time())}")
    shutil.copy2(path, backup)
    out = io.StringIO(newline="")
    w = csv.DictWriter(out, COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(keep)
    write_atomic(path, out.getvalue().encode())
    if torn:
        log(f"{FILE}: its last line was cut off ({len(torn)} bytes, a crash while writing); truncated to the "
            f"last complete row (the file as it was: {backup.name})")
    if bad:
        log(f"{FILE}: dropped {bad} unreadable row(s) (the file as it was: {backup.name})")
    if later:
        log(f"{FILE}: dropped {later} row(s) written after the checkpoint (t_env > {t_env:,}); the resumed run "
            f"writes them again")
