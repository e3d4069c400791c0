"""Shipped policies: trained networks that come with the app, as data. This module is the one place that finds,
loads and writes them; the CLI (`eval --policy`, `watch --policy`, `ship-policy`, `policies`) and the app's
start-up watch and *Policies* list all go through it.

A policy `NAME` is two files in the policies directory (`assets/policies/` in the package; `$QMIX_WORKBENCH_POLICIES`
or a function argument overrides it):

- `NAME.npz`: the acting networks' weights and nothing else, as plain arrays named `agent.<param>` and
  `mixer.<param>` (the learner's targets and optimiser state are not shipped). Read with
  `np.load(allow_pickle=False)`: opening one never executes code. At most `MAX_WEIGHTS_BYTES`.
- `NAME.json`: its card: what it is (algorithm, preset, map, the full resolved config that rebuilds the networks,
  their dims), how it was made (env steps of training, seed, source checkpoint and its digest, the command) and
  how good it is (greedy win rate, mean return and enemies killed over N episodes of a fixed eval seed), plus the
  SHA-256 of the `.npz` file's bytes, checked on every load.

Wherever a checkpoint path goes (`models.files.loading.load_policy`, `evaluate_checkpoint`, `models.play.watch.watch`,
`record_episodes`, an episode file's header), a shipped policy's `.npz` path goes too; `find_policy(name).weights`
turns a name into that path.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WorkbenchError
from . import metrics

FORMAT = "qmix-workbench-policy/1"
ENV_DIR = "QMIX_WORKBENCH_POLICIES"
MAX_WEIGHTS_BYTES = 1_000_000  # a policy is data in the package: a QMIX 2c_vs_64zg one is ~0.47 MB
NET_PREFIXES = ("agent", "mixer")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # a file name and a CLI word on every platform
DIM_KEYS = ("obs_dim", "state_dim", "n_agents", "n_actions")
# the training history a card keeps (metrics.csv's kind -> columns), each cut to CURVE_POINTS means: what the app's
# Training curves panel shows while the policy plays
CURVE_COLUMNS = {"episode": ("return", "won", "epsilon", "overestimation"),
                 "update": ("loss", "td_error", "steps_per_s", "qtot_taken", "res_softmax_value", "max_value"),
                 "eval": ("test_win_rate",)}
CURVE_POINTS = 200


class PolicyError(WorkbenchError, ValueError):
    """A shipped policy cannot be found, read or trusted; the message names the file and what was expected."""


@dataclass(frozen=True)
class Card:
    """What `NAME.json` says about the policy in `NAME.npz` (`weights`)."""

    name: str
    algorithm: str  # the registry's name: "QMIX", "RES-QMIX", ...
    preset: str | None  # the shipped preset it was trained from, when it was one
    map: str
    config: dict  # the full resolved config: rebuilds the networks
    dims: dict  # obs_dim, state_dim, n_agents, n_actions
    t_env: int  # env steps of training
    seed: int  # run.seed of the training run
    win_rate: float  # greedy, over `eval_episodes` episodes from `eval_seed`
    eval_episodes: int
    eval_seed: int
    mean_return: float
    dead_enemies: float  # mean enemies killed per episode
    command: str  # what made the files
    digest: str  # SHA-256 of NAME.npz's bytes
    source_checkpoint: dict  # {"path", "digest"}: the checkpoint file and its payload digest
    created: str
    # {"kind/column": [[t_env...], [value...]]} from the source run's metrics.csv, up to the checkpoint; {} without one
    curves: dict = field(default_factory=dict, compare=False, repr=False)
    path: Path = field(default=Path(), compare=False)  # the card file itself (not stored in it)

    @property
    def weights(self) -> Path:
        return self.path.with_suffix(".npz")

    def to_json(self) -> str:
        d = {"format": FORMAT, **asdict(self)}
        d.pop("path")
        d["card_digest"] = card_digest(d)
        return json.dumps(d, indent=2, sort_keys=False) + "\n"

    def curve_series(self) -> dict:
        """The training history as `workbench.plot.read_metrics` gives a run's: {(kind, column): (t_env, values)}."""
        return {tuple(k.split("/", 1)): (np.asarray(xy[0], float), np.asarray(xy[1], float))
                for k, xy in self.curves.items()}

    @property
    def score(self) -> str:
        """How well it plays, in the map's terms: a battle's greedy win rate; a matrix game's greedy return
        (a matrix game is not won or lost)."""
        from sims import list_matrix_games

        if self.map in list_matrix_games():
            return f"return {self.mean_return:.2f}"
        return f"{self.win_rate:.0%} wins"

    def summary(self) -> str:
        """One line: what a person choosing between policies wants to know."""
        return (f"{self.name}: {self.algorithm} on {self.map}, {self.t_env:,} env steps of training, "
                f"{self.score} (greedy, over {self.eval_episodes} episodes)")

    def meta(self) -> dict:
        """The policy described the way a checkpoint's metadata is (`models.files.checkpoint.load_checkpoint`), so code
        that plays a checkpoint plays a shipped policy unchanged."""
        return {"path": str(self.weights.resolve()), "digest": self.digest, "verified": True, "config": self.config,
                "fingerprint": dict(self.dims), "t_env": self.t_env, "algorithm": self.algorithm, "run_dir": "",
                "policy": self.name}


# ---- where they are ------------------------------------------------------------------------------------------------
def policies_dir(directory: str | Path | None = None) -> Path:
    """`directory` if given, else `$QMIX_WORKBENCH_POLICIES`, else the package's `assets/policies/`."""
    if directory is not None:
        return Path(directory)
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    import assets

    return Path(assets.__file__).resolve().parent / "policies"


def list_policies(directory: str | Path | None = None, unreadable: list | None = None) -> list[Card]:
    """Every readable shipped policy's card, QMIX first, then by name. A card that cannot be read (malformed, or
    changed after it was written) is left out and, with `unreadable`, reported there as (file, reason): one bad
    card does not hide the others."""
    d = policies_dir(directory)
    cards = []
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            cards.append(read_card(p))
        except PolicyError as e:
            if unreadable is not None:
                unreadable.append((p, str(e)))
    return sorted(cards, key=lambda c: (c.algorithm != "QMIX", c.name))


def find_policy(name: str, directory: str | Path | None = None) -> Card:
    """The card of the shipped policy `name`; an unknown name is an error listing the shipped ones."""
    d = policies_dir(directory)
    key = str(name).strip().lower()  # names are lowercase: `--policy QMIX` means qmix
    p = d / f"{key}.json"
    if NAME_RE.match(key) and p.is_file():
        return read_card(p)
    names = [c.name for c in list_policies(d)]
    there = f"shipped policies: {', '.join(names)}" if names else "none is shipped there"
    raise PolicyError(f"unknown policy {name!r} in {d}; {there}")


def is_policy_file(path) -> bool:
    """Whether `path` names a shipped policy's weights (a `.npz` file with its card beside it)."""
    p = Path(path)
    return p.suffix == ".npz" and p.with_suffix(".json").is_file()


# ---- reading -------------------------------------------------------------------------------------------------------
def read_card(path: str | Path) -> Card:
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except OSError as e:
        raise PolicyError(f"cannot read the policy card {path}: {e.strerror}") from None
    except ValueError as e:
        raise PolicyError(f"the policy card {path} is not valid JSON: {e}") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise PolicyError(f"{path} is not a qmix-workbench policy card (format {FORMAT!r} expected)")
    types = {"name": str, "algorithm": str, "map": str, "config": dict, "dims": dict, "t_env": int, "seed": int,
             "win_rate": (int, float), "eval_episodes": int, "eval_seed": int, "mean_return": (int, float),
             "dead_enemies": (int, float), "command": str, "digest": str, "source_checkpoint": dict, "created": str}
    for k, t in types.items():
        if k not in d:
            raise PolicyError(f"the policy card {path} has no {k!r}")
        if not isinstance(d[k], t) or isinstance(d[k], bool):
            raise PolicyError(f"the policy card {path}: {k!r} has the wrong type ({type(d[k]).__name__})")
    if d["name"] != path.stem:
        raise PolicyError(f"the policy card {path} names the policy {d['name']!r}; expected {path.stem!r} "
                          f"(the file's name)")
    missing = [k for k in DIM_KEYS if not isinstance(d["dims"].get(k), int)]
    if missing:
        raise PolicyError(f"the policy card {path}: dims lacks {', '.join(missing)}")
    curves = d.get("curves") or {}
    if not isinstance(curves, dict) or not all(isinstance(v, list) and len(v) == 2 and len(v[0]) == len(v[1])
                                               for v in curves.values()):
        raise PolicyError(f"the policy card {path}: 'curves' must map \"kind/column\" to [[t_env...], [value...]]")
    # cards from before the card digest have none; a card that has one must match it
    if "card_digest" in d and d["card_digest"] != card_digest(d):
        raise PolicyError(f"the policy card {path} was changed after it was written (its card digest does not match "
                          f"its fields); ship the policy again rather than editing its card")
    fields = {k: d[k] for k in types}
    return Card(preset=d.get("preset"), path=path, curves=curves, **fields)


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def card_digest(d: dict) -> str:
    """SHA-256 of a card's fields (all but this digest), canonically: an edited win rate or map is caught."""
    body = {k: v for k, v in d.items() if k != "card_digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def load_weights(card: Card) -> dict[str, dict[str, np.ndarray]]:
    """{"agent": {param: array}, "mixer": {...}} from `card.weights`, after checking its bytes against the card."""
    path = card.weights
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PolicyError(f"cannot read the policy weights {path} (card {card.path}): {e.strerror}") from None
    got = file_digest(data)
    if got != card.digest:
        raise PolicyError(f"{path} does not match its card {card.path.name}: SHA-256 {got[:16]}... where the card "
                          f"says {card.digest[:16]}...; the file changed after it was shipped (ship it again)")
    out: dict[str, dict[str, np.ndarray]] = {}
    try:
        # the bytes that were hashed are the bytes that are read: no window for the file to change in between
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            for k in z.files:
                net, _, param = k.partition(".")
                if net not in NET_PREFIXES or not param:
                    raise PolicyError(f"{path} holds {k!r}; expected only agent.<param> and mixer.<param> arrays")
                out.setdefault(net, {})[param] = z[k]
    except PolicyError:
        raise
    except Exception as e:  # noqa: BLE001 - not a zip, an object array (refused without pickle), ...
        raise PolicyError(f"{path} is not a readable policy weights file: {str(e).splitlines()[0]}") from None
    if "agent" not in out:
        raise PolicyError(f"{path} has no agent.* weights")
    return out


def _card_beside(path) -> Card:
    path = Path(path)
    card_path = path.with_suffix(".json")
    if not card_path.is_file():
        raise PolicyError(f"{path} is not a shipped policy: there is no card {card_path.name} beside it")
    return read_card(card_path)


def verified_card(path: str | Path) -> Card:
    """The card of the policy whose weights are `path`, after checking the weights' bytes against it (without
    building networks: what the window checks before it spawns a watch)."""
    card = _card_beside(path)
    load_weights(card)
    return card


def load_policy_file(path: str | Path, device="cpu"):
    """(config, agent, mixer, card) of the shipped policy whose weights are `path` (its card beside it)."""
    import torch

    from ..config import from_dict
    from ..core.networks import build_networks

    card = _card_beside(path)
    w = load_weights(card)
    try:
        cfg = from_dict(card.config)
    except ValueError as e:
        raise PolicyError(f"the policy card {card.path}: its config does not load: {e}") from None
    agent, mixer = build_networks(cfg, card.dims, device)
    for net, module in (("agent", agent), ("mixer", mixer)):
        if module is None:
            if net in w:
                raise PolicyError(f"{path} holds mixer weights, but its card's config has no mixer")
            continue
        try:
            module.load_state_dict({k: torch.as_tensor(v) for k, v in w.get(net, {}).items()})
        except RuntimeError as e:  # missing, unexpected or mis-shaped parameters
            raise PolicyError(f"{path}: the {net} weights do not fit the networks its card describes: "
                              f"{str(e).splitlines()[0]} ...") from None
    return cfg, agent, mixer, card


def load_policy_by_name(name: str, device="cpu", directory: str | Path | None = None):
    """(config, agent, mixer, card) of a shipped policy by name, its weights checked against its card."""
    return load_policy_file(find_policy(name, directory).weights, device)


# ---- writing -------------------------------------------------------------------------------------------------------
def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PolicyError(f"--name: expected a policy name of lowercase letters, digits, '_' and '-' (at most 64, "
                          f"starting with a letter or digit), got {name!r}")
    return name


def preset_of(cfg) -> str | None:
    """The shipped preset a config came from: its run name when that is one (presets name their runs after
    themselves), else the algorithm's preset for the map, else None."""
    from ..registry import algorithm_of, list_presets

    names = list_presets()
    if cfg.run.name in names:
        return cfg.run.name
    guess = f"{algorithm_of(cfg.algo.mixer, cfg.algo.res).prefix}_{cfg.env.map_name}"
    return guess if guess in names else None


def training_curves(run_dir, t_max: int, points: int = CURVE_POINTS) -> dict:
    """`CURVE_COLUMNS` of a run's metrics.csv up to env step `t_max` (the shipped checkpoint's: a run may have gone
    on after it), each cut to at most `points` means of consecutive rows; {} when the run has no metrics.csv."""
    if not run_dir or not metrics.path_of(run_dir).is_file():
        return {}
    found = metrics.series(run_dir, kinds=tuple(CURVE_COLUMNS), t_max=t_max)
    rows = {f"{kind}/{col}": np.column_stack(found[(kind, col)])
            for kind, cols in CURVE_COLUMNS.items() for col in cols if (kind, col) in found}
    out = {}
    for key, a in rows.items():
        if len(a) > points:
            a = np.array([c.mean(0) for c in np.array_split(a, points)])
        out[key] = [[round(float(x), 1) for x in a[:, 0]], [float(f"{y:.5g}") for y in a[:, 1]]]
    return out
