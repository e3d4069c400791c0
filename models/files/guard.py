"""The one rule for every path a command writes: no output is, or lies inside, one of the command's inputs or a run
or sweep directory the command does not own, with or without --force; links are resolved first.

A command names its inputs (files and directories), its outputs (files, or a directory it will create) and the
directories it owns (the run it trains, the sweep it runs, the run directory a `plot` writes its default figure
into). Inside a directory it owns it may write new files, never the records that make the run (config, metrics,
checkpoints, events, requests, evaluations, branch and sweep records). Everything is checked before any work is
done, so a refused command has written nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import WorkbenchError
from .rundir import RUN_ENTRIES, holds_run

SWEEP_FILE = "sweep.toml"
# what makes a run or a sweep: never an output, not even inside a directory the command owns
RECORDS = frozenset(RUN_ENTRIES) | {"branch.json", SWEEP_FILE, "final_eval.json", "absolute_eval.json", "logs",
                                   ".lock"}


class OutputRefused(WorkbenchError, ValueError):
    """An output path would replace or write inside something the command must only read."""


@dataclass(frozen=True)
class Output:
    flag: str  # how the user named it: "--out", "--out-stats", "--run-dir"
    path: str | Path
    directory: bool = False  # a directory the command creates (a branch, a sweep, a run), not a file


def resolve(p: str | Path) -> Path:
    """Absolute, `~` expanded, every existing link on the way resolved (a path that does not exist yet keeps its
    last parts as written)."""
    return Path(p).expanduser().resolve()


def is_sweep(d: Path) -> bool:
    return (d / SWEEP_FILE).is_file()


def enclosing_record(p: Path) -> Path | None:
    """The nearest run or sweep directory at or above `p` (p resolved)."""
    for d in (p, *p.parents):
        if d.is_dir() and (holds_run(d) or is_sweep(d)):
            return d
    return None


def _within(p: Path, d: Path) -> bool:
    return p == d or d in p.parents


def check_outputs(outputs: list[Output], inputs=(), force: bool = False, owns=()) -> list[Path]:
    """The outputs' resolved paths, or an OutputRefused naming the flag, the path and why. `inputs` are the
    command's input files and directories; `owns` the directories it may write new files into."""
    ins = [(str(i), resolve(i)) for i in inputs]
    owned = [resolve(o) for o in owns]
    seen: dict[Path, str] = {}
    out = []
    for o in outputs:
        p = resolve(o.path)
        name = f"{o.flag} {o.path}"
        for raw, i in ins:
            if _within(p, i):
                what = "is the input" if p == i else "lies inside the input"
                raise OutputRefused(f"{name}: {what} {raw}; an output never replaces or writes into an input, "
                                    f"--force or not; choose a path outside it")
            if o.directory and _within(i, p):
                raise OutputRefused(f"{name}: holds the input {raw}; choose a new directory beside it")
        home = next((d for d in owned if _within(p, d)), None)
        rec = enclosing_record(p if o.directory else p.parent)
        if rec is not None and (home is None or not _within(rec, home)):
            kind = "sweep" if is_sweep(rec) else "run"
            if rec == p:
                raise OutputRefused(f"{name}: already holds a {kind}; choose a new directory")
            raise OutputRefused(f"{name}: lies inside the {kind} directory {rec}, which this command does not "
                                f"write; choose a path outside it")
        if home is not None and p != home and p.relative_to(home).parts[0] in RECORDS:
            raise OutputRefused(f"{name}: is one of the records of {home}; choose another name")
        if p in seen:
            raise OutputRefused(f"{seen[p]} and {o.flag}: both are {o.path}; give each output its own path")
        seen[p] = o.flag
        if not o.directory:
            if not p.parent.is_dir():
                raise OutputRefused(f"{name}: the directory {p.parent} does not exist")
            if p.is_dir():
                raise OutputRefused(f"{name}: is a directory; expected a file path")
            if p.exists() and not force:
                raise OutputRefused(f"{name}: exists; add --force to replace it")
        out.append(p)
    return out
