"""The snapshot: what the window draws of one moment of env 0 (the battle, the networks' values there, the episode's
trace so far). The live trainer and an episode file in Replay mode both build it here, so the panels read one shape
whichever the source."""
from __future__ import annotations

import time

import numpy as np


def probe_dict(q, avail, chosen, greedy, qtot_chosen=None, qtot_greedy=None, joint=None, joint_avail=None,
               hyper=None, credit=None, res_value=None) -> dict:
    """The networks' values at a state: Qi per action, the chosen and greedy joint actions, Qtot of both, the
    joint-action table, the mixer's hypernetwork outputs, each agent's credit, RES's softmax value."""
    return {"q": q, "avail": avail, "chosen": chosen, "greedy": greedy, "qtot_chosen": qtot_chosen,
            "qtot_greedy": qtot_greedy, "joint": None if joint is None else np.asarray(joint, dtype=np.float32),
            "joint_avail": joint_avail, "hyper": hyper if hyper is not None else {}, "credit": credit,
            "res_value": res_value}


def from_probe(r) -> dict:
    """`probe_dict` of a `models.core.probe` result."""
    return probe_dict(r.q, r.avail, r.chosen, r.greedy, r.qtot_chosen, r.qtot_greedy, r.joint, r.joint_avail, r.hyper,
                      r.credit, r.res_value)


def make_snapshot(*, t: int, t_env: int, epsilon: float, episode: int, paused: bool, probe: dict, world, payoff,
                  trace, last_episode, env0_done: bool, reward: float, executed, **extra) -> dict:
    """One snapshot. `world`: the battle's drawable arrays (None for a matrix game); `trace`: the episode so far;
    `last_episode`: the last finished one's; `executed`: the joint action that led here (None at step 0).
    `extra`: what only one source has (Replay mode's `cursor` and `replay`)."""
    return {"t": int(t), "t_env": int(t_env), "epsilon": float(epsilon), "episode": int(episode), "paused": bool(paused),
            "probe": probe, "world": world, "payoff": payoff, "trace": trace, "last_episode": last_episode,
            "env0_done": bool(env0_done), "reward": float(reward), "time": time.time(), "executed": executed, **extra}
