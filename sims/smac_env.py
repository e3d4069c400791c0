"""`StarCraft2Env`: SMAC's `MultiAgentEnv` API over one simulated battle (no StarCraft II)."""
from __future__ import annotations

import math
import warnings

import numpy as np

from .battle import (N_ACTIONS_NO_ATTACK, SHOOT_RANGE, SIGHT_RANGE, Battle, SmacOptions, as_action_array,
                     validate_actions)


class StarCraft2Env:
    """Drop-in for `smac.env.StarCraft2Env`: same constructor options, methods and numbers."""

    def __init__(self, map_name: str = "8m", seed: int | None = None, **smac_options):
        self.options = SmacOptions.from_kwargs(smac_options)
        self._seed = seed
        self.battle = Battle(map_name, 1, seed, self.options)
        b = self.battle
        self.map_name = b.scenario.name
        self.n_agents = b.n
        self.n_enemies = b.m
        self.episode_limit = b.episode_limit
        self.n_actions_no_attack = N_ACTIONS_NO_ATTACK
        self.n_actions_move = 4
        self.n_actions = b.n_actions
        self.map_x, self.map_y = b.map_x, b.map_y
        self.max_reward = b.max_reward
        self.shield_bits_ally = b.shield_bits_ally
        self.shield_bits_enemy = b.shield_bits_enemy
        self.unit_type_bits = b.bits
        self._episode_count = 0
        self._total_steps = 0
        self.battles_won = 0
        self.battles_game = 0
        self.timeouts = 0
        self.force_restarts = 0
        self._terminated = False
        self._cache = None
        self._renderer = None

    @property
    def world(self):
        return self.battle.world

    @property
    def _episode_steps(self) -> int:
        return int(self.battle.episode_steps[0])

    # ---- the episode ---------------------------------------------------------------------------------
    def reset(self):
        self.battle.reset()
        self._terminated = False
        self._cache = None
        return self.get_obs(), self.get_state()

    def step(self, actions):
        if self._terminated:
            raise RuntimeError("the episode has terminated; call reset() before step()")
        b = self.battle
        if self.options.heuristic_ai:
            acts = b.heuristic_actions()
        else:
            a = as_action_array(actions)
            acts = validate_actions(a.reshape(1, -1) if a.ndim == 1 else a, 1, self.n_agents, self._observed()[2],
                                    what="actions")
        reward, term, won, timeout = b.step(acts)
        self._cache = None
        self._total_steps += 1
        w = b.world
        info = {"battle_won": False,
                "dead_allies": int((~w.alive[0, :b.n]).sum()),
                "dead_enemies": int((~w.alive[0, b.n:]).sum())}
        terminated = bool(term[0])
        if terminated:
            self._terminated = True
            self._episode_count += 1
            self.battles_game += 1
            if won[0]:
                self.battles_won += 1
                info["battle_won"] = True
            if timeout[0]:
                self.timeouts += 1
                if self.options.continuing_episode:
                    info["episode_limit"] = True
        return float(reward[0]), terminated, info

    def _observed(self):
        if self._cache is None:
            b = self.battle
            avail = b.avail()
            obs = b.obs(avail)
            self._cache = (obs, b.state(obs), avail)
        return self._cache

    # ---- observations -------------------------------------------------------------------------------------
    def get_obs(self):
        return list(self._observed()[0][0])

    def get_obs_agent(self, agent_id: int):
        self._check_agent(agent_id)
        return self._observed()[0][0, agent_id]

    def get_state(self):
        return self._observed()[1][0]

    def get_state_dict(self):
        b, w = self.battle, self.battle.world
        st = self.get_state()
        na = b.n * (4 + b.shield_bits_ally + b.bits)
        ne = b.m * (3 + b.shield_bits_enemy + b.bits)
        d = {"allies": st[:na].reshape(b.n, -1), "enemies": st[na:na + ne].reshape(b.m, -1)}
        k = na + ne
        if self.options.state_last_action:
            d["last_action"] = b.last_action[0].copy()
            k += b.n * b.n_actions
        if self.options.state_timestep_number:
            d["timestep"] = st[k:]
        return d

    def get_avail_actions(self):
        return [row.astype(int).tolist() for row in self._observed()[2][0]]

    def get_avail_agent_actions(self, agent_id: int):
        self._check_agent(agent_id)
        return self._observed()[2][0, agent_id].astype(int).tolist()

    def _check_agent(self, agent_id):
        if not (isinstance(agent_id, (int, np.integer)) and 0 <= agent_id < self.n_agents):
            raise ValueError(f"agent_id must be in 0..{self.n_agents - 1}, got {agent_id!r}")

    # ---- sizes and info ------------------------------------------------------------------------------------
    def get_obs_size(self):
        return self.battle.obs_size

    def get_state_size(self):
        return self.battle.state_size

    def get_total_actions(self):
        return self.n_actions

    def get_obs_move_feats_size(self):
        return self.battle.move_feats_size

    def get_obs_enemy_feats_size(self):
        return self.n_enemies, self.battle.enemy_feats_size

    def get_obs_ally_feats_size(self):
        return self.n_agents - 1, self.battle.ally_feats_size

    def get_obs_own_feats_size(self):
        return self.battle.own_feats_size

    def get_ally_num_attributes(self):
        return len(self.battle.ally_state_attr_names())

    def get_enemy_num_attributes(self):
        return len(self.battle.enemy_state_attr_names())

    def get_env_info(self):
        b = self.battle
        return {"state_shape": self.get_state_size(), "obs_shape": self.get_obs_size(),
                "n_actions": self.n_actions, "n_agents": self.n_agents, "episode_limit": self.episode_limit,
                "agent_features": b.ally_state_attr_names(), "enemy_features": b.enemy_state_attr_names()}

    def get_stats(self):
        return {"battles_won": self.battles_won, "battles_game": self.battles_game,
                "battles_draw": self.timeouts, "win_rate": self.battles_won / max(self.battles_game, 1),
                "timeouts": self.timeouts, "restarts": self.force_restarts}

    def get_visibility_matrix(self):
        w, n = self.world, self.n_agents
        pos, alive = w.pos[0], w.alive[0]
        d = np.linalg.norm(pos[:n, None] - pos[None, :], axis=-1)
        vis = alive[:n, None] & alive[None, :] & (d < SIGHT_RANGE)
        vis[np.arange(n), np.arange(n)] = False
        return vis

    def get_unit_types(self):
        s = self.battle.scenario
        return [t.sc2_type_id for t in s.ally_types + s.enemy_types]

    @staticmethod
    def distance(x1, y1, x2, y2):
        return math.hypot(x2 - x1, y2 - y1)

    def unit_shoot_range(self, agent_id):
        return SHOOT_RANGE

    def unit_sight_range(self, agent_id):
        return SIGHT_RANGE

    def seed(self):
        return self._seed

    def render(self, mode="human"):
        """An RGB frame (H, W, 3) of the battle; `mode="human"` also shows it in a pygame window
        when a display is available."""
        from .render import Renderer

        if self._renderer is None:
            self._renderer = Renderer(self.battle.scenario)
        frame = self._renderer.frame(self.world, 0)
        if mode == "human":
            self._renderer.show(frame)
        return frame

    def save_replay(self):
        warnings.warn("save_replay() needs StarCraft II; this simulator has no replays (use render() frames)",
                      stacklevel=2)

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
