"""The residual task: an agent's action corrects the rule's (evosparse.envs.residual)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from evosparse.envs import RESIDUAL_ID, BuildingEnergyEnv, ResidualAction
from evosparse.envs.controllers import make_controller, run_episode

# A week of the held-out month, observing the past day's mean price (the benchmark's building agents do).
WEEK = {"split": "test", "random_start": False, "start_hour": 0, "episode_hours": 24 * 7, "price_memory_hours": 24}


def _play(env, correction, seed: int = 0) -> dict[str, np.ndarray]:
    env.reset(seed=seed)
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(correction)
        done = terminated or truncated
    return env.unwrapped.log


@pytest.mark.parametrize("base", ["rule", "none"])
def test_a_zero_correction_plays_the_base_controller_exactly(base):
    expected = run_episode(BuildingEnergyEnv(**WEEK), make_controller(base), seed=0)
    log = _play(ResidualAction(BuildingEnergyEnv(**WEEK), base=base, scale=0.5), np.zeros(4))
    for name in ("battery", "hvac", "ev", "appliance", "cost", "reward"):
        np.testing.assert_array_equal(log[name], expected[name], err_msg=name)
    assert log["reward"].sum() == expected["reward"].sum()


def test_the_agent_observes_the_base_action_and_corrects_it_within_the_bounds():
    env = ResidualAction(BuildingEnergyEnv(**WEEK), scale=0.4)
    observation, _ = env.reset(seed=0)
    inner = env.env.observation_space.shape[0]
    assert env.observation_space.shape == (inner + 4,) and observation in env.observation_space
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
    np.testing.assert_array_equal(observation[inner:], env.base_action.astype(np.float32))
    low, high = np.array([-1, -1, 0, 0]), np.ones(4)
    for correction in (np.ones(4), -np.ones(4), np.array([0.5, -0.5, 0.25, -0.25]), np.full(4, 7.0)):
        base = env.base_action.copy()
        expected = np.clip(base + 0.4 * np.clip(correction, -1, 1), low, high).astype(np.float32)
        np.testing.assert_array_equal(env.action(correction), expected)
        observation, _, _, _, info = env.step(correction)
        np.testing.assert_array_equal(info["base_action"], base)
        assert np.all(env.action(correction) >= low) and np.all(env.action(correction) <= high)
    assert env.unwrapped.clipped_actions == 0  # the wrapper clips: the environment never sees out-of-range


def test_a_zero_scale_leaves_a_device_to_the_base_controller():
    expected = run_episode(BuildingEnergyEnv(**WEEK), make_controller("rule"), seed=0)
    log = _play(ResidualAction(BuildingEnergyEnv(**WEEK), scale=[0.3, 0.3, 0.0, 0.0]), np.ones(4))
    assert not np.array_equal(log["battery"], expected["battery"])
    # The rule's EV and appliance decisions read prices, PV and load only, never the battery or the zone:
    # with a zero scale they stay the rule's whatever the battery and heat pump do.
    np.testing.assert_array_equal(log["ev"], expected["ev"])
    np.testing.assert_array_equal(log["appliance"], expected["appliance"])


def test_observations_without_the_base_action_and_the_gymnasium_id():
    env = ResidualAction(BuildingEnergyEnv(**WEEK), observe_base=False)
    assert env.observation_space == env.env.observation_space
    made = gym.make(RESIDUAL_ID, base_env="building", base="rule", scale=[0.2, 0.2, 0.0, 0.0], **WEEK)
    assert isinstance(made.unwrapped, BuildingEnergyEnv) and made.unwrapped.config.price_memory_hours == 24
    np.testing.assert_array_equal(made.get_wrapper_attr("scale"), [0.2, 0.2, 0.0, 0.0])
    log = _play(made, np.zeros(4))
    np.testing.assert_array_equal(
        log["reward"], run_episode(BuildingEnergyEnv(**WEEK), make_controller("rule"), seed=0)["reward"]
    )
    market = gym.make(RESIDUAL_ID, base_env="market", episode_hours=24)
    assert market.action_space.shape == (2,)


def test_the_correction_cost_is_the_agents_reward_only():
    plain, penalised = (
        ResidualAction(BuildingEnergyEnv(**WEEK)),
        ResidualAction(BuildingEnergyEnv(**WEEK), correction_cost=2.0),
    )
    plain.reset(seed=0)
    penalised.reset(seed=0)
    correction = np.array([0.5, -1.0, 0.0, 3.0])  # clipped to 1 before the penalty, as before the action
    _, reward, _, _, info = plain.step(correction)
    _, penalised_reward, _, _, penalised_info = penalised.step(correction)
    expected = 2.0 * float(np.sum((0.3 * np.array([0.5, -1.0, 0.0, 1.0])) ** 2))
    assert info["correction_cost"] == 0.0 and penalised_info["correction_cost"] == pytest.approx(expected, rel=1e-12)
    assert penalised_reward == pytest.approx(reward - expected, rel=1e-12)
    np.testing.assert_array_equal(penalised.unwrapped.log["reward"], plain.unwrapped.log["reward"])


def test_relative_rewards_are_the_difference_to_the_base_controller_on_the_same_episode():
    train = {**WEEK, "split": "train", "random_start": True}
    env = ResidualAction(BuildingEnergyEnv(**train), relative_reward=True)
    for correction, seed in ((np.zeros(4), 3), (np.array([1.0, -1.0, 0.0, 0.0]), 3), (np.array([0.5, 0.2, -1, -1]), 8)):
        env.reset(seed=seed)
        rewards, done = [], False
        while not done:
            _, reward, terminated, truncated, info = env.step(correction)
            rewards.append(reward)
            done = terminated or truncated
        alone = run_episode(BuildingEnergyEnv(**train), make_controller("rule"), seed=seed)["reward"]
        np.testing.assert_array_equal(env.shadow.log["reward"], alone)  # the shadow played the rule's episode
        np.testing.assert_allclose(rewards, env.unwrapped.log["reward"] - alone, rtol=0, atol=1e-12)
        if not correction.any():
            assert not np.any(rewards)  # playing the rule earns exactly 0
    assert env.unwrapped.log["reward"].sum() != alone.sum()
    with pytest.raises(ValueError, match="relative_reward needs an environment that can copy its episode"):
        ResidualAction(gym.make("evosparse/IntradayMarket-v0", episode_hours=24), relative_reward=True)


@pytest.mark.parametrize("relative_reward", [False, True])
def test_the_base_controller_memory_resumes_from_the_saved_observations(relative_reward):
    env = ResidualAction(BuildingEnergyEnv(**WEEK), relative_reward=relative_reward)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        env.step(rng.uniform(-1, 1, 4))
    saved, episode = env.get_resume_state(), env.unwrapped.get_resume_state()
    other = ResidualAction(BuildingEnergyEnv(**WEEK), relative_reward=relative_reward)
    other.reset(seed=5)
    other.unwrapped.set_resume_state(episode)
    other.set_resume_state(saved)
    np.testing.assert_array_equal(other.base_action, env.base_action)
    for _ in range(40):  # the rule's price and heat-gain memories continue alike
        correction = rng.uniform(-1, 1, 4)
        first, second = env.step(correction), other.step(correction)
        np.testing.assert_array_equal(first[0], second[0])
        assert first[1] == second[1]  # with relative_reward: the shadow continues alike too
    np.testing.assert_array_equal(env.unwrapped.log["reward"], other.unwrapped.log["reward"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": "optimal"}, "base must be one of rule, none, got 'optimal'"),
        ({"scale": 0}, r"scale must be a number in \(0, 2\] or 4 numbers in \[0, 2\]"),
        ({"scale": 2.5}, "scale must be a number"),
        ({"scale": float("nan")}, "scale must be a number"),
        ({"scale": True}, "scale must be a number"),
        ({"scale": [0.0, 0.0, 0.0, 0.0]}, "not all 0"),
        ({"scale": [0.1, 0.1, 0.1]}, "4 numbers"),
        ({"scale": "0.3"}, "scale must be a number"),
        ({"observe_base": "yes"}, "observe_base must be true or false, got 'yes'"),
        ({"relative_reward": 1}, "relative_reward must be true or false, got 1"),
        ({"correction_cost": -1.0}, "correction_cost must be a finite number >= 0, got -1.0"),
    ],
)
def test_bad_arguments_get_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        ResidualAction(BuildingEnergyEnv(**WEEK), **kwargs)
    assert "\n" not in str(error.value)


def test_environments_a_residual_agent_cannot_correct():
    with pytest.raises(ValueError, match="needs Box actions"):
        ResidualAction(BuildingEnergyEnv(discrete_levels=3))
    with pytest.raises(ValueError, match='needs hvac_action="power"'):
        ResidualAction(BuildingEnergyEnv(hvac_action="target"))
    with pytest.raises(ValueError, match="environment must be one of building"):
        gym.make(RESIDUAL_ID, base_env="house")
    with pytest.raises(RuntimeError, match="reset the environment first"):
        ResidualAction(BuildingEnergyEnv()).observe(np.zeros(21))
