"""RES's one-deviation softmax operator over only the available candidates equals the dense table over all
n x A candidates (unavailable ones masked), for QMIX and VDN mixers and for 2 and 5 agents."""
import copy

import pytest
import torch

from models.core.learner import NEG_INF, res_operator
from models.core.mixers import make_mixer


def dense_one_deviation(q_online, q_target, avail, mixer, target_mixer, state, beta):
    """The operator as a dense [R, n*A] table: candidate (i, a) is the greedy joint action with agent i on a."""
    R, n, A = q_online.shape
    greedy = q_online.masked_fill(~avail, NEG_INF).argmax(-1)
    joint = greedy[:, None, None, :].expand(R, n, A, n).clone()
    for i in range(n):
        joint[:, i, :, i] = torch.arange(A)
    idx = joint.reshape(R, n * A, n).permute(0, 2, 1)
    cand_online = torch.gather(q_online, 2, idx).permute(0, 2, 1)
    cand_target = torch.gather(q_target, 2, idx).permute(0, 2, 1)
    valid = torch.gather(avail, 2, idx).all(1)
    logits = (beta * mixer.mix(cand_online, mixer.hyper(state))).masked_fill(~valid, NEG_INF)
    return (torch.softmax(logits, -1) * target_mixer.mix(cand_target, target_mixer.hyper(state))).sum(-1)


@pytest.mark.parametrize("kind", ["qmix", "vdn"])
@pytest.mark.parametrize("n,A", [(2, 70), (5, 11)])
def test_sparse_operator_equals_the_dense_table(kind, n, A):
    g = torch.Generator().manual_seed(0)
    R, S = 64, 24
    q_online, q_target = torch.randn(R, n, A, generator=g) * 3, torch.randn(R, n, A, generator=g) * 3
    avail = torch.rand(R, n, A, generator=g) < 0.15
    avail[:, :, 1] = True  # stop is always available
    avail[:5, 0] = False  # a dead agent: only no-op
    avail[:5, 0, 0] = True
    state = torch.randn(R, S, generator=g)
    torch.manual_seed(1)
    mixer = make_mixer(kind, n, S, 8, 16)
    target = copy.deepcopy(mixer)
    if kind == "qmix":
        with torch.no_grad():
            for p in target.parameters():
                p.add_(0.1 * torch.randn_like(p))
    with torch.no_grad():
        want = dense_one_deviation(q_online, q_target, avail, mixer, target, state, 5.0)
        got = res_operator(q_online, q_target, avail, mixer, target, state, 5.0)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
