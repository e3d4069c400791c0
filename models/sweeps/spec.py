"""A sweep's plan: presets x seeds x a grid of config values (`SweepSpec`), each trial named so a rerun finds its run
directory, written to sweep.toml and read back to resume; sized to the machine's cores."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import itertools
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from ..config import Config, ConfigError, check_seed, load_config, parse_override
from ..errors import WorkbenchError

SWEEP_FILE = "sweep.toml"
FORMAT = "qmix-workbench-sweep/1"
BACKENDS = ("local", "ray")
RESERVED_KEYS = {"run.seed": "give seeds with --seeds", "run.name": "the sweep names each run",
                 "run.runs_dir": "runs go under the sweep directory (--out)"}


class SweepError(WorkbenchError, ValueError):
    """A sweep cannot be planned or run as asked; the message names the option or file."""


@dataclass
class Trial:
    name: str  # its run directory under the sweep directory
    preset: str
    seed: int
    grid: dict[str, Any] = field(default_factory=dict)  # this trial's value of each grid key
    cpus: int = 1  # cores its processes use: run.threads, times 2 with a learner process


@dataclass
class SweepSpec:
    presets: list[str]
    seeds: list[int]
    grid: dict[str, list] = field(default_factory=dict)  # key -> values, in the order given
    fixed: list[str] = field(default_factory=list)  # --set overrides, as given
    threads: int = 1  # torch/numba threads per process of a trial (unless --set/--grid run.threads)
    final_episodes: int = 200  # greedy episodes evaluated at the end of each trial (0: none)
    # the absolute metric: each trial's best checkpoint re-evaluated with this many times run.test_episodes (0: none)
    absolute_factor: int = 10
    backend: str = "local"
    address: str | None = None  # Ray: "auto", "ray://host:port"; None starts a local Ray
    workers: int = 0  # trials at once (0: sized to the machine)
    trials: list[Trial] = field(default_factory=list)
    created: str = ""  # when the sweep was first planned (kept by reruns)

    def overrides(self, trial: Trial, sweep_dir: Path | None = None) -> list[str]:
        """The `--set` list that makes this trial's config from its preset."""
        out = list(self.fixed) + [f"{k}={_toml_value(v)}" for k, v in trial.grid.items()]
        keys = {parse_override(o)[0] for o in out}
        if "run.threads" not in keys:
            out.append(f"run.threads={self.threads}")
        out += [f"run.seed={trial.seed}", f"run.name={_toml_value(trial.name)}"]
        if sweep_dir is not None:
            out.append(f"run.runs_dir={_toml_value(str(sweep_dir))}")
        return out

    def config(self, trial: Trial, sweep_dir: Path | None = None) -> Config:
        return load_config(trial.preset, self.overrides(trial, sweep_dir))

    def identity(self) -> dict:
        """What makes two sweeps the same sweep (how many workers or threads, or the backend, do not)."""
        # --set values in another order are the same sweep (a key given twice keeps its order: the last wins)
        fixed = sorted(self.fixed, key=lambda o: parse_override(o)[0])
        return {"presets": self.presets, "seeds": self.seeds, "grid": self.grid, "set": fixed}

    def to_toml(self) -> str:
        created = self.created or _dt.datetime.now().isoformat(timespec="seconds")
        doc: dict[str, Any] = {"format": FORMAT, "created": created,
                               "presets": self.presets, "seeds": self.seeds, "set": self.fixed,
                               "threads": self.threads, "final_episodes": self.final_episodes,
                               "absolute_factor": self.absolute_factor,
                               "backend": self.backend, "workers": self.workers, "grid": self.grid,
                               "trials": [dataclasses.asdict(t) for t in self.trials]}
        if self.address is not None:  # TOML has no null
            doc["address"] = self.address
        return tomli_w.dumps(doc)

    @classmethod
    def read(cls, sweep_dir: str | Path) -> "SweepSpec":
        """The spec a sweep directory's sweep.toml describes."""
        path = Path(sweep_dir) / SWEEP_FILE
        if not path.exists():
            raise SweepError(f"{sweep_dir} has no {SWEEP_FILE}: not a sweep directory")
        try:
            doc = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SweepError(f"{path}: not valid TOML: {e}") from None
        if doc.get("format") != FORMAT:
            raise SweepError(f"{path}: not a qmix-workbench sweep file (format {FORMAT!r} expected, "
                             f"got {doc.get('format')!r})")
        try:
            trials = [Trial(**t) for t in doc.get("trials", [])]
            return cls(presets=list(doc["presets"]), seeds=list(doc["seeds"]), grid=dict(doc.get("grid", {})),
                       fixed=list(doc.get("set", [])), threads=int(doc.get("threads", 1)),
                       final_episodes=int(doc.get("final_episodes", 200)),
                       absolute_factor=int(doc.get("absolute_factor", 10)), backend=doc.get("backend", "local"),
                       address=doc.get("address"), workers=int(doc.get("workers", 0)), trials=trials,
                       created=str(doc.get("created", "")))
        except (KeyError, TypeError) as e:
            raise SweepError(f"{path}: malformed sweep file ({e})") from None


# ---- planning ---------------------------------------------------------------------------------------

def _toml_value(v) -> str:
    """`v` as a TOML literal, the form `--set key=value` parses back to the same value."""
    return tomli_w.dumps({"v": v})[len("v = "):].strip()


def parse_grid(items: list[str]) -> dict[str, list]:
    """`--grid key=v1,v2,...` items (values as in --set: TOML literals, bare words are strings)."""
    grid: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise SweepError(f"--grid {item!r}: expected section.key=v1,v2,... (e.g. learner.lr=0.001,0.0005)")
        key, raw = (s.strip() for s in item.split("=", 1))
        if "." not in key or not key.split(".", 1)[1]:
            raise SweepError(f"--grid {item!r}: the key must name its section, e.g. learner.lr=0.001,0.0005")
        if key in RESERVED_KEYS:
            raise SweepError(f"--grid {key}: not a grid key ({RESERVED_KEYS[key]})")
        if key in grid:
            raise SweepError(f"--grid {key}: given twice; put every value in one --grid {key}=v1,v2,...")
        parts = [p.strip() for p in raw.split(",")]
        if not raw or any(not p for p in parts):
            raise SweepError(f"--grid {item!r}: expected a comma-separated list of values after '=', "
                             f"with none empty")
        values = [parse_override(f"{key}={p}")[1] for p in parts]
        if len({_toml_value(v) for v in values}) != len(values):
            raise SweepError(f"--grid {item!r}: a value is repeated")
        grid[key] = values
    return grid


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` or a range `0-4` (both ends included)."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d+\s*-\s*\d+", text):
            lo, hi = (int(s) for s in text.split("-"))
            if hi < lo:
                raise ValueError
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise SweepError(f"--seeds {text!r}: expected whole numbers separated by commas (0,1,2) or a range "
                         f"(0-4)") from None
    for s in seeds:
        check_seed("--seeds", s)
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {text!r}: a seed is repeated")
    return seeds


def _short_keys(keys: list[str]) -> dict[str, str]:
    """Each grid key's part in a run name: its last component (`lr`), or the whole key when two would clash."""
    last = [k.rsplit(".", 1)[1] for k in keys]
    return {k: (s if last.count(s) == 1 else k.replace(".", "-")) for k, s in zip(keys, last)}


def _name_part(v) -> str:
    s = ("true" if v else "false") if isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)
    s = re.sub(r"[^A-Za-z0-9.+-]+", "-", s)
    return re.sub(r"\.{2,}", "-", s)


def trial_name(preset: str, grid_values: dict, seed: int, short: dict[str, str]) -> str:
    """The run directory's name: preset, each grid value, seed (`qmix_twostep_lr0.001_s0`)."""
    base = Path(preset).stem if preset.endswith(".toml") else preset
    return base + "".join(f"_{short[k]}{_name_part(v)}" for k, v in grid_values.items()) + f"_s{seed}"


def cores() -> int:
    """Cores this process may run on (its affinity, where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def trial_cpus(cfg: Config) -> int:
    """Cores a run uses: its threads, in each of its processes (actors, and the learner when it has one)."""
    threads = cfg.run.threads or 1
    return threads + ((cfg.run.learner_threads or threads) if cfg.run.learner_process else 0)


def plan_sweep(presets: list[str], seeds: list[int], grid: dict[str, list] | None = None,
               fixed: list[str] | None = None, threads: int = 1, final_episodes: int = 200, absolute_factor: int = 10,
               backend: str = "local", address: str | None = None, workers: int = 0) -> SweepSpec:
    """Every trial of presets x grid x seeds, with each trial's config built (and so checked) now: a bad
    preset, key or value is an error before anything runs."""
    grid, fixed = dict(grid or {}), list(fixed or [])
    if not presets:
        raise SweepError("a sweep needs at least one --preset (see `qmix-workbench presets`)")
    if len(set(presets)) != len(presets):
        raise SweepError(f"--preset: a preset is given twice ({', '.join(presets)})")
    if not seeds:
        raise SweepError("a sweep needs at least one seed (--seeds 0,1,2)")
    if backend not in BACKENDS:
        raise SweepError(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise SweepError("--address is for the ray backend; add --backend ray")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SweepError(f"--threads: expected a whole number >= 1, got {threads!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise SweepError(f"--workers: expected a whole number >= 1, got {workers!r}")
    if isinstance(final_episodes, bool) or not isinstance(final_episodes, int) or not 0 <= final_episodes <= 100_000:
        raise SweepError(f"--final-episodes: expected a whole number in [0, 100000], got {final_episodes!r}")
    if isinstance(absolute_factor, bool) or not isinstance(absolute_factor, int) or not 0 <= absolute_factor <= 1000:
        raise SweepError(f"--absolute-factor: expected a whole number in [0, 1000], got {absolute_factor!r}")
    for item in fixed:
        key = parse_override(item)[0]
        if key in RESERVED_KEYS:
            raise SweepError(f"--set {key}: not settable in a sweep ({RESERVED_KEYS[key]})")
        if key in grid:
            raise SweepError(f"{key} is both in --set and in --grid; keep one")
    from ..registry import check_preset

    resolved = []
    for p in presets:  # a file is kept by its absolute path, so a resume from elsewhere finds it
        if p.endswith(".toml") or os.sep in p:
            if not Path(p).is_file():
                raise SweepError(f"--preset {p!r}: no such config file")
            resolved.append(str(Path(p).resolve()))
        else:
            resolved.append(check_preset(p))
    spec = SweepSpec(presets=resolved, seeds=list(seeds), grid=grid, fixed=fixed, threads=threads,
                     final_episodes=final_episodes, absolute_factor=absolute_factor, backend=backend, address=address,
                     workers=workers)
    short = _short_keys(list(grid))
    names: dict[str, Trial] = {}
    combos = list(itertools.product(*grid.values())) if grid else [()]
    # seeds outermost: a sweep cut short (or still running) has every configuration at its first seeds,
    # so the comparison it can already draw is across configurations rather than one of them alone
    for seed in seeds:
        for preset in resolved:
            for combo in combos:
                values = dict(zip(grid, combo))
                t = Trial(trial_name(preset, values, seed, short), preset, seed, values)
                if t.name in names:
                    raise SweepError(f"two trials would share the run directory {t.name!r} ({names[t.name]} and "
                                     f"{t}); make the presets' file names or the grid values differ")
                try:
                    cfg = spec.config(t)
                except ConfigError as e:
                    where = f"preset {Path(preset).name}" + (f" with {values}" if values else "")
                    raise SweepError(f"{where}: {e}") from None
                t.cpus = trial_cpus(cfg)
                names[t.name] = t
    spec.trials = list(names.values())
    return spec


def default_workers(trials: list[Trial], n_cores: int | None = None) -> int:
    """As many trials at once as the cores hold (the widest trial sets the size), at least one."""
    need = max((t.cpus for t in trials), default=1)
    return max(1, (n_cores or cores()) // need)


