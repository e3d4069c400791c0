"""Configs, the training loop, run directories, checkpoints and the CLI, at small sizes."""
import csv
import os

import numpy as np
import pytest
import torch

from models.core.buffer import EpisodeBuffer
from models.files.checkpoint import CheckpointError, load_checkpoint
from models.config import ConfigError, list_presets, load_config
from models.core.runner import epsilon_at
from models.training.callbacks import Callbacks
from models.training.train import Trainer, train
from workbench.cli import main as cli

TINY_2C = ["env.num_envs=2", "learner.batch_size=2", "learner.replay_ratio=4", "learner.buffer_size=8", "algo.agent_hidden=16",
           "algo.mixing_embed=8", "algo.hypernet_embed=16", "run.test_episodes=2", "run.test_interval=400",
           "run.t_max=300", "run.save_interval=0"]


def test_every_algorithm_has_2c_and_matrix_presets():
    from models import registry
    from sims import list_matrix_games

    names = set(list_presets())
    assert len(registry.ALGORITHMS) == 5  # IQL, VDN, QMIX, RES-VDN, RES-QMIX: the registry is the one list
    for algo in registry.ALGORITHMS:
        for game in ["2c_vs_64zg", *list_matrix_games()]:
            assert f"{algo.prefix}_{game}" in names, (algo.name, game)
            cfg = load_config(f"{algo.prefix}_{game}")
            assert (cfg.algo.mixer, cfg.algo.res) == (algo.mixer, algo.res)


@pytest.mark.parametrize("override, message", [
    ("learner.lrr=0.1", "unknown key 'learner.lrr'"),
    ("learner.lr=-1", "learner.lr: expected a positive value"),
    ("learner.lr=fast", "learner.lr: expected a number"),
    ("algo.mixer=qtran", "algo.mixer: expected one of none, vdn, qmix"),
    ("run.device=tpu", "run.device: expected one of auto, cpu, cuda"),
    ("learner.gamma=1.5", "learner.gamma: expected a value in"),
    ("trainer.lr=1", "unknown section 'trainer'"),
    ("lr=1", "must name its section"),
])
def test_bad_config_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("qmix_2c_vs_64zg", [override])


def test_unknown_preset_and_user_toml(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'qmix_3m'; presets: .*qmix_2c_vs_64zg"):
        load_config("qmix_3m")
    p = tmp_path / "mine.toml"
    p.write_text('[algo]\nmixer = "vdn"\n[learner]\nlr = 0.0005\n')
    c = load_config(str(p), ["run.seed=3"])
    assert (c.algo.mixer, c.learner.lr, c.run.seed) == ("vdn", 0.0005, 3)
    p.write_text("[algo]\nmixxer = 1\n")
    with pytest.raises(ConfigError, match=r"mine.toml: unknown key 'algo.mixxer'"):
        load_config(str(p))
    with pytest.raises(ConfigError, match="RES needs a mixer"):
        load_config("iql_2c_vs_64zg", ["algo.res=true"])


def test_epsilon_schedule_is_linear():
    assert epsilon_at(0, 1.0, 0.05, 100) == 1.0
    assert epsilon_at(50, 1.0, 0.05, 100) == pytest.approx(0.525)
    assert epsilon_at(10**6, 1.0, 0.05, 100) == 0.05


def test_buffer_is_compact_and_reports_its_memory():
    buf = EpisodeBuffer(10, 400, 2, 332, 342, 70)
    assert buf.obs.dtype == np.float16 and buf.avail.dtype == bool and buf.actions.dtype == np.int16
    assert buf.nbytes < 10 * 1.0e6  # < 1 MB per 2c_vs_64zg episode
    assert "MiB" in buf.describe()


class Recorder(Callbacks):
    def __init__(self):
        self.episodes, self.updates, self.evals, self.steps = [], [], [], 0

    def on_episode(self, m):
        self.episodes.append(m)

    def on_update(self, m):
        self.updates.append(m)

    def on_eval(self, m):
        self.evals.append(m)

    def wants_steps(self):
        return True

    def on_step(self, ctx):
        self.steps += 1
        if self.steps == 3:
            self.probe = ctx.probe(0)
        return None


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["qmix_2c_vs_64zg", "res_qmix_2c_vs_64zg", "iql_2c_vs_64zg", "res_vdn_2c_vs_64zg"])
def test_train_writes_a_run_directory_and_reports_metrics(preset, tmp_path):
    rec = Recorder()
    s = train(load_config(preset, TINY_2C + [f'run.runs_dir="{tmp_path}"']), callbacks=rec, log=lambda *a: None)
    run = s["run_dir"]
    assert os.path.exists(os.path.join(run, "config.toml"))
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(run, "tb")))
    assert os.path.exists(os.path.join(run, "checkpoints", "latest.pt"))
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    kinds = {r["kind"] for r in rows}
    assert {"episode", "update", "eval"} <= kinds
    ep = [r for r in rows if r["kind"] == "episode"]
    assert all(r["overestimation"] != "" for r in ep)
    up = rec.updates[-1]
    for k in ("loss", "td_error", "grad_norm", "qtot_taken", "target"):
        assert np.isfinite(up[k])
    if "res" in preset:
        assert "res_softmax_value" in up and "max_value" in up
    assert rec.steps > 0 and rec.probe.q.shape == (2, 70)
    if "iql" in preset:
        assert rec.probe.qtot_chosen is None
    else:
        assert rec.probe.joint.shape == (70, 70)


@pytest.mark.slow
@pytest.mark.parametrize("learner_process", [True, False])
def test_resume_continues_exactly(tmp_path, learner_process):
    # with a learner process the checkpoint also holds the actors' (one round old) weights and the
    # round learnt but not yet handed to them
    over = TINY_2C + ["run.save_buffer=true", "run.test_interval=100000", f"run.learner_process={str(learner_process).lower()}"]
    a = Trainer(load_config("qmix_2c_vs_64zg", over), run_dir=tmp_path / "a", log=lambda *a: None)
    for _ in range(3):
        a.round()
    a.save()
    ck = tmp_path / "a" / "checkpoints" / "latest.pt"  # the one that keeps the replay buffer
    for _ in range(2):
        a.round()
    b = Trainer(None, resume=ck, run_dir=tmp_path / "b", log=lambda *a: None)
    assert b.t_env == load_checkpoint(ck)[0]["t_env"]
    for _ in range(2):
        b.round()
    assert a.t_env == b.t_env
    for (k, p), q in zip(a.agent.state_dict().items(), b.agent.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=k)
    a.close()
    b.close()
    # and it logs the same rows (update counts included) as the run that went on
    t_ck = load_checkpoint(ck)[0]["t_env"]

    def rows(run):
        with open(run / "metrics.csv") as f:
            return [{k: v for k, v in r.items() if k not in ("wall_s", "steps_per_s")} for r in csv.DictReader(f)]
    assert rows(tmp_path / "b") == [r for r in rows(tmp_path / "a") if int(r["t_env"]) > t_ck]


def test_learner_process_runs_the_inline_updates_one_round_behind(tmp_path):
    over = TINY_2C + ["run.test_interval=100000"]
    inline = Trainer(load_config("qmix_2c_vs_64zg", over + ["run.learner_process=false"]), run_dir=tmp_path / "i",
                     log=lambda *a: None)
    proc = Trainer(load_config("qmix_2c_vs_64zg", over + ["run.learner_process=true"]), run_dir=tmp_path / "p",
                   log=lambda *a: None)
    initial = {k: v.clone() for k, v in proc.agent.state_dict().items()}
    initial_mixer = {k: v.clone() for k, v in proc.mixer.state_dict().items()}
    for k, v in inline.agent.state_dict().items():
        torch.testing.assert_close(v, initial[k], rtol=0, atol=0, msg=k)  # same seed, same networks
    inline.round()
    proc.round()
    assert inline.updates == 4 and proc.updates == 0  # the process's round-1 updates are still on their way
    for k, v in proc.agent.state_dict().items():  # so its actors still act with the initial weights
        torch.testing.assert_close(v, initial[k], rtol=0, atol=0, msg=k)
    proc.catch_up()
    assert proc.updates == 4
    # the same episodes and the same sampled batches: the worker computed what the inline learner did
    # and the updates changed every weight of both networks, the mixer's included
    for name, net_i, net_p, start in (("agent", inline.agent, proc.agent, initial),
                                      ("mixer", inline.mixer, proc.mixer, initial_mixer)):
        assert set(net_p.state_dict()) == set(start) and start
        for (k, a), b in zip(net_i.state_dict().items(), net_p.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
            assert not torch.equal(b, start[k]), f"{name}.{k} did not change"
    inline.close()
    proc.close()


def test_a_dead_learner_process_is_a_clear_error(tmp_path):
    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C + ["run.learner_process=true"]), run_dir=tmp_path / "r",
                 log=lambda *a: None)
    tr.round()
    tr.host.proc.kill()
    tr.host.proc.join(5)
    with pytest.raises(RuntimeError, match="learner process .* ended unexpectedly"):
        for _ in range(3):  # the round it finished before dying may still arrive
            tr.round()
    tr.close()
    assert (tmp_path / "r" / "metrics.csv").exists()


@pytest.mark.slow
def test_checkpoint_is_atomic_and_rejects_other_maps(tmp_path):
    tr = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C), run_dir=tmp_path / "r", log=lambda *a: None)
    tr.round()
    path = tr.save()
    tr.close()
    assert not [f for f in os.listdir(path.parent) if f.endswith(".tmp")]
    other = Trainer(load_config("qmix_matrix_mild", [f'run.runs_dir="{tmp_path}"']), log=lambda *a: None)
    with pytest.raises(CheckpointError, match="map_name: checkpoint has '2c_vs_64zg', this run has 'matrix_mild'"):
        other.load_weights(path)
    wider = Trainer(load_config("qmix_2c_vs_64zg", TINY_2C + ["algo.agent_hidden=32"]), run_dir=tmp_path / "w",
                    log=lambda *a: None)
    with pytest.raises(CheckpointError, match="agent_hidden"):
        wider.load_weights(path)
    other.close()
    wider.close()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(bad)


def test_cli_train_eval_and_errors(tmp_path, capsys):
    run = tmp_path / "cli_run"
    assert cli(["train", "--preset", "qmix_matrix_mild", "--set", "run.t_max=640", "--run-dir", str(run)]) == 0
    assert (run / "checkpoints" / "latest.pt").exists()
    assert cli(["eval", str(run), "--episodes", "4"]) == 0
    out = capsys.readouterr().out
    assert "QMIX on matrix_mild" in out and "over 4 greedy episodes" in out
    assert cli(["train", "--preset", "qmix_matrix_mild", "--set", "learner.nope=1"]) == 2
    assert "unknown key 'learner.nope'" in capsys.readouterr().err
    assert cli(["train", "--resume", str(run)]) == 0  # t_max already reached: evaluates and saves again
    # training longer: run.* keys may change on resume, the networks and environment may not
    assert cli(["train", "--resume", str(run), "--set", "run.t_max=1280"]) == 0
    assert load_checkpoint(run / "checkpoints" / "latest.pt")[0]["t_env"] >= 1280
    assert cli(["train", "--resume", str(run), "--set", "algo.agent_hidden=8"]) == 2
    assert "only run.* keys" in capsys.readouterr().err
    assert cli(["eval", str(tmp_path / "missing")]) == 2


def test_cli_plot_writes_a_png(tmp_path):
    run = tmp_path / "r"
    assert cli(["train", "--preset", "vdn_twostep", "--set", "run.t_max=1000", "--run-dir", str(run)]) == 0
    assert cli(["plot", str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 5000
    assert cli(["plot", str(tmp_path / "missing")]) == 2


def test_cli_prints_learned_tables_of_a_matrix_game(tmp_path, capsys):
    run = tmp_path / "r"
    assert cli(["train", "--preset", "qmix_matrix_mild", "--set", "run.t_max=640", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert cli(["tables", str(run)]) == 0
    out = capsys.readouterr().out
    assert "QMIX on matrix_mild" in out and "true payoff" in out and "12.00" in out
    # several runs (seeds): mean +- sd of the learned tables and the greedy joint actions picked
    run2 = tmp_path / "r2"
    assert cli(["train", "--preset", "qmix_matrix_mild", "--set", "run.t_max=640", "--set", "run.seed=1",
                "--run-dir", str(run2)]) == 0
    capsys.readouterr()
    assert cli(["tables", str(run), str(run2)]) == 0
    out = capsys.readouterr().out
    assert "### matrix_mild: QMIX (2 seeds)" in out and "±" in out and "greedy joint action" in out
    assert "| a0=0 |" in out and out.count("x") >= 1


def test_per_env_epsilons_spread_from_the_schedules_value_down_to_a_greedy_env_0():
    from models.core.runner import env_epsilons

    assert np.allclose(env_epsilons(0.3, 4, 0.0), 0.3)
    e = env_epsilons(0.4, 16, 7.0)
    assert e[-1] == pytest.approx(0.4) and e[0] == pytest.approx(0.4 ** 8) and np.all(np.diff(e) > 0)


def test_a_held_exploratory_action_is_kept_until_it_runs_out_or_is_unavailable():
    from models.core.runner import ExplorationHold, select_actions

    rng = np.random.default_rng(0)
    q = torch.zeros(64, 2, 5)
    q[..., 0] = 1.0  # greedy: action 0
    avail = torch.ones(64, 2, 5, dtype=torch.bool)
    hold = ExplorationHold(64, 2, mu=1.5)
    first = select_actions(q, avail, 1.0, rng, hold)  # every agent draws an action and a duration
    held = hold.left > 0
    assert held.any() and (~held).any()
    again = select_actions(q, avail, 0.0, rng, hold)  # no new draws: held ones keep theirs, the rest are greedy
    assert np.array_equal(again[held], first[held]) and np.all(again[~held] == 0)
    avail[..., 1:] = False  # the held actions become unavailable: their holds end, everyone acts greedily
    assert np.all(select_actions(q, avail, 0.0, rng, hold) == 0) and np.all(hold.action[hold.left > 0] == 0)


def test_training_logs_each_envs_epsilon_and_holds_exploration(tmp_path):
    cfg = load_config("qmix_2c_vs_64zg", TINY_2C + ["env.num_envs=4", "run.epsilon_spread=3.0", "run.epsilon_hold=2.0",
                                                    "run.epsilon_start=0.5",
                                                    "run.learner_process=false", "run.t_max=200",
                                                    f'run.runs_dir="{tmp_path}"'])
    run = train(cfg, log=lambda *a: None)["run_dir"]
    eps = [float(r["epsilon"]) for r in csv.DictReader(open(os.path.join(run, "metrics.csv"))) if r["kind"] == "episode"]
    assert len(set(eps[:4])) == 4 and max(eps[:4]) == eps[3] and min(eps[:4]) == eps[0]
    with pytest.raises(ConfigError, match="run.epsilon_hold: expected 0"):
        load_config("qmix_2c_vs_64zg", ["run.epsilon_hold=1.0"])
