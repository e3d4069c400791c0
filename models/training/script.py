"""Experiment scripts: the timed steps of an interactive experiment, in a TOML file a training plays
(`train --script FILE`, `run.script`, the window's File > Play experiment script), so a lecturer can replay the same
experiment in front of a class.

```toml
[[step]]
at = 100000                                   # env steps
set = { "run.epsilon_start" = 0.5, "learner.lr" = 0.0005 }

[[step]]
at = 150000
branch = { "algo.res_lambda" = 0.1 }          # a branch made from a checkpoint saved here

[[step]]
at = 0
break_on = ["agent dies"]                     # the window pauses environment 0 on these events
```

A step applies at the first round boundary at or after its env step: `set` as live changes (source "script",
events like any other), `branch` as `qmix-workbench branch` from a checkpoint written then, `break_on` as the
window's breakpoints. A resumed run skips the steps before its checkpoint (their changes are among its events).
"""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError
from ..core.events import BREAK_KINDS
from . import live


@dataclass
class ScriptStep:
    at: int
    set: dict = field(default_factory=dict)
    branch: dict | None = None
    break_on: list | None = None


def script_digest(path: str | Path) -> str | None:
    """The SHA-256 of a script file's bytes (None when it cannot be read): a resume tells an edited script."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def load_script(path: str | Path, cfg, log=None) -> list[ScriptStep]:
    """The steps of an experiment script, in env-step order, checked whole before a run starts: each step's `set`
    against `cfg` as the steps before it change it, each `branch` as a branch from there would be (a locked key, a
    bad value or an unknown event is refused naming the step). `log` hears of steps past run.t_max."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except OSError as e:
        raise ConfigError(f"experiment script {p}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"experiment script {p}: not valid TOML: {e}") from None
    raw = doc.get("step")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"experiment script {p}: expected [[step]] tables (at = env steps, and set, branch or "
                          f"break_on)")
    from .branch import check_changes

    checked = []
    for i, d in enumerate(raw, 1):
        where = f"experiment script {p}, step {i}"
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a [[step]] table, got {d!r:.40}")
        unknown = set(d) - {"at", "set", "branch", "break_on"}
        if unknown:
            raise ConfigError(f"{where}: unknown field {sorted(unknown)[0]!r}; expected at, set, branch, break_on")
        at = d.get("at")
        if not isinstance(at, int) or isinstance(at, bool) or at < 0:
            raise ConfigError(f"{where}: at = {at!r}; expected the env steps, a whole number >= 0")
        if not any(k in d for k in ("set", "branch", "break_on")):
            raise ConfigError(f"{where}: nothing to do; expected set, branch or break_on")
        for k in ("set", "branch"):
            if k in d and (not isinstance(d[k], dict) or not d[k]):
                raise ConfigError(f"{where}: {k} must be a table of settings, e.g. {k} = {{ \"learner.lr\" = 0.0005 }}")
        kinds = d.get("break_on")
        if kinds is not None:
            if not isinstance(kinds, list) or any(not isinstance(k, str) or k not in BREAK_KINDS for k in kinds):
                raise ConfigError(f"{where}: break_on = {kinds!r}; expected a list of {', '.join(BREAK_KINDS)}")
        checked.append((at, i, where, d))
    steps = []
    c = cfg
    for at, i, where, d in sorted(checked, key=lambda x: (x[0], x[1])):  # in the order the run plays them
        for key, value in d.get("set", {}).items():
            try:
                c, _ = live.changed(c, key, value)
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None
        if "branch" in d:
            try:
                check_changes(c, dict(d["branch"]))
            except ConfigError as e:
                raise ConfigError(f"{where}: branch: {e}") from None
        if at > c.run.t_max and log is not None:
            log(f"warning: {where}: at = {at:,} is past run.t_max = {c.run.t_max:,}; it plays only if the run is "
                f"told to train that far")
        steps.append(ScriptStep(at, dict(d.get("set", {})), d.get("branch"), d.get("break_on")))
    return steps
