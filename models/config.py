"""Typed, validated training configuration: dataclasses loaded from TOML presets plus overrides.

A config has four sections — `env`, `algo`, `learner`, `run` — and every key is checked:
unknown keys and bad values are errors that name the key (e.g. `learner.lr`).
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import tomli_w

from .errors import WorkbenchError

PRESET_PACKAGE = "models.presets"


class ConfigError(WorkbenchError, ValueError):
    """A configuration key or value is wrong; the message names the key."""


@dataclass
class EnvConfig:
    map_name: str = "2c_vs_64zg"
    num_envs: int = 16  # battles collected in lock-step per round
    profile: str = "lotv"
    options: dict = field(default_factory=dict)  # extra SMAC options, e.g. {obs_last_action = true}


@dataclass
class AlgoConfig:
    mixer: str = "qmix"  # "none" (IQL) | "vdn" | "qmix"
    res: bool = False  # RES softmax operator + Monte-Carlo regulariser
    res_beta: float = 5.0
    res_lambda: float = 0.05
    res_exact: bool = False  # softmax over every joint action (small joint spaces only)
    agent_hidden: int = 64
    mixing_embed: int = 32
    hypernet_embed: int = 64


@dataclass
class LearnerConfig:
    optimizer: str = "adam"  # "adam" | "rmsprop"
    lr: float = 1e-3
    # a linear decay of the rate over env steps: `lr` at 0, `lr_finish` from `lr_anneal_steps` on (0: constant)
    lr_finish: float = 0.0
    lr_anneal_steps: int = 0
    gamma: float = 0.99
    td_lambda: float = 0.6  # 0 gives one-step targets
    double_q: bool = True
    target_update: str = "hard"  # "hard" | "polyak"
    # collected episodes between hard copies of the target networks (PyMARL's count), whatever env.num_envs
    target_update_episodes: int = 200
    tau: float = 0.005  # polyak rate per update
    grad_clip: float = 10.0
    batch_size: int = 32  # episodes per update
    buffer_size: int = 1000  # episodes
    # episodes sampled for updates per episode collected: a round of num_envs episodes earns
    # num_envs * replay_ratio / batch_size updates (fractions carry over to the next round)
    replay_ratio: float = 8.0
    bootstrap_timeouts: bool = True  # a time-out is a truncation, not a terminal state


@dataclass
class RunConfig:
    name: str = "run"
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    t_max: int = 2_000_000  # env steps
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_steps: int = 100_000
    # Ape-X's spread of epsilon over the envs of a round: env b explores with eps^(1 + spread * (B-1-b)/(B-1))
    # (env 0 the greediest, the last env the schedule's eps); 0: every env the schedule's eps
    epsilon_spread: float = 0.0
    # hold an exploratory action for n ~ zeta(epsilon_hold) steps (temporally-extended epsilon-greedy); 0: one step
    epsilon_hold: float = 0.0
    test_interval: int = 20_000  # env steps between greedy evaluations
    test_episodes: int = 32
    save_interval: int = 200_000  # env steps between checkpoints (0: only at the end)
    save_buffer: bool = False
    runs_dir: str = "runs"
    snapshot_hz: float = 30.0  # probe snapshots for a watching GUI (only when one asks)
    threads: int = 0  # torch intra-op threads (0: torch's default; 1 per process with a learner process)
    learner_threads: int = 0  # the learner process's torch threads (0: as run.threads)
    # learn in a worker process while the next round is collected (actors use weights one round old)
    learner_process: bool = False
    time_limit_s: float = 0.0  # stop (and save) after this much training wall time; 0: no limit
    # a non-finite loss, gradient or Q-value: "stop" ends the run (no checkpoint written over a good one),
    # "skip" drops that update (counted in metrics.csv) and goes on
    on_nonfinite: str = "stop"
    # episode files of environment 0 under the run's episodes/ (0: none); the first won episode is always kept
    record_interval: int = 100_000
    record_first_win: bool = True
    # a branch (`qmix-workbench branch`): the parent's run directory and the env step it branched at, "DIR@STEPS"
    branch_of: str = ""
    # an experiment script (models.training.script): timed live changes, branches and breakpoints the run plays
    script: str = ""


@dataclass
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @property
    def algorithm_name(self) -> str:
        """"QMIX", "RES-VDN", ...: the registry's name for this mixer and RES flag."""
        from .registry import algorithm_of  # the registry imports this module

        return algorithm_of(self.algo.mixer, self.algo.res).name


SECTIONS = {"env": EnvConfig, "algo": AlgoConfig, "learner": LearnerConfig, "run": RunConfig}
CHOICES = {
    "algo.mixer": ("none", "vdn", "qmix"),
    "learner.optimizer": ("adam", "rmsprop"),
    "learner.target_update": ("hard", "polyak"),
    "run.device": ("auto", "cpu", "cuda"),
    "env.profile": ("lotv", "liberty"),
    "run.on_nonfinite": ("stop", "skip"),
}
# seeds go to numpy, torch and the simulator's hash; this range is one every one of them takes as is
SEED_RANGE = {"run.seed": (0, 2**31 - 1)}
POSITIVE = {"env.num_envs", "algo.agent_hidden", "algo.mixing_embed", "algo.hypernet_embed", "learner.lr",
            "learner.target_update_episodes", "learner.batch_size", "learner.buffer_size", "run.t_max",
            "run.test_episodes", "learner.grad_clip", "learner.replay_ratio", "run.test_interval"}
UNIT_INTERVAL = {"learner.gamma", "learner.td_lambda", "learner.tau", "run.epsilon_start", "run.epsilon_finish"}
NON_NEGATIVE = {"algo.res_beta", "algo.res_lambda", "learner.lr_finish", "learner.lr_anneal_steps",
                "run.epsilon_anneal_steps", "run.save_interval", "run.epsilon_spread",
                "run.snapshot_hz", "run.threads", "run.learner_threads", "run.time_limit_s"}


def _check_value(key: str, typ, value):
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    elif typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
    elif typ is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{key}: expected one of {', '.join(CHOICES[key])}, got {value!r}")
    if key in POSITIVE and value <= 0:
        raise ConfigError(f"{key}: expected a positive value, got {value!r}")
    if key in NON_NEGATIVE and value < 0:
        raise ConfigError(f"{key}: expected a value >= 0, got {value!r}")
    if key in UNIT_INTERVAL and not 0 <= value <= 1:
        raise ConfigError(f"{key}: expected a value in [0, 1], got {value!r}")
    if key == "run.epsilon_hold" and not (value == 0 or value > 1):
        raise ConfigError(f"{key}: expected 0 (no holding) or an exponent above 1 (2 holds 1 step in 0.61, "
                          f"2+ steps in 0.39), got {value!r}")
    if key in SEED_RANGE:
        check_seed(key, value)
    if key == "run.name":
        check_run_name(value)
    return value


def check_seed(key: str, value) -> int:
    lo, hi = SEED_RANGE["run.seed"]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{key}: expected a whole number in [{lo}, {hi}], got {value!r}")
    return value


EVAL_SEED = 12345  # the greedy evaluations' seed (eval, ship-policy, a sweep's final and absolute evaluations)
MAX_EPISODES = 100_000  # one bound for every command's --episodes (eval, record, fork, ship-policy)


def check_episodes(n, what: str = "episodes") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_EPISODES:
        raise ConfigError(f"--episodes: expected a whole number of {what} in [1, {MAX_EPISODES}], got {n!r}")
    return n


def check_run_name(name: str) -> None:
    """A run's name becomes a directory name under runs_dir: it must stay one plain name there."""
    bad = [c for c in ("/", "\\", "\0") if c in name]
    if not name.strip() or name in (".", "..") or ".." in name or bad or name != name.strip():
        raise ConfigError(f"run.name: expected a plain directory name (no path separators, no '..', not empty, "
                          f"no surrounding spaces), got {name!r}")


# Keys of versions before the schedules meant what they say. Their meaning hung on env.num_envs and
# learner.batch_size: `updates_per_round` updates after each round of num_envs episodes, a target copy every
# `target_update_interval` updates. Stored configs (checkpoints, run directories, policy cards, episode files)
# are converted to their equivalents (the same updates per episode collected and the same refresh period; the
# first target copy comes when the episode count reaches it, not the update count); a config a person writes is
# refused with those equivalents.
LEGACY_KEYS = {"updates_per_round": "replay_ratio", "target_update_interval": "target_update_episodes"}


def convert_legacy(doc: dict, base: Config | None = None) -> tuple[dict, list[str]]:
    """`doc` with the old schedule keys replaced by their equivalents under its own num_envs and batch_size
    (or `base`'s, or the defaults'), and a line saying each conversion; `doc` itself when it has none."""
    learner = doc.get("learner")
    if not isinstance(learner, dict) or not any(k in learner for k in LEGACY_KEYS):
        return doc, []
    ref = base or Config()
    env = doc.get("env") if isinstance(doc.get("env"), dict) else {}
    E, B = env.get("num_envs", ref.env.num_envs), learner.get("batch_size", ref.learner.batch_size)
    learner = dict(learner)
    for key, v in [(f"learner.{k}", learner[k]) for k in LEGACY_KEYS if k in learner] + [
            ("env.num_envs", E), ("learner.batch_size", B)]:  # checked here: the conversion divides by them
        _check_value(key, int, v)
        if v <= 0:
            raise ConfigError(f"{key}: expected a positive value, got {v!r}")
    notes = []
    if "updates_per_round" in learner:
        U = learner.pop("updates_per_round")
        learner["replay_ratio"] = U * B / E
        notes.append(f"learner.updates_per_round = {U} (with env.num_envs = {E}, learner.batch_size = {B}) "
                     f"is learner.replay_ratio = {learner['replay_ratio']:g}")
    ratio = learner.get("replay_ratio", ref.learner.replay_ratio)
    if "target_update_interval" in learner:
        interval = learner.pop("target_update_interval")
        episodes = interval * B / ratio  # updates x episodes collected per update
        learner["target_update_episodes"] = max(1, round(episodes))
        notes.append(f"learner.target_update_interval = {interval} updates is learner.target_update_episodes = "
                     f"{learner['target_update_episodes']}" + ("" if episodes == round(episodes) else
                                                              f" (rounded from {episodes:g})"))
    return {**doc, "learner": learner}, notes


def legacy_message(doc: dict, base: Config | None = None) -> str | None:
    """For a config a person wrote with the old keys: what they are now, with this config's equivalents."""
    _, notes = convert_legacy(doc, base)
    if not notes:
        return None
    old = [f"learner.{k}" for k in LEGACY_KEYS if k in doc.get("learner", {})]
    return (f"{' and '.join(old)} {'is no longer a setting' if len(old) == 1 else 'are no longer settings'} "
            f"(their meaning changed with env.num_envs): updates follow learner.replay_ratio (episodes sampled "
            f"per episode collected) and target copies learner.target_update_episodes (episodes collected "
            f"between copies); here " + "; ".join(notes))


def from_dict(doc: dict, base: Config | None = None, notes: list | None = None) -> Config:
    """Apply a nested dict (as read from TOML) on top of `base` (defaults when None), validating every key.
    A stored config of an earlier version is converted (`convert_legacy`); `notes` gets a line per conversion."""
    doc, converted = convert_legacy(doc, base)
    if notes is not None:
        notes.extend(converted)
    cfg = dataclasses.replace(base) if base is not None else Config()
    cfg = Config(**{name: dataclasses.replace(getattr(cfg, name)) for name in SECTIONS})
    for section, values in doc.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown section {section!r}; known sections: {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a table of keys, got {values!r}")
        obj = getattr(cfg, section)
        hints = get_type_hints(SECTIONS[section])
        for k, v in values.items():
            key = f"{section}.{k}"
            if k not in hints:
                raise ConfigError(f"unknown key {key!r}; keys of [{section}]: {', '.join(hints)}")
            setattr(obj, k, _check_value(key, hints[k], v))
    _check_consistency(cfg)
    return cfg


def _check_consistency(cfg: Config) -> None:
    if cfg.algo.res and cfg.algo.mixer == "none":
        raise ConfigError("algo.res: RES needs a mixer (vdn or qmix), but algo.mixer is 'none'")
    if cfg.learner.batch_size > cfg.learner.buffer_size:
        raise ConfigError(f"learner.batch_size ({cfg.learner.batch_size}) must not exceed "
                          f"learner.buffer_size ({cfg.learner.buffer_size})")
    if cfg.run.epsilon_finish > cfg.run.epsilon_start:
        raise ConfigError("run.epsilon_finish must not exceed run.epsilon_start")


def parse_override(item: str) -> tuple[str, Any]:
    """`section.key=value` with a TOML value (`lr=1e-3`, `res=true`, `name="x"`); bare words are strings."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if key.count(".") < 1:
        raise ConfigError(f"override {item!r}: the key must name its section, e.g. learner.lr=0.001")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    doc: dict = {}
    for item in overrides:
        key, value = parse_override(item)
        section, _, rest = key.partition(".")
        if section == "env" and rest.startswith("options."):
            doc.setdefault("env", {}).setdefault("options", dict(cfg.env.options))[rest[len("options."):]] = value
            continue
        doc.setdefault(section, {})[rest] = value
    _refuse_legacy(doc, cfg)
    return from_dict(doc, cfg)


def _refuse_legacy(doc: dict, base: Config | None) -> None:
    msg = legacy_message(doc, base)
    if msg:
        raise ConfigError(msg)


def list_presets() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PRESET_PACKAGE).iterdir() if p.name.endswith(".toml"))


def load_config(preset_or_path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """A preset by name (`qmix_2c_vs_64zg`), or a TOML file by path, with `section.key=value` overrides."""
    cfg = Config()
    if preset_or_path is not None:
        p = Path(preset_or_path)
        if p.suffix == ".toml" or p.exists():
            text, where = _read_config_file(p), str(p)
        else:
            names = list_presets()
            if str(preset_or_path) not in names:
                raise ConfigError(f"unknown preset {str(preset_or_path)!r}; presets: {', '.join(names)}")
            text = (resources.files(PRESET_PACKAGE) / f"{preset_or_path}.toml").read_text()
            where = f"preset {preset_or_path}"
        cfg = _from_text(text, where)
    return apply_overrides(cfg, overrides or [])


def _from_text(text: str, where: str, base: Config | None = None) -> Config:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML: {e}") from None
    try:
        _refuse_legacy(doc, base)
        return from_dict(doc, base)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def apply_file(cfg: Config | None, path: str | Path) -> Config:
    """Apply the user's TOML file on top of `cfg` (defaults when None)."""
    return _from_text(_read_config_file(Path(path)), str(path), cfg)


def _read_config_file(p: Path) -> str:
    if not p.exists():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    if p.is_dir():
        raise ConfigError(f"config file {str(p)!r} is a directory; expected a TOML file")
    try:
        return p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text (byte {e.start}); expected a TOML file") from None
    except OSError as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {e.strerror}") from None


def flatten(doc: dict, prefix: str = "") -> dict:
    """{"learner": {"lr": 1e-3}} -> {"learner.lr": 1e-3}; env.options stays one value (a table)."""
    out = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not prefix:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
