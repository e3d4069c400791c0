"""`Probe`: what the networks think about one state — the GUI's only way into the models."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .learner import res_operator


@dataclass
class ProbeResult:
    q: np.ndarray  # [n, A] agent Q-values
    avail: np.ndarray  # [n, A] bool
    chosen: np.ndarray  # [n] the joint action taken (or to be taken)
    greedy: np.ndarray  # [n] argmax over available actions
    qtot_chosen: float | None  # None for IQL (no mixer)
    qtot_greedy: float | None
    joint: np.ndarray | None  # [A, A] Qtot of every joint action (2 agents)
    joint_avail: np.ndarray | None = None  # [A, A] bool: both actions available
    hyper: dict = field(default_factory=dict)  # QMIX: w1 [n, E], b1 [E], w2 [E], v scalar
    credit: np.ndarray | None = None  # [n] dQtot/dQi at the chosen joint action
    res_value: float | None = None  # RES softmax operator value of this state (when beta is given)


class Probe:
    def __init__(self, agent, mixer=None, res_beta: float | None = None):
        self.agent, self.mixer, self.res_beta = agent, mixer, res_beta

    def from_q(self, q: torch.Tensor, state: np.ndarray, avail: np.ndarray, chosen: np.ndarray | None = None,
               joint_table: bool = True) -> ProbeResult:
        """Probe a state whose agent Q-values `q` [n, A] are already known (the runner's acting step)."""
        q = q.detach().float()
        dev = q.device
        n, A = q.shape
        av = torch.as_tensor(avail, dtype=torch.bool, device=dev)
        greedy = q.masked_fill(~av, -float("inf")).argmax(-1)
        chosen_t = greedy if chosen is None else torch.as_tensor(np.asarray(chosen), dtype=torch.long, device=dev)
        res = ProbeResult(q=q.cpu().numpy(), avail=np.asarray(avail, dtype=bool), chosen=chosen_t.cpu().numpy(),
                          greedy=greedy.cpu().numpy(), qtot_chosen=None, qtot_greedy=None, joint=None)
        if self.mixer is None:
            return res
        st = torch.as_tensor(np.asarray(state), dtype=torch.float32, device=dev)
        qc = q.gather(1, chosen_t[:, None])[:, 0].clone().requires_grad_(True)
        with torch.enable_grad():
            qtot = self.mixer(qc, st)
            (grad,) = torch.autograd.grad(qtot, qc)
        res.credit = grad.cpu().numpy()
        res.qtot_chosen = float(qtot.detach())
        with torch.no_grad():
            hyper = self.mixer.hyper(st)
            res.hyper = {k: v.cpu().numpy() for k, v in hyper.items()}
            res.qtot_greedy = float(self.mixer.mix(q.gather(1, greedy[:, None])[:, 0][None], hyper)[0])
            if joint_table and n == 2:
                a0, a1 = torch.meshgrid(torch.arange(A, device=dev), torch.arange(A, device=dev), indexing="ij")
                cand = torch.stack([q[0][a0.reshape(-1)], q[1][a1.reshape(-1)]], -1)  # [A*A, 2]
                table = self.mixer.mix(cand, hyper).reshape(A, A).cpu().numpy()
                res.joint = table
                res.joint_avail = np.asarray(avail[0], bool)[:, None] & np.asarray(avail[1], bool)[None, :]
            if self.res_beta is not None:
                res.res_value = float(res_operator(q[None], q[None], av[None], self.mixer, self.mixer, st[None],
                                                   self.res_beta)[0])
        return res

    @torch.no_grad()
    def trace_values(self, q: torch.Tensor, state: np.ndarray, avail: np.ndarray, chosen: np.ndarray) -> dict:
        """The cheap per-step part of a probe for one state (see `trace_batch`)."""
        out = self.trace_batch(q[None], np.asarray(state)[None], np.asarray(avail)[None], np.asarray(chosen)[None])
        return {k: (None if v is None else v[0]) for k, v in out.items()}

    @torch.no_grad()
    def trace_batch(self, q: torch.Tensor, state: np.ndarray, avail: np.ndarray, chosen: np.ndarray) -> dict:
        """For K states at once (no joint table, no autograd): Qtot of the chosen and of the greedy joint
        action [K], credit dQtot/dQi [K, n] (closed form for QMIX) and, with RES, the softmax value [K]."""
        q = q.detach().float()
        dev = q.device
        av = torch.as_tensor(avail, dtype=torch.bool, device=dev)
        greedy = q.masked_fill(~av, -float("inf")).argmax(-1)
        ch = torch.as_tensor(np.asarray(chosen), dtype=torch.long, device=dev)
        qc = q.gather(2, ch[..., None])[..., 0]  # [K, n]
        qg = q.gather(2, greedy[..., None])[..., 0]
        if self.mixer is None:
            return {"qtot": qc.sum(-1).cpu().numpy(), "greedy": qg.sum(-1).cpu().numpy(), "credit": None, "res": None}
        st = torch.as_tensor(np.asarray(state), dtype=torch.float32, device=dev)
        hyper = self.mixer.hyper(st)
        both = self.mixer.mix(torch.stack([qc, qg], 1), hyper)  # [K, 2]
        if "w1" in hyper:  # QMIX: d/dq_i of ELU(q.W1 + b1).W2 = sum_e W1[i,e] ELU'(pre_e) W2[e]
            pre = torch.einsum("kn,kne->ke", qc, hyper["w1"]) + hyper["b1"]
            delu = torch.where(pre > 0, torch.ones_like(pre), torch.exp(pre))
            credit = (hyper["w1"] * (delu * hyper["w2"])[:, None, :]).sum(-1).cpu().numpy()
        else:
            credit = np.ones(qc.shape, dtype=np.float32)
        res = None
        if self.res_beta is not None:
            res = res_operator(q, q, av, self.mixer, self.mixer, st, self.res_beta).cpu().numpy()
        return {"qtot": both[:, 0].cpu().numpy(), "greedy": both[:, 1].cpu().numpy(), "credit": credit, "res": res}

    @torch.no_grad()
    def __call__(self, obs, state, avail, hidden: torch.Tensor, last_actions, chosen=None) -> tuple[ProbeResult, torch.Tensor]:
        """Probe from raw inputs: obs [n, obs], hidden [n, H] before this step; returns (result, next hidden)."""
        dev = next(self.agent.parameters()).device
        o = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=dev)[None]
        last = torch.as_tensor(np.asarray(last_actions), dtype=torch.long, device=dev)[None]
        q, h = self.agent.step(self.agent.build_inputs(o, last), hidden[None].to(dev))
        return self.from_q(q[0], state, avail, chosen), h[0]
