"""DelayedReward keeps every episode's return and only moves the payments; DynamicsChange really changes the
MuJoCo model (its arrays and the rollouts it produces) at the given step, counted across episodes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from evosparse.rl.wrappers import DelayedReward, DynamicsChange


def _rollout(env, actions, seed):
    """Rewards, observations and flags of a fixed action sequence, resetting at each episode end."""
    env.reset(seed=seed)
    rewards, observations, ends = [], [], []
    for action in actions:
        observation, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        observations.append(observation)
        ends.append(terminated or truncated)
        if terminated or truncated:
            env.reset()
    return np.array(rewards), np.array(observations), np.array(ends)


# ---- DelayedReward -------------------------------------------------------------------------------------
@pytest.mark.parametrize("every", [1, 7, 40, 1000])
def test_delayed_reward_keeps_every_episode_return(every):
    # Pendulum: 200-step episodes (truncation), dense negative rewards; 450 steps cross two episode ends.
    actions = np.random.default_rng(0).uniform(-2, 2, size=(450, 1)).astype(np.float32)
    plain, observations, ends = _rollout(gym.make("Pendulum-v1"), actions, seed=3)
    delayed, delayed_observations, delayed_ends = _rollout(DelayedReward(gym.make("Pendulum-v1"), every), actions, 3)
    np.testing.assert_array_equal(observations, delayed_observations)  # the dynamics are untouched
    np.testing.assert_array_equal(ends, delayed_ends)
    # Episode by episode (the two complete ones), the same total, and nothing paid between payment steps.
    bounds = [0, *(np.flatnonzero(ends) + 1).tolist()]
    assert len(bounds) == 3
    for begin, end in zip(bounds[:-1], bounds[1:]):
        np.testing.assert_allclose(delayed[begin:end].sum(), plain[begin:end].sum(), rtol=1e-12, atol=1e-9)
        steps = np.arange(1, end - begin + 1)
        paid = (steps % every == 0) | (np.arange(begin, end) + 1 == end) & ends[begin:end]
        assert np.all(delayed[begin:end][~paid] == 0.0)
    if every > 1:
        assert np.count_nonzero(delayed) < np.count_nonzero(plain)


def test_delayed_reward_reports_the_step_reward_and_resumes():
    env = DelayedReward(gym.make("CartPole-v1"), every=5)
    env.reset(seed=0)
    for _ in range(3):
        _, reward, _, _, info = env.step(0)
        assert reward == 0.0 and info["undelayed_reward"] == 1.0
    state = env.get_resume_state()
    other = DelayedReward(gym.make("CartPole-v1"), every=5)
    other.reset(seed=0)
    other.set_resume_state(state)
    for _ in range(2):
        _, reward, _, _, _ = other.step(0)
    assert reward == 5.0  # the three steps before the saved state are paid with the next two


@pytest.mark.parametrize("every", [0, -3, 2.5, True])
def test_delayed_reward_rejects_bad_every(every):
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        DelayedReward(gym.make("CartPole-v1"), every)


# ---- DynamicsChange ------------------------------------------------------------------------------------
MUJOCO_ENV = "InvertedPendulum-v5"  # the smallest MuJoCo task: 1000-step episodes end early on a fall


@pytest.fixture(autouse=True)
def _mujoco_log_elsewhere(tmp_path, monkeypatch):
    # MuJoCo writes its compiler warnings to MUJOCO_LOG.TXT in the working directory.
    monkeypatch.chdir(tmp_path)


def test_dynamics_change_changes_the_model_at_the_step_across_episodes():
    pytest.importorskip("mujoco")
    env = DynamicsChange(gym.make(MUJOCO_ENV), at_step=30, body_mass_scale=2.0, gravity=-4.9, friction_scale=0.5)
    model = env.unwrapped.model
    mass, gravity, friction = model.body_mass.copy(), model.opt.gravity.copy(), model.geom_friction.copy()
    env.reset(seed=0)
    episodes = 0
    for _ in range(30):  # a full push topples the pole in 3 steps: 10 episodes
        _, _, terminated, truncated, info = env.step(np.full(1, 3.0, dtype=np.float32))
        assert not info["dynamics_changed"]
        if terminated or truncated:  # the count runs on through resets
            episodes += 1
            env.reset()
    assert episodes >= 5
    np.testing.assert_array_equal(model.body_mass, mass)
    _, _, _, _, info = env.step(np.zeros(1, dtype=np.float32))
    assert info["dynamics_changed"] and env.total_steps == 31
    np.testing.assert_allclose(model.body_mass, 2.0 * mass)
    np.testing.assert_allclose(model.opt.gravity, [0.0, 0.0, -4.9])
    np.testing.assert_allclose(model.geom_friction, 0.5 * friction)
    assert not np.allclose(model.opt.gravity, gravity)
    env.reset()  # a reset keeps the changed model
    np.testing.assert_allclose(model.body_mass, 2.0 * mass)


def test_dynamics_change_changes_the_rollouts():
    pytest.importorskip("mujoco")
    actions = np.random.default_rng(1).uniform(-1, 1, size=(60, 6)).astype(np.float32)
    plain = _rollout(gym.make("HalfCheetah-v5"), actions, seed=2)
    changed = _rollout(DynamicsChange(gym.make("HalfCheetah-v5"), at_step=20, body_mass_scale=3.0), actions, 2)
    # Identical before the change, different after it.
    np.testing.assert_array_equal(plain[1][:20], changed[1][:20])
    np.testing.assert_array_equal(plain[0][:20], changed[0][:20])
    assert not np.allclose(plain[1][25:], changed[1][25:])


def test_dynamics_change_state_and_evaluation_freeze():
    pytest.importorskip("mujoco")
    env = DynamicsChange(gym.make(MUJOCO_ENV), at_step=5, gravity=(0.0, 0.0, -20.0))
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.zeros(1, dtype=np.float32))
    fresh = DynamicsChange(gym.make(MUJOCO_ENV), at_step=5, gravity=(0.0, 0.0, -20.0))
    fresh.set_resume_state(env.get_resume_state())
    assert fresh.total_steps == 5 and not fresh.changed  # saved just before the change: not seen yet
    fresh.reset(seed=0)
    _, _, _, _, info = fresh.step(np.zeros(1, dtype=np.float32))
    assert info["dynamics_changed"]
    evaluation = DynamicsChange(gym.make(MUJOCO_ENV), at_step=5, gravity=-20.0)
    evaluation.freeze_at(3)
    evaluation.reset(seed=0)
    for _ in range(10):  # frozen: never crosses the change during an evaluation
        _, _, _, _, info = evaluation.step(np.zeros(1, dtype=np.float32))
        assert not info["dynamics_changed"]
    evaluation.freeze_at(5)
    assert evaluation.unwrapped.model.opt.gravity[2] == -20.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"at_step": -1, "body_mass_scale": 2.0}, "at_step must be an integer >= 0"),
        ({"at_step": 10, "body_mass_scale": 0.0}, "body_mass_scale must be a finite number > 0"),
        ({"at_step": 10, "friction_scale": float("nan")}, "friction_scale must be a finite number > 0"),
        ({"at_step": 10, "gravity": (0.0, -9.81)}, "gravity must be a finite number"),
        ({"at_step": 10}, "changes nothing"),
    ],
)
def test_dynamics_change_rejects_bad_arguments(kwargs, message):
    pytest.importorskip("mujoco")
    with pytest.raises(ValueError, match=message):
        DynamicsChange(gym.make(MUJOCO_ENV), **kwargs)


def test_dynamics_change_needs_a_mujoco_env():
    with pytest.raises(ValueError, match="needs a MuJoCo environment"):
        DynamicsChange(gym.make("CartPole-v1"), at_step=10, body_mass_scale=2.0)
