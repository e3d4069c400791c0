"""`Runner`: epsilon-greedy rounds of lock-step episodes on a `VecEnv` (autoreset off)."""
from __future__ import annotations

import numpy as np
import torch

from .agent import RNNAgent
from .episode import EpisodeBatch, discounted_returns


def epsilon_at(t_env: int, start: float, finish: float, anneal_steps: int) -> float:
    """Linear schedule from `start` to `finish` over `anneal_steps` env steps."""
    if anneal_steps <= 0 or t_env >= anneal_steps:
        return float(finish)
    return float(start + (finish - start) * min(t_env / anneal_steps, 1.0))


def env_epsilons(epsilon: float, num_envs: int, spread: float) -> np.ndarray:
    """Per-env epsilons [B] (Ape-X, Horgan et al. 2018): env b explores with epsilon^(1 + spread * (B-1-b)/(B-1)),
    so the last env keeps the schedule's epsilon and env 0 (the one a window shows) is the greediest;
    `spread = 0` gives every env the schedule's epsilon."""
    if spread <= 0 or num_envs == 1:
        return np.full(num_envs, float(epsilon))
    k = (num_envs - 1 - np.arange(num_envs)) / (num_envs - 1)
    return float(epsilon) ** (1.0 + spread * k)


def select_actions(q: torch.Tensor, avail: torch.Tensor, epsilon, rng: np.random.Generator,
                   hold: "ExplorationHold | None" = None) -> np.ndarray:
    """Epsilon-greedy over the available actions. q [B, n, A], avail [B, n, A] bool -> [B, n] int64.
    `epsilon`: one value, or one per env [B]. `hold`: exploratory actions are held for several steps."""
    masked = q.masked_fill(~avail, -float("inf"))
    greedy = masked.argmax(-1).cpu().numpy()
    eps = np.asarray(epsilon, dtype=np.float64)
    if not (eps > 0).any() and (hold is None or not hold.active()):
        return greedy
    av = avail.cpu().numpy()
    random = (rng.random(av.shape) * av).argmax(-1)
    explore = rng.random(greedy.shape) < (eps[:, None] if eps.ndim else eps)
    if hold is not None:
        return hold.choose(greedy, random, explore, av, rng)
    return np.where(explore, random, greedy)


class ExplorationHold:
    """Temporally-extended epsilon-greedy ("epsilon-z-greedy", Dabney, Ostrovski & Barreto, ICLR 2021): an
    exploratory action, once drawn, is held for n steps, n from a zeta distribution with exponent `mu`
    (P(n) ~ n^-mu), while it stays available; then the agent acts greedily again until the next draw.
    A single random step rarely leaves a position; a held move or attack-chase does."""

    def __init__(self, num_envs: int, n_agents: int, mu: float, max_steps: int = 100):
        self.mu, self.max_steps = float(mu), int(max_steps)
        self.left = np.zeros((num_envs, n_agents), dtype=np.int64)  # steps still to hold after this one
        self.action = np.zeros((num_envs, n_agents), dtype=np.int64)

    def reset(self) -> None:
        self.left[:] = 0

    def active(self) -> bool:
        return bool((self.left > 0).any())

    def choose(self, greedy, random, explore, av, rng) -> np.ndarray:
        B, n = greedy.shape
        still = np.take_along_axis(av, self.action[..., None], -1)[..., 0]
        keep = (self.left > 0) & still
        start = explore & ~keep
        k = int(start.sum())
        if k:
            self.action[start] = random[start]
            self.left[start] = np.minimum(rng.zipf(self.mu, size=k), self.max_steps) - 1
        self.left[keep] -= 1
        self.left[~keep & ~start] = 0
        return np.where(keep | start, self.action, greedy)


class Runner:
    """Plays one round: every env of `env` runs one episode from reset to its end.

    `hook(runner, t, rec, q, actions) -> actions | None` is called every step when given (the GUI's
    trainer uses it for snapshots, pausing and forced actions); it may replace the actions.
    """

    def __init__(self, env, agent: RNNAgent, device, gamma: float, bootstrap_timeouts: bool = True):
        self.env, self.agent, self.device = env, agent, device
        self.gamma, self.bootstrap_timeouts = gamma, bootstrap_timeouts
        self.B, self.n, self.A = env.num_envs, env.n_agents, env.n_actions
        self.T = env.episode_limit
        self.hook = None
        self.hold: ExplorationHold | None = None  # held exploratory actions (run.epsilon_hold), when set
        self.mixer = None  # set by train() for the overestimation gauge
        self.tracer = None  # an `EpisodeTrace` fed every executed step of its env (GUI snapshots)
        self.recorder = None  # an `EpisodeRecorder` of one env (episode files), fed like the tracer

    @torch.no_grad()
    def run(self, epsilon, rng: np.random.Generator) -> EpisodeBatch:
        """One round; `epsilon` is one value or one per env [B]."""
        env, B, n, T = self.env, self.B, self.n, self.T
        dev = self.device
        rec = env.reset()
        obs = np.zeros((B, T + 1, n, env.obs_dim), dtype=np.float32)
        state = np.zeros((B, T + 1, env.state_dim), dtype=np.float32)
        avail = np.zeros((B, T + 1, n, self.A), dtype=bool)
        actions = np.zeros((B, T, n), dtype=np.int64)
        reward = np.zeros((B, T), dtype=np.float32)
        terminal = np.zeros((B, T), dtype=bool)
        filled = np.zeros((B, T), dtype=bool)
        q_taken = np.zeros((B, T, n), dtype=np.float32)
        length = np.zeros(B, dtype=np.int64)
        won = np.zeros(B, dtype=bool)
        ep_return = np.zeros(B)
        dead_enemies = np.zeros(B, dtype=np.int64)
        done = np.zeros(B, dtype=bool)
        hidden = self.agent.init_hidden(B, dev)
        last = torch.full((B, n), -1, dtype=torch.long, device=dev)
        obs[:, 0], state[:, 0], avail[:, 0] = rec.obs, rec.state, rec.avail
        self.last_rec = rec
        tracer = self.tracer
        if tracer is not None:
            tracer.begin()
        recorder = self.recorder
        if recorder is not None:
            recorder.begin(env)
        unforced = np.zeros((B, n), dtype=bool)
        hold = self.hold if np.any(np.asarray(epsilon) > 0) else None
        if hold is not None:
            hold.reset()
        for t in range(T):
            forced_mask = unforced
            o = torch.from_numpy(rec.obs).to(dev)
            av = torch.from_numpy(rec.avail).to(dev)
            h_before = hidden
            q, hidden = self.agent.step(self.agent.build_inputs(o, last), hidden)
            acts = select_actions(q, av, epsilon, rng, hold)
            if self.hook is not None:
                forced = self.hook(self, t, rec, q, acts)
                if forced is not None:
                    forced_mask = np.asarray(forced) != acts
                    acts = forced
            active = ~done
            rec = env.step(acts)
            actions[:, t] = acts
            q_taken[:, t] = torch.gather(q, 2, torch.from_numpy(acts).to(dev).unsqueeze(-1))[..., 0].cpu().numpy()
            reward[:, t] = rec.reward
            filled[:, t] = active
            ended = rec.terminated & active
            terminal[:, t] = ended & ~(rec.timeout & self.bootstrap_timeouts)
            obs[:, t + 1], state[:, t + 1], avail[:, t + 1] = rec.obs, rec.state, rec.avail
            length[ended] = t + 1
            won |= rec.won & active
            ep_return[ended] = rec.episode_return[ended]
            dead_enemies[ended] = rec.dead_enemies[ended]
            done |= ended
            if tracer is not None and active[tracer.env_index]:
                i = tracer.env_index
                tracer.record(q[i], state[i, t], avail[i, t], acts[i], rec.reward[i], rec.terminated[i])
            if recorder is not None and active[recorder.env_index]:
                i = recorder.env_index
                recorder.step(env, t, q[i], h_before[i], state[i, t], avail[i, t], acts[i], forced_mask[i],
                              rec.reward[i], rec.terminated[i])
            last = torch.from_numpy(acts).to(dev)
            self.last_rec = rec
            if done.all():
                break
        length[~done] = T  # cannot happen with an episode limit, kept for safety
        mc = discounted_returns(reward, filled, self.gamma)
        return EpisodeBatch(obs, state, avail, actions, reward, terminal, filled, mc, length, won, ep_return,
                            q_taken, dead_enemies)

    @torch.no_grad()
    def overestimation(self, batch: EpisodeBatch) -> np.ndarray:
        """Per episode [B]: mean over its steps of Qtot(s_t, u_t) - G_t (the discounted return earned from t)."""
        if self.mixer is None:
            qtot = batch.q_taken.mean(-1)  # IQL: the agents' own estimates of the team return
        else:
            L = batch.max_len
            qs = torch.from_numpy(batch.q_taken[:, :L]).to(self.device)
            st = torch.from_numpy(batch.state[:, :L]).to(self.device)
            qtot = self.mixer(qs, st).cpu().numpy()
        L = qtot.shape[1]
        f = batch.filled[:, :L]
        return ((qtot - batch.mc_return[:, :L]) * f).sum(1) / np.maximum(f.sum(1), 1)
