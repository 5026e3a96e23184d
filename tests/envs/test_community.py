"""Energy community: PettingZoo and gymnasium APIs, vectorised core, clearing rule, community charges, optimum."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import parallel_api_test

from evosparse.envs.community import CommunityConfig, EnergyCommunityEnv, EnergyCommunityParallelEnv
from evosparse.envs.controllers import make_controller, run_episode
from evosparse.envs.metrics import episode_metrics
from evosparse.envs.optimal import community_optimum

DAYS = dict(episode_hours=72, start_hour=24 * 150)


def test_parallel_api_and_check_env():
    parallel_api_test(EnergyCommunityParallelEnv(n_buildings=5, **DAYS), num_cycles=200)
    check_env(EnergyCommunityEnv(n_buildings=5, **DAYS), skip_render_check=True)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 1000),
    p2p=st.booleans(),
    actions=st.lists(st.lists(st.floats(-3, 3, allow_nan=False), min_size=6, max_size=6), min_size=12, max_size=12),
)
def test_batteries_stay_in_bounds_and_charges_add_up(seed, p2p, actions):
    env = EnergyCommunityEnv(n_buildings=6, peer_to_peer=p2p, **DAYS)
    env.reset(seed=seed)
    config = env.config
    for action in actions:
        load, pv = env.episode["load"][env._t], env.episode["pv"][env._t]
        price, export_price = env.episode["price"][env._t], env.episode["export_price"][env._t]
        _, rewards, _, info = env.step_arrays(np.array(action))
        assert np.all((info["soc"] >= 0) & (info["soc"] <= config.battery_kwh))
        np.testing.assert_allclose(info["net"], load - pv + info["battery"], atol=1e-12)
        net = info["net"].sum()
        # Whatever the clearing rule, the community's energy bill is bounded by trading everything with the grid
        # (no P2P) and by netting everything first (full P2P); P2P bills equal the netted one exactly.
        netted = max(net, 0) * price - max(-net, 0) * export_price
        alone = (np.maximum(info["net"], 0) * price - np.maximum(-info["net"], 0) * export_price).sum()
        energy = env.log["cost"][env._t - 1]
        assert energy == pytest.approx(netted if p2p else alone, abs=1e-9)
        assert -rewards.sum() >= energy - 1e-9  # community charges only add
    assert env.clipped_actions == sum(abs(a) > 1 for row in actions for a in row)


def test_peak_charge_is_paid_once_for_the_episode_peak():
    env = EnergyCommunityEnv(n_buildings=4, overload_penalty=0.0, peak_price=1.0, **DAYS)
    log = run_episode(env, make_controller("none"), seed=0)
    charges = -log["reward"].sum() - log["cost"].sum()
    assert charges == pytest.approx(max(log["grid_import"].max(), 0.0), rel=1e-9)


def test_agents_see_and_pay_the_same_as_the_centralised_view():
    parallel = EnergyCommunityParallelEnv(n_buildings=7, **DAYS)
    central = EnergyCommunityEnv(n_buildings=7, **DAYS)
    observations, _ = parallel.reset(seed=4)
    flat, _ = central.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        actions = rng.uniform(-1, 1, 7).astype(np.float32)
        observations, rewards, _, _, _ = parallel.step({f"building_{i}": actions[i : i + 1] for i in range(7)})
        flat, reward, _, _, _ = central.step(actions)
        np.testing.assert_array_equal(np.concatenate([observations[f"building_{i}"] for i in range(7)]), flat)
        assert sum(rewards.values()) == pytest.approx(reward, rel=1e-12)


def test_a_thousand_agents_step_vectorised():
    env = EnergyCommunityParallelEnv(n_buildings=1000, episode_hours=24)
    observations, _ = env.reset(seed=0)
    assert len(observations) == 1000
    actions = {agent: np.array([0.5], np.float32) for agent in env.agents}
    _, rewards, _, truncations, _ = env.step(actions)
    assert len(rewards) == 1000 and not any(truncations.values())


def test_nan_and_missing_actions_raise():
    env = EnergyCommunityParallelEnv(n_buildings=3, **DAYS)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing"):
        env.step({"building_0": np.zeros(1)})
    with pytest.raises(ValueError, match="NaN"):
        env.step({f"building_{i}": np.array([np.nan]) for i in range(3)})


@pytest.mark.parametrize("p2p", [False, True])
def test_optimum_bounds_the_controllers_and_replays_to_its_cost(p2p):
    env = EnergyCommunityEnv(n_buildings=6, peer_to_peer=p2p, **DAYS)
    env.reset(seed=2)
    plan = community_optimum(env)
    for name in ("none", "rule", "random"):
        cost = episode_metrics(run_episode(env, make_controller(name, seed=3), seed=2))["total_cost"]
        assert plan.objective <= cost + 1e-6, name
    replay = episode_metrics(run_episode(env, make_controller("optimal"), seed=2))["total_cost"]
    assert replay == pytest.approx(plan.objective, rel=1e-6)


def test_config_errors():
    with pytest.raises(ValueError, match=r"n_buildings must be an integer in \[1, 100000\], got 0"):
        CommunityConfig(n_buildings=0)
    with pytest.raises(ValueError, match=r"pv_kw_high must be >= pv_kw_low \(3.0\), got 1.0"):
        CommunityConfig(pv_kw_low=3.0, pv_kw_high=1.0)


def test_an_episode_resumes_exactly_from_its_json_state(tmp_path):
    """get_resume_state / set_resume_state (what a residual agent's shadow and an exact resume need)."""
    from evosparse.io.serialize import load_json, save_json

    env = EnergyCommunityEnv(n_buildings=4, episode_hours=48)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(17):
        env.step(rng.uniform(-1, 1, 4))
    # Through a file as a checkpoint writes it (the writer refuses numpy scalars: plain JSON data only)
    save_json(tmp_path / "state.json", env.get_resume_state(), format="test")
    state = load_json(tmp_path / "state.json", format="test")
    other = EnergyCommunityEnv(n_buildings=4, episode_hours=48)
    other.reset(seed=99)  # another episode, replaced by the saved one
    other.set_resume_state(state)
    np.testing.assert_array_equal(other._observation_matrix(), env._observation_matrix())
    for _ in range(31):
        action = rng.uniform(-1.2, 1.2, 4)
        first, second = env.step(action), other.step(action)
        np.testing.assert_array_equal(first[0], second[0])
        assert first[1:4] == second[1:4]
    for name in env.log:
        np.testing.assert_array_equal(other.log[name], env.log[name])
    np.testing.assert_array_equal(other.soc_log, env.soc_log)
    assert other.clipped_actions == env.clipped_actions > 0
    fresh = EnergyCommunityEnv(n_buildings=4, episode_hours=48)
    fresh.set_resume_state(EnergyCommunityEnv(n_buildings=4).get_resume_state())  # no episode yet: nothing to do
    assert fresh.episode is None


def test_a_residual_agent_learns_relative_to_the_community_rule():
    """With relative rewards, a correction of 0 plays the rule and earns exactly 0; others earn the difference."""
    from evosparse.envs.residual import ResidualAction

    env = ResidualAction(EnergyCommunityEnv(n_buildings=3, episode_hours=48), relative_reward=True)
    alone = run_episode(EnergyCommunityEnv(n_buildings=3, episode_hours=48), make_controller("rule"), seed=4)
    for correction in (np.zeros(3), np.full(3, 0.5)):
        env.reset(seed=4)
        rewards, done = [], False
        while not done:
            _, reward, terminated, truncated, _ = env.step(correction)
            rewards.append(reward)
            done = terminated or truncated
        np.testing.assert_array_equal(env.shadow.log["reward"], alone["reward"])
        np.testing.assert_allclose(rewards, env.unwrapped.log["reward"] - alone["reward"], rtol=0, atol=1e-12)
        if not correction.any():
            assert not np.any(rewards)
    assert env.unwrapped.log["reward"].sum() != alone["reward"].sum()
