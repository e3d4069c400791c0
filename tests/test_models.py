"""Networks, targets, RES and the probe, on small random inputs."""
import numpy as np
import pytest
import torch

from models.core.agent import RNNAgent
from models.core.learner import lambda_returns, res_operator
from models.core.mixers import QMixer, VDNMixer
from models.core.probe import Probe


def test_gru_unroll_equals_stepping():
    torch.manual_seed(0)
    agent = RNNAgent(obs_dim=5, n_agents=2, n_actions=4, hidden=8)
    obs = torch.randn(3, 6, 2, 5)
    last = torch.randint(-1, 4, (3, 6, 2))
    inp = agent.build_inputs(obs, last)
    q_unroll = agent.unroll(inp)
    h = agent.init_hidden(3)
    steps = []
    for t in range(6):
        q, h = agent.step(inp[:, t], h)
        steps.append(q)
    torch.testing.assert_close(q_unroll, torch.stack(steps, 1), rtol=1e-5, atol=1e-5)


def test_qmix_is_monotonic_in_every_agent_q():
    torch.manual_seed(1)
    mixer = QMixer(n_agents=3, state_dim=10, embed=8, hypernet_embed=16)
    for _ in range(20):
        qs = torch.randn(64, 3, requires_grad=True)
        st = torch.randn(64, 10)
        (g,) = torch.autograd.grad(mixer(qs, st).sum(), qs)
        assert (g >= 0).all()


def test_probe_credit_is_nonnegative_for_qmix_and_vdn_sums():
    torch.manual_seed(2)
    agent = RNNAgent(obs_dim=6, n_agents=2, n_actions=5, hidden=8)
    qmix = QMixer(2, 7, embed=4, hypernet_embed=8)
    rng = np.random.default_rng(0)
    for _ in range(10):
        q = torch.randn(2, 5)
        st = rng.normal(size=7).astype(np.float32)
        avail = rng.random((2, 5)) < 0.7
        avail[:, 1] = True
        r = Probe(agent, qmix).from_q(q, st, avail)
        assert (r.credit >= 0).all()
        assert r.joint.shape == (5, 5)
        # the table holds Qtot of every available joint action, including the greedy one
        assert r.joint[r.greedy[0], r.greedy[1]] == pytest.approx(r.qtot_greedy, abs=1e-5)
        assert not r.joint_avail[~avail[0]].any() and r.joint_avail[np.ix_(avail[0], avail[1])].all()
        assert set(r.hyper) == {"w1", "b1", "w2", "v"} and r.hyper["w1"].shape == (2, 4) and (r.hyper["w1"] >= 0).all()
        v = Probe(agent, VDNMixer()).from_q(q, st, avail, chosen=np.array([1, 1]))
        assert v.qtot_chosen == pytest.approx(float(q[0, 1] + q[1, 1]), abs=1e-6)
        assert np.allclose(v.credit, 1.0)


def test_lambda_returns_match_a_hand_computation():
    r = torch.tensor([[1.0, 2.0, 3.0, 0.0]])
    term = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    filled = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    v = torch.tensor([[10.0, 20.0, 30.0, 40.0, 50.0]])  # bootstrap values of s_0..s_4
    g, lam = 0.9, 0.5
    G2 = 3.0  # terminal
    G1 = 2.0 + g * ((1 - lam) * 30.0 + lam * G2)
    G0 = 1.0 + g * ((1 - lam) * 20.0 + lam * G1)
    out = lambda_returns(r, term, filled, v, g, lam)
    torch.testing.assert_close(out[0, :3], torch.tensor([G0, G1, G2]))
    one_step = lambda_returns(r, term, filled, v, g, 0.0)
    torch.testing.assert_close(one_step[0, :3], torch.tensor([1 + g * 20.0, 2 + g * 30.0, 3.0]))
    # a truncated episode (no terminal) bootstraps from the state after its last step
    trunc = lambda_returns(r, torch.zeros_like(term), filled, v, g, lam)
    assert trunc[0, 2] == pytest.approx(3.0 + g * 40.0)


def _lambda_returns_loop(reward, terminal, filled, values, gamma, lam):
    """The recursion as pymarl2 writes it, one step at a time: the reference for the batched form."""
    T = reward.shape[1]
    while reward.dim() < values.dim():
        reward, terminal, filled = reward.unsqueeze(-1), terminal.unsqueeze(-1), filled.unsqueeze(-1)
    out = torch.zeros_like(values[:, :T])
    g = values[:, T]
    for t in range(T - 1, -1, -1):
        nxt_valid = filled[:, t + 1] if t + 1 < T else torch.zeros_like(filled[:, t])
        g_next = torch.where(nxt_valid > 0, g, values[:, t + 1])
        g = reward[:, t] + gamma * (1.0 - terminal[:, t]) * ((1 - lam) * values[:, t + 1] + lam * g_next)
        out[:, t] = g
    return out


@pytest.mark.parametrize("lam", [0.0, 0.6, 1.0])
def test_lambda_returns_equal_the_step_by_step_recursion(lam):
    """Episodes of every length in one padded batch, terminal or cut at the limit, and IQL's per-agent values."""
    gen = torch.Generator().manual_seed(0)
    B, T = 12, 30
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    filled = (torch.arange(T) < lengths.unsqueeze(1)).float()
    terminal = torch.zeros(B, T)
    ends = torch.rand(B, generator=gen) < 0.7  # the others were cut by the time limit (bootstrapped)
    terminal[ends, lengths[ends] - 1] = 1.0
    reward = torch.randn(B, T, generator=gen) * filled
    for values in (torch.randn(B, T + 1, generator=gen), torch.randn(B, T + 1, 3, generator=gen)):
        out = lambda_returns(reward, terminal, filled, values, 0.99, lam)
        assert out.shape == values[:, :T].shape
        torch.testing.assert_close(out, _lambda_returns_loop(reward, terminal, filled, values, 0.99, lam))


def test_res_operator_limits():
    torch.manual_seed(3)
    R, n, A = 5, 2, 4
    mixer = QMixer(n, 6, embed=4, hypernet_embed=8)
    q = torch.randn(R, n, A)
    avail = torch.ones(R, n, A, dtype=torch.bool)
    avail[:, 1, 3] = False
    st = torch.randn(R, 6)
    with torch.no_grad():
        hard = res_operator(q, q, avail, mixer, mixer, st, beta=1e4)
        uniform = res_operator(q, q, avail, mixer, mixer, st, beta=0.0)
        # brute force over the one-deviation set
        greedy = q.masked_fill(~avail, -1e9).argmax(-1)
        vals, best = [], []
        for r_ in range(R):
            cands = []
            for i in range(n):
                for a in range(A):
                    if not avail[r_, i, a]:
                        continue
                    u = greedy[r_].clone()
                    u[i] = a
                    cands.append(mixer(q[r_, torch.arange(n), u][None], st[r_][None])[0])
            c = torch.stack(cands)
            vals.append(c.mean())
            best.append(c.max())
    torch.testing.assert_close(uniform, torch.stack(vals), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hard, torch.stack(best), rtol=1e-4, atol=1e-4)
    exact = res_operator(q, q, avail, mixer, mixer, st, beta=1e4, exact=True)
    assert (exact >= hard - 1e-4).all()  # the max over all joint actions is at least the max over one deviation


def test_trace_values_match_the_full_probe():
    torch.manual_seed(5)
    agent = RNNAgent(obs_dim=6, n_agents=2, n_actions=5, hidden=8)
    mixer = QMixer(2, 7, embed=4, hypernet_embed=8)
    p = Probe(agent, mixer, res_beta=5.0)
    rng = np.random.default_rng(1)
    for _ in range(10):
        q = torch.randn(2, 5)
        st = rng.normal(size=7).astype(np.float32)
        avail = np.ones((2, 5), bool)
        chosen = rng.integers(0, 5, size=2)
        full = p.from_q(q, st, avail, chosen)
        light = p.trace_values(q, st, avail, chosen)
        assert light["qtot"] == pytest.approx(full.qtot_chosen, abs=1e-5)
        assert light["greedy"] == pytest.approx(full.qtot_greedy, abs=1e-5)
        np.testing.assert_allclose(light["credit"], full.credit, rtol=1e-4, atol=1e-6)
        assert light["res"] == pytest.approx(full.res_value, abs=1e-5)
