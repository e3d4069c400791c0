"""The papers' protocols as presets beside the workbench's: named, listed, selectable in the window, and each
trains (a short real run on 2c_vs_64zg)."""
import csv
import os

import pytest

from models import registry
from models.config import load_config
from models.training.train import train
from workbench.cli import main as cli

from conftest import TINY_2C


def test_every_algorithm_has_a_pymarl_protocol_preset_with_the_papers_settings():
    for algo in registry.ALGORITHMS:
        name = algo.preset("2c_vs_64zg", "pymarl")
        info = registry.preset_info(name)
        assert (info.algorithm, info.map_key, info.protocol) == (algo, "2c_vs_64zg", "pymarl")
        cfg = load_config(name)
        L, R = cfg.learner, cfg.run
        assert (cfg.algo.mixer, cfg.algo.res) == (algo.mixer, algo.res)
        assert (L.optimizer, L.lr, L.td_lambda, L.double_q, L.batch_size, L.buffer_size) == \
            ("rmsprop", 0.0005, 0.0, True, 32, 5000)
        assert (L.replay_ratio, L.target_update_episodes, L.grad_clip) == (32.0, 200, 10.0)
        assert (R.epsilon_start, R.epsilon_finish, R.epsilon_anneal_steps) == (1.0, 0.05, 50_000)
        if algo.res:
            assert (cfg.algo.res_beta, cfg.algo.res_lambda) == (5.0, 0.05)
    assert registry.preset_info("qmix_2c_vs_64zg").protocol == "workbench"
    assert registry.presets_for("QMIX", "2c_vs_64zg", "pymarl") == ["qmix_2c_vs_64zg_pymarl"]
    with pytest.raises(ValueError, match="unknown protocol 'smac'; protocols: workbench, pymarl"):
        registry.algorithm("QMIX").preset("2c_vs_64zg", "smac")


def test_presets_command_names_each_protocol(capsys):
    assert cli(["presets"]) == 0
    out = capsys.readouterr().out
    assert "res_qmix_2c_vs_64zg_pymarl" in out and "protocol pymarl" in out and "protocol workbench" in out


@pytest.mark.slow
@pytest.mark.parametrize("algo", registry.ALGORITHMS, ids=lambda a: a.name)
def test_each_pymarl_preset_trains(algo, tmp_path):
    cfg = load_config(algo.preset("2c_vs_64zg", "pymarl"), TINY_2C + [f'run.runs_dir="{tmp_path}"'])
    run = train(cfg, log=lambda *a: None)["run_dir"]
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    updates = [r for r in rows if r["kind"] == "update"]
    assert updates and all(r["loss"] not in ("", "nan") for r in updates)
    assert float(updates[-1]["lr"]) == pytest.approx(0.0005)
    saved = load_config(os.path.join(run, "config.toml"))
    assert saved.learner.optimizer == "rmsprop" and saved.learner.td_lambda == 0.0


def test_the_window_offers_the_protocols_and_starts_from_the_chosen_one(qtbot, window):
    c = window.controls
    assert [c.protocol.itemData(i) for i in range(c.protocol.count())] == list(registry.PROTOCOLS)
    c.protocol.setCurrentIndex(c.protocol.findData("pymarl"))
    assert c.lr.value() == pytest.approx(0.0005) and c.replay_ratio.value() == pytest.approx(32.0)
    assert c.td_lambda.value() == 0.0
    cfg = window.current_config()
    assert cfg.learner.optimizer == "rmsprop" and cfg.run.epsilon_anneal_steps == 50_000
    c.protocol.setCurrentIndex(c.protocol.findData("workbench"))
    assert window.current_config().learner.optimizer == "adam"
