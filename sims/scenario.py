"""Scenarios (SMAC maps) as data: `sims/scenarios/<name>.json`, validated on load."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .terrain import Terrain, load_terrain
from .units import UnitType, load_unit_types

SCENARIO_DIR = Path(__file__).parent / "scenarios"
RACES = ("P", "T", "Z")
ENEMY_ORDERS = ("attack_group", "attack_move")


@dataclass(frozen=True)
class Scenario:
    name: str
    n_agents: int
    n_enemies: int
    limit: int
    a_race: str
    b_race: str
    unit_type_bits: int
    map_type: str
    terrain: Terrain
    ally_types: tuple  # UnitType per agent, in agent-id order
    enemy_types: tuple  # UnitType per enemy
    ally_spawn: tuple
    enemy_spawn: tuple
    enemy_order: str
    enemy_order_point: tuple
    ally_type_bits: dict
    enemy_type_bits: dict
    profile: str
    path: str

    @property
    def n_units(self) -> int:
        return self.n_agents + self.n_enemies

    @property
    def unit_types(self) -> list[UnitType]:
        """Distinct unit types of the scenario, in first-appearance order."""
        seen: dict[str, UnitType] = {}
        for u in self.ally_types + self.enemy_types:
            seen.setdefault(u.name, u)
        return list(seen.values())

    @property
    def map_size(self) -> tuple:
        return self.terrain.size

    def spawn_positions(self) -> np.ndarray:
        """[U, 2] start positions: each team in a square grid around its spawn point."""
        out = []
        for types, (cx, cy) in ((self.ally_types, self.ally_spawn), (self.enemy_types, self.enemy_spawn)):
            n = len(types)
            spacing = 2 * max(t.radius for t in types) + 0.05
            cols = math.ceil(math.sqrt(n))
            rows = math.ceil(n / cols)
            for k in range(n):
                r, c = divmod(k, cols)
                out.append((cx + (c - (cols - 1) / 2) * spacing, cy + ((rows - 1) / 2 - r) * spacing))
        return np.asarray(out, dtype=np.float64)


def list_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def _req(path, doc, key, kind, check=None, what=""):
    if key not in doc:
        raise DataError(path, key, "missing")
    v = doc[key]
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
        raise DataError(path, key, f"expected {what or kind.__name__}, got {v!r}")
    if check is not None and not check(v):
        raise DataError(path, key, f"expected {what}, got {v!r}")
    return v


def _point(path, key, v):
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in v)):
        raise DataError(path, key, f"expected [x, y], got {v!r}")
    return (float(v[0]), float(v[1]))


def _group(path, key, groups, units):
    if not isinstance(groups, list) or not groups:
        raise DataError(path, key, f"expected a non-empty list of {{type, count}} groups, got {groups!r}")
    out = []
    for i, g in enumerate(groups):
        if not isinstance(g, dict) or "type" not in g or "count" not in g:
            raise DataError(path, f"{key}[{i}]", f"expected {{\"type\": ..., \"count\": ...}}, got {g!r}")
        if g["type"] not in units:
            raise DataError(path, f"{key}[{i}].type", f"unknown unit type {g['type']!r}; known: {sorted(units)}")
        c = g["count"]
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise DataError(path, f"{key}[{i}].count", f"expected a whole number >= 1, got {c!r}")
        out += [units[g["type"]]] * c
    return tuple(out)


def load_scenario(name_or_path: str | Path, profile: str = "lotv") -> Scenario:
    """A shipped scenario by name (see `list_scenarios()`), or a scenario JSON file by path."""
    p = Path(name_or_path)
    if p.suffix == ".json" and p.exists():
        path = p
    else:
        path = SCENARIO_DIR / f"{name_or_path}.json"
        if not path.exists():
            raise ValueError(f"unknown map {str(name_or_path)!r}; known maps: {', '.join(list_scenarios())}")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, "<file>", f"not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise DataError(path, "<file>", "expected a JSON object")
    known = {"name", "n_agents", "n_enemies", "limit", "a_race", "b_race", "unit_type_bits", "map_type", "terrain",
             "allies", "enemies", "ally_spawn", "enemy_spawn", "enemy_order", "ally_type_bits", "enemy_type_bits"}
    for k in doc:
        if k not in known and not k.startswith("_"):
            raise DataError(path, k, f"unknown field; known: {sorted(known)}")
    units = load_unit_types(profile)
    name = _req(path, doc, "name", str)
    pos_int = lambda v: v >= 1  # noqa: E731
    n_agents = _req(path, doc, "n_agents", int, pos_int, "a whole number >= 1")
    n_enemies = _req(path, doc, "n_enemies", int, pos_int, "a whole number >= 1")
    limit = _req(path, doc, "limit", int, pos_int, "a whole number >= 1")
    a_race = _req(path, doc, "a_race", str, lambda v: v in RACES, f"one of {RACES}")
    b_race = _req(path, doc, "b_race", str, lambda v: v in RACES, f"one of {RACES}")
    bits = _req(path, doc, "unit_type_bits", int, lambda v: v >= 0, "a whole number >= 0")
    map_type = _req(path, doc, "map_type", str)
    tname = _req(path, doc, "terrain", str)
    try:
        terrain = load_terrain(tname)
    except DataError as e:
        raise DataError(path, "terrain", str(e)) from None
    allies = _group(path, "allies", doc.get("allies"), units)
    enemies = _group(path, "enemies", doc.get("enemies"), units)
    if len(allies) != n_agents:
        raise DataError(path, "allies", f"groups hold {len(allies)} units but n_agents is {n_agents}")
    if len(enemies) != n_enemies:
        raise DataError(path, "enemies", f"groups hold {len(enemies)} units but n_enemies is {n_enemies}")
    ally_spawn = _point(path, "ally_spawn", doc.get("ally_spawn"))
    enemy_spawn = _point(path, "enemy_spawn", doc.get("enemy_spawn"))
    order = doc.get("enemy_order")
    if not isinstance(order, dict) or order.get("kind") not in ENEMY_ORDERS:
        raise DataError(path, "enemy_order", f"expected {{\"kind\": one of {ENEMY_ORDERS}}}, got {order!r}")
    point = _point(path, "enemy_order.point", order["point"]) if order["kind"] == "attack_move" else ally_spawn
    tb = {}
    for key, team in (("ally_type_bits", allies), ("enemy_type_bits", enemies)):
        m = doc.get(key, {})
        if not isinstance(m, dict):
            raise DataError(path, key, f"expected an object unit type -> bit, got {m!r}")
        for t, i in m.items():
            if not isinstance(i, int) or not 0 <= i < max(bits, 1):
                raise DataError(path, f"{key}.{t}", f"expected a bit index in [0, {bits}), got {i!r}")
        if bits:
            missing = {u.name for u in team} - set(m)
            if missing:
                raise DataError(path, key, f"no bit for unit types {sorted(missing)}")
        tb[key] = dict(m)
    X, Y = terrain.size
    for key, (x, y) in (("ally_spawn", ally_spawn), ("enemy_spawn", enemy_spawn)):
        if not (0 <= x < X and 0 <= y < Y):
            raise DataError(path, key, f"point ({x}, {y}) lies outside the {X}x{Y} map")
    return Scenario(name, n_agents, n_enemies, limit, a_race, b_race, bits, map_type, terrain, allies, enemies,
                    ally_spawn, enemy_spawn, order["kind"], point, tb["ally_type_bits"], tb["enemy_type_bits"],
                    profile, str(path))
