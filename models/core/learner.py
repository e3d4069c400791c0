"""`Learner`: the Q-learning update for IQL, VDN, QMIX and RES, read top to bottom in `update`."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..config import Config
from .agent import RNNAgent

NEG_INF = -1e9


def lambda_returns(reward, terminal, filled, values, gamma: float, lam: float):
    """TD(lambda) targets (pymarl2). reward/terminal/filled [B, T] (terminal and filled are 0/1 flags),
    values [B, T+1] = bootstrap value of s_t (index t+1 is the state after step t); extra trailing dims (IQL's
    agents) broadcast.

    The recursion G_t = r_t + c_t ((1 - lam) V_{t+1} + lam G'_{t+1}), with c_t = gamma (1 - terminal_t) and G'_{t+1}
    = G_{t+1} while step t+1 is filled (else V_{t+1}: bootstrap fully past the end), is linear: G_t = a_t + d_t
    G_{t+1} with d_t = gamma lam b_t, b_t = (1 - terminal_t) filled_{t+1} in {0, 1}. So G = M a with M[t, k] =
    (gamma lam)^(k-t) while no b_j for t <= j < k is 0: one batched matrix product instead of a Python loop over
    the T steps (which took ~8% of a 2c update)."""
    B, T = reward.shape
    nxt = torch.cat([filled[:, 1:], torch.zeros_like(filled[:, :1])], 1)  # filled_{t+1}; past T: not filled
    c = gamma * (1.0 - terminal)
    v_next = values[:, 1:]
    extra = values.dim() - 2
    a = reward.reshape(B, T, *[1] * extra) + (c * (1.0 - lam * nxt)).reshape(B, T, *[1] * extra) * v_next
    brk = 1.0 - (1.0 - terminal) * nxt  # 1 where b_t = 0: the recursion stops at step t
    before = torch.cumsum(brk, 1) - brk  # [B, T]: the breaks at steps < t
    ahead = torch.arange(T, device=reward.device)
    gap = (ahead.unsqueeze(0) - ahead.unsqueeze(1)).to(values.dtype)  # [t, k] -> k - t
    decay = (gamma * lam) ** gap.clamp(min=0) * (gap >= 0)  # (gamma lam)^(k-t) on and above the diagonal
    # ... where no break lies at j in [t, k): as many breaks before k as before t
    M = decay * (before.unsqueeze(2) == before.unsqueeze(1))  # [B, T, T]
    return (M @ a.reshape(B, T, -1)).reshape(a.shape)


def res_operator(q_online, q_target, avail, mixer, target_mixer, state, beta: float, exact: bool = False,
                 hypers: tuple[dict, dict] | None = None):
    """RES softmax operator (Pan et al. 2021) at states [R, S] with agent Qs [R, n, A]:
    over the joint actions where at most one agent deviates from the online greedy joint action
    (or, `exact`, over all joint actions), weights softmax(beta * Qtot_online), values Qtot_target.
    Unavailable joint actions have weight 0. `hypers`: the online and target hypernetworks' outputs at
    `state` when the caller has them already (the one-deviation operator uses them; `exact`, chunked over
    states, computes its own)."""
    if not exact:
        return _res_one_deviation(q_online, q_target, avail, mixer, target_mixer, state, beta, hypers)
    R, n, A = q_online.shape
    K = A ** n
    chunk = max(1, 4_000_000 // K)  # bound the [rows, K, embed] temporaries (4,900 joint actions on 2c_vs_64zg)
    if R > chunk:
        return torch.cat([res_operator(q_online[i:i + chunk], q_target[i:i + chunk], avail[i:i + chunk], mixer,
                                       target_mixer, state[i:i + chunk], beta, exact) for i in range(0, R, chunk)])
    grids = torch.meshgrid(*[torch.arange(A, device=q_online.device)] * n, indexing="ij")
    joint = torch.stack([g.reshape(-1) for g in grids], -1)  # [K, n]
    idx = joint.unsqueeze(0).expand(R, -1, -1).permute(0, 2, 1)  # [R, n, K]
    cand_online = torch.gather(q_online, 2, idx).permute(0, 2, 1)  # [R, K, n]
    cand_target = torch.gather(q_target, 2, idx).permute(0, 2, 1)
    valid = torch.gather(avail, 2, idx).all(1)  # [R, K]
    qtot_online = mixer.mix(cand_online, mixer.hyper(state))
    qtot_target = target_mixer.mix(cand_target, target_mixer.hyper(state))
    logits = (beta * qtot_online).masked_fill(~valid, NEG_INF)
    w = torch.softmax(logits, dim=-1)
    return (w * qtot_target).sum(-1)


def _res_one_deviation(q_online, q_target, avail, mixer, target_mixer, state, beta: float, hypers=None):
    """The one-deviation operator over the available candidates only, as one flat list with a softmax per
    state: candidate (i, a) (agent i takes a, the others their greedy action) is available exactly when a
    is available to i, and on 2c_vs_64zg that is a small part of the n x A candidates (most attack targets
    are out of range), so this mixes several times fewer joint actions than a dense [R, n x A] table.
    Each greedy joint action is counted once per agent, as the dense table does. The mixers score the
    candidates from the greedy joint action's mixing (`mix_deviations`), not one by one."""
    R, n, A = q_online.shape
    dev = q_online.device
    greedy = q_online.masked_fill(~avail, NEG_INF).argmax(-1, keepdim=True)  # [R, n, 1]
    g_online = q_online.gather(2, greedy)[..., 0]  # [R, n]
    g_target = q_target.gather(2, greedy)[..., 0]
    k = avail.reshape(-1).nonzero()[:, 0]  # flat (row, agent, action) of the available candidates: [V]
    row, agent = k // (n * A), (k // A) % n
    hyper_online, hyper_target = hypers if hypers is not None else (mixer.hyper(state), target_mixer.hyper(state))
    qtot_online = mixer.mix_deviations(g_online, hyper_online, row, agent, q_online.reshape(-1).index_select(0, k))
    qtot_target = target_mixer.mix_deviations(g_target, hyper_target, row, agent,
                                              q_target.reshape(-1).index_select(0, k))
    logits = beta * qtot_online
    top = torch.full((R,), -float("inf"), device=dev, dtype=logits.dtype).scatter_reduce(
        0, row, logits, "amax", include_self=True)
    e = torch.exp(logits - top.index_select(0, row))
    den = torch.zeros(R, device=dev, dtype=e.dtype).index_add_(0, row, e)
    num = torch.zeros(R, device=dev, dtype=e.dtype).index_add_(0, row, e * qtot_target)
    return num / den


def lr_at(t_env: int, L) -> float:
    """The learning rate after `t_env` env steps under `L` (a LearnerConfig): `lr`, or with `lr_anneal_steps`
    the line from `lr` to `lr_finish` over those env steps, then `lr_finish`. Env steps, not updates, so that the
    schedule means the same whatever the replay ratio or the battles per round."""
    if L.lr_anneal_steps <= 0:
        return L.lr
    return L.lr + (L.lr_finish - L.lr) * min(1.0, max(0, t_env) / L.lr_anneal_steps)


class Learner:
    def __init__(self, agent: RNNAgent, mixer: nn.Module | None, cfg: Config, device):
        self.agent, self.mixer, self.cfg, self.device = agent, mixer, cfg, device
        self.target_agent = copy.deepcopy(agent)
        self.target_mixer = copy.deepcopy(mixer) if mixer is not None else None
        self.params = list(agent.parameters()) + (list(mixer.parameters()) if mixer is not None else [])
        L = cfg.learner
        if L.optimizer == "adam":
            self.optim = torch.optim.Adam(self.params, lr=L.lr)
        else:
            self.optim = torch.optim.RMSprop(self.params, lr=L.lr, alpha=0.99, eps=1e-5)
        self.updates = 0
        self.t_env = 0  # env steps collected so far, told by the host each round: the learning rate's clock
        # the collected-episode count at the last hard copy (None: not known, as in a checkpoint of an earlier
        # version; the next update copies)
        self.target_episodes: int | None = 0

    def set_config(self, cfg: Config) -> None:
        """A live change: `update` reads its settings from the config each time; the rate lives in the optimizer."""
        self.cfg = cfg
        self._set_lr()

    def set_t_env(self, t_env: int) -> None:
        """The env steps collected so far (before a round's updates): where the learning-rate schedule is."""
        self.t_env = int(t_env)
        self._set_lr()

    def _set_lr(self) -> None:
        lr = lr_at(self.t_env, self.cfg.learner)
        for g in self.optim.param_groups:
            g["lr"] = lr

    def update(self, batch: dict, episodes: int, trace: dict | None = None) -> dict:
        """One gradient step on `batch`; `episodes` is how many episodes have been collected so far (the
        target networks' clock). `trace`, a dict, receives the update's tensors (agent Qs, Qtot, bootstrap
        values, targets, loss): what benchmarks/reference_parity.py holds against the reference code."""
        L, A = self.cfg.learner, self.cfg.algo
        obs, state, avail = batch["obs"], batch["state"], batch["avail"]  # [B, T+1, ...]
        actions, reward = batch["actions"], batch["reward"]  # [B, T, n], [B, T]
        terminal, filled = batch["terminal"], batch["filled"]  # [B, T]
        B, T1, n, _ = obs.shape
        T = T1 - 1

        # 1. agent Q-values over whole episodes (one nn.GRU call each), online and target
        last = torch.cat([torch.full_like(actions[:, :1], -1), actions], 1)  # action before each step
        inputs = self.agent.build_inputs(obs, last)
        q = self.agent.unroll(inputs)  # [B, T+1, n, A]
        with torch.no_grad():
            tq = self.target_agent.unroll(inputs)
        q_taken = torch.gather(q[:, :T], 3, actions.unsqueeze(-1))[..., 0]  # [B, T, n]

        # 2. Qtot of the taken joint actions; each hypernetwork runs once over all T+1 states (RES reuses them)
        if self.mixer is not None:
            hyper = self.mixer.hyper(state)
            qtot = self.mixer.mix(q_taken.unsqueeze(-2), {k: v[:, :T] for k, v in hyper.items()})[..., 0]  # [B, T]
        else:
            qtot = q_taken  # IQL: [B, T, n]

        # 3. bootstrap values of every state: max (double Q: argmax online, value target) or RES softmax
        with torch.no_grad():
            q_det = q.detach().masked_fill(~avail, NEG_INF)
            tq_masked = tq.masked_fill(~avail, NEG_INF)
            if L.double_q:
                greedy = q_det.argmax(-1, keepdim=True)
                tq_best = torch.gather(tq, 3, greedy)[..., 0]
            else:
                tq_best = tq_masked.max(-1).values
            if self.target_mixer is not None:
                target_hyper = self.target_mixer.hyper(state)
                values = self.target_mixer.mix(tq_best.unsqueeze(-2), target_hyper)[..., 0]
            else:
                values = tq_best
            if A.res:
                # the softmax operator only at states that are bootstrapped from (steps 1..T of filled episodes)
                need = torch.zeros(B, T1, dtype=torch.bool, device=obs.device)
                need[:, 1:] = filled > 0
                hypers = ({k: v.detach()[need] for k, v in hyper.items()}, {k: v[need] for k, v in target_hyper.items()})
                soft = res_operator(q.detach()[need], tq[need], avail[need], self.mixer, self.target_mixer,
                                    state[need], A.res_beta, A.res_exact, hypers)
                max_values = values
                values = values.clone()
                values[need] = soft
            targets = lambda_returns(reward, terminal, filled, values, L.gamma, L.td_lambda)

        # 4. masked TD loss (+ RES's pull of Qtot toward the Monte-Carlo return)
        mask = filled if qtot.dim() == 2 else filled.unsqueeze(-1).expand_as(qtot)
        n_valid = mask.sum().clamp(min=1)
        td = (qtot - targets) * mask
        loss = (td ** 2).sum() / n_valid
        reg = torch.zeros((), device=obs.device)
        if A.res:
            reg = (((qtot - batch["mc_return"]) * mask) ** 2).sum() / n_valid
            loss = loss + A.res_lambda * reg

        if trace is not None:
            trace.update(q=q.detach(), qtot=qtot.detach(), values=values, targets=targets, mask=mask, loss=loss.detach(),
                         reg=reg.detach(), max_values=max_values if A.res else values)

        # 5. gradient step, clipped; never taken when the loss or the gradients are not finite (one check:
        # a NaN/inf in the Q-values or targets reaches the loss, and one in any gradient reaches the norm)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, L.grad_clip)
        finite = bool(torch.isfinite(loss.detach() + grad_norm))
        if finite:
            self.optim.step()
        self.updates += 1

        # 6. target networks: a hard copy once N episodes have been collected since the last (PyMARL's clock,
        # so the number of battles per round does not change it), or Polyak averaging every update
        if L.target_update == "hard":
            if self.target_episodes is None or episodes - self.target_episodes >= L.target_update_episodes:
                self.sync_targets()
                self.target_episodes = episodes
        else:
            with torch.no_grad():
                for src, dst in self._target_pairs():
                    dst.lerp_(src, L.tau)

        metrics = {
            "loss": float(loss.detach()),
            "td_error": float(td.detach().abs().sum() / n_valid),
            "grad_norm": float(grad_norm),
            "qtot_taken": float((qtot.detach() * mask).sum() / n_valid),
            "target": float((targets * mask).sum() / n_valid),
            "updates": self.updates,
            "lr": self.optim.param_groups[0]["lr"],
        }
        if not finite:
            metrics["nonfinite"] = self._nonfinite_quantity(q, targets, loss, grad_norm)
        if A.res:
            metrics["res_reg"] = float(reg.detach())
            fm = filled > 0
            metrics["res_softmax_value"] = float(values[:, 1:][fm].mean())
            metrics["max_value"] = float(max_values[:, 1:][fm].mean())
        return metrics

    @staticmethod
    def _nonfinite_quantity(q, targets, loss, grad_norm) -> str:
        """Which quantity went non-finite first along the update (only computed when one did)."""
        if not torch.isfinite(q.detach()).all():
            return "Q-values"
        if not torch.isfinite(targets).all():
            return "targets"
        if not torch.isfinite(loss.detach()):
            return "loss"
        return "gradients"

    def _target_pairs(self):
        pairs = list(zip(self.agent.parameters(), self.target_agent.parameters()))
        if self.mixer is not None:
            pairs += list(zip(self.mixer.parameters(), self.target_mixer.parameters()))
        return pairs

    def sync_targets(self) -> None:
        self.target_agent.load_state_dict(self.agent.state_dict())
        if self.mixer is not None:
            self.target_mixer.load_state_dict(self.mixer.state_dict())

    def state_dict(self) -> dict:
        d = {"agent": self.agent.state_dict(), "target_agent": self.target_agent.state_dict(),
             "optim": self.optim.state_dict(), "updates": self.updates, "t_env": self.t_env,
             "target_episodes": -1 if self.target_episodes is None else self.target_episodes}
        if self.mixer is not None:
            d["mixer"] = self.mixer.state_dict()
            d["target_mixer"] = self.target_mixer.state_dict()
        return d

    def load_state_dict(self, d: dict) -> None:
        self.agent.load_state_dict(d["agent"])
        self.target_agent.load_state_dict(d["target_agent"])
        if self.mixer is not None:
            self.mixer.load_state_dict(d["mixer"])
            self.target_mixer.load_state_dict(d["target_mixer"])
        self.optim.load_state_dict(d["optim"])
        self.updates = int(d["updates"])
        self.t_env = int(d.get("t_env", 0))  # absent before the schedule: the next round tells it anyway
        self._set_lr()  # the saved state carries the old rate: this run's config decides
        te = int(d.get("target_episodes", -1))
        self.target_episodes = None if te < 0 else te
