"""Action masks and reward scaling checked against the world's own arrays."""
import numpy as np

from sims import StarCraft2Env, VecEnv
from sims.battle import SHOOT_RANGE


def _random_actions(rng, avail):
    return (rng.random(avail.shape) * avail).argmax(-1)


def test_attack_available_exactly_within_six_of_a_live_enemy():
    env = VecEnv("2c_vs_64zg", 8, seed=2)
    rec = env.reset()
    rng = np.random.default_rng(0)
    w = env.world
    n = env.n_agents
    checked = 0
    for _ in range(60):
        d = np.linalg.norm(w.pos[:, :n, None] - w.pos[:, None, n:], axis=-1)
        expect = w.alive[:, :n, None] & w.alive[:, None, n:] & (d <= SHOOT_RANGE)
        assert np.array_equal(rec.avail[:, :, 6:], expect)
        checked += expect.sum()
        rec = env.step(_random_actions(rng, rec.avail))
    assert checked > 100  # the test saw attacks become available


def test_dead_agent_can_only_noop_and_sees_zeros():
    env = StarCraft2Env(map_name="2c_vs_64zg", seed=0)
    env.reset()
    w = env.world
    w.health[0, 1] = 0.0
    w.alive[0, 1] = False
    env._cache = None
    avail = env.get_avail_agent_actions(1)
    assert avail == [1] + [0] * 69
    assert not env.get_obs_agent(1).any()
    reward, terminated, info = env.step([1, 0])
    assert info["dead_allies"] == 1


def test_reward_is_damage_plus_kills_scaled_by_154():
    env = VecEnv("2c_vs_64zg", 16, seed=5)
    rec = env.reset()
    rng = np.random.default_rng(1)
    w, n = env.world, env.n_agents
    prev = (w.health + w.shield)[:, n:].copy()
    alive_prev = w.alive[:, n:].copy()
    saw_kill = False
    for _ in range(80):
        rec = env.step(_random_actions(rng, rec.avail))
        if rec.terminated.any():  # a reset mixes episodes; restart the bookkeeping
            prev = (w.health + w.shield)[:, n:].copy()
            alive_prev = w.alive[:, n:].copy()
            continue
        now = (w.health + w.shield)[:, n:]
        kills = alive_prev & ~w.alive[:, n:]
        saw_kill |= kills.any()
        raw = np.where(kills, prev, np.where(alive_prev, prev - now, 0)).sum(1) + 10 * kills.sum(1)
        np.testing.assert_allclose(rec.reward, np.abs(raw) / 154.0, rtol=1e-9, atol=1e-12)
        prev, alive_prev = now.copy(), w.alive[:, n:].copy()
    assert saw_kill


def test_a_full_win_earns_twenty():
    # marines do not regenerate, so a won 8m episode returns exactly 20 (spec 6)
    env = VecEnv("8m", 64, seed=0, heuristic_ai=True)
    rec = env.reset()
    wins = []
    for _ in range(400):
        rec = env.step(np.zeros((64, 8), dtype=np.int64))
        wins += list(rec.episode_return[rec.won])
        if len(wins) >= 3:
            break
    assert len(wins) >= 3
    np.testing.assert_allclose(wins, 20.0, rtol=1e-9)
