"""`VecEnv`: the training face — B battles stepped together, arrays in and out, auto-reset."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .battle import Battle, SmacOptions, validate_actions


@dataclass
class StepRecord:
    """One step of B environments. `obs`, `state`, `avail` describe the state the next actions
    are taken in: for environments that just finished (`terminated`) that is the first state
    of their next episode (`reset` says which were reset)."""

    obs: np.ndarray  # float32 [B, n, obs_dim]
    state: np.ndarray  # float32 [B, S]
    avail: np.ndarray  # bool [B, n, A]
    reward: np.ndarray  # float64 [B]
    terminated: np.ndarray  # bool [B]: the episode ended at this step (win, loss, draw or time-out)
    won: np.ndarray  # bool [B]
    timeout: np.ndarray  # bool [B]: ended by the episode limit, not by a battle outcome
    reset: np.ndarray  # bool [B]: obs/state/avail belong to a fresh episode
    episode_return: np.ndarray  # float64 [B]: return of the episode that just ended (0 elsewhere)
    episode_length: np.ndarray  # int64 [B]: its length in steps (0 elsewhere)
    dead_allies: np.ndarray  # int64 [B], at the end of this step (before any reset)
    dead_enemies: np.ndarray  # int64 [B]


class VecEnv:
    """B battles of one map. With `autoreset=True` (default) a finished battle starts its next
    episode inside the same `step`; with `autoreset=False` it stays finished (its actions are
    ignored, its observation is the final one) until `reset()` restarts all of them — the mode
    the learner's lock-step runner uses, which also needs the final observation of time-outs."""

    def __init__(self, map_name: str, num_envs: int = 1, seed: int | None = None, autoreset: bool = True,
                 **smac_options):
        self.options = SmacOptions.from_kwargs(smac_options)
        self.autoreset = bool(autoreset)
        self.battle = Battle(map_name, num_envs, seed, self.options)
        b = self.battle
        self.map_name = b.scenario.name
        self.num_envs = b.B
        self.n_agents = b.n
        self.n_enemies = b.m
        self.n_actions = b.n_actions
        self.obs_dim = b.obs_size
        self.state_dim = b.state_size
        self.episode_limit = b.episode_limit
        self._return = np.zeros(self.num_envs)
        self._avail = None
        self._done = np.zeros(self.num_envs, dtype=bool)

    @property
    def world(self):
        return self.battle.world

    def get_env_info(self) -> dict:
        b = self.battle
        return {"state_shape": b.state_size, "obs_shape": b.obs_size, "n_actions": b.n_actions,
                "n_agents": b.n, "episode_limit": b.episode_limit,
                "agent_features": b.ally_state_attr_names(), "enemy_features": b.enemy_state_attr_names()}

    def _observe(self):
        b = self.battle
        avail = b.avail()
        obs = b.obs(avail)
        self._avail = avail
        return obs, b.state(obs), avail

    def reset(self) -> StepRecord:
        self.battle.reset()
        self._return[:] = 0
        self._done[:] = False
        obs, state, avail = self._observe()
        B = self.num_envs
        z = np.zeros(B, dtype=bool)
        return StepRecord(obs, state, avail, np.zeros(B), z, z.copy(), z.copy(), np.ones(B, dtype=bool),
                          np.zeros(B), np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64))

    def step(self, actions) -> StepRecord:
        if self._avail is None:
            raise RuntimeError("call reset() before step()")
        b = self.battle
        active = ~self._done
        if self.options.heuristic_ai:
            acts = b.heuristic_actions()
        else:
            avail = self._avail
            if not active.all():  # finished battles ignore their actions
                avail = avail.copy()
                avail[~active] = True
            acts = validate_actions(actions, self.num_envs, self.n_agents, avail)
        reward, term, won, timeout = b.step(acts, active)
        self._return += reward
        w = b.world
        dead_allies = (~w.alive[:, :b.n]).sum(1)
        dead_enemies = (~w.alive[:, b.n:]).sum(1)
        ep_ret = np.where(term, self._return, 0.0)
        ep_len = np.where(term, b.episode_steps, 0)
        if term.any():
            if self.autoreset:
                b.reset(term)
                self._return[term] = 0
            else:
                self._done |= term
        obs, state, avail = self._observe()
        reset = term.copy() if self.autoreset else np.zeros_like(term)
        return StepRecord(obs, state, avail, reward, term, won, timeout, reset, ep_ret, ep_len,
                          dead_allies, dead_enemies)

    def save_state(self, b: int = 0) -> dict:
        """Battle `b`'s full state, episode return so far included (see `Battle.save_state`)."""
        d = self.battle.save_state(b)
        d["episode_return"] = np.array(self._return[b])
        d["done"] = np.array(self._done[b])
        return d

    def load_state(self, states) -> StepRecord:
        """Put saved battle states into the first len(states) battles (`states`: one dict or a list) and observe:
        the record describes the restored states, as `reset` does for fresh ones. Battles past the list keep
        theirs. Restoring a state and stepping the same actions reproduces the original steps bit-exactly."""
        states = [states] if isinstance(states, dict) else list(states)
        if not 1 <= len(states) <= self.num_envs:
            raise ValueError(f"load_state takes 1..{self.num_envs} states, got {len(states)}")
        for b, st in enumerate(states):
            self.battle.load_state(b, st)
            self._return[b] = float(st.get("episode_return", 0.0))
            self._done[b] = bool(st.get("done", False))
        obs, state, avail = self._observe()
        B = self.num_envs
        z = np.zeros(B, dtype=bool)
        return StepRecord(obs, state, avail, np.zeros(B), z, z.copy(), z.copy(), z.copy(), np.zeros(B),
                          np.zeros(B, dtype=np.int64), (~self.world.alive[:, :self.n_agents]).sum(1),
                          (~self.world.alive[:, self.n_agents:]).sum(1))

    def close(self) -> None:
        pass
