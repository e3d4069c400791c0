"""Matrix games: QMIX represents the two-step game's optimum and VDN does not (QMIX paper, Table 1)."""
import numpy as np
import pytest

from models.config import load_config
from models.play.tables import format_tables, matrix_game_tables
from models.training.train import Trainer
from sims import MatrixGameVecEnv


def _train(preset, seed, tmp_path, steps=None):
    over = [f"run.seed={seed}", f'run.runs_dir="{tmp_path}"', "run.test_interval=1000000"]
    cfg = load_config(preset, over + ([f"run.t_max={steps}"] if steps else []))
    tr = Trainer(cfg, log=lambda *a: None)
    while tr.t_env < cfg.run.t_max:
        tr.round()
    ev = tr.evaluate()
    tables = matrix_game_tables(tr.agent, tr.mixer, cfg.env.map_name)
    tr.close()
    return ev, tables


def test_two_step_game_rewards():
    env = MatrixGameVecEnv("twostep", 4, autoreset=False)
    env.reset()
    r1 = env.step(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]))
    assert not r1.terminated.any() and (r1.reward == 0).all()
    r2 = env.step(np.array([[1, 1], [1, 1], [0, 1], [1, 1]]))
    assert r2.terminated.all() and list(r2.reward) == [7, 7, 1, 8]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qmix_takes_the_branch_worth_8_and_vdn_does_not(seed, tmp_path):
    ev_q, tab_q = _train("qmix_twostep", seed, tmp_path)
    ev_v, tab_v = _train("vdn_twostep", seed, tmp_path)
    assert ev_q["test_return"] == 8.0, format_tables(tab_q)
    assert ev_v["test_return"] == 7.0, format_tables(tab_v)
    # QMIX's learned 2B table peaks at the joint action worth 8
    learned_2b = tab_q["state 2B (after agent 0 plays B)"][0]
    assert np.unravel_index(np.argmax(learned_2b), learned_2b.shape) == (1, 1)


def test_learned_tables_print_beside_true_payoffs(tmp_path):
    _, tab = _train("qmix_matrix_nonmono", 0, tmp_path, steps=2_000)
    text = format_tables(tab)
    assert "learned Qtot" in text and "true payoff" in text and "-12.00" in text
    assert tab["state"][0].shape == (3, 3)
