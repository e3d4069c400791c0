"""The three faces: determinism, PettingZoo conformance, bad input, rendering."""
import json

import numpy as np
import pytest

import sims
from sims import DataError, StarCraft2Env, VecEnv, load_scenario


def _policy_stream(seed):
    return np.random.default_rng(seed)


def _smac_trajectory(seed, steps=200):
    env = StarCraft2Env(map_name="2c_vs_64zg", seed=seed)
    env.reset()
    rng = _policy_stream(99)
    out = []
    for _ in range(steps):
        avail = np.array(env.get_avail_actions(), bool)[None]
        acts = (rng.random(avail.shape) * avail).argmax(-1)[0]
        r, term, _ = env.step(acts)
        out.append((r, env.get_state().copy()))
        if term:
            env.reset()
    return out


def _vec_trajectory(seed, steps=200):
    env = VecEnv("2c_vs_64zg", 1, seed=seed)
    rec = env.reset()
    rng = _policy_stream(99)
    out = []
    for _ in range(steps):
        acts = (rng.random(rec.avail.shape) * rec.avail).argmax(-1)
        rec = env.step(acts)
        out.append((rec.reward[0], rec.state[0].copy()))
    return out


def _pz_trajectory(seed, steps=200):
    env = sims.parallel_env("2c_vs_64zg", seed=seed)
    obs, _ = env.reset()
    rng = _policy_stream(99)
    out = []
    for _ in range(steps):
        avail = np.array([obs[a]["action_mask"] for a in env.possible_agents], bool)[None]
        acts = (rng.random(avail.shape) * avail).argmax(-1)[0]
        obs, rew, term, trunc, _ = env.step({a: int(acts[i]) for i, a in enumerate(env.possible_agents)})
        out.append((rew["agent_0"], env.state().copy()))
        if not env.agents:
            obs, _ = env.reset()
    return out


def _same(a, b):
    return len(a) == len(b) and all(r1 == r2 and np.array_equal(s1, s2) for (r1, s1), (r2, s2) in zip(a, b))


@pytest.mark.parametrize("face", [_smac_trajectory, _vec_trajectory, _pz_trajectory])
def test_same_seed_same_200_step_trajectory(face):
    a, b = face(7), face(7)
    assert _same(a, b)
    assert not _same(a, face(8))  # and the seed matters (weapon delays)


def test_faces_agree_with_each_other():
    s, v, p = _smac_trajectory(3), _vec_trajectory(3), _pz_trajectory(3)
    # the VecEnv auto-resets inside the step, the others reset afterwards: compare rewards
    rs, rv, rp = ([r for r, _ in t] for t in (s, v, p))
    np.testing.assert_allclose(rs, rv)
    np.testing.assert_allclose(rs, rp)


def test_vec_env_record_fields_and_auto_reset():
    env = VecEnv("3m", 4, seed=0)
    rec = env.reset()
    assert rec.obs.shape == (4, 3, 30) and rec.state.shape == (4, 48) and rec.avail.shape == (4, 3, 9)
    rng = np.random.default_rng(0)
    lengths = []
    for _ in range(130):
        rec = env.step((rng.random(rec.avail.shape) * rec.avail).argmax(-1))
        for b in np.flatnonzero(rec.terminated):
            lengths.append(rec.episode_length[b])
            assert rec.reset[b] and not rec.obs[b].sum() == 0
            assert (env.battle.episode_steps[b]) == 0
    assert lengths and all(0 < L <= 60 for L in lengths)


def test_pettingzoo_parallel_api():
    from pettingzoo.test import parallel_api_test

    parallel_api_test(sims.parallel_env("2c_vs_64zg", seed=0), num_cycles=100)
    parallel_api_test(sims.parallel_env("MMM", seed=0), num_cycles=100)


def test_unknown_map_lists_known_maps():
    with pytest.raises(ValueError, match=r"unknown map 'nope'; known maps: .*2c_vs_64zg"):
        VecEnv("nope", 1)


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match="unknown option 'obs_everything'"):
        StarCraft2Env(map_name="3m", obs_everything=True)


def test_malformed_scenario_names_file_and_field(tmp_path):
    doc = json.loads((sims.scenario.SCENARIO_DIR / "3m.json").read_text())
    doc["allies"][0]["count"] = "three"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(DataError) as e:
        load_scenario(str(p))
    assert "bad.json" in str(e.value) and "allies[0].count" in str(e.value)
    doc["allies"][0] = {"type": "dragoon", "count": 3}
    p.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"allies\[0\]\.type.*dragoon"):
        load_scenario(str(p))
    p.write_text("{not json")
    with pytest.raises(DataError, match="bad.json.*not valid JSON"):
        load_scenario(str(p))


def test_malformed_unit_data_names_file_and_field(tmp_path):
    from sims.units import UNITS_FILE, load_unit_types

    doc = json.loads(UNITS_FILE.read_text())
    doc["units"]["zergling"]["speed"] = "fast"
    p = tmp_path / "units.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"units\.json: field 'units\.zergling\.speed': expected a number"):
        load_unit_types("lotv", p)
    doc["units"]["zergling"]["speed"] = 2.9
    doc["units"]["zergling"]["weapon"]["kind"] = "laser"
    p.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"units\.zergling\.weapon\.kind"):
        load_unit_types("lotv", p)
    with pytest.raises(ValueError, match="unknown stat profile 'hots'"):
        load_unit_types("hots")


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2,), dtype=np.int64), r"shape \(1, 2\)"),
    (np.zeros((1, 3), dtype=np.int64), r"shape \(1, 2\)"),
    (np.full((1, 2), 0.5), "must be integers"),
    (np.array([["a", "b"]]), "must be integers"),
    (np.array([[1, 99]]), "agent 1 .* action 99 is out of range"),
])
def test_bad_action_arrays_are_rejected_without_corrupting_state(bad, match):
    env = VecEnv("2c_vs_64zg", 1, seed=4)
    ref = VecEnv("2c_vs_64zg", 1, seed=4)
    rec, ref_rec = env.reset(), ref.reset()
    with pytest.raises(ValueError, match=match):
        env.step(bad)
    good = np.array([[1, 1]])
    a, b = env.step(good), ref.step(good)
    assert np.array_equal(a.state, b.state) and a.reward[0] == b.reward[0]


def _has_colour(frame, rgb):
    return bool((frame.reshape(-1, 3) == np.array(rgb, np.uint8)).all(1).any())


def test_render_draws_terrain_units_and_beams(tmp_path):
    from sims.render import Renderer

    BEAM, SPLASH = (255, 150, 40), (255, 220, 120)  # a colossus' beam and its splash line (sims/render.py)
    env = VecEnv("2c_vs_64zg", 1, seed=0)
    rec = env.reset()
    r = Renderer(env.battle.scenario)
    frame = r.frame(env.world, 0)
    assert not _has_colour(frame, BEAM) and not _has_colour(frame, SPLASH)  # nobody has fired yet
    volleys = quiet = 0
    for _ in range(12):
        att = rec.avail[0, :, 6:]
        acts = np.array([[6 + int(np.flatnonzero(att[i])[0]) if att[i].any() else 1 for i in range(2)]])
        rec = env.step(acts)
        frame = r.frame(env.world, 0)
        w = env.world
        fired = bool(((w.fire_tick[0, :2] >= w.tick[0] - 8) & w.alive[0, :2]).any())
        # the beam colours appear in a frame drawn right after a volley, and only then
        assert _has_colour(frame, BEAM) == fired and _has_colour(frame, SPLASH) == fired
        volleys += fired
        quiet += not fired
    assert volleys > 0 and quiet > 0  # both cases were drawn
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 50
    # a colossus is drawn in the team's blue at its position
    x, y = r.to_px(*env.world.pos[0, 0])
    patch = frame[int(y) - 6:int(y) + 6, int(x) - 6:int(x) + 6].reshape(-1, 3).astype(int)
    assert ((patch[:, 2] > 150) & (patch[:, 0] < 120)).any()
    r.save_png(frame, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000
