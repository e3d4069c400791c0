"""Mixers: pure functions of the agents' chosen Q-values and the global state.

`forward(agent_qs[..., n], state[..., S]) -> qtot[...]`. `QMixer` also exposes its
hypernetwork outputs for a state (`hyper`) and mixes many Q-vectors under one state's
weights (`mix`), which RES and the probe's joint-action table use.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class VDNMixer(nn.Module):
    """Qtot = sum_i Qi."""

    def forward(self, agent_qs: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        return agent_qs.sum(-1)

    def hyper(self, state: torch.Tensor) -> dict:
        return {}

    def mix(self, agent_qs: torch.Tensor, hyper: dict) -> torch.Tensor:
        return agent_qs.sum(-1)


class QMixer(nn.Module):
    """QMIX (Rashid et al. 2018): Qtot = ELU(q . |W1(s)| + b1(s)) . |W2(s)| + V(s), monotonic in every Qi."""

    def __init__(self, n_agents: int, state_dim: int, embed: int = 32, hypernet_embed: int = 64):
        super().__init__()
        self.n_agents, self.state_dim, self.embed = n_agents, state_dim, embed
        self.hyper_w1 = nn.Sequential(nn.Linear(state_dim, hypernet_embed), nn.ReLU(),
                                      nn.Linear(hypernet_embed, n_agents * embed))
        self.hyper_b1 = nn.Linear(state_dim, embed)
        self.hyper_w2 = nn.Sequential(nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, embed))
        self.hyper_v = nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def hyper(self, state: torch.Tensor) -> dict:
        """Hypernetwork outputs for states [..., S]: w1 [..., n, E] (>= 0), b1 [..., E], w2 [..., E] (>= 0), v [...]."""
        lead = state.shape[:-1]
        return {
            "w1": self.hyper_w1(state).abs().reshape(*lead, self.n_agents, self.embed),
            "b1": self.hyper_b1(state),
            "w2": self.hyper_w2(state).abs(),
            "v": self.hyper_v(state)[..., 0],
        }

    @staticmethod
    def mix(agent_qs: torch.Tensor, hyper: dict) -> torch.Tensor:
        """agent_qs [..., K, n] mixed with one state's weights each (hyper leading dims [...]) -> [..., K]."""
        h = F.elu(torch.einsum("...kn,...ne->...ke", agent_qs, hyper["w1"]) + hyper["b1"].unsqueeze(-2))
        return torch.einsum("...ke,...e->...k", h, hyper["w2"]) + hyper["v"].unsqueeze(-1)

    def forward(self, agent_qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.mix(agent_qs.unsqueeze(-2), self.hyper(state))[..., 0]


def make_mixer(kind: str, n_agents: int, state_dim: int, embed: int = 32, hypernet_embed: int = 64):
    if kind == "none":
        return None
    if kind == "vdn":
        return VDNMixer()
    if kind == "qmix":
        return QMixer(n_agents, state_dim, embed, hypernet_embed)
    raise ValueError(f"unknown mixer {kind!r}; expected none, vdn or qmix")
