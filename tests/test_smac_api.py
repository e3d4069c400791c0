"""SMAC's API and numbers (spec sections 4-7) on the StarCraft2Env face."""
import numpy as np
import pytest

from sims import StarCraft2Env, list_scenarios

SIZES = {  # map: (n_actions, obs, state, max_reward), spec 5.3
    "3m": (9, 30, 48, 365), "8m": (14, 80, 168, 640), "5m_vs_6m": (12, 55, 98, 530),
    "27m_vs_30m": (36, 285, 1170, 1850), "MMM": (16, 160, 290, 1015), "2s3z": (11, 80, 120, 1020),
    "3s5z": (14, 128, 216, 1510), "2c_vs_64zg": (70, 332, 342, 3080),
}


def test_2c_vs_64zg_env_info_matches_smac():
    env = StarCraft2Env(map_name="2c_vs_64zg")
    info = env.get_env_info()
    assert info == {"state_shape": 342, "obs_shape": 332, "n_actions": 70, "n_agents": 2, "episode_limit": 400,
                    "agent_features": ["health", "energy/cooldown", "rel_x", "rel_y", "shield"],
                    "enemy_features": ["health", "rel_x", "rel_y"]}
    obs, state = env.reset()
    assert len(obs) == 2 and all(o.shape == (332,) and o.dtype == np.float32 for o in obs)
    assert state.shape == (342,) and state.dtype == np.float32
    assert env.max_reward == 3080


@pytest.mark.parametrize("name", sorted(SIZES))
def test_sizes_of_other_maps(name):
    env = StarCraft2Env(map_name=name)
    a, o, s, mr = SIZES[name]
    assert (env.get_total_actions(), env.get_obs_size(), env.get_state_size(), env.max_reward) == (a, o, s, mr)
    obs, state = env.reset()
    assert obs[0].shape == (o,) and state.shape == (s,)


def test_required_maps_are_listed():
    assert {"3m", "8m", "5m_vs_6m", "2s3z", "3s5z", "MMM", "27m_vs_30m", "2c_vs_64zg"} <= set(list_scenarios())


def test_smac_readme_example_runs_with_only_the_import_changed(capsys):
    # SMAC README "Code Examples", verbatim except the import line (spec 7.1)
    from sims import StarCraft2Env
    import numpy as np

    def main():
        env = StarCraft2Env(map_name="8m")
        env_info = env.get_env_info()

        n_actions = env_info["n_actions"]
        n_agents = env_info["n_agents"]

        n_episodes = 10

        for e in range(n_episodes):
            env.reset()
            terminated = False
            episode_reward = 0

            while not terminated:
                obs = env.get_obs()
                state = env.get_state()
                # env.render()  # Uncomment for rendering

                actions = []
                for agent_id in range(n_agents):
                    avail_actions = env.get_avail_agent_actions(agent_id)
                    avail_actions_ind = np.nonzero(avail_actions)[0]
                    action = np.random.choice(avail_actions_ind)
                    actions.append(action)

                reward, terminated, _ = env.step(actions)
                episode_reward += reward

            print("Total reward in episode {} = {}".format(e, episode_reward))

        env.close()

    main()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 10 and all(l.startswith("Total reward in episode") for l in lines)


def test_step_returns_smac_triple_and_stats():
    env = StarCraft2Env(map_name="3m", seed=1)
    env.reset()
    rng = np.random.default_rng(0)
    episodes = 0
    while episodes < 3:
        acts = [rng.choice(np.flatnonzero(env.get_avail_agent_actions(i))) for i in range(env.n_agents)]
        reward, terminated, info = env.step(acts)
        assert isinstance(reward, float) and isinstance(terminated, bool)
        assert set(info) >= {"battle_won", "dead_allies", "dead_enemies"}
        if terminated:
            episodes += 1
            env.reset()
    st = env.get_stats()
    assert st["battles_game"] == 3 and set(st) == {"battles_won", "battles_game", "battles_draw", "win_rate",
                                                    "timeouts", "restarts"}


def test_unavailable_action_raises_naming_agent_action_and_available():
    env = StarCraft2Env(map_name="2c_vs_64zg", seed=0)
    env.reset()
    with pytest.raises(ValueError) as e:
        env.step([0, 1])  # no-op is not available to a living agent
    msg = str(e.value)
    assert "agent 0" in msg and "action 0" in msg and "available actions: [1, 2, 3" in msg


def test_timeout_terminates_without_a_win():
    env = StarCraft2Env(map_name="3m", seed=0)
    env.reset()
    steps = 0
    terminated = False
    while not terminated:
        avail = env.get_avail_actions()
        # run away west (or stop): nobody fights, the episode must end by the time limit
        acts = [5 if a[5] else 1 for a in avail]
        _, terminated, info = env.step(acts)
        steps += 1
    assert info["battle_won"] is False
    # it ended by the time limit (not by a fight), and counts as a timeout
    assert steps == env.episode_limit
    assert env.get_stats()["timeouts"] == 1
