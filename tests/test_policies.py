"""Shipped policies (models/files/policies.py): shipping a real (tiny) checkpoint, loading it back without unpickling,
refusing changed files, playing it (evaluation, Watch mode, episode files and forks), the CLI, the app opening on one
(or idle without one), and the policies actually shipped under assets/policies/."""
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models.files import policies
from models.play.ship import ship_policy
from models.files.policies import ENV_DIR, PolicyError

EPISODES = 2  # the card's evaluation: small, the tiny run is untrained anyway
WAIT = 90_000  # ms: a spawned trainer imports torch and the simulator before its first step


@pytest.fixture(scope="module")
def shipped(tiny_run, tmp_path_factory):
    """A policies directory with one policy, "tiny", shipped from the tiny RES-QMIX run's checkpoint."""
    d = tmp_path_factory.mktemp("policies")
    card = ship_policy(tiny_run, "tiny", episodes=EPISODES, seed=7, out_dir=d, command="pytest")
    return d, card


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite_card(path: Path, by_hand: bool = False, **changes) -> None:
    """Change a card's fields as the tool would write them (its card digest follows), or `by_hand` (it does not)."""
    d = json.loads(path.read_text())
    d.update(changes)
    if not by_hand:
        d["card_digest"] = policies.card_digest(d)
    path.write_text(json.dumps(d))


# ---- shipping and loading --------------------------------------------------------------------------------------
def test_ship_writes_small_plain_weights_and_a_card_that_describes_them(shipped, tiny_run):
    from models.files.checkpoint import load_checkpoint

    d, card = shipped
    npz, js = d / "tiny.npz", d / "tiny.json"
    assert card.weights == npz and card.path == js and sorted(p.name for p in d.iterdir()) == ["tiny.json", "tiny.npz"]
    assert npz.stat().st_size <= policies.MAX_WEIGHTS_BYTES
    with np.load(npz, allow_pickle=False) as z:  # plain arrays: nothing to unpickle
        keys = z.files
        assert all(z[k].dtype != object for k in keys)
    assert {k.split(".", 1)[0] for k in keys} == {"agent", "mixer"}  # no targets, no optimiser state
    assert hashlib.sha256(npz.read_bytes()).hexdigest() == card.digest
    on_disk = json.loads(js.read_text())
    assert on_disk["format"] == policies.FORMAT and on_disk["digest"] == card.digest and "path" not in on_disk
    meta, _ = load_checkpoint(tiny_run)
    assert card.source_checkpoint == {"path": meta["path"], "digest": meta["digest"]}
    assert (card.algorithm, card.map, card.preset) == ("RES-QMIX", "2c_vs_64zg", "res_qmix_2c_vs_64zg")
    assert card.dims == {"obs_dim": 332, "state_dim": 342, "n_agents": 2, "n_actions": 70}
    assert (card.eval_episodes, card.eval_seed, card.t_env, card.command) == (EPISODES, 7, meta["t_env"], "pytest")
    assert 0.0 <= card.win_rate <= 1.0 and card.config == meta["config"] and card.created
    # the run's training history up to the checkpoint, for the app's curves while the policy plays
    x, y = card.curves["episode/return"]
    assert 0 < len(x) == len(y) <= policies.CURVE_POINTS and max(x) <= card.t_env
    assert set(card.curves) <= {f"{k}/{c}" for k, cols in policies.CURVE_COLUMNS.items() for c in cols}
    assert card.curve_series()[("episode", "return")][0].dtype == float
    assert policies.read_card(js) == card


def test_loads_back_the_checkpoints_acting_networks(shipped, tiny_run):
    from models.files.loading import load_policy

    d, card = shipped
    cfg, agent, mixer, loaded = policies.load_policy_by_name("tiny", directory=d)
    _, agent0, mixer0, _ = load_policy(tiny_run)
    assert loaded == card and cfg.to_dict() == card.config
    for a, b in ((agent, agent0), (mixer, mixer0)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    # a .npz path goes wherever a checkpoint path goes: its meta reads like a checkpoint's
    _, _, _, meta = load_policy(card.weights)
    assert meta["policy"] == "tiny" and meta["digest"] == card.digest and meta["t_env"] == card.t_env


def test_a_greedy_evaluation_reproduces_the_cards_figures(shipped):
    from models.play.evaluate import evaluate_checkpoint

    _, card = shipped
    res = evaluate_checkpoint(card.weights, EPISODES, card.eval_seed)
    assert res["episodes"] == EPISODES and res["meta"]["policy"] == "tiny"
    assert (res["win_rate"], res["return"], res["dead_enemies"]) == (card.win_rate, card.mean_return,
                                                                      card.dead_enemies)


def test_changed_or_unsafe_files_are_refused_with_the_file_named(shipped, tmp_path):
    from models.files.loading import load_policy

    d = _copy(shipped[0], tmp_path / "p")
    npz = d / "tiny.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    for load in (lambda: policies.load_policy_by_name("tiny", directory=d), lambda: load_policy(npz),
                 lambda: policies.verified_card(npz)):
        with pytest.raises(PolicyError, match=r"tiny\.npz does not match its card tiny\.json.*changed after it was"):
            load()
    # a file whose digest matches but that holds an object array (which only unpickling could read) is refused
    buf = io.BytesIO()
    np.savez(buf, **{"agent.fc1.weight": np.array([{"code": 1}], dtype=object)})
    npz.write_bytes(buf.getvalue())
    _rewrite_card(d / "tiny.json", digest=hashlib.sha256(buf.getvalue()).hexdigest())
    with pytest.raises(PolicyError, match=r"tiny\.npz is not a readable policy weights file"):
        policies.load_policy_by_name("tiny", directory=d)
    # arrays that are not the networks' parameters
    buf = io.BytesIO()
    np.savez(buf, **{"optim.state": np.zeros(3)})
    npz.write_bytes(buf.getvalue())
    _rewrite_card(d / "tiny.json", digest=hashlib.sha256(buf.getvalue()).hexdigest())
    with pytest.raises(PolicyError, match=r"holds 'optim.state'; expected only agent.<param> and mixer.<param>"):
        policies.load_policy_by_name("tiny", directory=d)
    # a card that is not one: unreadable, and listed as such while the others still are
    shutil.copy(shipped[0] / "tiny.npz", d / "other.npz")
    (d / "other.json").write_text((shipped[0] / "tiny.json").read_text())
    _rewrite_card(d / "other.json", name="other")
    _rewrite_card(d / "tiny.json", dims={"obs_dim": 332})
    with pytest.raises(PolicyError, match=r"tiny\.json: dims lacks state_dim, n_agents, n_actions"):
        policies.read_card(d / "tiny.json")
    bad = []
    assert [c.name for c in policies.list_policies(d, unreadable=bad)] == ["other"]
    assert [p.name for p, _ in bad] == ["tiny.json"]
    # a card edited by hand (a better win rate, another map) no longer matches its digest
    _rewrite_card(d / "other.json", by_hand=True, win_rate=1.0)
    with pytest.raises(PolicyError, match=r"other\.json was changed after it was written"):
        policies.read_card(d / "other.json")


def test_names_are_found_listed_and_refused_clearly(shipped, tmp_path):
    d = _copy(shipped[0], tmp_path / "p")
    for name, algorithm in (("zz", "RES-QMIX"), ("mixless", "QMIX")):  # copies under other names
        shutil.copy(d / "tiny.npz", d / f"{name}.npz")
        (d / f"{name}.json").write_text((d / "tiny.json").read_text())
        _rewrite_card(d / f"{name}.json", name=name, algorithm=algorithm)
    assert [c.name for c in policies.list_policies(d)] == ["mixless", "tiny", "zz"]  # QMIX first, then by name
    assert policies.find_policy("TINY", d).name == "tiny"
    with pytest.raises(PolicyError, match=r"unknown policy 'nope' in .*; shipped policies: mixless, tiny, zz"):
        policies.find_policy("nope", d)
    with pytest.raises(PolicyError, match="none is shipped there"):
        policies.find_policy("qmix", tmp_path / "empty")
    assert policies.list_policies(tmp_path / "empty") == []
    with pytest.raises(PolicyError, match="expected a policy name of lowercase letters"):
        ship_policy("unused", "../escape", out_dir=tmp_path)


def test_weights_over_the_size_limit_are_not_shipped(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(policies, "MAX_WEIGHTS_BYTES", 10_000)
    with pytest.raises(PolicyError, match=r"policy 'big': its weights take [\d,]+ bytes compressed, more than the "
                                          r"10,000"):
        ship_policy(tiny_run, "big", episodes=1, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_policies_directory_is_overridable(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DIR, raising=False)
    assert policies.policies_dir() == Path(policies.__file__).resolve().parents[2] / "assets" / "policies"
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    assert policies.policies_dir() == tmp_path and policies.policies_dir("x") == Path("x")


# ---- playing it: Watch mode, episode files, forks ------------------------------------------------------------------
def test_watching_a_shipped_policy_records_episodes_that_name_it(shipped, tmp_path):
    from models.files.episode_file import EpisodeFileError, load_episode
    from models.files.loading import episode_policy
    from models.training.callbacks import Callbacks
    from models.play.watch import watch

    d = _copy(shipped[0], tmp_path / "p")
    card = policies.find_policy("tiny", d)
    files, starts = [], []

    class CB(Callbacks):
        def on_start(self, info):
            starts.append(info)

        def on_recorded(self, path):
            files.append(path)

    out = tmp_path / "runs" / "episodes"
    assert watch(str(card.weights), CB(), max_episodes=1, record=str(out))["episodes"] == 1
    assert starts[0]["policy"] == "tiny" and starts[0]["run_dir"] == ""
    assert len(files) == 1 and Path(files[0]).parent == out and Path(files[0]).name.startswith("watch_tiny_s0_")
    ep = load_episode(files[0])
    ref = dict(ep.header["checkpoint"])
    assert ref.pop("weights_digest")  # the weights' own digest, whichever file holds them
    assert ref == {"path": str(card.weights.resolve()), "digest": card.digest, "policy": "tiny"}
    _, agent, _ = episode_policy(ep)  # what a fork loads
    assert torch.equal(agent.state_dict()["fc1.weight"], torch.as_tensor(np.load(card.weights)["agent.fc1.weight"]))
    # "auto" records nothing for a shipped policy: its directory is the installed package
    watch(str(card.weights), CB(), max_episodes=1)
    assert sorted(p.name for p in d.iterdir()) == ["tiny.json", "tiny.npz"] and len(files) == 1
    # shipped again since (other weights, a card that matches them): a fork says so instead of using them
    with np.load(card.weights) as z:
        arrays = {k: z[k] * 2 for k in z.files}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    card.weights.write_bytes(buf.getvalue())
    _rewrite_card(card.path, digest=hashlib.sha256(buf.getvalue()).hexdigest())
    policies.load_policy_file(card.weights)  # a valid policy, just not the one that played
    with pytest.raises(EpisodeFileError, match="changed since the episode was recorded"):
        episode_policy(ep)


# ---- the CLI -------------------------------------------------------------------------------------------------------
def test_cli_ships_lists_and_evaluates_by_name(tiny_run, tmp_path, monkeypatch, capsys):
    from workbench.cli import main

    d = tmp_path / "policies"
    monkeypatch.setenv(ENV_DIR, str(d))
    assert main(["policies"]) == 0
    assert "no shipped policies in" in capsys.readouterr().out
    assert main(["eval"]) == 2
    assert "expected a checkpoint (file or run directory) or --policy NAME (shipped policies: none shipped)" in \
        capsys.readouterr().err
    assert main(["ship-policy", str(tiny_run), "--name", "cli", "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {d / 'cli.npz'}" in out and "cli: RES-QMIX on 2c_vs_64zg" in out
    card = policies.find_policy("cli")
    assert card.command == f"qmix-workbench ship-policy {tiny_run} --name cli --episodes 2 --seed 12345"
    assert main(["policies"]) == 0 and capsys.readouterr().out.startswith("cli: RES-QMIX on 2c_vs_64zg")
    assert main(["eval", "--policy", "cli", "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert f"RES-QMIX on 2c_vs_64zg, shipped policy cli ({card.t_env:,} env steps of training): win rate" in out
    assert f"mean return {card.mean_return:.2f}" in out  # same episodes, same seed as the card's
    assert main(["eval", str(tiny_run), "--policy", "cli"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["record", "--policy", "cli", "--out", str(tmp_path / "eps")]) == 0
    assert [p.name for p in (tmp_path / "eps").glob("*.npz")] == ["cli_s12345_00000.npz"]  # the evaluation seed, as eval
    # an existing name is replaced only with --force; without $QMIX_WORKBENCH_POLICIES or --out, nothing is
    # written into the installed package
    before = (d / "cli.json").read_bytes()
    assert main(["ship-policy", str(tiny_run), "--name", "cli", "--episodes", "2"]) == 2
    assert "policy 'cli' exists" in capsys.readouterr().err and (d / "cli.json").read_bytes() == before
    assert main(["ship-policy", str(tiny_run), "--name", "cli", "--episodes", "2", "--force"]) == 0
    monkeypatch.delenv(ENV_DIR)
    assert main(["ship-policy", str(tiny_run), "--name", "pkg", "--episodes", "2"]) == 2
    assert "writes into --out DIR" in capsys.readouterr().err
    assert not (policies.policies_dir() / "pkg.json").exists()


def test_cli_errors_name_the_policy(tmp_path, monkeypatch, capsys, shipped):
    from workbench.cli import main

    monkeypatch.setenv(ENV_DIR, str(shipped[0]))
    assert main(["eval", "--policy", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown policy 'nope'" in err and "shipped policies: tiny" in err
    assert main(["watch", "--policy", "nope"]) == 2  # refused before any window opens
    assert "unknown policy 'nope'" in capsys.readouterr().err


# ---- the app -------------------------------------------------------------------------------------------------------
@pytest.fixture
def app_window(qtbot, tmp_path, monkeypatch):
    """A window made the way `run_app` makes it (a start policy), on a policies directory the test fills."""
    pytest.importorskip("pytestqt")
    from workbench.app import MainWindow

    d = tmp_path / "policies"
    d.mkdir()
    monkeypatch.setenv(ENV_DIR, str(d))
    made = []

    def make():
        w = MainWindow(runs_dir=str(tmp_path / "runs"), start_policy="qmix")
        w.controls.watch_speed.setValue(1000)  # before the start-up watch begins: short episodes, files soon
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield d, make
    for w in made:
        w.close()
        assert not w.client.alive()


@pytest.mark.slow
def test_app_opens_watching_the_shipped_policy(qtbot, app_window, shipped, tmp_path):
    d, make = app_window
    for f in shipped[0].iterdir():
        shutil.copy(f, d)
    shutil.copy(d / "tiny.npz", d / "other.npz")
    (d / "other.json").write_text((d / "tiny.json").read_text())
    _rewrite_card(d / "other.json", name="other")
    w = make()
    # "qmix" is not shipped here: the first shipped policy plays instead
    qtbot.waitUntil(lambda: w.state.mode == "watch" and w.client.alive(), timeout=5_000)
    c = w.controls
    assert [c.policy.itemData(i) for i in range(c.policy.count())] == ["other", "tiny"]
    assert c.policy.currentData() == "other" and c.policy.itemText(0).startswith("other: RES-QMIX, ")
    assert c.policy.isVisibleTo(w) and not c.policy_note.isVisibleTo(w)
    assert c.start.isEnabled() and c.policy.isEnabled()  # a watch gives way to Start or another policy
    assert "watching shipped policy other: RES-QMIX on 2c_vs_64zg" in w.log_view.toPlainText()
    assert "shipped policy other" in w.windowTitle()
    assert w.state.series["return"].n == len(shipped[1].curves["episode/return"][0])  # how it was trained
    qtbot.waitUntil(lambda: w.state.snapshots_seen >= 2 and w.arena.frames_drawn > 0, timeout=WAIT)
    w._show_snapshot()
    assert np.allclose(w.qvalues.heights(0), w.state.snapshot["probe"]["q"][0])
    # its episodes are recorded under the user's runs/, never into the policies directory
    qtbot.waitUntil(lambda: len(w.state.recorded_episodes) >= 1, timeout=WAIT)
    rec = Path(w.state.recorded_episodes[0])
    assert rec.parent == tmp_path / "runs" / "episodes" and rec.name.startswith("watch_other_s0_")
    assert sorted(p.name for p in d.iterdir()) == ["other.json", "other.npz", "tiny.json", "tiny.npz"]
    # picking another policy stops this watch and watches that one
    pid = w.client.pid
    c.policy.activated.emit(1)
    qtbot.waitUntil(lambda: w.client.alive() and w.client.pid != pid, timeout=10_000)
    assert w.state.mode == "watch" and c.policy.currentData() == "tiny"
    assert "watching shipped policy tiny" in w.log_view.toPlainText()
    seen = w.state.snapshots_seen
    qtbot.waitUntil(lambda: w.state.snapshots_seen > seen, timeout=WAIT)
    # a policy changed on disk is one line; the watch that plays goes on
    data = bytearray((d / "other.npz").read_bytes())
    data[10] ^= 0xFF
    (d / "other.npz").write_bytes(bytes(data))
    pid = w.client.pid
    assert not w.watch_policy("other")
    assert "other.npz does not match its card other.json" in w.log_view.toPlainText()
    assert w.client.alive() and w.client.pid == pid and w.state.mode == "watch"
    # Start trains a new policy: the watch gives way to it
    w.start_training(["env.num_envs=2", "learner.batch_size=2", "learner.replay_ratio=4", "learner.buffer_size=8", "run.test_episodes=2",
                      "run.save_interval=0", "run.learner_process=false", "run.t_max=100000"])
    assert w.state.mode == "train" and w.client.alive() and w.client.pid != pid
    qtbot.waitUntil(lambda: w.state.snapshots_seen >= 1, timeout=WAIT)
    assert not c.policy.isEnabled()  # training stops only by Stop (it saves a checkpoint)
    assert w.state.run_dir.startswith(str(tmp_path / "runs"))


def test_app_without_a_shipped_policy_opens_idle_and_says_so(qtbot, app_window):
    _, make = app_window
    w = make()
    from workbench.panels.controls import NO_POLICY_MESSAGE

    qtbot.waitUntil(lambda: NO_POLICY_MESSAGE in w.log_view.toPlainText(), timeout=5_000)
    assert w.state.mode == "idle" and not w.client.alive() and w.controls.start.isEnabled()
    assert w.controls.policy_note.isVisibleTo(w) and not w.controls.policy.isVisibleTo(w)
    assert w.controls.policy_note.text() == NO_POLICY_MESSAGE


# ---- what is actually shipped ------------------------------------------------------------------------------------
def test_the_shipped_policies_match_their_cards_and_play(monkeypatch):
    """Every policy under assets/policies/: its card's digest matches its
    weights, the weights are small plain arrays, and a greedy episode of it runs."""
    from models.play.evaluate import evaluate_checkpoint

    monkeypatch.delenv(ENV_DIR, raising=False)
    cards = policies.list_policies()
    # the app opens on QMIX and the README's tables name these: they must be there, not merely pass when absent
    assert {"qmix", "vdn", "res_qmix", "iql", "res_vdn", "qmix_twostep", "vdn_twostep"} <= {c.name for c in cards}
    for card in cards:
        assert card.weights.stat().st_size <= policies.MAX_WEIGHTS_BYTES, card.name
        assert policies.verified_card(card.weights) == card
        with np.load(card.weights, allow_pickle=False) as z:
            assert z.files and all(k.split(".", 1)[0] in ("agent", "mixer") for k in z.files), card.name
        res = evaluate_checkpoint(card.weights, episodes=1, seed=card.eval_seed)
        assert res["episodes"] == 1 and res["meta"]["policy"] == card.name
        # a battle is scored by its win rate, a matrix game (never won) by its return
        if card.map == "twostep":
            assert card.score == f"return {card.mean_return:.2f}" and "wins" not in card.summary()
        else:
            assert card.score == f"{card.win_rate:.0%} wins" and card.score in card.summary()
