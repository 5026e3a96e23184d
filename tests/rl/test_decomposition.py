"""Return decomposition (evosparse.rl.decomposition): block bookkeeping by hand, recovery of a known per-step
reward from block sums, the agent's use of it, exact resume, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evosparse.rl import DQN, SAC, TD3, BaseAlgorithm
from evosparse.rl.config import SACConfig
from evosparse.rl.decomposition import ReturnDecomposition

from .test_resume import SMALL, assert_same_agent

pytestmark = pytest.mark.usefixtures("one_thread")


def decomposition(period: int, *, n_envs: int = 1, capacity: int = 100, obs_dim: int = 2, action_dim: int = 1):
    return ReturnDecomposition(
        obs_dim, action_dim, period, capacity=capacity, n_envs=n_envs, batch_size=32, learning_rate=1e-2,
        rng=np.random.default_rng(0),
    )  # fmt: skip


def test_blocks_close_when_full_or_at_an_episode_end_per_environment():
    blocks = decomposition(3, n_envs=2)
    # Vector steps t = 0..4; environment 1's episode ends at t = 1.
    for t in range(5):
        obs = np.array([[t, 0.0], [t, 1.0]], dtype=np.float32)
        actions = np.array([[10.0 + t], [20.0 + t]], dtype=np.float32)
        rewards = np.array([1.0 + t, 100.0 + t])
        blocks.add(obs, actions, rewards, np.array([False, t == 1]))
    # Closed, in order: env 1 at t=1 (steps 0-1), env 0 at t=2 (steps 0-2), env 1 at t=4 (steps 2-4).
    assert len(blocks) == 3
    assert blocks.lengths[:3].tolist() == [2, 3, 3]
    assert blocks.targets[:3].tolist() == [100 + 101, 1 + 2 + 3, 102 + 103 + 104]
    assert blocks.inputs[0, :2, 2].tolist() == [20, 21] and blocks.inputs[0, 2].tolist() == [0, 0, 0]
    assert blocks.inputs[1, :, 0].tolist() == [0, 1, 2] and blocks.inputs[2, :, 2].tolist() == [22, 23, 24]
    # Environment 0's open block holds steps 3 and 4.
    assert blocks.open_lengths.tolist() == [2, 0] and blocks.open_sums.tolist() == [4 + 5, 0]


def test_the_store_is_a_ring_of_blocks():
    blocks = decomposition(2, capacity=6)  # three blocks
    for t in range(10):
        blocks.add(np.zeros((1, 2)), np.zeros((1, 1)), np.array([float(t)]), np.array([False]))
    assert len(blocks) == 3 and blocks.full
    # Blocks 0-4 closed; the ring keeps 3 (t 6-7), 4 (t 8-9) and 2 (t 4-5) at positions 0, 1, 2.
    assert blocks.targets.tolist() == [6 + 7, 8 + 9, 4 + 5]


def test_a_known_per_step_reward_is_recovered_from_block_sums():
    """Rewards r(s, a) = 2 a - s_0 + 0.5, paid only as sums over blocks of 8 steps: the model learns r itself."""
    rng = np.random.default_rng(3)
    blocks = decomposition(8, capacity=8 * 400)
    for _ in range(8 * 400):
        obs, action = rng.uniform(-1, 1, size=(1, 2)), rng.uniform(-1, 1, size=(1, 1))
        reward = 2 * action[:, 0] - obs[:, 0] + 0.5
        blocks.add(obs, action, reward, np.array([False]))
    blocks.blocks_per_update = 16
    for _ in range(1500):
        blocks.update(lambda x: x)
    obs, action = rng.uniform(-1, 1, size=(500, 2)), rng.uniform(-1, 1, size=(500, 1))
    truth = 2 * action[:, 0] - obs[:, 0] + 0.5
    predicted = blocks.rewards(torch.tensor(obs, dtype=torch.float32), torch.tensor(action, dtype=torch.float32))
    error = predicted.numpy() - truth
    # Only block sums were seen, yet each step's reward is found: residual < 5% of the reward's variance.
    assert np.mean(error**2) < 0.05 * np.var(truth), (np.mean(error**2), np.var(truth))


def test_the_agent_learns_from_the_model_rewards():
    before = SAC("Pendulum-v1", seed=0, **SMALL, reward_period=10).learn(30)  # no update yet: no loss to report
    assert before.decomposition.last_loss is None and "reward_model_loss" not in before.logs
    agent = SAC("Pendulum-v1", seed=0, **SMALL, reward_period=10).learn(120)
    assert agent.decomposition is not None and len(agent.decomposition) == 12
    assert np.isfinite(agent.logs["reward_model_loss"])
    obs, actions, returns, _, _ = agent._sample(16)
    # The batch's rewards are the model's, not the stored ones.
    assert torch.allclose(returns, agent.decomposition.rewards(obs, actions))


def test_period_one_targets_the_rewards_themselves():
    agent = TD3("Pendulum-v1", seed=1, **SMALL, reward_period=1).learn(60)
    blocks = agent.decomposition
    assert np.array_equal(blocks.lengths[: len(blocks)], np.ones(len(blocks)))
    assert np.allclose(blocks.targets[: len(blocks)], agent.buffer.rewards[: len(blocks)])


def test_resume_with_a_reward_model_is_exact(tmp_path):
    options = {**SMALL, "reward_period": 7, "strategy": "set", "actor_density": 0.5, "critic_density": 0.5}
    straight = SAC("Pendulum-v1", seed=4, **options).learn(200)
    first = SAC("Pendulum-v1", seed=4, **options).learn(100)  # mid-block (100 = 14 x 7 + 2) and mid-episode
    first.save(tmp_path / "agent")
    resumed = BaseAlgorithm.load(tmp_path / "agent").learn(100)
    assert_same_agent(straight, resumed)
    for key, value in straight.decomposition.model.state_dict().items():
        assert torch.equal(value, resumed.decomposition.model.state_dict()[key]), key
    for name in ("inputs", "lengths", "targets", "open_inputs", "open_lengths", "open_sums"):
        assert np.array_equal(getattr(straight.decomposition, name), getattr(resumed.decomposition, name)), name


def test_without_reward_period_nothing_changes():
    plain = TD3("Pendulum-v1", seed=2, **SMALL).learn(80)
    assert plain.decomposition is None and "reward_model_loss" not in plain.logs


def test_bad_input():
    with pytest.raises(ValueError, match="reward_period needs n_step = 1"):
        SACConfig(reward_period=24, n_step=3)
    with pytest.raises(ValueError, match="reward_period"):
        SACConfig(reward_period=0)
    with pytest.raises(ValueError, match="reward_period needs a Box action space"):
        DQN("CartPole-v1", seed=0, reward_period=5)
    with pytest.raises(ValueError, match="period must be an integer >= 1"):
        decomposition(0)
