"""`World`: B independent battles of one scenario held as arrays and advanced together."""
from __future__ import annotations

import numpy as np

from . import kernel
from .scenario import Scenario
from .units import COL, type_table

TICKS_PER_STEP = 8


class World:
    """The physical state of `num_envs` battles: units `[B, U]`, allies (agents) first.

    Arrays are public and read by the environment faces and the renderer; only the
    kernel and `reset`/`issue` write them.
    """

    def __init__(self, scenario: Scenario, num_envs: int, seed: int | None = None, *, parallel: bool | None = None):
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a whole number >= 1, got {num_envs!r}")
        self.scenario = scenario
        self.B = B = int(num_envs)
        self.n = scenario.n_agents
        self.U = U = scenario.n_units
        types = scenario.unit_types
        tindex = {t.name: i for i, t in enumerate(types)}
        self.types = types
        self.ttab = type_table(types)
        self.utype = np.array([tindex[t.name] for t in scenario.ally_types + scenario.enemy_types], dtype=np.int64)
        self.team = np.array([0] * scenario.n_agents + [1] * scenario.n_enemies, dtype=np.int64)
        self.radius = self.ttab[self.utype, COL["radius"]]
        self.max_health = self.ttab[self.utype, COL["health"]]
        self.max_shield = self.ttab[self.utype, COL["shield"]]
        self.max_energy = self.ttab[self.utype, COL["energy_max"]]
        self.wkind = self.ttab[self.utype, COL["wkind"]].astype(np.int64)
        self.heals = self.wkind == kernel.W_HEAL
        self.fighter = (self.wkind == kernel.W_DIRECT) | (self.wkind == kernel.W_LINE)
        self.spawn = scenario.spawn_positions()
        self.ai_kind = kernel.AI_ATTACK_GROUP if scenario.enemy_order == "attack_group" else kernel.AI_ATTACK_MOVE
        self.ai_point = np.array(scenario.enemy_order_point, dtype=np.float64)
        t = scenario.terrain
        self._terrain = (t.pathable, t.cell_node, t.nearest_node, t.node_xy, t.next_hop, t.los)
        self.parallel = (B >= 8) if parallel is None else bool(parallel)

        ss = np.random.SeedSequence(seed)
        self.rngs = [np.random.default_rng(s) for s in ss.spawn(B)]
        self.pos = np.zeros((B, U, 2))
        self.health = np.zeros((B, U))
        self.shield = np.zeros((B, U))
        self.energy = np.zeros((B, U))
        self.cooldown = np.zeros((B, U))
        self.since_hit = np.zeros((B, U))
        self.alive = np.zeros((B, U), dtype=bool)
        self.order_kind = np.zeros((B, U), dtype=np.int64)
        self.order_target = np.zeros((B, U), dtype=np.int64)
        self.order_point = np.zeros((B, U, 2))
        self.fire_tick = np.full((B, U), -100, dtype=np.int64)
        self.fire_point = np.zeros((B, U, 2))
        self.tick = np.zeros(B, dtype=np.int64)
        self.rng_key = np.zeros(B, dtype=np.uint64)
        self.reset()

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Respawn every battle where `mask` is true (all when None)."""
        idx = np.arange(self.B) if mask is None else np.flatnonzero(mask)
        if len(idx) == 0:
            return
        self.pos[idx] = self.spawn
        self.health[idx] = self.max_health
        self.shield[idx] = self.max_shield
        self.energy[idx] = self.ttab[self.utype, COL["energy_start"]]
        self.cooldown[idx] = 0.0
        self.since_hit[idx] = 1e9
        self.alive[idx] = True
        self.order_kind[idx] = kernel.IDLE
        self.order_target[idx] = -1
        self.fire_tick[idx] = -100
        self.tick[idx] = 0
        for b in idx:
            self.rng_key[b] = self.rngs[b].integers(0, 2**63, dtype=np.uint64)

    def issue(self, actions: np.ndarray, move_amount: float = 2.0, active: np.ndarray | None = None) -> None:
        """Turn SMAC actions `[B, n_agents]` into unit orders (no validation: the faces validate)."""
        n = self.n
        act = actions
        if active is not None:
            act = np.where(active[:, None], act, 0)
        ok = self.order_kind[:, :n]
        tgt = self.order_target[:, :n]
        pt = self.order_point[:, :n]
        x, y = self.pos[:, :n, 0], self.pos[:, :n, 1]
        stop = act == 1
        ok[stop] = kernel.IDLE
        for a, dx, dy in ((2, 0.0, 1.0), (3, 0.0, -1.0), (4, 1.0, 0.0), (5, -1.0, 0.0)):
            m = act == a
            if m.any():
                ok[m] = kernel.MOVE
                pt[m, 0] = x[m] + dx * move_amount
                pt[m, 1] = y[m] + dy * move_amount
        att = act >= 6
        if att.any():
            j = act - 6
            # healers' attack slots name allies, everyone else's name enemies
            target = np.where(self.heals[None, :n], j, j + n)
            ok[att] = kernel.ATTACK
            tgt[att] = target[att]

    def snapshot(self, b: int = 0) -> dict:
        """Battle `b`'s changing arrays as plain numpy (a few KB), for a `WorldView` elsewhere."""
        d = {k: getattr(self, k)[b].copy() for k in SNAPSHOT_FIELDS}
        d["tick"] = int(self.tick[b])
        return d

    def save_state(self, b: int = 0) -> dict:
        """Everything that decides battle `b`'s future (`STATE_FIELDS`, copied): restoring it into any slot of
        any `World` of the same scenario and issuing the same orders gives bit-identical ticks, because the
        kernel's only randomness is a hash of (rng_key, tick, unit) and it owns no state of its own."""
        return {k: np.array(getattr(self, k)[b]) for k in STATE_FIELDS}

    def load_state(self, b: int, state: dict) -> None:
        missing = [k for k in STATE_FIELDS if k not in state]
        if missing:
            raise ValueError(f"battle state lacks {', '.join(missing)}")
        for k in STATE_FIELDS:
            dst = getattr(self, k)
            v = np.asarray(state[k])
            if v.shape != dst.shape[1:]:
                raise ValueError(f"battle state field {k!r} has shape {v.shape}, this world expects {dst.shape[1:]} "
                                 f"(another scenario?)")
            dst[b] = v

    def advance(self, n_ticks: int = TICKS_PER_STEP, active: np.ndarray | None = None) -> None:
        if active is None:
            active = np.ones(self.B, dtype=bool)
        fn = kernel.advance_parallel if self.parallel else kernel.advance_serial
        fn(active, int(n_ticks), self.pos, self.health, self.shield, self.energy, self.cooldown, self.since_hit,
           self.alive, self.order_kind, self.order_target, self.order_point, self.fire_tick, self.fire_point,
           self.tick, self.rng_key, self.team, self.utype, self.ttab, self.ai_kind, self.ai_point, *self._terrain)


# the kernel's whole per-battle state (see `save_state`); the per-battle generators only draw the next
# episode's rng_key at reset, so they are not part of a battle in progress
STATE_FIELDS = ("pos", "health", "shield", "energy", "cooldown", "since_hit", "alive", "order_kind", "order_target",
                "order_point", "fire_tick", "fire_point", "tick", "rng_key")
SNAPSHOT_FIELDS = ("pos", "health", "shield", "alive", "cooldown", "fire_tick", "fire_point", "order_kind",
                   "order_target")


class WorldView:
    """One battle of a `World`, copied out (`World.snapshot`) so it can travel between processes and be
    drawn by `sims.render.Renderer` like a world with B = 1."""

    def __init__(self, world: "World", snap: dict):
        for k in ("types", "ttab", "utype", "team", "radius", "max_health", "max_shield", "wkind", "n", "U",
                  "scenario"):
            setattr(self, k, getattr(world, k))
        self.B = 1
        self.update(snap)

    def update(self, snap: dict) -> None:
        for k in SNAPSHOT_FIELDS:
            setattr(self, k, np.asarray(snap[k])[None])
        self.tick = np.array([snap["tick"]])

