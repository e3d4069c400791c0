"""Fidelity of the 2c_vs_64zg re-creation: weapon numbers, terrain and path-finding."""
import numpy as np
import pytest

from sims import VecEnv, load_scenario
from sims.world import World


def _duel(profile):
    """One colossus shooting one zergling (the others removed); volleys until it dies."""
    w = World(load_scenario("2c_vs_64zg", profile=profile), 1, seed=0)
    n = 2
    target = n  # first zergling
    w.alive[0, n + 1:] = False
    w.health[0, n + 1:] = 0
    w.alive[0, 1] = False
    w.health[0, 1] = 0
    w.shield[0, 1] = 0
    w.pos[0, 0] = (16.0, 16.0)
    w.pos[0, target] = (16.0, 10.5)  # 5.5 away on the low ground: in range, below the cliff
    volleys = 0
    for _ in range(200):
        w.issue(np.array([[6 + 0, 0]]))
        before = w.fire_tick[0, 0]
        # the zergling must stay put to isolate the weapon numbers
        w.order_kind[0, target] = 0
        w.ai_kind = 0
        w.advance(8)
        w.pos[0, target] = (16.0, 10.5)
        if w.fire_tick[0, 0] != before:
            volleys += 1
        if not w.alive[0, target]:
            return volleys
    raise AssertionError("zergling never died")


def test_zergling_dies_to_two_lotv_volleys():
    assert _duel("lotv") == 2


def test_zergling_dies_to_one_liberty_volley():
    assert _duel("liberty") == 1


def test_line_splash_hits_units_along_the_perpendicular_only():
    w = World(load_scenario("2c_vs_64zg"), 1, seed=0)
    n = 2
    w.alive[0, 1] = False
    w.health[0, 1] = 0
    w.pos[0, 0] = (16.0, 16.0)
    # shot points straight down (south); the beam runs east-west through the target
    spots = {n: (16.0, 11.0), n + 1: (17.2, 11.0), n + 2: (14.8, 11.0), n + 3: (16.0, 10.2), n + 4: (18.0, 11.0)}
    w.alive[0, n:] = False
    for u, p in spots.items():
        w.alive[0, u] = True
        w.pos[0, u] = p
    w.ai_kind = 0
    w.order_kind[0, n:] = 0
    w.issue(np.array([[6, 0]]))
    w.advance(1)
    hit = {u: w.health[0, u] < 35 for u in spots}
    # 1.2 to the side: circle (r .375) overlaps the 1.4-long half-line; 0.8 behind does not; 2.0 aside does not
    assert hit == {n: True, n + 1: True, n + 2: True, n + 3: False, n + 4: False}
    assert w.health[0, n] == pytest.approx(35 - 30 + 0.2734 / 16)  # (10 + 5 light) x 2 beams, one tick of regen


def test_zerglings_go_around_the_cliff_band_and_up_a_ramp():
    env = VecEnv("2c_vs_64zg", 1, seed=0)
    env.reset()
    w, n = env.world, 2
    band = np.zeros((32, 32), bool)
    band[4:28, 12:14] = True
    reached = None
    used_ramp = np.zeros(64, bool)
    hurt = False
    rec = env.reset()
    for t in range(120):
        rec = env.step(np.where(rec.avail[:, :, 1], 1, 0))  # both colossi hold position on the plateau
        if rec.terminated[0]:
            break  # both colossi died: the zerglings did reach them
        hurt |= bool(w.shield[0, :n].min() < 150)  # at any step: shields regenerate
        p = w.pos[0, n:]
        cells = np.floor(p).astype(int)
        assert not band[cells[:, 0], cells[:, 1]].any(), "a zergling entered the cliff band"
        on_ramp = ((p[:, 0] < 7) | (p[:, 0] >= 25)) & (p[:, 1] >= 13) & (p[:, 1] < 18)
        used_ramp |= on_ramp & w.alive[0, n:]
        d = np.linalg.norm(p[:, None] - w.pos[0, None, :n], axis=-1).min(1)
        close = (d <= 1.475) & w.alive[0, n:]
        if close.any() and reached is None:
            reached = t
            assert used_ramp[close].all(), "a zergling reached the colossus without using a ramp"
    assert reached is not None and reached > 6  # straight across the band would take ~5 steps
    assert hurt  # they did attack (a colossus lost shields at some step)


def test_colossi_do_not_collide_with_zerglings_but_zerglings_push_each_other():
    w = World(load_scenario("2c_vs_64zg"), 1, seed=0)
    n = 2
    w.ai_kind = 0
    w.pos[0, 0] = (16.0, 16.0)
    w.pos[0, 1] = (20.0, 16.0)
    w.pos[0, n] = (16.0, 16.0)  # a zergling under the colossus
    w.pos[0, n + 1] = (16.2, 16.0)  # and another overlapping it
    w.advance(1)
    assert np.allclose(w.pos[0, 0], (16.0, 16.0))
    assert np.linalg.norm(w.pos[0, n] - w.pos[0, n + 1]) >= 0.75 - 1e-6


def test_random_play_never_wins_2c_vs_64zg():
    env = VecEnv("2c_vs_64zg", 32, seed=11)
    rec = env.reset()
    rng = np.random.default_rng(3)
    finished = 0
    for _ in range(420):
        rec = env.step((rng.random(rec.avail.shape) * rec.avail).argmax(-1))
        finished += rec.terminated.sum()
        assert not rec.won.any()
    assert finished >= 32


def test_enemy_medivac_heals_a_damaged_marine():
    w = World(load_scenario("MMM"), 1, seed=0)
    n = 10
    med = int(np.flatnonzero(w.heals[n:])[0]) + n
    marine = n + 2
    w.health[0, marine] = 20.0
    w.pos[0, med] = w.pos[0, marine] + (0.5, 0.0)
    for _ in range(4):
        w.advance(8)
    assert w.health[0, marine] > 20.0 + 4 * 0.5 * 9 * 0.9  # ~9 hp per game second
    assert w.energy[0, med] < 50.0 + 2 * 0.5625 * 2
