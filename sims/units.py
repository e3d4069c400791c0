"""Unit types as data: loading and validating `data/units.json` under a stat profile.

Everything here is in SC2's Normal-speed units (game seconds, map units per game second);
`type_table` converts them to per-tick numbers (a float64 table, columns `COLUMNS`) for the kernel.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError

TICKS_PER_SECOND = 16
UNITS_FILE = Path(__file__).parent / "data" / "units.json"
PROFILES = ("lotv", "liberty")

ATTRIBUTES = {"light": 1, "armored": 2, "biological": 4, "mechanical": 8, "massive": 16}
PLANES = {"ground": 1, "air": 2}
MOVERS = {"ground": 0, "cliff": 1, "air": 2}
COLLISION = {"ground": 1, "colossus": 2, "air": 4}
WEAPON_KINDS = {"none": 0, "direct": 1, "line": 2, "heal": 3}


@dataclass(frozen=True)
class Weapon:
    kind: str = "none"
    damage: float = 0.0
    bonus: dict = field(default_factory=dict)
    hits: int = 1
    range: float = 0.0
    period: float = 1.0
    targets: tuple = ("ground",)
    scan_range: float = 5.0
    line_length: float = 0.0
    line_width: float = 0.0
    heal_rate: float = 0.0
    energy_per_hp: float = 0.0


@dataclass(frozen=True)
class UnitType:
    name: str
    sc2_type_id: int
    health: float
    armor: float
    speed: float
    radius: float
    sight: float
    attributes: tuple
    plane: str
    mover: str
    collides_with: tuple
    max_cooldown: float
    weapon: Weapon
    shield: float = 0.0
    shield_regen_delay: float = 10.0
    shield_regen_rate: float = 2.0
    health_regen: float = 0.0
    energy_max: float = 0.0
    energy_start: float = 0.0
    energy_regen: float = 0.0

    @property
    def can_attack(self) -> bool:
        return self.weapon.kind in ("direct", "line")


def _deep_update(base: dict, over: dict) -> dict:
    for k, v in over.items():
        if k.startswith("_"):
            continue
        if isinstance(v, dict) and isinstance(base.get(k), dict) and k != "bonus":
            _deep_update(base[k], v)
        else:
            base[k] = v
    return base


def _num(path, fld, value, *, positive=False, minimum=0.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(path, fld, f"expected a number, got {value!r}")
    if positive and value <= 0:
        raise DataError(path, fld, f"expected a positive number, got {value!r}")
    if value < minimum:
        raise DataError(path, fld, f"expected a number >= {minimum}, got {value!r}")
    return float(value)


def _choice(path, fld, value, allowed):
    if value not in allowed:
        raise DataError(path, fld, f"expected one of {sorted(allowed)}, got {value!r}")
    return value


def _parse_weapon(path, name, raw) -> Weapon:
    pre = f"units.{name}.weapon"
    if not isinstance(raw, dict):
        raise DataError(path, pre, f"expected an object, got {raw!r}")
    known = set(Weapon.__dataclass_fields__)
    for k in raw:
        if k not in known:
            raise DataError(path, f"{pre}.{k}", f"unknown field; known: {sorted(known)}")
    kind = _choice(path, f"{pre}.kind", raw.get("kind", "none"), WEAPON_KINDS)
    bonus = raw.get("bonus", {})
    if not isinstance(bonus, dict):
        raise DataError(path, f"{pre}.bonus", f"expected an object attribute -> damage, got {bonus!r}")
    for a, v in bonus.items():
        _choice(path, f"{pre}.bonus", a, ATTRIBUTES)
        _num(path, f"{pre}.bonus.{a}", v)
    targets = raw.get("targets", ["ground"])
    if not isinstance(targets, list) or not targets:
        raise DataError(path, f"{pre}.targets", f"expected a non-empty list of planes, got {targets!r}")
    for t in targets:
        _choice(path, f"{pre}.targets", t, PLANES)
    hits = raw.get("hits", 1)
    if not isinstance(hits, int) or hits < 1:
        raise DataError(path, f"{pre}.hits", f"expected a whole number >= 1, got {hits!r}")
    w = Weapon(
        kind=kind,
        damage=_num(path, f"{pre}.damage", raw.get("damage", 0)),
        bonus={a: float(v) for a, v in bonus.items()},
        hits=hits,
        range=_num(path, f"{pre}.range", raw.get("range", 0)),
        period=_num(path, f"{pre}.period", raw.get("period", 1.0), positive=True),
        targets=tuple(targets),
        scan_range=_num(path, f"{pre}.scan_range", raw.get("scan_range", 5.0)),
        line_length=_num(path, f"{pre}.line_length", raw.get("line_length", 0.0)),
        line_width=_num(path, f"{pre}.line_width", raw.get("line_width", 0.0)),
        heal_rate=_num(path, f"{pre}.heal_rate", raw.get("heal_rate", 0.0)),
        energy_per_hp=_num(path, f"{pre}.energy_per_hp", raw.get("energy_per_hp", 0.0)),
    )
    if kind == "line" and (w.line_length <= 0 or w.line_width <= 0):
        raise DataError(path, f"{pre}.line_length", "a line weapon needs positive line_length and line_width")
    return w


def parse_unit(path, name: str, raw: dict) -> UnitType:
    pre = f"units.{name}"
    if not isinstance(raw, dict):
        raise DataError(path, pre, f"expected an object, got {raw!r}")
    required = ["sc2_type_id", "health", "armor", "speed", "radius", "sight", "attributes", "plane",
                "mover", "collides_with", "max_cooldown", "weapon"]
    for k in required:
        if k not in raw:
            raise DataError(path, f"{pre}.{k}", "missing")
    known = set(UnitType.__dataclass_fields__) - {"name"}
    for k in raw:
        if k not in known:
            raise DataError(path, f"{pre}.{k}", f"unknown field; known: {sorted(known)}")
    attrs = raw["attributes"]
    if not isinstance(attrs, list):
        raise DataError(path, f"{pre}.attributes", f"expected a list, got {attrs!r}")
    for a in attrs:
        _choice(path, f"{pre}.attributes", a, ATTRIBUTES)
    coll = raw["collides_with"]
    if not isinstance(coll, list):
        raise DataError(path, f"{pre}.collides_with", f"expected a list, got {coll!r}")
    for c in coll:
        _choice(path, f"{pre}.collides_with", c, COLLISION)
    return UnitType(
        name=name,
        sc2_type_id=int(_num(path, f"{pre}.sc2_type_id", raw["sc2_type_id"])),
        health=_num(path, f"{pre}.health", raw["health"], positive=True),
        armor=_num(path, f"{pre}.armor", raw["armor"]),
        speed=_num(path, f"{pre}.speed", raw["speed"]),
        radius=_num(path, f"{pre}.radius", raw["radius"], positive=True),
        sight=_num(path, f"{pre}.sight", raw["sight"], positive=True),
        attributes=tuple(attrs),
        plane=_choice(path, f"{pre}.plane", raw["plane"], PLANES),
        mover=_choice(path, f"{pre}.mover", raw["mover"], MOVERS),
        collides_with=tuple(coll),
        max_cooldown=_num(path, f"{pre}.max_cooldown", raw["max_cooldown"], positive=True),
        weapon=_parse_weapon(path, name, raw["weapon"]),
        shield=_num(path, f"{pre}.shield", raw.get("shield", 0)),
        shield_regen_delay=_num(path, f"{pre}.shield_regen_delay", raw.get("shield_regen_delay", 10)),
        shield_regen_rate=_num(path, f"{pre}.shield_regen_rate", raw.get("shield_regen_rate", 2)),
        health_regen=_num(path, f"{pre}.health_regen", raw.get("health_regen", 0)),
        energy_max=_num(path, f"{pre}.energy_max", raw.get("energy_max", 0)),
        energy_start=_num(path, f"{pre}.energy_start", raw.get("energy_start", 0)),
        energy_regen=_num(path, f"{pre}.energy_regen", raw.get("energy_regen", 0)),
    )


_CACHE: dict = {}


def load_unit_types(profile: str = "lotv", path: Path | str = UNITS_FILE) -> dict[str, UnitType]:
    """All unit types of `path` with `profile`'s overrides applied."""
    key = (profile, str(path))
    if key in _CACHE:
        return _CACHE[key]
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, "<file>", f"not valid JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("units"), dict):
        raise DataError(path, "units", "expected an object of unit types")
    profiles = doc.get("profiles", {})
    if profile not in profiles:
        raise ValueError(f"unknown stat profile {profile!r}; known profiles: {sorted(profiles)}")
    units = copy.deepcopy(doc["units"])
    for uname, over in profiles[profile].items():
        if uname.startswith("_"):
            continue
        if uname not in units:
            raise DataError(path, f"profiles.{profile}.{uname}", "names no unit type")
        _deep_update(units[uname], over)
    out = {name: parse_unit(path, name, raw) for name, raw in units.items()}
    _CACHE[key] = out
    return out


# Columns of the per-type float table the kernel reads (one row per unit type).
COLUMNS = ["health", "armor", "shield", "shield_delay", "shield_rate", "health_regen", "speed", "radius",
           "attr", "plane", "mover", "collide", "wkind", "damage", "bonus_attr", "bonus_damage", "hits",
           "range", "period", "target_planes", "line_half_len", "line_half_width", "energy_max",
           "energy_start", "energy_regen", "heal_rate", "heal_cost", "scan_range", "max_cooldown"]
COL = {c: i for i, c in enumerate(COLUMNS)}


def type_table(types: list[UnitType]) -> np.ndarray:
    """Per-type numbers in kernel units (ticks, per-tick rates) as a float64 [T, len(COLUMNS)] table."""
    t = np.zeros((len(types), len(COLUMNS)))
    for i, u in enumerate(types):
        w = u.weapon
        bonus_attr = 0
        bonus_dmg = 0.0
        for a, v in w.bonus.items():
            bonus_attr |= ATTRIBUTES[a]
            bonus_dmg = v  # one bonus class per weapon in SC2's data
        row = dict(
            health=u.health, armor=u.armor, shield=u.shield,
            shield_delay=u.shield_regen_delay * TICKS_PER_SECOND,
            shield_rate=u.shield_regen_rate / TICKS_PER_SECOND,
            health_regen=u.health_regen / TICKS_PER_SECOND,
            speed=u.speed / TICKS_PER_SECOND, radius=u.radius,
            attr=sum(ATTRIBUTES[a] for a in u.attributes), plane=PLANES[u.plane], mover=MOVERS[u.mover],
            collide=sum(COLLISION[c] for c in u.collides_with), wkind=WEAPON_KINDS[w.kind],
            damage=w.damage, bonus_attr=bonus_attr, bonus_damage=bonus_dmg, hits=w.hits, range=w.range,
            period=w.period * TICKS_PER_SECOND, target_planes=sum(PLANES[p] for p in w.targets),
            line_half_len=w.line_length / 2, line_half_width=w.line_width / 2,
            energy_max=u.energy_max, energy_start=u.energy_start,
            energy_regen=u.energy_regen / TICKS_PER_SECOND,
            heal_rate=w.heal_rate / TICKS_PER_SECOND, heal_cost=w.energy_per_hp,
            scan_range=w.scan_range, max_cooldown=u.max_cooldown,
        )
        for k, v in row.items():
            t[i, COL[k]] = v
    return t
