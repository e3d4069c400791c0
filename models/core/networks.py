"""The networks of a configuration: building them, and the one way their weights travel as plain arrays (between
processes, into episode files and shipped policies, back into networks)."""
from __future__ import annotations

import torch

from ..config import Config
from .agent import RNNAgent
from .mixers import make_mixer


def build_networks(cfg: Config, dims: dict, device) -> tuple[RNNAgent, torch.nn.Module | None]:
    agent = RNNAgent(dims["obs_dim"], dims["n_agents"], dims["n_actions"], cfg.algo.agent_hidden).to(device)
    mixer = make_mixer(cfg.algo.mixer, dims["n_agents"], dims["state_dim"], cfg.algo.mixing_embed,
                       cfg.algo.hypernet_embed)
    return agent, None if mixer is None else mixer.to(device)


def actor_weights(agent, mixer) -> dict:
    w = {"agent": {k: v.detach().cpu().numpy().copy() for k, v in agent.state_dict().items()}}
    if mixer is not None:
        w["mixer"] = {k: v.detach().cpu().numpy().copy() for k, v in mixer.state_dict().items()}
    return w


def load_actor_weights(agent, mixer, w: dict) -> None:
    agent.load_state_dict({k: torch.as_tensor(v) for k, v in w["agent"].items()})
    if mixer is not None:
        mixer.load_state_dict({k: torch.as_tensor(v) for k, v in w["mixer"].items()})
