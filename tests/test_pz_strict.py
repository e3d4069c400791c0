"""The PettingZoo face checks actions as strictly as the SMAC face, with the same messages."""
import numpy as np
import pytest

import sims
from sims import StarCraft2Env


def _pz(seed=0):
    env = sims.parallel_env("2c_vs_64zg", seed=seed)
    env.reset()
    return env


def _smac_message(values):
    env = StarCraft2Env(map_name="2c_vs_64zg", seed=0)
    env.reset()
    with pytest.raises(ValueError) as e:
        env.step(values)
    return str(e.value)


def _pz_message(env, values):
    with pytest.raises(ValueError) as e:
        env.step(dict(zip(env.possible_agents, values)))
    return str(e.value)


def test_smac_face_rejects_a_fraction():
    assert "actions must be integers, got dtype float64" in _smac_message([1.5, 1])


@pytest.mark.filterwarnings("error")  # a ValueError with our message, not a numpy warning on the way
@pytest.mark.parametrize("bad", [1.7, 1.5, "1", None, object(), [1, 2], complex(1, 0), float("nan"), float("inf")],
                         ids=["1.7", "1.5", "str", "None", "object", "list", "complex", "nan", "inf"])
def test_non_integer_action_is_rejected_with_the_smac_faces_message(bad):
    env, ref = _pz(), _pz()
    msg = _pz_message(env, [bad, 1])
    assert "must be integers, got dtype" in msg
    if isinstance(bad, float):
        # the very text the SMAC face gives for 1.5
        assert msg == _smac_message([1.5, 1])
    else:
        assert msg == _smac_message([bad, 1])
    # nothing happened: the next valid step is the one a fresh env takes
    good = {a: 1 for a in env.possible_agents}
    o1, r1, *_ = env.step(good)
    o2, r2, *_ = ref.step(good)
    assert r1 == r2 and np.array_equal(env.state(), ref.state())
    assert all(np.array_equal(o1[a]["observation"], o2[a]["observation"]) for a in env.possible_agents)


@pytest.mark.parametrize("good", [1, 1.0, np.int64(1), np.int32(1), np.float32(1.0)],
                         ids=["int", "1.0", "np.int64", "np.int32", "np.float32"])
def test_whole_numbers_are_accepted(good):
    env, ref = _pz(), _pz()
    _, r1, *_ = env.step({a: good for a in env.possible_agents})
    _, r2, *_ = ref.step({a: 1 for a in ref.possible_agents})
    assert r1 == r2 and np.array_equal(env.state(), ref.state())


def test_unknown_agent_keys_are_named_with_the_expected_agents():
    env = _pz()
    with pytest.raises(ValueError) as e:
        env.step({"agent_0": 1, "agent_1": 1, "agent_7": 1, "colossus": 1})
    msg = str(e.value)
    assert "'agent_7'" in msg and "'colossus'" in msg
    assert "['agent_0', 'agent_1']" in msg
    env.step({"agent_0": 1, "agent_1": 1})  # and the env is still usable


def test_out_of_range_and_unavailable_actions_keep_the_smac_messages():
    env = _pz()
    assert _pz_message(env, [99, 1]) == _smac_message([99, 1])
    assert _pz_message(env, [0, 1]) == _smac_message([0, 1])


def test_pettingzoos_seed_and_api_tests_pass_with_the_strict_step():
    """PettingZoo's own tests sample random actions without a mask: the action space's sample() honours the
    agent's current mask (unavailable actions are still refused by step, as SMAC refuses them)."""
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    parallel_seed_test(lambda: sims.parallel_env("2c_vs_64zg"), num_cycles=60)
    parallel_api_test(sims.parallel_env("2c_vs_64zg", seed=0), num_cycles=60)
    env = _pz()
    space = env.action_space(env.agents[0])
    draws = {int(space.sample()) for _ in range(200)}
    assert draws <= set(np.flatnonzero(env._avail[0, 0]).tolist()) and len(draws) > 1
    assert "not available" in _pz_message(env, [int(np.flatnonzero(~env._avail[0, 0])[0]), 1])
