"""Forks: "what if an agent had acted otherwise at step k?" — restore the recorded battle at step k, force one
agent's action, let the policy play on, and compare N such continuations with N that keep the recorded action.

Weapon delays make a battle's outcome depend on its random stream, so one continuation proves little: both
arms run the same N streams (continuation 0 keeps the episode's own, so the recorded action reproduces the
recorded episode bit for bit) and differ only in the forced action.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import check_episodes
from ..core.probe import Probe
from ..files.episode_file import Episode, EpisodeFileError, EpisodeRecorder, concat


@dataclass
class Outcome:
    won: np.ndarray  # [N] bool
    returns: np.ndarray  # [N] whole-episode return (the recorded steps before k included)
    dead_enemies: np.ndarray  # [N]
    lengths: np.ndarray  # [N] episode length in steps

    @property
    def win_rate(self) -> float:
        return float(self.won.mean())

    def row(self, name: str) -> str:
        return (f"| {name} | {self.win_rate:.0%} | {self.returns.mean():.2f} | {self.dead_enemies.mean():.1f} | "
                f"{self.lengths.mean():.1f} |")


@dataclass
class ForkResult:
    step: int
    agent: int
    action: int
    recorded_action: int
    fork: Outcome
    baseline: Outcome
    fork_episode: Episode  # continuation 0 of the fork, as a whole episode
    baseline_episode: Episode
    n_actions: int = 0

    def table(self) -> str:
        from sims import action_names

        names = action_names(self.n_actions)
        new, old = (f"{names[a]} ({a})" for a in (self.action, self.recorded_action))
        n = len(self.fork.won)
        head = (f"fork at step {self.step}: agent {self.agent} takes {new} instead of the recorded {old}; "
                f"{n} continuations each, the same {n} random streams")
        return "\n".join([head, "", "| continuations | win rate | mean return | enemies killed | length |",
                          "|---|---:|---:|---:|---:|", self.fork.row(f"forced action {new}"),
                          self.baseline.row(f"recorded action {old}")])


def state_at(ep: Episode, step: int, env) -> dict:
    """The battle's full state at `step`: its last keyframe, then the recorded actions re-simulated (checked
    against what the file drew, so a simulator that no longer reproduces the episode is caught)."""
    k0, st = ep.keyframe(step)
    env.load_state([st])
    acts = ep.arrays["actions"]
    for t in range(k0, step):
        a = np.zeros((env.num_envs, ep.n_agents), dtype=np.int64)
        a[0] = acts[t]
        a[1:] = _any_available(env)[1:]
        env.step(a)
    w = env.world
    if not (np.array_equal(w.pos[0].astype(np.float32), ep.arrays["pos"][step])
            and int(w.tick[0]) == int(ep.arrays["tick"][step])):
        raise EpisodeFileError(f"{ep.name}: re-simulating to step {step} does not reproduce the recorded battle "
                               f"(recorded with another version of the simulator?)")
    return env.save_state(0)


def _any_available(env) -> np.ndarray:
    return env._avail.argmax(-1)


def stream_keys(ep: Episode, step: int, n: int, seed: int) -> np.ndarray:
    """Continuation i's weapon-delay key: 0 keeps the episode's own, the others are drawn from (seed, step)."""
    return np.random.default_rng([int(seed), int(step)]).integers(0, 2**63, size=n, dtype=np.uint64)


def play_on(ep: Episode, step: int, first_actions: np.ndarray, agent_net, probe: Probe, env, keys,
            state: dict) -> tuple[Outcome, Episode]:
    """Run len(keys) continuations from the battle `state` at `step`: `first_actions` [n] at step, then the
    greedy policy. Returns their outcomes and continuation 0 recorded as a whole episode. With the recorded
    actions, continuation 0 reproduces a greedy, unforced recording bit for bit; an episode played with
    exploration (training's) or with later forced actions continues greedily instead."""
    N, n = len(keys), ep.n_agents
    dev = next(agent_net.parameters()).device
    rec = env.load_state([state] * N)
    env.world.rng_key[1:N] = keys[1:]  # 0 keeps the episode's own stream (restored with the state)
    # forced at `step`: the agents whose action differs from the recording, and those forced in the recording itself
    first_forced = (first_actions != ep.arrays["actions"][step]) | ep.arrays["forced"][step]
    hidden = torch.from_numpy(np.ascontiguousarray(ep.arrays["hidden"][step])).to(dev)[None].repeat(N, 1, 1)
    last = torch.full((N, n), -1, dtype=torch.long, device=dev)
    if step > 0:
        last[:] = torch.from_numpy(ep.arrays["actions"][step - 1].astype(np.int64))
    recorder = EpisodeRecorder(0)
    recorder.begin(env, step)
    won = np.zeros(N, dtype=bool)
    returns = np.zeros(N)
    dead = np.zeros(N, dtype=np.int64)
    lengths = np.zeros(N, dtype=np.int64)
    done = np.zeros(N, dtype=bool)
    forced = np.zeros((N, n), dtype=bool)
    t = step
    with torch.no_grad():
        while not done.all():
            o = torch.from_numpy(rec.obs).to(dev)
            av = torch.from_numpy(rec.avail).to(dev)
            h_before = hidden
            q, hidden = agent_net.step(agent_net.build_inputs(o, last), hidden)
            acts = q.masked_fill(~av, -float("inf")).argmax(-1).cpu().numpy()
            f = forced
            if t == step:
                f = np.broadcast_to(first_forced, (N, n))
                acts = np.repeat(first_actions[None], N, 0).astype(np.int64)
            acts[done] = 0  # finished battles ignore their actions
            active = ~done
            st0 = rec.state[0].copy()
            rec = env.step(acts)
            if active[0]:
                recorder.step(env, t, q[0], h_before[0], st0, av[0].cpu().numpy(), acts[0], f[0], rec.reward[0],
                              rec.terminated[0])
            ended = rec.terminated & active
            won |= rec.won & active
            returns[ended] = rec.episode_return[ended]
            dead[ended] = rec.dead_enemies[ended]
            lengths[ended] = t + 1
            done |= ended
            last = torch.from_numpy(acts).to(dev)
            t += 1
    hdr = dict(ep.header, source="fork", parent=ep.path, fork_step=int(step), fork_actions=first_actions.tolist())
    tail = recorder.finish(probe, hdr)
    return Outcome(won, returns, dead, lengths), concat(ep, step, tail)


def fork(ep: Episode, step: int, agent: int, action: int | str, episodes: int = 20, seed: int = 0,
         device="cpu") -> ForkResult:
    """`action`: an action index, or "greedy" (the policy's own choice instead of a recorded exploratory one)."""
    from ..core.envs import make_env_for
    from ..files.loading import episode_policy

    T = ep.length
    missing = [k for k in ("hidden", "forced", "key.world.pos") if k not in ep.arrays]
    if missing:
        raise EpisodeFileError(f"{ep.name} cannot be forked: it lacks {', '.join(missing)} (replay still works)")
    if not 0 <= step < T:
        raise ValueError(f"--step: {ep.name} has steps 0..{T - 1} (decisions), got {step}")
    if not 0 <= agent < ep.n_agents:
        raise ValueError(f"--agent: {ep.name} has agents 0..{ep.n_agents - 1}, got {agent}")
    check_episodes(episodes, "continuations")
    avail = ep.arrays["avail"][step, agent]
    if action == "greedy":
        action = int(ep.arrays["greedy"][step, agent])
    action = int(action)
    if not 0 <= action < len(avail) or not avail[action]:
        raise ValueError(f"--action: agent {agent} cannot take action {action} at step {step}; available: "
                         f"{np.flatnonzero(avail).tolist()}")
    cfg, agent_net, mixer = episode_policy(ep, device)
    probe = Probe(agent_net, mixer, cfg.algo.res_beta if cfg.algo.res else None)
    env = make_env_for(cfg, episodes, 0, autoreset=False)
    env.reset()
    st = state_at(ep, step, env)
    keys = stream_keys(ep, step, episodes, seed)
    recorded = ep.arrays["actions"][step].astype(np.int64)
    changed = recorded.copy()
    changed[agent] = action
    base, base_ep = play_on(ep, step, recorded, agent_net, probe, env, keys, st)
    out, fork_ep = play_on(ep, step, changed, agent_net, probe, env, keys, st)
    return ForkResult(step, agent, action, int(recorded[agent]), out, base, fork_ep, base_ep, ep.n_actions)
