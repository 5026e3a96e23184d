"""Observation normalisation (``normalize_observations``) and reward scaling: the statistics against a slow
reference, what the agent stores and sees, frozen statistics in predict, save / load and exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evosparse.rl import SAC, TD3, BaseAlgorithm
from evosparse.rl.normalize import RunningMeanStd
from tests.rl.test_resume import SMALL, assert_same_agent

NORMALIZED = {**SMALL, "normalize_observations": True}


# One torch and one kernel thread: RL's small layers gain nothing from more, and on a busy machine a
# multi-threaded kernel call can wait a whole scheduler slice (the shared fixture in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def test_running_statistics_match_the_statistics_of_all_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(5.0, 3.0, size=(n, 3)) * [1, 10, 0.01] for n in (1, 7, 50, 2)]
    stats = RunningMeanStd((3,), epsilon=1e-12)  # a negligible prior: the result is the plain statistics
    for batch in batches:
        stats.update(batch)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean, everything.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(stats.var, everything.var(axis=0), rtol=1e-6)
    assert stats.count == pytest.approx(len(everything))
    scaled = stats.normalize(everything)
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, rtol=1e-4)
    tensor = stats.normalize_tensor(torch.as_tensor(everything, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(tensor, scaled, rtol=1e-4, atol=1e-4)


def test_normalised_values_are_clipped_and_a_constant_feature_is_finite():
    stats = RunningMeanStd((2,), clip=3.0, epsilon=1e-12)
    stats.update(np.array([[1.0, 7.0], [1.0, 9.0]]))
    out = stats.normalize(np.array([[1.0, 1000.0], [2.0, -1000.0]]))
    assert np.isfinite(out).all()
    assert out[0, 0] == pytest.approx(0.0, abs=1e-3)  # the constant feature at its value: 0
    assert out[1, 0] == 3.0 and out[0, 1] == 3.0 and out[1, 1] == -3.0


def test_agent_statistics_cover_every_observation_acted_on_and_the_buffer_keeps_raw_ones():
    agent = SAC("Pendulum-v1", seed=0, **NORMALIZED).learn(60)
    raw = agent.buffer.obs[:60]
    np.testing.assert_allclose(agent.obs_normalizer.mean, raw.mean(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(agent.obs_normalizer.var, raw.var(axis=0), rtol=1e-3)
    assert np.abs(raw[:, 2]).max() > 1.5  # Pendulum's angular velocity, raw (not scaled to ~1)


def test_predict_uses_and_never_updates_the_frozen_statistics():
    agent = SAC("Pendulum-v1", seed=1, **NORMALIZED).learn(80)
    before = (agent.obs_normalizer.mean.copy(), agent.obs_normalizer.var.copy(), agent.obs_normalizer.count)
    probe = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32) * 4
    actions = agent.predict(probe)[0]
    after = (agent.obs_normalizer.mean, agent.obs_normalizer.var, agent.obs_normalizer.count)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]
    with torch.no_grad():  # the same policy on observations normalised by hand
        expected = agent._policy(torch.from_numpy(agent.obs_normalizer.normalize(probe)), True)
    assert np.array_equal(actions, expected)
    with torch.no_grad():  # and not the policy on the raw ones
        raw = agent._policy(torch.from_numpy(probe), True)
    assert not np.allclose(actions, raw)


def test_sampled_batches_are_normalised_with_the_current_statistics():
    agent = TD3("Pendulum-v1", seed=3, **NORMALIZED).learn(50)
    state = agent.buffer.rng.bit_generator.state
    obs, _, _, next_obs, _ = agent._sample(8)
    agent.buffer.rng.bit_generator.state = state
    raw_obs, _, _, raw_next, _ = agent.buffer.sample(8)
    np.testing.assert_allclose(obs.numpy(), agent.obs_normalizer.normalize(raw_obs.numpy()), atol=1e-5)
    np.testing.assert_allclose(next_obs.numpy(), agent.obs_normalizer.normalize(raw_next.numpy()), atol=1e-5)


def test_reward_scale_applies_to_the_stored_rewards_only():
    plain = SAC("Pendulum-v1", seed=4, **SMALL).learn(30)
    scaled = SAC("Pendulum-v1", seed=4, **{**SMALL, "reward_scale": 0.1}).learn(30)
    np.testing.assert_allclose(scaled.buffer.rewards[:30], 0.1 * plain.buffer.rewards[:30], rtol=1e-6)
    assert scaled.ep_info_buffer == plain.ep_info_buffer  # reported returns stay unscaled (none ended yet)


def test_normalised_agent_saves_loads_and_resumes_exactly(tmp_path):
    n = 100  # mid-episode (Pendulum: 200 steps), past learning_starts
    options = {**NORMALIZED, "reward_scale": 0.5}
    straight = SAC("Pendulum-v1", seed=5, **options).learn(2 * n)
    first = SAC("Pendulum-v1", seed=5, **options).learn(n)
    first.save(tmp_path / "agent")
    resumed = BaseAlgorithm.load(tmp_path / "agent")
    for name in ("mean", "var", "count"):
        assert np.array_equal(getattr(first.obs_normalizer, name), getattr(resumed.obs_normalizer, name)), name
    resumed.learn(n)
    assert_same_agent(straight, resumed)
    assert np.array_equal(straight.obs_normalizer.mean, resumed.obs_normalizer.mean)
    assert np.array_equal(straight.obs_normalizer.var, resumed.obs_normalizer.var)
    probe = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    assert np.array_equal(straight.predict(probe)[0], resumed.predict(probe)[0])


def test_bad_normalisation_settings_name_the_field():
    with pytest.raises(ValueError, match="observation_clip"):
        SAC("Pendulum-v1", observation_clip=0.0)
    with pytest.raises(ValueError, match="reward_scale"):
        SAC("Pendulum-v1", reward_scale=-1.0)
