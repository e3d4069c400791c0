"""Test configuration: headless Qt and pygame for every test, set before either is imported."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
# the window remembers its layout between launches: the tests' windows must neither read nor write a person's
import tempfile  # noqa: E402

os.environ.setdefault("QMIX_WORKBENCH_SETTINGS", os.path.join(tempfile.mkdtemp(prefix="qmix-settings-"), "w.ini"))

import pytest  # noqa: E402

def run_cli(argv) -> tuple[int, str, str]:
    """`qmix-workbench ARGV` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from workbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


TINY_2C = ["env.num_envs=2", "learner.batch_size=2", "learner.replay_ratio=4", "learner.buffer_size=8", "algo.agent_hidden=16",
           "algo.mixing_embed=8", "algo.hypernet_embed=16", "run.test_episodes=2", "run.test_interval=400",
           "run.t_max=300", "run.save_interval=0"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A real (tiny, untrained) RES-QMIX run on 2c_vs_64zg with a checkpoint, shared by the episode tests."""
    from models.config import load_config
    from models.training.train import train

    root = tmp_path_factory.mktemp("tiny_run")
    cfg = load_config("res_qmix_2c_vs_64zg", TINY_2C + ["run.learner_process=false", "run.t_max=100",
                                                         "run.record_interval=0", "run.record_first_win=false"])
    return train(cfg, run_dir=root / "run", log=lambda *a: None)["run_dir"]


@pytest.fixture(scope="session")
def episode_path(tiny_run):
    """One greedy episode of the tiny run, recorded to a file (its colossi die: markers have a death step)."""
    from models.play.recording import record_episodes

    return str(record_episodes(tiny_run, 1, seed=1, log=lambda *a: None)[0])


@pytest.fixture
def window(qtbot, tmp_path):
    """The real main window (no start-up policy), shown offscreen; closing it must leave no trainer behind."""
    from workbench.app import MainWindow

    w = MainWindow(runs_dir=str(tmp_path / "runs"))
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()
    assert not w.client.alive()
