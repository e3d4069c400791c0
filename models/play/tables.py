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
    return {name: (table, true) for name, (table, true, _) in _walk(agent, mixer, game).items()}


@torch.no_grad()
def _walk(agent, mixer, game: str) -> dict:
    """{state name: (learned Qtot [A, A], true payoff or None, the agents' greedy joint action (a0, a1))}."""
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
        greedy = tuple(int(a) for a in q.argmax(-1).cpu())  # what the decentralised policy plays
        return qtot.reshape(A, A).cpu().numpy(), h, greedy

    h0 = agent.init_hidden(1, dev)
    if game == "twostep":
        t1, h1, g1 = table([1, 0, 0], [1, 0, 0], [-1, -1], h0)
        out["state 1"] = (t1, None, g1)
        t2a, _, g2a = table([0, 1, 0], [0, 1, 0], [0, 0], h1)
        out["state 2A (after agent 0 plays A)"] = (t2a, np.full((2, 2), 7.0), g2a)
        t2b, _, g2b = table([0, 0, 1], [0, 0, 1], [1, 1], h1)
        out["state 2B (after agent 0 plays B)"] = (t2b, TWO_STEP_2B, g2b)
    else:
        t, _, g = table([1], [1], [-1, -1], h0)
        out["state"] = (t, GAMES[game], g)
    return out


def tables_over_runs(run_dirs) -> list[dict]:
    """Runs of matrix games grouped by (game, algorithm): per state the learned Qtot tables' mean and standard
    deviation over the runs (seeds), the true payoff, and how many runs' greedy policies pick each joint action."""
    from ..files.loading import load_policy

    groups: dict = {}
    for rd in run_dirs:
        cfg, agent, mixer, meta = load_policy(rd)
        game = cfg.env.map_name
        if game not in GAMES and game != "twostep":
            raise ValueError(f"{rd} was trained on {game}, not a matrix game")
        g = groups.setdefault((game, meta["algorithm"]), {"game": game, "algorithm": meta["algorithm"], "runs": [],
                                                          "states": {}})
        g["runs"].append(str(rd))
        for name, (table, true, greedy) in _walk(agent, mixer, game).items():
            st = g["states"].setdefault(name, {"tables": [], "true": true, "greedy": {}})
            st["tables"].append(table)
            st["greedy"][greedy] = st["greedy"].get(greedy, 0) + 1
    out = []
    for g in groups.values():
        for st in g["states"].values():
            t = np.stack(st.pop("tables"))
            st["mean"], st["sd"] = t.mean(0), t.std(0)
        out.append(g)
    return sorted(out, key=lambda g: (g["game"], g["algorithm"]))


def format_tables_over_runs(groups: list[dict]) -> str:
    """Markdown: per game and algorithm, mean +- sd of the learned Qtot beside the true payoff, and the greedy
    joint actions picked (runs out of all)."""
    lines = []
    for g in groups:
        n = len(g["runs"])
        lines.append(f"### {g['game']}: {g['algorithm']} ({n} seeds)")
        for name, st in g["states"].items():
            mean, sd, true = st["mean"], st["sd"], st["true"]
            A = mean.shape[0]
            picks = ", ".join(f"({a0},{a1}) x{c}" for (a0, a1), c in sorted(st["greedy"].items(), key=lambda x: -x[1]))
            lines.append(f"{name}: greedy joint action {picks}")
            head = "| learned Qtot |" + "".join(f" a1={j} |" for j in range(A))
            if true is not None:
                head += "".join(f" true, a1={j} |" for j in range(A))
            lines += ["", head, "|---|" + "---:|" * (A if true is None else 2 * A)]
            for i in range(A):
                row = f"| a0={i} |" + "".join(f" {mean[i, j]:.2f} ± {sd[i, j]:.2f} |" for j in range(A))
                if true is not None:
                    row += "".join(f" {v:g} |" for v in true[i])
                lines.append(row)
            lines.append("")
    return "\n".join(lines)


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
