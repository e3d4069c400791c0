"""`Battle`: SMAC's rules over a `World` — action masks, observations, state, reward,
termination and the scripted heuristic, all vectorised over the B battles.

Both environment faces (`StarCraft2Env`, `VecEnv`) and the PettingZoo adapter sit on this.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .scenario import Scenario, load_scenario
from .terrain import CLIFF, GROUND
from .units import COL
from .world import TICKS_PER_STEP, World

N_ACTIONS_NO_ATTACK = 6
SHOOT_RANGE = 6.0
SIGHT_RANGE = 9.0


@dataclass(frozen=True)
class SmacOptions:
    """SMAC's constructor options (same names and defaults) plus this simulator's own."""

    step_mul: int = TICKS_PER_STEP
    move_amount: float = 2
    continuing_episode: bool = False
    obs_all_health: bool = True
    obs_own_health: bool = True
    obs_last_action: bool = False
    obs_pathing_grid: bool = False
    obs_terrain_height: bool = False
    obs_instead_of_state: bool = False
    obs_timestep_number: bool = False
    state_last_action: bool = True
    state_timestep_number: bool = False
    reward_sparse: bool = False
    reward_only_positive: bool = True
    reward_death_value: float = 10
    reward_win: float = 200
    reward_defeat: float = 0
    reward_negative_scale: float = 0.5
    reward_scale: bool = True
    reward_scale_rate: float = 20
    heuristic_ai: bool = False
    heuristic_rest: bool = False
    # accepted for SMAC compatibility; they configure the SC2 process, which does not exist here
    difficulty: str = "7"
    game_version: str | None = None
    replay_dir: str = ""
    replay_prefix: str = ""
    window_size_x: int = 1920
    window_size_y: int = 1200
    debug: bool = False
    # this simulator's own
    profile: str = "lotv"
    colossus_cliff_moves: bool = False

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> "SmacOptions":
        names = {f.name: f for f in fields(cls)}
        for k, v in kwargs.items():
            if k not in names:
                raise TypeError(f"unknown option {k!r}; known options: {', '.join(sorted(names))}")
            want = type(names[k].default)
            if want is bool and not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"option {k!r} expects True or False, got {v!r}")
            if want in (int, float) and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise TypeError(f"option {k!r} expects a number, got {v!r}")
        o = cls(**kwargs)
        if o.step_mul < 1:
            raise ValueError(f"option 'step_mul' must be >= 1, got {o.step_mul}")
        return o


BATTLE_FIELDS = ("last_action", "episode_steps", "prev_hs", "dead_counted", "heuristic_target")


class Battle:
    def __init__(self, map_name: str, num_envs: int, seed: int | None, options: SmacOptions, *, parallel=None):
        self.opt = o = options
        self.scenario: Scenario = load_scenario(map_name, profile=o.profile)
        s = self.scenario
        self.world = World(s, num_envs, seed, parallel=parallel)
        w = self.world
        self.B, self.n, self.m = w.B, s.n_agents, s.n_enemies
        self.n_actions = N_ACTIONS_NO_ATTACK + self.m
        self.episode_limit = s.limit
        self.map_x, self.map_y = s.map_size
        self.shield_bits_ally = 1 if s.a_race == "P" else 0
        self.shield_bits_enemy = 1 if s.b_race == "P" else 0
        self.bits = s.unit_type_bits
        # unit-type one-hot per unit (SMAC ids differ per team, see scenario files)
        self.type_onehot = np.zeros((s.n_units, max(self.bits, 1)), dtype=np.float32)
        if self.bits:
            for u, t in enumerate(s.ally_types):
                self.type_onehot[u, s.ally_type_bits[t.name]] = 1
            for e, t in enumerate(s.enemy_types):
                self.type_onehot[self.n + e, s.enemy_type_bits[t.name]] = 1
        self.type_onehot = self.type_onehot[:, : self.bits]
        self.max_cooldown = w.ttab[w.utype, COL["max_cooldown"]]
        self.max_reward = self.m * o.reward_death_value + o.reward_win + float(
            (w.max_health[self.n:] + w.max_shield[self.n:]).sum())
        self.mask_layer = np.array([CLIFF if (o.colossus_cliff_moves and t.mover == "cliff") else GROUND
                                    for t in s.ally_types])
        self._others = np.array([[j for j in range(self.n) if j != i] for i in range(self.n)], dtype=np.int64).reshape(self.n, self.n - 1)
        self.last_action = np.zeros((self.B, self.n, self.n_actions), dtype=np.float32)
        self.episode_steps = np.zeros(self.B, dtype=np.int64)
        self.prev_hs = np.zeros((self.B, s.n_units))
        self.dead_counted = np.zeros((self.B, s.n_units), dtype=bool)
        self.heuristic_target = np.full((self.B, self.n), -1, dtype=np.int64)
        self.reset()

    # ---- sizes (SMAC's size functions) -------------------------------------------------
    @property
    def move_feats_size(self):
        return 4 + (8 if self.opt.obs_pathing_grid else 0) + (9 if self.opt.obs_terrain_height else 0)

    @property
    def enemy_feats_size(self):
        return 4 + self.bits + (1 + self.shield_bits_enemy if self.opt.obs_all_health else 0)

    @property
    def ally_feats_size(self):
        return (4 + self.bits + (1 + self.shield_bits_ally if self.opt.obs_all_health else 0)
                + (self.n_actions if self.opt.obs_last_action else 0))

    @property
    def own_feats_size(self):
        own_health = self.opt.obs_own_health or self.opt.obs_all_health
        return self.bits + (1 + self.shield_bits_ally if own_health else 0) + (1 if self.opt.obs_timestep_number else 0)

    @property
    def obs_size(self):
        return (self.move_feats_size + self.m * self.enemy_feats_size + (self.n - 1) * self.ally_feats_size
                + self.own_feats_size)

    @property
    def state_size(self):
        if self.opt.obs_instead_of_state:
            return self.obs_size * self.n
        size = self.n * (4 + self.shield_bits_ally + self.bits) + self.m * (3 + self.shield_bits_enemy + self.bits)
        if self.opt.state_last_action:
            size += self.n * self.n_actions
        if self.opt.state_timestep_number:
            size += 1
        return size

    # ---- episode control -------------------------------------------------------------------
    def reset(self, mask: np.ndarray | None = None) -> None:
        idx = slice(None) if mask is None else np.asarray(mask, dtype=bool)
        self.world.reset(mask)
        w = self.world
        self.last_action[idx] = 0
        self.episode_steps[idx] = 0
        self.prev_hs[idx] = (w.health + w.shield)[idx]
        self.dead_counted[idx] = False
        self.heuristic_target[idx] = -1

    def save_state(self, b: int = 0) -> dict:
        """Battle `b`'s full state: the world's (`World.save_state`) plus SMAC's bookkeeping (last actions, step
        counter, the health behind the reward, deaths counted, the heuristic's targets). Plain numpy arrays."""
        d = {f"world.{k}": v for k, v in self.world.save_state(b).items()}
        for k in BATTLE_FIELDS:
            d[k] = np.array(getattr(self, k)[b])
        return d

    def load_state(self, b: int, state: dict) -> None:
        self.world.load_state(b, {k[6:]: v for k, v in state.items() if k.startswith("world.")})
        for k in BATTLE_FIELDS:
            if k not in state:
                raise ValueError(f"battle state lacks {k}")
            dst = getattr(self, k)
            v = np.asarray(state[k])
            if v.shape != dst.shape[1:]:
                raise ValueError(f"battle state field {k!r} has shape {v.shape}, this battle expects {dst.shape[1:]}")
            dst[b] = v

    def heuristic_actions(self) -> np.ndarray:
        """SMAC's `heuristic_ai`: each agent attacks (or heals) its nearest target and keeps it while it lives."""
        w, n = self.world, self.n
        pos = w.pos
        alive = w.alive
        # candidate target units per agent: enemies, or non-healer allies for healers
        d = np.linalg.norm(pos[:, :n, None, :] - pos[:, None, :, :], axis=-1)  # [B, n, U]
        enemy_cand = np.zeros((n, w.U), dtype=bool)
        enemy_cand[:, n:] = True
        heal_cand = np.zeros((n, w.U), dtype=bool)
        heal_cand[:, :n] = ~w.heals[:n][None, :]
        cand = np.where(w.heals[:n, None], heal_cand, enemy_cand)
        valid = cand[None] & alive[:, None, :]
        cur = self.heuristic_target
        keep = (cur >= 0) & np.take_along_axis(alive, np.maximum(cur, 0), axis=1)
        nearest = np.argmin(np.where(valid, d, np.inf), axis=2)
        has = valid.any(axis=2)
        tgt = np.where(keep, cur, np.where(has, nearest, -1))
        self.heuristic_target = tgt
        slot = np.where(w.heals[None, :n], tgt, tgt - n)
        acts = np.where(tgt >= 0, N_ACTIONS_NO_ATTACK + slot, 1)
        if self.opt.heuristic_rest:
            avail = self.avail()
            ok = np.take_along_axis(avail, acts[..., None], axis=2)[..., 0]
            tp = np.take_along_axis(pos, np.maximum(tgt, 0)[..., None].repeat(2, -1), axis=1)
            delta = tp - pos[:, :n]
            vertical = np.abs(delta[..., 1]) > np.abs(delta[..., 0])
            move = np.where(vertical, np.where(delta[..., 1] > 0, 2, 3), np.where(delta[..., 0] > 0, 4, 5))
            acts = np.where((tgt >= 0) & ~ok, move, acts)
        acts = np.where(alive[:, :n], acts, 0)
        return acts

    def step(self, actions: np.ndarray, active: np.ndarray | None = None):
        """Advance one env step; returns reward, terminated, won, timeout arrays [B]."""
        o, w = self.opt, self.world
        B = self.B
        if active is None:
            active = np.ones(B, dtype=bool)
        eye = np.eye(self.n_actions, dtype=np.float32)
        self.last_action[active] = eye[actions[active]]
        w.issue(actions, o.move_amount, active)
        w.advance(o.step_mul, active)
        self.episode_steps[active] += 1

        hs = w.health + w.shield
        dead = ~w.alive & ~self.dead_counted
        n = self.n
        prev = self.prev_hs
        # enemies
        e_dead = dead[:, n:]
        e_prev, e_now = prev[:, n:], hs[:, n:]
        live_e = ~self.dead_counted[:, n:]
        delta_deaths = o.reward_death_value * e_dead.sum(1)
        delta_enemy = np.where(e_dead, e_prev, np.where(live_e, e_prev - e_now, 0.0)).sum(1)
        # allies
        a_dead = dead[:, :n]
        live_a = ~self.dead_counted[:, :n]
        neg = o.reward_negative_scale
        delta_ally = np.where(a_dead, prev[:, :n] * neg, np.where(live_a, neg * (prev[:, :n] - hs[:, :n]), 0.0)).sum(1)
        if o.reward_only_positive:
            reward = np.abs(delta_enemy + delta_deaths)
        else:
            delta_deaths = delta_deaths - o.reward_death_value * neg * a_dead.sum(1)
            reward = delta_enemy + delta_deaths - delta_ally
        self.dead_counted |= dead
        self.prev_hs = hs

        fighters = w.alive & w.fighter[None, :]
        allies_left = fighters[:, :n].sum(1)
        enemies_left = fighters[:, n:].sum(1)
        won = (allies_left > 0) & (enemies_left == 0)
        lost = (allies_left == 0) & (enemies_left > 0)
        draw = (allies_left == 0) & (enemies_left == 0)
        ended = won | lost | draw
        timeout = ~ended & (self.episode_steps >= self.episode_limit)
        if o.reward_sparse:
            reward = np.where(won, 1.0, np.where(lost, -1.0, 0.0))
        else:
            reward = reward + np.where(won, o.reward_win, 0.0) + np.where(lost, o.reward_defeat, 0.0)
        if o.reward_scale:
            reward = reward / (self.max_reward / o.reward_scale_rate)
        terminated = (ended | timeout) & active
        reward = np.where(active, reward, 0.0)
        return reward, terminated, won & active, timeout & active

    # ---- what agents see ----------------------------------------------------------------------
    def avail(self) -> np.ndarray:
        """[B, n, n_actions] bool, SMAC's `get_avail_agent_actions` for every agent."""
        w, n, B = self.world, self.n, self.B
        av = np.zeros((B, n, self.n_actions), dtype=bool)
        alive = w.alive[:, :n]
        av[:, :, 1] = alive
        pos = w.pos[:, :n]
        m = self.opt.move_amount / 2
        X, Y = self.map_x, self.map_y
        layers = w.scenario.terrain.pathable
        for k, (dx, dy) in enumerate(((0, m), (0, -m), (m, 0), (-m, 0))):
            px = np.trunc(pos[..., 0] + dx).astype(np.int64)
            py = np.trunc(pos[..., 1] + dy).astype(np.int64)
            inb = (px >= 0) & (px < X) & (py >= 0) & (py < Y)
            ok = layers[self.mask_layer[None, :], np.clip(px, 0, X - 1), np.clip(py, 0, Y - 1)].astype(bool)
            av[:, :, 2 + k] = alive & inb & ok
        # attack (or heal) slots
        heals = w.heals[:n]
        d_en = np.linalg.norm(w.pos[:, None, n:, :] - pos[:, :, None, :], axis=-1)  # [B, n, m]
        att = alive[:, :, None] & w.alive[:, None, n:] & (d_en <= SHOOT_RANGE)
        if heals.any():
            d_al = np.linalg.norm(pos[:, None, :, :] - pos[:, :, None, :], axis=-1)  # [B, n, n]
            heal = alive[:, :, None] & alive[:, None, :] & (d_al <= SHOOT_RANGE) & ~heals[None, None, :]
            k = min(n, self.m)
            att = np.where(heals[None, :, None], False, att)
            att[:, :, :k] |= heals[None, :, None] & heal[:, :, :k]
        av[:, :, N_ACTIONS_NO_ATTACK:] = att
        av[:, :, 0] = ~alive
        return av

    def _surrounding(self, grid: np.ndarray, pos: np.ndarray, with_centre: bool) -> np.ndarray:
        offs = [(0, 4), (0, -4), (4, 0), (-4, 0), (2, 2), (-2, -2), (2, -2), (-2, 2)] + ([(0, 0)] if with_centre else [])
        X, Y = self.map_x, self.map_y
        x0 = np.trunc(pos[..., 0]).astype(np.int64)
        y0 = np.trunc(pos[..., 1]).astype(np.int64)
        out = []
        for dx, dy in offs:
            x, y = x0 + dx, y0 + dy
            inb = (x >= 0) & (x < X) & (y >= 0) & (y < Y)
            out.append(np.where(inb, grid[np.clip(x, 0, X - 1), np.clip(y, 0, Y - 1)], 1.0))
        return np.stack(out, -1).astype(np.float32)

    def obs(self, avail: np.ndarray | None = None) -> np.ndarray:
        """[B, n, obs_size] float32, SMAC's `get_obs_agent` for every agent (zeros when dead)."""
        o, w, n, m, B = self.opt, self.world, self.n, self.m, self.B
        if avail is None:
            avail = self.avail()
        pos = w.pos.astype(np.float32)
        ap = pos[:, :n]
        alive = w.alive
        a_alive = alive[:, :n]
        hfrac = (w.health / w.max_health).astype(np.float32)
        sfrac = np.divide(w.shield, w.max_shield, out=np.zeros_like(w.shield), where=w.max_shield > 0).astype(np.float32)
        parts = [avail[:, :, 2:6].astype(np.float32)]
        if o.obs_pathing_grid:
            parts.append(self._surrounding(w.scenario.terrain.ground.astype(np.float32), ap, False))
        if o.obs_terrain_height:
            parts.append(self._surrounding(w.scenario.terrain.height, ap, True))
        # enemies
        rel = pos[:, None, n:, :] - ap[:, :, None, :]
        dist = np.sqrt((rel ** 2).sum(-1))
        vis = a_alive[:, :, None] & alive[:, None, n:] & (dist < SIGHT_RANGE)
        ef = [avail[:, :, N_ACTIONS_NO_ATTACK:N_ACTIONS_NO_ATTACK + m].astype(np.float32), dist / SIGHT_RANGE,
              rel[..., 0] / SIGHT_RANGE, rel[..., 1] / SIGHT_RANGE]
        if o.obs_all_health:
            ef.append(np.broadcast_to(hfrac[:, None, n:], (B, n, m)))
            if self.shield_bits_enemy:
                ef.append(np.broadcast_to(sfrac[:, None, n:], (B, n, m)))
        enemy = np.stack(ef, -1)
        if self.bits:
            enemy = np.concatenate([enemy, np.broadcast_to(self.type_onehot[None, None, n:], (B, n, m, self.bits))], -1)
        enemy = enemy * vis[..., None]
        parts.append(enemy.reshape(B, n, -1))
        # allies
        if n > 1:
            oth = self._others
            relA = pos[:, oth, :] - ap[:, :, None, :]  # [B, n, n-1, 2]
            distA = np.sqrt((relA ** 2).sum(-1))
            visA = a_alive[:, :, None] & a_alive[:, oth] & (distA < SIGHT_RANGE)
            af = [np.ones_like(distA), distA / SIGHT_RANGE, relA[..., 0] / SIGHT_RANGE, relA[..., 1] / SIGHT_RANGE]
            if o.obs_all_health:
                af.append(hfrac[:, :n][:, oth])
                if self.shield_bits_ally:
                    af.append(sfrac[:, :n][:, oth])
            ally = np.stack(af, -1)
            if self.bits:
                ally = np.concatenate([ally, np.broadcast_to(self.type_onehot[oth], (B, n, n - 1, self.bits))], -1)
            if o.obs_last_action:
                ally = np.concatenate([ally, self.last_action[:, oth]], -1)
            ally = ally * visA[..., None]
            parts.append(ally.reshape(B, n, -1))
        # own
        own = []
        if o.obs_own_health or o.obs_all_health:
            own.append(hfrac[:, :n, None])
            if self.shield_bits_ally:
                own.append(sfrac[:, :n, None])
        if self.bits:
            own.append(np.broadcast_to(self.type_onehot[None, :n], (B, n, self.bits)))
        if o.obs_timestep_number:
            own.append(np.zeros((B, n, 1), dtype=np.float32))  # SMAC reserves this slot and leaves it 0
        if own:
            parts.append(np.concatenate(own, -1))
        obs = np.concatenate(parts, -1)
        if o.obs_timestep_number:
            t = (self.episode_steps / self.episode_limit).astype(np.float32)
            obs = np.concatenate([obs, np.broadcast_to(t[:, None, None], (B, n, 1))], -1)
        return (obs * a_alive[..., None]).astype(np.float32, copy=False)

    def state(self, obs: np.ndarray | None = None) -> np.ndarray:
        """[B, state_size] float32, SMAC's `get_state`."""
        o, w, n, B = self.opt, self.world, self.n, self.B
        if o.obs_instead_of_state:
            if obs is None:
                obs = self.obs()
            return obs.reshape(B, -1)
        alive = w.alive
        hfrac = w.health / w.max_health
        rx = (w.pos[..., 0] - self.map_x / 2) / self.map_x
        ry = (w.pos[..., 1] - self.map_y / 2) / self.map_y
        cd = np.where(w.heals[None, :], w.energy, w.cooldown) / self.max_cooldown[None, :]
        cols = [hfrac[:, :n], cd[:, :n], rx[:, :n], ry[:, :n]]
        if self.shield_bits_ally:
            cols.append(w.shield[:, :n] / np.maximum(w.max_shield[:n], 1e-9))
        ally = np.stack(cols, -1)
        if self.bits:
            ally = np.concatenate([ally, np.broadcast_to(self.type_onehot[None, :n], (B, n, self.bits))], -1)
        ally = ally * alive[:, :n, None]
        cols = [hfrac[:, n:], rx[:, n:], ry[:, n:]]
        if self.shield_bits_enemy:
            cols.append(w.shield[:, n:] / np.maximum(w.max_shield[n:], 1e-9))
        enemy = np.stack(cols, -1)
        if self.bits:
            enemy = np.concatenate([enemy, np.broadcast_to(self.type_onehot[None, n:], (B, self.m, self.bits))], -1)
        enemy = enemy * alive[:, n:, None]
        parts = [ally.reshape(B, -1), enemy.reshape(B, -1)]
        if o.state_last_action:
            parts.append(self.last_action.reshape(B, -1))
        if o.state_timestep_number:
            parts.append((self.episode_steps / self.episode_limit)[:, None])
        return np.concatenate(parts, -1).astype(np.float32)

    # ---- feature names (SMAC's get_obs_feature_names / state attr names) --------------------------
    def ally_state_attr_names(self):
        names = ["health", "energy/cooldown", "rel_x", "rel_y"]
        if self.shield_bits_ally:
            names.append("shield")
        return names + [f"type_{k}" for k in range(self.bits)]

    def enemy_state_attr_names(self):
        names = ["health", "rel_x", "rel_y"]
        if self.shield_bits_enemy:
            names.append("shield")
        return names + [f"type_{k}" for k in range(self.bits)]


ACTION_NAMES_NO_ATTACK = ("no-op", "stop", "N", "S", "E", "W")


def action_names(n_actions: int) -> list[str]:
    """SMAC's action layout by name: no-op, stop, the four moves, then one attack slot per enemy (a healer's slots
    name allies instead)."""
    return list(ACTION_NAMES_NO_ATTACK) + [f"attack {j}" for j in range(n_actions - N_ACTIONS_NO_ATTACK)]


def as_action_array(actions) -> np.ndarray:
    """`actions` as an array; a ragged input (a list among scalars), which numpy refuses, becomes an object
    array so that it is reported like any other non-integer."""
    try:
        return np.asarray(actions)
    except ValueError:
        return np.asarray(actions, dtype=object)


def validate_actions(actions, B: int, n: int, avail: np.ndarray, *, what: str = "actions") -> np.ndarray:
    """Check shape, dtype and availability; returns int64 [B, n]. Raises before any state changes."""
    a = as_action_array(actions)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
        if np.issubdtype(a.dtype, np.floating) and a.size and np.isfinite(a).all() and np.all(np.mod(a, 1) == 0):
            pass  # whole-number floats are accepted, as SMAC's int() would
        else:
            raise ValueError(f"{what} must be integers, got dtype {a.dtype}")
    if a.shape != (B, n):
        raise ValueError(f"{what} must have shape {(B, n)} (envs, agents), got {a.shape}")
    a = a.astype(np.int64)
    A = avail.shape[-1]
    bad_range = (a < 0) | (a >= A)
    if bad_range.any():
        b, i = map(int, np.argwhere(bad_range)[0])
        raise ValueError(f"agent {i} (env {b}): action {a[b, i]} is out of range; actions are 0..{A - 1}")
    ok = np.take_along_axis(avail, a[..., None], axis=2)[..., 0]
    if not ok.all():
        b, i = map(int, np.argwhere(~ok)[0])
        raise ValueError(f"agent {i} (env {b}): action {a[b, i]} is not available; "
                         f"available actions: {np.flatnonzero(avail[b, i]).tolist()}")
    return a
