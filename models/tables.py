"""Learned Qtot tables of the matrix games, next to their true payoffs (for printing and the GUI)."""
from __future__ import annotations

import numpy as np
import torch

from sims.matrix_games import GAMES, TWO_STEP_2B


@torch.no_grad()
def matrix_game_tables(agent, mixer, game: str) -> dict:
    """{state name: (learned Qtot [A, A], true payoff [A, A] or None)} for a matrix game.

    The agents act from the start of an episode (no last action, zero hidden state); for the
    two-step game the second-step states are reached with last actions (1, 1) and (0, 0), the
    hidden state carried from the first step.
    """
    dev = next(agent.parameters()).device
    A = agent.n_actions
    out = {}

    def table(obs_vec, state_vec, last, hidden):
        o = torch.tensor(np.repeat(np.asarray(obs_vec, np.float32)[None], 2, 0), device=dev)[None]
        q, h = agent.step(agent.build_inputs(o, torch.tensor([last], device=dev)), hidden)
        q = q[0]
        a0, a1 = torch.meshgrid(torch.arange(A, device=dev), torch.arange(A, device=dev), indexing="ij")
        cand = torch.stack([q[0][a0.reshape(-1)], q[1][a1.reshape(-1)]], -1)
        st = torch.tensor(np.asarray(state_vec, np.float32), device=dev)
        if mixer is None:
            qtot = cand.sum(-1)
        else:
            qtot = mixer.mix(cand, mixer.hyper(st))
        return qtot.reshape(A, A).cpu().numpy(), h

    h0 = agent.init_hidden(1, dev)
    if game == "twostep":
        t1, h1 = table([1, 0, 0], [1, 0, 0], [-1, -1], h0)
        out["state 1"] = (t1, None)
        out["state 2A (after agent 0 plays A)"] = (table([0, 1, 0], [0, 1, 0], [0, 0], h1)[0], np.full((2, 2), 7.0))
        out["state 2B (after agent 0 plays B)"] = (table([0, 0, 1], [0, 0, 1], [1, 1], h1)[0], TWO_STEP_2B)
    else:
        out["state"] = (table([1], [1], [-1, -1], h0)[0], GAMES[game])
    return out


def format_tables(tables: dict) -> str:
    lines = []
    for name, (learned, true) in tables.items():
        lines.append(f"{name}: learned Qtot" + ("   |   true payoff" if true is not None else ""))
        for i in range(learned.shape[0]):
            row = " ".join(f"{v:7.2f}" for v in learned[i])
            if true is not None:
                row += "   |   " + " ".join(f"{v:7.2f}" for v in true[i])
            lines.append("  " + row)
    return "\n".join(lines)
