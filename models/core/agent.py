"""`RNNAgent`: PyMARL's DRQN, one network shared by all agents (fc -> GRU -> fc)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class RNNAgent(nn.Module):
    """Inputs per agent: its observation, the one-hot of its last action and the one-hot of its id.

    `unroll` runs whole padded episodes through `nn.GRU` in one call (training); `step` advances
    the same GRU by one time step (acting).
    """

    def __init__(self, obs_dim: int, n_agents: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.obs_dim, self.n_agents, self.n_actions, self.hidden = obs_dim, n_agents, n_actions, hidden
        self.input_dim = obs_dim + n_actions + n_agents
        self.fc1 = nn.Linear(self.input_dim, hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.fc2 = nn.Linear(hidden, n_actions)

    def build_inputs(self, obs: torch.Tensor, last_actions: torch.Tensor) -> torch.Tensor:
        """obs [..., n, obs_dim] float, last_actions [..., n] long (-1: none yet) -> [..., n, input_dim]."""
        onehot = F.one_hot(last_actions.clamp(min=0), self.n_actions).to(obs.dtype)
        onehot = onehot * (last_actions >= 0).unsqueeze(-1).to(obs.dtype)
        ids = torch.eye(self.n_agents, dtype=obs.dtype, device=obs.device).expand(*obs.shape[:-1], self.n_agents)
        return torch.cat([obs, onehot, ids], dim=-1)

    def init_hidden(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.n_agents, self.hidden, device=device)

    def step(self, inputs: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, n, in], hidden [B, n, H] -> (q [B, n, A], hidden [B, n, H])."""
        B, n, _ = inputs.shape
        x = F.relu(self.fc1(inputs)).reshape(B * n, 1, self.hidden)
        out, h = self.rnn(x, hidden.reshape(1, B * n, self.hidden))
        q = self.fc2(out[:, 0])
        return q.reshape(B, n, self.n_actions), h.reshape(B, n, self.hidden)

    def unroll(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs [B, T, n, in] (episodes from their first step) -> q [B, T, n, A]."""
        B, T, n, _ = inputs.shape
        x = F.relu(self.fc1(inputs))  # [B, T, n, H]
        x = x.permute(0, 2, 1, 3).reshape(B * n, T, self.hidden)
        out, _ = self.rnn(x)
        q = self.fc2(out).reshape(B, n, T, self.n_actions).permute(0, 2, 1, 3)
        return q
