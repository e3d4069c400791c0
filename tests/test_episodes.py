"""Episodes as files: the simulator's save/restore, the file format, recording, forks and bad files."""
import json
import os
import shutil

import numpy as np
import pytest

from models.files.episode_file import VERSION, EpisodeFileError, load_episode
from models.play.fork import fork
from sims import VecEnv


def _play(env, rng, limit=10_000):
    """A random-but-available episode of battle 0; the saved state before every step and the actions."""
    rec = env.reset()
    states, acts = [env.save_state(0)], []
    for _ in range(limit):
        a = (rng.random(rec.avail.shape) * rec.avail).argmax(-1)
        rec = env.step(a)
        acts.append(a[0].copy())
        states.append(env.save_state(0))
        if rec.terminated[0]:
            break
    return states, acts


@pytest.mark.parametrize("map_name", ["2c_vs_64zg", "MMM"])  # MMM: Medivacs heal (energy, heal targets)
def test_restoring_any_step_resimulates_bit_exactly(map_name):
    env = VecEnv(map_name, 1, seed=3, autoreset=False)
    states, acts = _play(env, np.random.default_rng(0))
    T = len(acts)
    assert T > 10
    # another world (more battles: the parallel kernel, another slot layout, another seed) replays the same future
    other = VecEnv(map_name, 9, seed=99, autoreset=False)
    other.reset()
    for k in (0, 1, T // 3, T - 1):
        other.load_state(states[k])
        for t in range(k, T):
            a = other._avail.argmax(-1)  # the other battles do anything available
            a[0] = acts[t]
            rec = other.step(a)
            got = other.save_state(0)
            for f, v in states[t + 1].items():
                assert np.array_equal(got[f], v), (map_name, k, t, f)
        assert rec.terminated[0]


def test_restore_refuses_a_state_of_another_map():
    st = VecEnv("3m", 1, seed=0, autoreset=False)
    st.reset()
    env = VecEnv("2c_vs_64zg", 1, seed=0, autoreset=False)
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.load_state(st.save_state(0))


def test_episode_file_round_trip(episode_path, tiny_run):
    ep = load_episode(episode_path)
    T = ep.length
    a = ep.arrays
    assert a["pos"].shape[0] == T + 1 and a["q"].shape == (T, 2, 70) and a["avail"].shape == (T + 1, 2, 70)
    h = ep.header
    assert h["map"] == "2c_vs_64zg" and h["algorithm"] == "RES-QMIX" and h["version"] == VERSION
    assert h["checkpoint"]["digest"] and os.path.exists(h["checkpoint"]["path"])
    assert int(h["episode_key"]) > 0 and h["forced"] == []
    # per step: Qtot of the taken and greedy joint actions, the mixer's weights, credit, RES target
    for f, shape in (("qtot", (T,)), ("qtot_greedy", (T,)), ("w1", (T, 2, 8)), ("b1", (T, 8)), ("w2", (T, 8)),
                     ("v", (T,)), ("credit", (T, 2)), ("res", (T,)), ("reward", (T,))):
        assert a[f].shape == shape, f
    assert (a["w1"] >= 0).all() and (a["w2"] >= 0).all()
    # the joint landscape recomputed from the stored weights agrees with Qtot of the joint action taken
    for k in range(T):
        table = ep.joint_table(k)
        u0, u1 = a["actions"][k]
        assert table[u0, u1] == pytest.approx(float(a["qtot"][k]), abs=1e-4)
    # the same snapshot shape as live training: the panels' input
    snap = ep.snapshot(T // 2)
    assert snap["probe"]["q"].shape == (2, 70) and snap["world"]["pos"].shape == (66, 2)
    assert snap["cursor"] == T // 2 and len(snap["trace"]["qtot"]) == T
    # saving again gives the same arrays back
    copy = ep.save(os.path.join(os.path.dirname(episode_path), "copy.npz"))
    again = load_episode(copy)
    assert again.header["episode_key"] == h["episode_key"]
    for f in a:
        assert np.array_equal(again.arrays[f], a[f]), f


def test_markers_name_the_events(episode_path):
    ep = load_episode(episode_path)
    marks = dict((label, k) for k, label in ep.markers())
    alive = ep.arrays["alive"]
    death = int(np.flatnonzero(~alive[:, 0])[0])
    assert marks["agent 0 dies"] == death
    assert any(label.startswith("largest |Qtot - return|") for label in marks)
    assert "an agent first damaged" in marks and marks["an agent first damaged"] <= death


def test_fork_with_the_recorded_action_reproduces_the_episode(episode_path):
    ep = load_episode(episode_path)
    k = ep.length // 2
    r = fork(ep, k, 0, int(ep.arrays["actions"][k, 0]), episodes=3, seed=5)
    b = r.baseline_episode
    assert b.length == ep.length
    for f in ("pos", "health", "shield", "alive", "actions", "reward", "tick", "fire_tick"):
        assert np.array_equal(b.arrays[f], ep.arrays[f]), f
    # the network values agree to float rounding (3 battles in one batch instead of 1)
    np.testing.assert_allclose(b.arrays["q"], ep.arrays["q"], atol=1e-5)
    # the same action forced: the fork and the baseline are the same continuations
    assert np.array_equal(r.fork.returns, r.baseline.returns)
    assert r.baseline.returns[0] == pytest.approx(float(ep.arrays["reward"].astype(np.float64).sum()), abs=1e-4)


def test_fork_with_another_action_changes_the_battle(episode_path):
    ep = load_episode(episode_path)
    a = ep.arrays
    k = 2
    rec = int(a["actions"][k, 0])
    other = next(int(x) for x in np.flatnonzero(a["avail"][k, 0]) if x != rec)
    r = fork(ep, k, 0, other, episodes=4, seed=1)
    f = r.fork_episode
    assert f.arrays["actions"][k, 0] == other and f.arrays["forced"][k, 0]
    assert f.header["forced"] == [[k, 0, other]]
    assert np.array_equal(f.arrays["pos"][: k + 1], a["pos"][: k + 1])  # the past is the recorded one
    assert not np.array_equal(f.arrays["pos"][k + 1], a["pos"][k + 1])  # the forced move shows at once
    assert "forced action" in r.table() and "| recorded action" in r.table()
    assert len(r.fork.won) == len(r.baseline.won) == 4


def test_fork_rejects_bad_requests(episode_path):
    ep = load_episode(episode_path)
    with pytest.raises(ValueError, match="--step"):
        fork(ep, ep.length, 0, 1)
    with pytest.raises(ValueError, match="--agent"):
        fork(ep, 0, 5, 1)
    unavailable = int(np.flatnonzero(~ep.arrays["avail"][0, 0])[0])
    with pytest.raises(ValueError, match="cannot take action"):
        fork(ep, 0, 0, unavailable)


def _rewrite_header(src, dst, **changes):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    h = json.loads(arrays["header"].tobytes().decode())
    h.update(changes)
    arrays["header"] = np.frombuffer(json.dumps(h).encode(), dtype=np.uint8)
    np.savez_compressed(dst, **arrays)
    return dst


def test_bad_episode_files_name_the_file(episode_path, tmp_path):
    trunc = tmp_path / "truncated.npz"
    data = open(episode_path, "rb").read()
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(EpisodeFileError, match=r"truncated.npz is not a readable episode file"):
        load_episode(trunc)
    with pytest.raises(EpisodeFileError, match="format version 99"):
        load_episode(_rewrite_header(episode_path, tmp_path / "v99.npz", version=99))
    with pytest.raises(EpisodeFileError, match="map 'no_such_map'"):
        load_episode(_rewrite_header(episode_path, tmp_path / "map.npz", map="no_such_map"))
    with pytest.raises(EpisodeFileError, match="does not exist"):
        load_episode(tmp_path / "missing.npz")
    not_ours = tmp_path / "other.npz"
    np.savez(not_ours, x=np.zeros(3))
    with pytest.raises(EpisodeFileError, match="not a qmix-workbench episode file"):
        load_episode(not_ours)
    lone = tmp_path / "lone.npz"
    with open(lone, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(EpisodeFileError, match="lone.npz is not a readable episode file"):
        load_episode(lone)
    with np.load(episode_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["q"] = arrays["q"][:-1]
    np.savez_compressed(tmp_path / "short_q.npz", **arrays)
    with pytest.raises(EpisodeFileError, match="short_q.npz is inconsistent: q has shape"):
        load_episode(tmp_path / "short_q.npz")


def test_replay_works_without_the_checkpoint_but_fork_says_it_needs_the_weights(episode_path, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    ck = run / "checkpoints" / "latest.pt"
    moved = _rewrite_header(episode_path, tmp_path / "ep.npz", checkpoint={"path": str(ck), "digest": None})
    assert fork(load_episode(moved), 1, 0, "greedy", episodes=1).fork.won.shape == (1,)
    shutil.rmtree(run / "checkpoints")
    ep = load_episode(moved)
    ep.snapshot(ep.length)  # replay still works
    with pytest.raises(EpisodeFileError, match="forking needs the policy's weights.*no longer exists"):
        fork(ep, 1, 0, "greedy", episodes=1)


def test_an_interrupted_save_leaves_the_earlier_file_intact(episode_path, tmp_path, monkeypatch):
    ep = load_episode(episode_path)
    target = tmp_path / "ep.npz"
    ep.save(target)
    before = target.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError):
        ep.save(target)
    assert target.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_record_command_and_fork_command(tiny_run, tmp_path, capsys):
    from workbench.cli import main as cli

    out = tmp_path / "eps"
    assert cli(["record", tiny_run, "--episodes", "2", "--out", str(out), "--seed", "4"]) == 0
    files = sorted(out.glob("*.npz"))
    assert len(files) == 2
    assert load_episode(files[0]).header["source"] == "record"
    capsys.readouterr()
    assert cli(["fork", str(files[0]), "--step", "1", "--agent", "1", "--action", "greedy", "--episodes", "2",
                "--out", str(tmp_path / "fork.npz")]) == 0
    text = capsys.readouterr().out
    assert "| recorded action" in text and "win rate" in text
    assert load_episode(tmp_path / "fork.npz").header["source"] == "fork"
    # outputs never replace inputs; earlier outputs only with --force
    before = files[0].read_bytes()
    fork_args = ["fork", str(files[0]), "--step", "1", "--agent", "1", "--action", "greedy", "--episodes", "1"]
    assert cli(fork_args + ["--out", str(files[0]), "--force"]) == 2
    assert "is the input" in capsys.readouterr().err and files[0].read_bytes() == before
    assert cli(fork_args + ["--out", str(tmp_path / "fork.npz")]) == 2
    assert "fork.npz: exists; add --force" in capsys.readouterr().err
    assert cli(["export", str(files[0]), "--gif", str(files[0]), "--force"]) == 2
    assert "is the input" in capsys.readouterr().err and files[0].read_bytes() == before
    # recordings are named by what played them and the seed: another seed or checkpoint never replaces them
    assert [f.name for f in files] == ["latest_s4_00000.npz", "latest_s4_00001.npz"]
    assert cli(["record", tiny_run, "--episodes", "1", "--out", str(out), "--seed", "4"]) == 2
    assert "latest_s4_00000.npz exists" in capsys.readouterr().err and files[0].read_bytes() == before
    assert cli(["record", tiny_run, "--episodes", "1", "--out", str(out), "--seed", "5"]) == 0
    assert len(list(out.glob("*.npz"))) == 3
    assert cli(["fork", str(files[0]), "--step", "1", "--agent", "1", "--action", "jump"]) == 2
    assert 'expected an action index or "greedy"' in capsys.readouterr().err
    assert cli(["replay", str(tmp_path / "nothing.npz")]) == 2


def test_training_records_env0_at_an_interval_with_its_weights(tmp_path):
    from conftest import TINY_2C
    from models.config import load_config
    from models.files.loading import episode_policy
    from models.training.train import train

    cfg = load_config("qmix_2c_vs_64zg", TINY_2C + ["run.learner_process=false", "run.t_max=150",
                                                     "run.record_interval=60"])
    s = train(cfg, run_dir=tmp_path / "run", log=lambda *a: None)
    files = sorted((tmp_path / "run" / "episodes").glob("train_t*.npz"))
    assert len(files) >= 2  # t = 0 and at least one more interval
    ep = load_episode(files[0])
    assert ep.header["source"] == "train" and ep.header["weights"] == "embedded" and ep.header["t_env"] == 0
    assert ep.header["epsilon"] == pytest.approx(1.0)
    assert ep.header["episode_index"] == 0
    # the embedded weights are the ones that played (not the ones the round's update made of them): from the
    # stored GRU state they give the recorded Qi again, and a fork needs no checkpoint
    cfg2, agent, mixer = episode_policy(ep)
    assert cfg2.algo.mixer == "qmix" and s["t_env"] >= 150
    k = ep.length // 2
    r = fork(ep, k, 0, int(ep.arrays["actions"][k, 0]), episodes=1)
    np.testing.assert_allclose(r.baseline_episode.arrays["q"][k], ep.arrays["q"][k], atol=1e-5)
    np.testing.assert_allclose(r.baseline_episode.arrays["qtot"][k], ep.arrays["qtot"][k], atol=1e-5)
    assert np.array_equal(r.baseline_episode.arrays["pos"][: k + 2], ep.arrays["pos"][: k + 2])
    # a fork of it keeps the weights, so it can be forked again
    again = fork(r.fork_episode, k, 1, "greedy", episodes=1)
    assert again.fork_episode.header["weights"] == "embedded"


def test_watch_keeps_a_ring_of_the_last_episodes(tiny_run, tmp_path):
    from models.training.callbacks import Callbacks
    from models.play.watch import watch

    got = []

    class CB(Callbacks):
        def on_recorded(self, path):
            got.append(path)

    watch(tiny_run, CB(), seed=2, max_episodes=3, record=str(tmp_path), keep=2)
    assert len(got) == 3
    kept = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert kept == ["watch_s2_00001.npz", "watch_s2_00002.npz"]
    assert load_episode(tmp_path / kept[-1]).header["source"] == "watch"
    # a fork the user saved beside one is not the ring's; a second session goes on numbering, pruning its oldest
    shutil.copy(tmp_path / kept[0], tmp_path / "watch_s2_00001_fork_s3_a0_2.npz")
    watch(tiny_run, CB(), seed=2, max_episodes=1, record=str(tmp_path), keep=2)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [
        "watch_s2_00001_fork_s3_a0_2.npz", "watch_s2_00002.npz", "watch_s2_00003.npz"]
    assert os.path.exists(got[-1])


def test_a_run_directory_moved_with_its_episodes_still_forks(episode_path, tiny_run, tmp_path):
    """An episode under RUN/episodes/ names RUN/checkpoints/C.pt by its absolute path: moved elsewhere, the run's
    episodes find the same checkpoint (same digest) under the directory's new name."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "episodes").mkdir(exist_ok=True)
    ck = run / "checkpoints" / "latest.pt"
    _rewrite_header(episode_path, run / "episodes" / "ep.npz", checkpoint={"path": str(ck), "digest": None})
    moved = tmp_path / "moved"
    shutil.move(str(run), str(moved))
    ep = load_episode(moved / "episodes" / "ep.npz")
    assert fork(ep, 1, 0, "greedy", episodes=1).fork.won.shape == (1,)
