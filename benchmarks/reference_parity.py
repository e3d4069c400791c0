"""Our learner against the reference code, on the same episodes and the same weights.

Usage: python benchmarks/reference_parity.py --pymarl2 PATH --res PATH [--episodes 8] [--seed 0] [--pin]

PATH is a checkout of pymarl2 (Hu et al., "Rethinking the implementation tricks ...") and of the RES code (Pan et
al., NeurIPS 2021), each the directory that holds `src/`; fetch them yourself, nothing of theirs is in this
repository. For IQL (pymarl2's q_learner), VDN and QMIX (pymarl2's nq_learner, TD(lambda) and one-step) and
RES-QMIX / RES-VDN (the RES code's q_learner), both learners get one batch of real 2c_vs_64zg episodes from our
simulator (and the fixed tiny batch the CI test pins) and the same online and target weights (the targets
perturbed, so double Q matters); the script prints the largest difference of each quantity: agent Qs, Qtot of the
taken actions, bootstrap targets, RES's softmax value, the Monte-Carlo return, the loss and every gradient.

Each batch comes twice: every episode ending in a win or a loss ("terminal"), and with some episodes cut short
into time-outs ("time-outs"), where the reference code has known quirks (docs/results.md, "Reference parity").
The gradient clip is lifted on both sides (1e9) so raw gradients are compared.
With --pin it prints our side's figures on the tiny batch, for tests/test_reference_parity.py.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.config import load_config  # noqa: E402
from models.core.agent import RNNAgent  # noqa: E402
from models.core.learner import Learner  # noqa: E402
from models.core.mixers import make_mixer  # noqa: E402

REF_PACKAGES = ("components", "modules", "controllers", "learners", "utils", "envs", "runners")
GAMMA = 0.99

# (label, reference, reference learner, our mixer, res, td_lambda, the reference's loss scale)
CASES = [
    ("IQL", "pymarl2", "q_learner", "none", False, 0.0, 0.5),
    ("VDN", "pymarl2", "nq_learner", "vdn", False, 0.6, 0.5),
    ("QMIX", "pymarl2", "nq_learner", "qmix", False, 0.6, 0.5),
    ("QMIX one-step", "pymarl2", "nq_learner", "qmix", False, 0.0, 0.5),
    ("QMIX (RES code)", "res", "q_learner", "qmix", False, 0.0, 1.0),
    ("RES-QMIX", "res", "q_learner", "qmix", True, 0.0, 1.0),
    ("RES-VDN", "res", "q_learner", "vdn", True, 0.0, 1.0),
]


# ---- batches ----------------------------------------------------------------------------------------------
def mc_returns(reward: torch.Tensor, filled: torch.Tensor, gamma: float = GAMMA) -> torch.Tensor:
    G = torch.zeros_like(reward)
    run = torch.zeros(reward.shape[0])
    for t in range(reward.shape[1] - 1, -1, -1):
        run = (reward[:, t] + gamma * run) * filled[:, t]
        G[:, t] = run
    return G


def tiny_batch(seed: int = 0) -> tuple[dict, dict]:
    """4 episodes of 2 agents, 5 actions, lengths 6/4/3/2, each ending in a terminal step: the batch the CI test
    pins (tests/test_reference_parity.py). Returns (batch, dims)."""
    g = torch.Generator().manual_seed(seed)
    B, T, n, A, O, S = 4, 6, 2, 5, 6, 8
    lengths = torch.tensor([6, 4, 3, 2])
    t = torch.arange(T + 1)
    live = (t[None] <= lengths[:, None]).float()  # states 0..L are stored, padding is zero
    avail = torch.rand(B, T + 1, n, A, generator=g) < 0.6
    avail[..., 1] = True  # stop
    avail &= live[..., None, None].bool()
    batch = {
        "obs": torch.randn(B, T + 1, n, O, generator=g) * live[..., None, None],
        "state": torch.randn(B, T + 1, S, generator=g) * live[..., None],
        "avail": avail,
        "actions": torch.zeros(B, T, n, dtype=torch.long),
        "reward": torch.rand(B, T, generator=g) * 2,
        "terminal": torch.zeros(B, T),
        "filled": (t[None, :T] < lengths[:, None]).float(),
    }
    for b in range(B):
        for s in range(int(lengths[b])):
            for i in range(n):
                choices = avail[b, s, i].nonzero()[:, 0]
                batch["actions"][b, s, i] = choices[torch.randint(len(choices), (1,), generator=g)]
    batch["reward"] *= batch["filled"]
    batch["terminal"][torch.arange(B), lengths - 1] = 1.0
    batch["mc_return"] = mc_returns(batch["reward"], batch["filled"])
    return batch, {"obs_dim": O, "state_dim": S, "n_agents": n, "n_actions": A, "hidden": 16, "embed": 8,
                   "hypernet_embed": 16}


def simulator_batch(episodes: int, seed: int) -> tuple[dict, dict]:
    """Real 2c_vs_64zg episodes from our simulator under an epsilon-greedy (0.5) untrained policy, as the
    buffer samples them."""
    from models.core.buffer import EpisodeBuffer
    from models.training.learner_host import compact
    from models.training.train import Trainer

    cfg = load_config("qmix_2c_vs_64zg", [f"env.num_envs={episodes}", "run.learner_process=false", f"run.seed={seed}",
                                          'run.runs_dir="/tmp/qmix-parity-runs"', "run.test_interval=100000000"])
    tr = Trainer(cfg, log=lambda *x: None)
    rng = np.random.default_rng(seed)
    ep = tr.runner.run(0.5, rng)
    buf = EpisodeBuffer(episodes, tr.env.episode_limit, tr.env.n_agents, tr.env.obs_dim, tr.env.state_dim,
                        tr.env.n_actions)
    buf.add(compact(ep))
    batch = buf.sample(episodes, rng)
    dims = {"obs_dim": tr.env.obs_dim, "state_dim": tr.env.state_dim, "n_agents": tr.env.n_agents,
            "n_actions": tr.env.n_actions, "hidden": 64, "embed": 32, "hypernet_embed": 64}
    tr.close()
    return batch, dims


def with_timeouts(batch: dict) -> dict:
    """Every other terminal episode cut at half its length into a time-out (terminal 0, later steps padding)."""
    b = {k: v.clone() for k, v in batch.items()}
    L = b["filled"].sum(1).long()
    for i in range(0, len(L), 2):
        cut = max(1, int(L[i]) // 2)
        if cut >= int(L[i]):
            continue
        b["filled"][i, cut:] = 0
        b["terminal"][i] = 0
        b["reward"][i, cut:] = 0
        b["actions"][i, cut:] = 0
        for k in ("obs", "state"):
            b[k][i, cut + 1:] = 0
        b["avail"][i, cut + 1:] = False
    b["mc_return"] = mc_returns(b["reward"], b["filled"])
    return b


# ---- our side ----------------------------------------------------------------------------------------------
def our_learner(dims: dict, mixer_kind: str, res: bool, td_lambda: float, seed: int) -> Learner:
    torch.manual_seed(seed)
    cfg = load_config("qmix_2c_vs_64zg", [f'algo.mixer="{mixer_kind}"', f"algo.res={str(res).lower()}",
                                          f"learner.td_lambda={td_lambda}", "learner.grad_clip=1000000000.0",
                                          f"algo.mixing_embed={dims['embed']}",
                                          f"algo.hypernet_embed={dims['hypernet_embed']}",
                                          f"algo.agent_hidden={dims['hidden']}"])
    agent = RNNAgent(dims["obs_dim"], dims["n_agents"], dims["n_actions"], dims["hidden"])
    mixer = make_mixer(mixer_kind, dims["n_agents"], dims["state_dim"], dims["embed"], dims["hypernet_embed"])
    learner = Learner(agent, mixer, cfg, torch.device("cpu"))
    with torch.no_grad():  # targets apart from the online networks, so that double Q picks and values differ
        for src, dst in learner._target_pairs():
            dst.add_(0.05 * torch.randn_like(dst))
    return learner


def run_ours(learner: Learner, batch: dict) -> dict:
    trace: dict = {}
    learner.update({k: v.clone() for k, v in batch.items()}, 0, trace)
    trace["grads"] = {n: p.grad.clone() for n, p in _named_params(learner.agent, learner.mixer)}
    return trace


def _named_params(agent, mixer):
    out = [("agent." + n, p) for n, p in agent.named_parameters()]
    if mixer is not None:
        out += [("mixer." + n, p) for n, p in mixer.named_parameters()]
    return out


# ---- the reference side -----------------------------------------------------------------------------------
@contextlib.contextmanager
def reference_code(root: Path):
    """The reference's src/ importable as top-level packages, its StarCraft and matrix-game imports stubbed
    (the learners import them for logging only); everything it loaded is forgotten on exit."""
    src = root / "src"
    if not (src / "learners").is_dir():
        raise SystemExit(f"{root}: expected a checkout holding src/learners (pymarl2 or the RES code)")
    before = set(sys.modules)
    stubs = {"envs": types.ModuleType("envs"), "envs.matrix_game": types.ModuleType("envs.matrix_game")}
    stubs["envs"].__path__ = []
    stubs["envs.matrix_game"].print_matrix_status = lambda *a, **k: None
    sys.modules.update(stubs)
    sys.path.insert(0, str(src))
    try:
        yield
    finally:
        sys.path.remove(str(src))
        for name in set(sys.modules) - before:
            if name.split(".")[0] in REF_PACKAGES:
                del sys.modules[name]


def reference_args(dims: dict, mixer_kind: str, res: bool, td_lambda: float, ref: str) -> SimpleNamespace:
    return SimpleNamespace(
        n_agents=dims["n_agents"], n_actions=dims["n_actions"], state_shape=dims["state_dim"],
        mixer=None if mixer_kind == "none" else mixer_kind, mixing_embed_dim=dims["embed"],
        hypernet_embed=dims["hypernet_embed"], hypernet_layers=2, rnn_hidden_dim=dims["hidden"],
        agent="n_rnn" if ref == "pymarl2" else "rnn", mac="n_mac" if ref == "pymarl2" else "basic_mac",
        agent_output_type="q", action_selector="epsilon_greedy", epsilon_start=1.0, epsilon_finish=0.05,
        epsilon_anneal_time=50000, obs_last_action=True, obs_agent_id=True, mask_before_softmax=True,
        lr=5e-4, optimizer="rmsprop", optim_alpha=0.99, optim_eps=1e-5, grad_norm_clip=1e9, gamma=GAMMA,
        td_lambda=td_lambda, double_q=True, target_update_interval=200, learner_log_interval=0,
        use_cuda=False, device="cpu", env="sc2", res=res, res_beta=5.0, res_lambda=0.05, q_lambda=False,
        use_per=False, use_layer_norm=False, use_orthogonal=False)


def reference_batch(batch: dict, dims: dict, res: bool):
    from components.episode_buffer import EpisodeBatch

    B, T, n = batch["actions"].shape
    A = dims["n_actions"]
    scheme = {"state": {"vshape": dims["state_dim"]}, "obs": {"vshape": dims["obs_dim"], "group": "agents"},
              "actions": {"vshape": (1,), "group": "agents", "dtype": torch.long},
              "actions_onehot": {"vshape": (A,), "group": "agents", "dtype": torch.float32},
              "avail_actions": {"vshape": (A,), "group": "agents", "dtype": torch.int},
              "reward": {"vshape": (1,)}, "terminated": {"vshape": (1,), "dtype": torch.uint8}}
    if res:
        scheme["future_discounted_return"] = {"vshape": (1,)}
    eb = EpisodeBatch(scheme, {"agents": n}, B, T + 1, device="cpu")
    d = eb.data.transition_data
    L = batch["filled"].sum(1).long()
    pad = lambda x: torch.cat([x, torch.zeros_like(x[:, :1])], 1)  # noqa: E731 - the step after T
    d["state"][:] = batch["state"]
    d["obs"][:] = batch["obs"]
    d["avail_actions"][:] = batch["avail"].int()
    actions = pad(batch["actions"])
    d["actions"][:] = actions.unsqueeze(-1)
    d["actions_onehot"][:] = torch.nn.functional.one_hot(actions, A).float()
    d["reward"][:] = pad(batch["reward"]).unsqueeze(-1)
    d["terminated"][:] = pad(batch["terminal"]).unsqueeze(-1).to(torch.uint8)
    # their runner stores the state after the last step too, and marks it filled
    d["filled"][:] = (torch.arange(T + 1)[None] <= L[:, None]).long().unsqueeze(-1)
    if res:  # run.py's recursion over the episode's rewards, padding included
        rew = d["reward"][..., 0]
        G = torch.zeros_like(rew)
        acc = torch.zeros(B)
        for t in range(T, -1, -1):
            acc = rew[:, t] + GAMMA * acc
            G[:, t] = acc
        d["future_discounted_return"][:] = G.unsqueeze(-1)
    return eb


def load_ours_into_theirs(learner: Learner, ref_learner, ref: str) -> None:
    def agent_map(n):
        return n.replace("weight_ih_l0", "weight_ih").replace("weight_hh_l0", "weight_hh") \
            .replace("bias_ih_l0", "bias_ih").replace("bias_hh_l0", "bias_hh")

    def mixer_map(n):
        if ref == "pymarl2":
            return n.replace("hyper_b1.", "hyper_b1.0.").replace("hyper_v.", "hyper_b2.")
        return n.replace("hyper_w1.", "hyper_w_1.").replace("hyper_b1.", "hyper_b_1.") \
            .replace("hyper_w2.", "hyper_w_final.").replace("hyper_v.", "V.")

    pairs = [(learner.agent, ref_learner.mac.agent, agent_map), (learner.target_agent, ref_learner.target_mac.agent, agent_map)]
    if learner.mixer is not None and list(learner.mixer.parameters()):
        pairs += [(learner.mixer, ref_learner.mixer, mixer_map), (learner.target_mixer, ref_learner.target_mixer, mixer_map)]
    with torch.no_grad():
        for ours, theirs, name_map in pairs:
            params = dict(theirs.named_parameters())
            for n, p in ours.named_parameters():
                params[name_map(n)].copy_(p)
    return agent_map, mixer_map


def run_theirs(root: Path, ref: str, learner_name: str, learner: Learner, batch: dict, dims: dict, mixer_kind: str,
               res: bool, td_lambda: float) -> dict:
    with reference_code(root):
        args = reference_args(dims, mixer_kind, res, td_lambda, ref)
        controllers = importlib.import_module("controllers")
        lmod = importlib.import_module(f"learners.{learner_name}")
        eb = reference_batch(batch, dims, res)
        mac = controllers.REGISTRY[args.mac](eb.scheme, {"agents": dims["n_agents"]}, args)
        stats: dict = {}
        logger = SimpleNamespace(log_stat=lambda k, v, t: stats.__setitem__(k, float(v)),
                                 console_logger=SimpleNamespace(info=lambda *a: None))
        cls = lmod.NQLearner if learner_name == "nq_learner" else lmod.QLearner
        with contextlib.redirect_stdout(None):
            ref_learner = cls(mac, eb.scheme, logger, args)
        agent_map, mixer_map = load_ours_into_theirs(learner, ref_learner, ref)
        got: dict = {"q": [], "mixer": [], "target_mixer": [], "weights": None}
        hooks = [ref_learner.mac.agent.register_forward_hook(lambda m, i, o: got["q"].append(o[0].detach().clone()))]
        if ref_learner.mixer is not None:
            hooks.append(ref_learner.mixer.register_forward_hook(lambda m, i, o: got["mixer"].append(o.detach().clone())))
            hooks.append(ref_learner.target_mixer.register_forward_hook(
                lambda m, i, o: got["target_mixer"].append(o.detach().clone())))
        if hasattr(lmod, "build_td_lambda_targets"):
            real = lmod.build_td_lambda_targets

            def spy(*a, **k):
                got["targets"] = real(*a, **k)
                return got["targets"]
            lmod.build_td_lambda_targets = spy
        if res:
            real_w = ref_learner.softmax_weighting

            def spy_w(x):
                got["cand_online"] = x.detach().clone()
                got["weights"] = real_w(x)
                return got["weights"]
            ref_learner.softmax_weighting = spy_w
        ref_learner.train(eb, 0, 0)
        for h in hooks:
            h.remove()
        grads = {}
        for n, p in ref_learner.mac.agent.named_parameters():
            grads["agent." + n] = p.grad.clone()
        if ref_learner.mixer is not None:
            for n, p in ref_learner.mixer.named_parameters():
                grads["mixer." + n] = p.grad.clone()
        out = {"stats": stats, "grads": grads, "agent_map": agent_map, "mixer_map": mixer_map}
        B, T, n = batch["actions"].shape
        # [B, T+1, n, A]: the online agent's calls in time order (their agents see [B * n, in] or [B, n, in])
        out["q"] = torch.stack([q.reshape(B, n, -1) for q in got["q"]], 1)
        if got["mixer"]:
            out["qtot"] = got["mixer"][0][..., 0]  # the taken joint actions: the first online mixer call
        rew, term = batch["reward"], batch["terminal"]
        if "targets" in got:
            out["targets"] = got["targets"][..., 0]
        elif res:  # the one-step target from the softmax value, as their train() forms it
            A = dims["n_actions"]
            tv = torch.stack([c.reshape(-1) for c in got["target_mixer"]])  # [n * A, B * T], agent-major
            soft = (got["weights"] * tv.T).sum(-1).reshape(B, T)
            out["soft"] = soft
            # the same operator with the unavailable candidates dropped (theirs mix them from Q = -9999999: a
            # finite, saturated Qtot under QMIX's ELU that keeps some weight; under VDN's sum it has none)
            ok = batch["avail"][:, 1:].reshape(B * T, n * A)
            w = torch.softmax((args.res_beta * got["cand_online"]).masked_fill(~ok, -float("inf")), -1)
            out["soft_avail"] = (torch.nan_to_num(w) * tv.T).sum(-1).reshape(B, T)
            out["targets"] = rew + GAMMA * (1 - term) * soft
            assert tv.shape[0] == n * A
        elif got["target_mixer"]:
            out["targets"] = rew + GAMMA * (1 - term) * got["target_mixer"][0][..., 0]
        if res:
            out["mc_return"] = eb["future_discounted_return"][:, :-1, 0]
        out["loss"] = stats.get("loss", stats.get("loss_td"))
        return out


# ---- comparison ------------------------------------------------------------------------------------------
def compare(label: str, batch_name: str, ours: dict, theirs: dict, batch: dict, scale: float) -> list[tuple]:
    rows = []
    f = batch["filled"] > 0
    L = batch["filled"].sum(1).long()
    states = torch.arange(batch["filled"].shape[1] + 1)[None] <= L[:, None]

    def row(what, a, b, mask=None, note=""):
        if mask is not None:
            a, b = a[mask], b[mask]
        a, b = a.detach(), b.detach()
        diff = float((a - b).abs().max()) if a.numel() else 0.0
        rows.append((label, batch_name, what, diff, float(a.abs().max()) if a.numel() else 0.0, note))

    row("agent Qs", ours["q"], theirs["q"], states)
    if "qtot" in theirs:
        row("Qtot taken", ours["qtot"], theirs["qtot"], f)
    if "targets" in theirs:
        row("targets", ours["targets"], theirs["targets"], f)
    if "soft" in theirs:
        nt = f & (batch["terminal"] == 0)
        row("RES softmax value", ours["values"][:, 1:], theirs["soft"], nt,
            "theirs weigh unavailable candidates" if label.endswith("QMIX") else "")
        row("RES softmax value, theirs without unavailable candidates", ours["values"][:, 1:], theirs["soft_avail"], nt)
    if "mc_return" in theirs:
        row("Monte-Carlo return", batch["mc_return"], theirs["mc_return"], f)
    ours_loss = float(ours["loss"])  # noqa: the loss is detached in the trace
    rows.append((label, batch_name, "loss", abs(ours_loss - theirs["loss"] / scale), abs(ours_loss),
                 "" if scale == 1 else "theirs x2 (1/2 td^2)"))
    worst, worst_name, gmax = 0.0, "", 0.0
    for name, g in ours["grads"].items():
        part, _, rest = name.partition(".")
        ref_name = part + "." + (theirs["agent_map"] if part == "agent" else theirs["mixer_map"])(rest)
        d = float((g - theirs["grads"][ref_name] / scale).abs().max())
        gmax = max(gmax, float(g.abs().max()))
        if d >= worst:
            worst, worst_name = d, name
    rows.append((label, batch_name, "gradients (worst tensor)", worst, gmax,
                 worst_name + ("" if scale == 1 else "; theirs x2")))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pymarl2", type=Path, required=True)
    p.add_argument("--res", type=Path, required=True)
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pin", action="store_true", help="print our side's figures on the tiny batch")
    a = p.parse_args()
    torch.set_num_threads(1)
    roots = {"pymarl2": a.pymarl2, "res": a.res}
    batches = []
    # the untrained policy's episodes all end in a defeat: terminal as they come, then some cut into time-outs
    for kind, (batch, dims) in (("tiny", tiny_batch(a.seed)), ("2c_vs_64zg", simulator_batch(a.episodes, a.seed))):
        batches.append((f"{kind} terminal", batch, dims))
        batches.append((f"{kind} time-outs", with_timeouts(batch), dims))
    rows = []
    for label, ref, lname, mixer_kind, res, lam, scale in CASES:
        for bname, batch, dims in batches:
            ours_l = our_learner(dims, mixer_kind, res, lam, a.seed)
            theirs = run_theirs(roots[ref], ref, lname, copy.deepcopy(ours_l), batch, dims, mixer_kind, res, lam)
            ours = run_ours(ours_l, batch)
            rows += compare(label, bname, ours, theirs, batch, scale)
            if a.pin and bname == "tiny terminal":
                for side, d, k in (("ours", ours, 1.0), ("reference", theirs, scale)):
                    loss = float(d["loss"]) / k
                    gsum = sum(float(g.abs().sum()) for g in d["grads"].values()) / k
                    tg = d.get("targets")
                    tsum = float("nan") if tg is None else \
                        float((tg * batch["filled"].reshape(*batch["filled"].shape, *[1] * (tg.dim() - 2))).sum())
                    print(f"# pin {label} ({side}): loss {loss:.6f}, targets sum {tsum:.6f}, |grad| sum {gsum:.6f}")
    print("| algorithm | batch | quantity | max abs difference | max abs value | note |")
    print("|---|---|---|---:|---:|---|")
    for label, bname, what, diff, mag, note in rows:
        print(f"| {label} | {bname} | {what} | {diff:.2e} | {mag:.3g} | {note} |")


if __name__ == "__main__":
    main()
