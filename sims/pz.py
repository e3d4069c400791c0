"""`parallel_env`: a PettingZoo `ParallelEnv` over one simulated battle.

Agents stay in the episode until it ends (a dead agent's mask allows only no-op), as in SMAC.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from .battle import Battle, SmacOptions, validate_actions


class MaskedDiscrete(spaces.Discrete):
    """An agent's action space whose `sample()` draws from the actions available to it now (the env updates the
    mask each step, from the same masks the observations carry). `step` stays as strict as SMAC's: an unavailable
    action is an error. So random-action tools (PettingZoo's seed and API tests, `env.action_space(a).sample()`)
    play legal games without knowing about the mask, and a learner's mistake is still caught."""

    def __init__(self, n: int, seed=None):
        super().__init__(n, seed=seed)
        self.current_mask: np.ndarray | None = None

    def sample(self, mask=None, probability=None):
        if mask is None and probability is None and self.current_mask is not None:
            mask = self.current_mask
        return super().sample(mask=mask, probability=probability)


class SC2ParallelEnv(ParallelEnv):
    metadata = {"render_modes": ["rgb_array"], "name": "sims_smac_v0", "is_parallelizable": True}

    def __init__(self, map_name: str = "2c_vs_64zg", seed: int | None = None, render_mode: str | None = None,
                 **smac_options):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self._options = SmacOptions.from_kwargs(smac_options)
        self._map_name = map_name
        self._seed = seed
        self.battle = Battle(map_name, 1, seed, self._options)
        b = self.battle
        self.possible_agents = [f"agent_{i}" for i in range(b.n)]
        self.agents = []
        self._obs_space = spaces.Dict({
            "observation": spaces.Box(-np.inf, np.inf, (b.obs_size,), np.float32),
            "action_mask": spaces.Box(0, 1, (b.n_actions,), np.int8),
        })
        self._act_spaces = {a: MaskedDiscrete(b.n_actions) for a in self.possible_agents}
        self.state_space = spaces.Box(-np.inf, np.inf, (b.state_size,), np.float32)
        self.observation_spaces = {a: self._obs_space for a in self.possible_agents}
        self.action_spaces = self._act_spaces
        self._renderer = None
        self._avail = None
        self._state = None

    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return self._act_spaces[agent]

    def _observe(self):
        b = self.battle
        avail = b.avail()
        obs = b.obs(avail)
        self._avail = avail
        for i, a in enumerate(self.possible_agents):
            self._act_spaces[a].current_mask = avail[0, i].astype(np.int8)
        self._state = b.state(obs)[0]
        return {a: {"observation": obs[0, i], "action_mask": avail[0, i].astype(np.int8)}
                for i, a in enumerate(self.possible_agents)}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.battle = Battle(self._map_name, 1, seed, self._options)
            self._seed = seed
        self.battle.reset()
        self.agents = list(self.possible_agents)
        obs = self._observe()
        return obs, {a: {} for a in self.agents}

    def step(self, actions):
        if not self.agents:
            raise RuntimeError("the episode has ended; call reset() before step()")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"no action given for {missing}; expected one per agent in {self.agents}")
        unknown = [a for a in actions if a not in self.agents]
        if unknown:
            raise ValueError(f"actions given for unknown agents {unknown}; expected one per agent in {self.agents}")
        b = self.battle
        if self._options.heuristic_ai:
            acts = b.heuristic_actions()
        else:  # the raw values, checked as the SMAC face checks them (no int(): 1.7 and "1" are errors)
            acts = validate_actions([[actions[a] for a in self.possible_agents]], 1, b.n, self._avail)
        reward, term, won, timeout = b.step(acts)
        obs = self._observe()
        w = b.world
        info = {"battle_won": bool(won[0]), "dead_allies": int((~w.alive[0, :b.n]).sum()),
                "dead_enemies": int((~w.alive[0, b.n:]).sum())}
        ag = self.agents
        rewards = {a: float(reward[0]) for a in ag}
        terminations = {a: bool(term[0] and not timeout[0]) for a in ag}
        truncations = {a: bool(timeout[0]) for a in ag}
        infos = {a: dict(info) for a in ag}
        if term[0]:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def state(self):
        return self._state

    def render(self):
        if self.render_mode is None:
            return None
        from .render import Renderer

        if self._renderer is None:
            self._renderer = Renderer(self.battle.scenario)
        return self._renderer.frame(self.battle.world, 0)

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def parallel_env(map_name: str = "2c_vs_64zg", seed: int | None = None, render_mode: str | None = None, **smac_options):
    return SC2ParallelEnv(map_name, seed=seed, render_mode=render_mode, **smac_options)
