"""The GPU path: a few updates on `run.device = "cuda"` (learner inline and in its own process).
Skipped, with the reason, where torch sees no CUDA device."""
import math

import pytest
import torch

from models.config import load_config
from models.training.callbacks import Callbacks
from models.training.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here (torch.cuda.is_available() is False)")

TINY_2C = ["env.num_envs=2", "learner.batch_size=2", "learner.replay_ratio=4", "learner.buffer_size=8", "algo.agent_hidden=16",
           "algo.mixing_embed=8", "algo.hypernet_embed=16", "run.test_episodes=2", "run.test_interval=100000",
           "run.save_interval=0", 'run.device="cuda"']


class Updates(Callbacks):
    def __init__(self):
        self.losses = []

    def on_update(self, m):
        self.losses.append(m["loss"])


@pytest.mark.parametrize("learner_process", [False, True])
@pytest.mark.parametrize("preset", ["qmix_2c_vs_64zg", "res_qmix_2c_vs_64zg"])
def test_updates_on_cuda_are_finite_and_move_every_weight(tmp_path, preset, learner_process):
    cb = Updates()
    tr = Trainer(load_config(preset, TINY_2C + [f"run.learner_process={str(learner_process).lower()}"]),
                 run_dir=tmp_path / "r", callbacks=cb, log=lambda *a: None)
    assert tr.device.type == "cuda" and next(tr.agent.parameters()).is_cuda
    before = {f"{n}.{k}": v.detach().clone() for n, net in (("agent", tr.agent), ("mixer", tr.mixer))
              for k, v in net.state_dict().items()}
    for _ in range(4):
        tr.round()
    tr.catch_up()
    after = {f"{n}.{k}": v for n, net in (("agent", tr.agent), ("mixer", tr.mixer))
             for k, v in net.state_dict().items()}
    path = tr.save(with_buffer=True)
    tr.close()
    assert len(cb.losses) >= 4 and all(math.isfinite(x) for x in cb.losses)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert sorted(moved) == sorted(before), set(before) - set(moved)
    assert path.exists()
