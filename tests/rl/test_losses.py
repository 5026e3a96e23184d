"""Targets and losses of DQN, TD3 and SAC on hand-worked batches, and the agents' use of them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evosparse.rl import DQN, SAC, TD3
from evosparse.rl.dqn import dqn_targets
from evosparse.rl.sac import actor_loss, alpha_loss, soft_q_targets
from evosparse.rl.td3 import clipped_double_q_targets, smoothed_target_actions, twin_critic_loss

GAMMA = 0.9


def test_double_dqn_target_by_hand():
    # Two transitions, one head with three actions; the second transition is terminal (d = 0).
    returns = torch.tensor([1.0, 2.0])
    discounts = torch.tensor([GAMMA, 0.0])
    next_q_target = torch.tensor([[[5.0, 3.0, 4.0]], [[7.0, 8.0, 9.0]]])
    next_q_online = torch.tensor([[[0.0, 1.0, 0.5]], [[3.0, 2.0, 1.0]]])
    # Double DQN: the online argmax picks action 1 (row 0) -> target value 3.0: y = 1 + 0.9 * 3 = 3.7;
    # row 1 is terminal: y = 2.
    double = dqn_targets(returns, discounts, next_q_target, next_q_online)
    torch.testing.assert_close(double, torch.tensor([[3.7], [2.0]]))
    # Vanilla DQN takes the target's own max (5.0): y = 1 + 0.9 * 5 = 5.5 -- the overestimation double DQN avoids.
    vanilla = dqn_targets(returns, discounts, next_q_target)
    torch.testing.assert_close(vanilla, torch.tensor([[5.5], [2.0]]))


def test_dqn_independent_heads_with_padding():
    # MultiDiscrete([3, 2]): outputs (q0a, q0b, q0c, q1a, q1b); head 1 is padded with -inf.
    agent = DQN(_multi_discrete_env(), seed=0, critic_hidden=(4,))
    out = torch.tensor([[1.0, 5.0, 2.0, -1.0, 3.0]])
    heads = agent.heads(out)
    assert heads.shape == (1, 2, 3)
    torch.testing.assert_close(heads[0, 0], torch.tensor([1.0, 5.0, 2.0]))
    assert heads[0, 1, :2].tolist() == [-1.0, 3.0] and heads[0, 1, 2] == -math.inf
    # Each head's target uses its own argmax: head 0 -> action 1 (5.0), head 1 -> action 1 (3.0).
    targets = dqn_targets(torch.tensor([0.0]), torch.tensor([1.0]), heads, heads)
    torch.testing.assert_close(targets, torch.tensor([[5.0, 3.0]]))


def test_td3_target_with_fixed_smoothing_noise():
    target_actions = torch.tensor([[0.9], [-0.2]])
    noise = torch.tensor([[2.0], [-1.0]])  # standard-normal draws, fixed
    # sigma = 0.2: noise 0.4 clipped to c = 0.3 -> 0.9 + 0.3 = 1.2, clipped to the action bound 1.0;
    # -0.2 -> -0.2 - 0.2 = -0.4 (inside both clips).
    smoothed = smoothed_target_actions(target_actions, noise, noise_std=0.2, noise_clip=0.3)
    torch.testing.assert_close(smoothed, torch.tensor([[1.0], [-0.4]]))
    # Clipped double Q: y = R + d min(Q1', Q2') = [1 + 0.9 * 2, 0.5 + 0 * (-3)] = [2.8, 0.5].
    next_q = torch.tensor([[2.0, -1.0], [4.0, -3.0]])  # (critic, batch)
    targets = clipped_double_q_targets(torch.tensor([1.0, 0.5]), torch.tensor([GAMMA, 0.0]), next_q)
    torch.testing.assert_close(targets, torch.tensor([2.8, 0.5]))
    # Critic loss: sum over critics of the MSE: critic 1 errors (1, -1) -> 1, critic 2 errors (0, 2) -> 2.
    q = torch.tensor([[3.8, -0.5], [2.8, 2.5]])
    torch.testing.assert_close(twin_critic_loss(q, targets), torch.tensor(3.0))


def test_sac_soft_target_alpha_and_actor_losses():
    returns, discounts = torch.tensor([1.0, -1.0]), torch.tensor([GAMMA, GAMMA])
    next_q = torch.tensor([[3.0, 0.0], [2.0, 1.0]])
    next_log_prob = torch.tensor([-1.0, 2.0])
    alpha = 0.5
    # y = R + d (min Q' - alpha log pi): row 0: 1 + 0.9 (2 + 0.5) = 3.25; row 1: -1 + 0.9 (0 - 1) = -1.9
    targets = soft_q_targets(returns, discounts, next_q, next_log_prob, alpha)
    torch.testing.assert_close(targets, torch.tensor([3.25, -1.9]))
    # Alpha loss, |A| = 2 (target entropy -2): -log(alpha) * mean(log pi - 2) = -log(0.5) * ((-1 - 2) + (2 - 2)) / 2
    log_alpha = torch.tensor(math.log(alpha), requires_grad=True)
    loss = alpha_loss(log_alpha, next_log_prob, -2.0)
    torch.testing.assert_close(loss, torch.tensor(-math.log(0.5) * -1.5))
    loss.backward()  # d/dlog_alpha = -mean(log pi + H_target) = 1.5: alpha grows when entropy is too low
    torch.testing.assert_close(log_alpha.grad, torch.tensor(1.5))
    # Actor loss: mean(alpha log pi - min Q) = mean(0.5 * -1 - 2, 0.5 * 2 - 0) = mean(-2.5, 1) = -0.75
    torch.testing.assert_close(actor_loss(alpha, next_log_prob, next_q), torch.tensor(-0.75))


def test_squashed_gaussian_log_prob_matches_torch_distributions():
    agent = SAC("Pendulum-v1", seed=0, actor_hidden=(8,), critic_hidden=(8,))
    obs = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(5, 1, generator=torch.Generator().manual_seed(2))
    action, log_prob = agent.actor(obs, noise)
    out = agent.actor.mlp(obs)
    mean, log_std = out[:, :1], out[:, 1:].clamp(-20, 2)
    u = mean + noise * log_std.exp()
    reference = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(1)
    reference = reference - torch.log(1 - torch.tanh(u) ** 2 + 1e-12).sum(1)  # change of variables a = tanh(u)
    torch.testing.assert_close(action, torch.tanh(u))
    torch.testing.assert_close(log_prob, reference, rtol=1e-4, atol=1e-4)


# ---- the agents compute exactly these quantities -----------------------------------------------------------------
def _batch(agent, n=4):
    """Fill the replay buffer with a few random transitions; return the batch the agent will sample next."""
    agent.learn(n)
    state = agent.buffer.rng.bit_generator.state
    batch = [t.clone() for t in agent.buffer.sample(n)]
    agent.buffer.rng.bit_generator.state = state
    return batch


def test_td3_step_uses_the_clipped_double_q_target():
    agent = TD3(
        "Pendulum-v1",
        seed=3,
        actor_hidden=(8,),
        critic_hidden=(8,),
        learning_starts=10,
        target_policy_noise=0.0,
        batch_size=4,
    )
    obs, actions, returns, next_obs, discounts = _batch(agent)
    with torch.no_grad():
        next_q = agent.critic_target(next_obs, agent.actor_target(next_obs))  # zero smoothing noise
        targets = returns + discounts * next_q.min(0).values
        expected = ((agent.critic(obs, actions) - targets) ** 2).mean(1).sum()
    agent._train_step()
    torch.testing.assert_close(agent._losses["critic_loss"], expected)


def test_sac_step_uses_the_soft_target():
    agent = SAC(
        "Pendulum-v1", seed=3, actor_hidden=(8,), critic_hidden=(8,), learning_starts=10, alpha_init=0.3, batch_size=4
    )
    obs, actions, returns, next_obs, discounts = _batch(agent)
    generator_state = agent.generator.get_state()
    with torch.no_grad():
        noise = torch.randn((4, 1), generator=agent.generator)  # the step's first draw: the current action
        next_noise = torch.randn((4, 1), generator=agent.generator)
        next_actions, next_log_prob = agent.actor(next_obs, next_noise)
        next_q = agent.critic_target(next_obs, next_actions).min(0).values
        targets = returns + discounts * (next_q - 0.3 * next_log_prob)
        expected = 0.5 * ((agent.critic(obs, actions) - targets) ** 2).mean(1).sum()
        _, log_prob = agent.actor(obs, noise)
        expected_alpha_loss = -(math.log(0.3) * (log_prob + agent.target_entropy)).mean()
    agent.generator.set_state(generator_state)
    agent._train_step()
    torch.testing.assert_close(agent._losses["critic_loss"], expected)
    torch.testing.assert_close(agent._losses["alpha_loss"], expected_alpha_loss)
    assert agent.target_entropy == -1.0  # -|A| for Pendulum


def test_dqn_step_uses_the_double_q_target_and_huber_loss():
    agent = DQN("CartPole-v1", seed=3, critic_hidden=(8,), learning_starts=10, batch_size=4)
    obs, actions, returns, next_obs, discounts = _batch(agent)
    with torch.no_grad():
        best = agent.q_net(next_obs).argmax(1, keepdim=True)
        targets = returns + discounts * agent.q_target(next_obs).gather(1, best).squeeze(1)
        q = agent.q_net(obs).gather(1, actions[:, None]).squeeze(1)
        error = (q - targets).abs()
        expected = torch.where(error < 1, 0.5 * error**2, error - 0.5).mean()
    agent._train_step()
    torch.testing.assert_close(agent._losses["loss"], expected)


def _multi_discrete_env():
    import gymnasium as gym

    class Grid(gym.Env):
        observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        action_space = gym.spaces.MultiDiscrete([3, 2])

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return self.np_random.uniform(-1, 1, 2).astype(np.float32), {}

        def step(self, action):
            return self.np_random.uniform(-1, 1, 2).astype(np.float32), float(action[0] == 1), False, False, {}

    return Grid()


@pytest.mark.parametrize("double_q", [True, False])
def test_multi_discrete_dqn_learns_per_head_targets(double_q):
    agent = DQN(_multi_discrete_env(), seed=0, critic_hidden=(8,), learning_starts=5, double_q=double_q, batch_size=4)
    agent.learn(40)
    assert agent.n_updates > 0 and np.isfinite(agent.logs["loss"])
    action, _ = agent.predict(np.zeros(2, np.float32))
    assert action.shape == (2,) and 0 <= action[0] < 3 and 0 <= action[1] < 2
