"""The episode buffer stores episodes at their real length and draws the batches a padded buffer draws;
the learning schedule (replay ratio, target refresh) counts episodes, whatever the number of battles per round."""
import numpy as np
import pytest
import torch

from models.core.buffer import EpisodeBuffer, buffer_nbytes, step_nbytes
from models.files.checkpoint import load_checkpoint, save_checkpoint
from models.config import ConfigError, load_config
from models.training.learner_host import LearnerCore
from models.training.train import Trainer

DIMS = dict(n_agents=2, obs_dim=5, state_dim=7, n_actions=4)


class PaddedBuffer:
    """The reference: every episode in a slot padded to the episode limit (the buffer of earlier versions,
    with the rows past an episode's end zeroed so that batches compare whole)."""

    def __init__(self, capacity, T, n_agents, obs_dim, state_dim, n_actions):
        C = capacity
        self.capacity, self.T = C, T
        self.obs = np.zeros((C, T + 1, n_agents, obs_dim), np.float16)
        self.state = np.zeros((C, T + 1, state_dim), np.float16)
        self.avail = np.zeros((C, T + 1, n_agents, n_actions), bool)
        self.actions = np.zeros((C, T, n_agents), np.int16)
        self.reward = np.zeros((C, T), np.float32)
        self.terminal = np.zeros((C, T), bool)
        self.filled = np.zeros((C, T), bool)
        self.mc_return = np.zeros((C, T), np.float32)
        self.length = np.zeros(C, np.int32)
        self.size = self.next = 0

    def add(self, batch):
        for b in range(len(batch["length"])):
            i, L = self.next, int(batch["length"][b])
            for name in ("obs", "state", "avail"):
                getattr(self, name)[i] = 0
                getattr(self, name)[i, :L + 1] = batch[name][b, :L + 1]
            for name in ("actions", "reward", "terminal", "filled", "mc_return"):
                getattr(self, name)[i] = 0
                getattr(self, name)[i, :L] = batch[name][b, :L]
            self.length[i] = L
            self.next = (self.next + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size, rng):
        idx = np.sort(rng.choice(self.size, size=batch_size, replace=False))
        T = int(self.length[idx].max())
        return {"obs": self.obs[idx, :T + 1].astype(np.float32), "state": self.state[idx, :T + 1].astype(np.float32),
                "avail": self.avail[idx, :T + 1], "actions": self.actions[idx, :T].astype(np.int64),
                "reward": self.reward[idx, :T], "terminal": self.terminal[idx, :T].astype(np.float32),
                "filled": self.filled[idx, :T].astype(np.float32), "mc_return": self.mc_return[idx, :T]}


def make_round(rng, lengths, T, n_agents=2, obs_dim=5, state_dim=7, n_actions=4):
    B, Tm = len(lengths), int(max(lengths))
    lengths = np.asarray(lengths)
    return {"obs": rng.standard_normal((B, Tm + 1, n_agents, obs_dim)).astype(np.float16),
            "state": rng.standard_normal((B, Tm + 1, state_dim)).astype(np.float16),
            "avail": rng.random((B, Tm + 1, n_agents, n_actions)) < 0.6,
            "actions": rng.integers(0, n_actions, (B, Tm, n_agents)).astype(np.int16),
            "reward": rng.random((B, Tm)).astype(np.float32),
            "terminal": rng.random((B, Tm)) < 0.2,
            "filled": np.arange(Tm)[None] < lengths[:, None],
            "mc_return": rng.random((B, Tm)).astype(np.float32), "length": lengths}


def assert_same_batch(packed: dict, padded: dict):
    assert set(packed) == set(padded)
    for k, v in padded.items():
        np.testing.assert_array_equal(packed[k].numpy(), v, err_msg=k)


def test_packed_buffer_draws_the_same_batches_as_a_padded_one():
    # short episodes first, then long ones (the arena grows), more episodes than slots (the ring wraps,
    # oldest first), one at the limit
    rng = np.random.default_rng(0)
    T, C = 60, 12
    packed, padded = EpisodeBuffer(C, T, **DIMS), PaddedBuffer(C, T, **DIMS)
    rows0 = packed.rows
    s1, s2 = np.random.default_rng(7), np.random.default_rng(7)
    for r in range(25):
        lengths = rng.integers(1, 6 if r < 8 else T + 1, size=3)
        if r == 20:
            lengths[0] = T
        rnd = make_round(rng, lengths, T)
        packed.add(rnd)
        padded.add(rnd)
        if packed.can_sample(4):
            for _ in range(3):
                assert_same_batch(packed.sample(4, s1), padded.sample(4, s2))
    assert packed.rows > rows0  # it grew with the episodes
    assert packed.episodes == packed.size == C and packed.episodes_added == 75
    assert packed.rows <= C * (T + 1)


def test_a_full_ring_overwrites_its_oldest_episode_in_place():
    rng = np.random.default_rng(1)
    buf = EpisodeBuffer(4, 10, **DIMS)
    for L in (3, 5, 2, 4, 6, 1):
        buf.add(make_round(rng, [L], 10))
    assert list(buf.order) == [2, 3, 0, 1] and list(buf.length) == [6, 1, 2, 4]


def test_a_5000_episode_buffer_of_2c_battles_fits_well_under_a_gibibyte():
    dims = dict(n_agents=2, obs_dim=332, state_dim=342, n_actions=70)  # 2c_vs_64zg
    at_40_steps = buffer_nbytes(5000, 400, **dims, steps_per_episode=41)
    padded = buffer_nbytes(5000, 400, **dims, steps_per_episode=401)
    assert at_40_steps < 0.5 * 2**30 and padded > 4 * 2**30
    assert buffer_nbytes(5000, 400, **dims) < 0.4 * 2**30  # what a new buffer takes before it grows
    buf = EpisodeBuffer(50, 400, **dims)
    rng = np.random.default_rng(2)
    for _ in range(10):
        buf.add(make_round(rng, [40] * 5, 400, **dims))
    # it grows by half again when it must: at most 1.5 x what the episodes need, never the padded 401 steps each
    assert buf.nbytes <= 1.5 * (50 * 41 + 1) * step_nbytes(**dims) and "MiB" in buf.describe()


def test_a_buffer_that_may_not_grow_drops_its_oldest_episodes_and_says_so():
    rng = np.random.default_rng(3)
    buf = EpisodeBuffer(8, 50, **DIMS, can_grow=lambda nbytes: False)
    for _ in range(6):
        buf.add(make_round(rng, [40, 45], 50))
    assert buf.capped and "stopped growing" in buf.capped
    assert 0 < buf.episodes < buf.size == 8
    held = set(np.flatnonzero(buf.length >= 0))
    assert held == set(buf.order)
    b = buf.sample(buf.episodes, np.random.default_rng(0))
    assert b["filled"].sum(1).min() >= 40  # only episodes it holds, at their lengths


def test_buffer_checkpoint_round_trip_and_an_earlier_versions_padded_buffer(tmp_path):
    rng = np.random.default_rng(4)
    T = 30
    buf, padded = EpisodeBuffer(6, T, **DIMS), PaddedBuffer(6, T, **DIMS)
    for _ in range(5):
        rnd = make_round(rng, rng.integers(1, T + 1, size=2), T)
        buf.add(rnd)
        padded.add(rnd)
    save_checkpoint(tmp_path / "b.pt", {"config": {}, "fingerprint": {}, "t_env": 0, "algorithm": "QMIX"},
                    {"learner": {}, "buffer": buf.state_dict()})
    again = EpisodeBuffer(6, T, **DIMS)
    again.load_state_dict(load_checkpoint(tmp_path / "b.pt")[1]["buffer"])
    assert (again.size, again.next, again.episodes_added) == (buf.size, buf.next, buf.episodes_added)
    s1, s2 = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(3):
        assert_same_batch(again.sample(3, s1), padded.sample(3, s2))
    # the padded layout earlier versions saved (full ring: arrays of every slot, `next` the oldest)
    old = {k: torch.from_numpy(getattr(padded, k)) for k in ("obs", "state", "avail", "actions", "reward",
                                                              "terminal", "filled", "mc_return", "length")}
    old.update(size=padded.size, next=padded.next, episodes_added=10)
    from_old = EpisodeBuffer(6, T, **DIMS)
    from_old.load_state_dict(old)
    assert list(from_old.order) == list(again.order)
    s1, s2 = np.random.default_rng(5), np.random.default_rng(5)
    assert_same_batch(from_old.sample(4, s1), padded.sample(4, s2))


# ---- the schedule: replay ratio and target refresh count episodes ------------------------------------------

def _core(num_envs, extra=()):
    from conftest import TINY_2C

    cfg = load_config("qmix_2c_vs_64zg", TINY_2C + [f"env.num_envs={num_envs}", "learner.buffer_size=64",
                                                    "run.learner_process=false", *extra])
    import sims

    env = sims.make_vec_env("2c_vs_64zg", 1, seed=0)
    dims = {"obs_dim": env.obs_dim, "state_dim": env.state_dim, "n_agents": env.n_agents, "n_actions": env.n_actions,
            "episode_limit": env.episode_limit}
    from models.core.networks import build_networks

    agent, mixer = build_networks(cfg, dims, torch.device("cpu"))
    return LearnerCore(cfg, dims, torch.device("cpu"), agent, mixer), dims


def _feed(core, dims, num_envs, episodes, seed=0):
    """Rounds of `num_envs` random short episodes until `episodes` have been collected; per round:
    (episodes collected, updates taken, the target copies so far)."""
    rng = np.random.default_rng(seed)
    copies = []
    real_sync = core.learner.sync_targets

    def sync():
        copies.append(core.buffer.episodes_added)
        real_sync()
    core.learner.sync_targets = sync
    out = []
    while core.buffer.episodes_added < episodes:
        rnd = make_round(rng, rng.integers(2, 8, size=num_envs), dims["episode_limit"], dims["n_agents"],
                         dims["obs_dim"], dims["state_dim"], dims["n_actions"])
        ums = core.round(rnd)
        out.append((core.buffer.episodes_added, len(ums)))
    return out, copies


@pytest.mark.parametrize("num_envs", [1, 2, 4, 8])
def test_target_copies_and_updates_follow_episodes_whatever_the_battles_per_round(num_envs):
    core, dims = _core(num_envs, ["learner.target_update_episodes=8", "learner.replay_ratio=4",
                                  "learner.batch_size=4"])
    rounds, copies = _feed(core, dims, num_envs, 48)
    assert copies == [8, 16, 24, 32, 40, 48]  # every 8 episodes collected
    # 4 sampled per collected episode in batches of 4: an update per episode, from the round the buffer
    # first holds a batch
    first = next(e for e, _ in rounds if e >= 4)
    assert [n for e, n in rounds if e >= first] == [num_envs] * ((48 - first) // num_envs + 1)
    assert core.learner.updates == 48 - first + num_envs


def test_a_fractional_replay_ratio_carries_over_between_rounds():
    core, dims = _core(2, ["learner.replay_ratio=1", "learner.batch_size=4"])  # half an update per round
    rounds, _ = _feed(core, dims, 2, 20)
    taken = [n for e, n in rounds if e >= 4]
    assert taken == [0, 1] * (len(taken) // 2) + [0] * (len(taken) % 2)


def test_the_old_schedule_keys_are_refused_with_their_equivalents(tmp_path):
    with pytest.raises(ConfigError, match=r"learner.updates_per_round .* is learner.replay_ratio = 8"):
        load_config("qmix_2c_vs_64zg", ["learner.updates_per_round=4"])
    p = tmp_path / "old.toml"
    p.write_text("[env]\nnum_envs = 8\n[learner]\nbatch_size = 32\nupdates_per_round = 1\ntarget_update_interval = 50\n")
    with pytest.raises(ConfigError, match=r"old.toml: .*replay_ratio = 4.*target_update_episodes = 400"):
        load_config(str(p))


def test_a_checkpoint_of_an_earlier_version_resumes_with_the_exact_equivalents(tmp_path):
    from conftest import TINY_2C

    from models.training.train import train

    cfg = load_config("qmix_2c_vs_64zg", TINY_2C + ["run.learner_process=false", "run.t_max=100",
                                                    "run.record_interval=0", "run.record_first_win=false"])
    run = train(cfg, run_dir=tmp_path / "run", log=lambda *a: None)["run_dir"]
    ck = tmp_path / "run" / "checkpoints" / "latest.pt"
    meta, tensors = load_checkpoint(ck)
    # as an earlier version wrote it: the old keys, the old buffer layout, no target clock
    learner = meta["config"]["learner"]
    learner.pop("replay_ratio"), learner.pop("target_update_episodes")
    learner.update(updates_per_round=4, target_update_interval=6)  # 6 updates of 2 at 4 per episode
    tensors["learner"].pop("target_episodes"), tensors["learner"].pop("credit")
    buf = EpisodeBuffer(8, 400, 2, 332, 342, 70)
    buf.load_state_dict(tensors["buffer"])
    padded = {k: torch.from_numpy(np.stack([np.pad(getattr(buf, k)[buf.start[s]:buf.start[s] + buf.length[s] + 1],
                                                   [(0, 401 - buf.length[s] - 1)] + [(0, 0)] * (getattr(buf, k).ndim - 1))
                                            for s in range(buf.size)]))
              for k in buf.fields}
    padded["filled"] = torch.from_numpy(np.arange(401)[None] < buf.length[:buf.size, None])
    padded["length"] = torch.from_numpy(buf.length[:buf.size].copy())
    padded.update(size=buf.size, next=buf.next, episodes_added=buf.episodes_added)
    tensors["buffer"] = padded
    for k in ("path", "verified", "digest"):
        meta.pop(k)
    save_checkpoint(ck, meta, tensors)
    logs = []
    tr = Trainer(None, resume=run, log=logs.append, overrides=["run.t_max=400"])
    assert (tr.cfg.learner.replay_ratio, tr.cfg.learner.target_update_episodes) == (4.0, 3)
    assert any("earlier version" in m and "learner.replay_ratio = 4" in m and "target_update_episodes = 3" in m
               for m in logs)
    assert not any("without a replay buffer" in m for m in logs)
    tr.round()
    assert tr.updates > 0
    tr.close()
