"""DQN with the double-DQN target, a target network, a linear epsilon schedule and the Huber loss.

Actions: Discrete, or MultiDiscrete through independent heads -- one group of Q-values per action
dimension in the network's output, each trained on its own one-dimensional target (the grid's
MultiDiscrete actions would otherwise need prod(nvec) outputs). One gradient step
(:meth:`DQN._train_step`), on a batch (s, a, R, s', d), per action dimension j:

1. **targets**: a*_j = argmax_b Q_j(s', b) (online network; the target's own argmax if ``double_q`` is
   False); y_j = R + d Q_j_target(s', a*_j)
2. **loss**: mean over batch and dimensions of Huber(Q_j(s, a_j) - y_j), gradient norm clipped, Adam step,
   then the topology update
3. **target update**: every ``target_update_interval`` environment steps, target <- (1 - tau) target + tau Q

Exploration: epsilon-greedy per environment, epsilon falling linearly from ``exploration_initial_eps`` to
``exploration_final_eps`` over the first ``exploration_fraction`` of each ``learn`` call's budget.

Paper: Mnih et al., "Human-level control through deep reinforcement learning", Nature 518 (2015),
Algorithm 1; van Hasselt, Guez, Silver, "Deep Reinforcement Learning with Double Q-learning", AAAI 2016,
Eq. 4; Tavakoli et al., "Action Branching Architectures for Deep RL", AAAI 2018 (independent heads).
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

from evosparse.rl.base import BaseAlgorithm, adam_step, polyak_update
from evosparse.rl.config import DQNConfig
from evosparse.rl.fused import run_mlp


def dqn_targets(
    returns: torch.Tensor,
    discounts: torch.Tensor,
    next_q_target: torch.Tensor,
    next_q_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-head targets (batch, heads) from next-state Q-values (batch, heads, n).

    Double DQN (``next_q_online`` given): ``y_j = R + d Q_target_j(s', argmax_b Q_online_j(s', b))``
    (van Hasselt et al. 2016, Eq. 4); otherwise ``y_j = R + d max_b Q_target_j(s', b)`` (Mnih et al. 2015).
    """
    if next_q_online is None:
        next_q = next_q_target.max(2).values
    else:
        next_q = next_q_target.gather(2, next_q_online.argmax(2, keepdim=True)).squeeze(2)
    return returns[:, None] + discounts[:, None] * next_q


class DQN(BaseAlgorithm):
    """DQN agent (see the module doc). Example: ``DQN("CartPole-v1", seed=0).learn(50_000)``."""

    name = "dqn"
    config_class = DQNConfig
    action_kinds = ("discrete", "multi_discrete")

    def _setup(self, rng: np.random.Generator) -> None:
        config = self.config
        space = self.action_space
        self.nvec = np.array([space.n]) if isinstance(space, gym.spaces.Discrete) else space.nvec.ravel()
        n_out = int(self.nvec.sum())
        # Head j reads outputs offsets[j] ... offsets[j] + nvec[j] - 1; shorter heads are padded with
        # column n_out, a -inf column appended at run time, so one gather gives a (batch, heads, max n) array.
        offsets = np.concatenate([[0], np.cumsum(self.nvec)[:-1]])
        width = int(self.nvec.max())
        index = np.full((len(self.nvec), width), n_out, dtype=np.int64)
        for j, (offset, n) in enumerate(zip(offsets, self.nvec)):
            index[j, :n] = offset + np.arange(n)
        self._head_index = torch.from_numpy(index)
        self.q_net = self._mlp([self.obs_dim, *config.critic_hidden, n_out], config.critic_density, rng)
        self.q_target = copy.deepcopy(self.q_net).requires_grad_(False)
        self.optimizer = self._adam(self.q_net)
        self.networks = {"critic": self.q_net, "critic_target": self.q_target}
        self.optimizers = {"critic": self.optimizer}
        sizes = [self.obs_dim, *config.critic_hidden, n_out]
        self.topologies = {
            "critic": self._topology(
                self.q_net, self.optimizer, (self.q_target,), [sizes], config.critic_density, int(rng.integers(2**31))
            )
        }
        self._refresh_parameters()

    def _refresh_parameters(self) -> None:
        self._params = list(self.q_net.parameters())
        self._target_params = list(self.q_target.parameters())

    def heads(self, out: torch.Tensor) -> torch.Tensor:
        """Network output (batch, sum nvec) -> Q-values (batch, heads, max n), -inf where a head is shorter."""
        padded = torch.cat([out, out.new_full((out.shape[0], 1), float("-inf"))], dim=1)
        return padded[:, self._head_index]

    @property
    def exploration_rate(self) -> float:
        """Epsilon now: linear decay over the first exploration_fraction of the schedule (see ``learn``)."""
        config = self.config
        budget = max(1, self._target_timesteps - self._learn_start)
        progress = min(1.0, (self.num_timesteps - self._learn_start) / (config.exploration_fraction * budget))
        return config.exploration_initial_eps + progress * (
            config.exploration_final_eps - config.exploration_initial_eps
        )

    # ---- acting -------------------------------------------------------------------------------------------------
    def _greedy(self, obs: torch.Tensor) -> np.ndarray:
        """Stored-form actions (0-based, one per head) maximising each head's Q-values."""
        return self.heads(run_mlp(self.q_net, obs)).argmax(2).numpy()

    def _to_env(self, stored: np.ndarray) -> np.ndarray:
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return stored[:, 0] + space.start
        return stored.reshape(stored.shape[0], *space.shape) + space.start

    def _epsilon_greedy(self, obs: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            stored = self._greedy(torch.as_tensor(obs, dtype=torch.float32))
        explore = self.rng.random(obs.shape[0]) < epsilon
        if explore.any():
            stored[explore] = self.rng.integers(0, self.nvec, size=(int(explore.sum()), len(self.nvec)))
        env_actions = self._to_env(stored)
        return env_actions, env_actions - self.action_space.start

    def _explore(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._epsilon_greedy(obs, self.exploration_rate)

    def _policy(self, obs: torch.Tensor, deterministic: bool) -> np.ndarray:
        if deterministic:
            return self._to_env(self._greedy(obs))
        return self._epsilon_greedy(obs.numpy(), self.exploration_rate)[0]

    def _on_env_step(self) -> None:
        # ---- target update: every target_update_interval environment steps (SB3 counts vector steps)
        if self._vector_steps % max(self.config.target_update_interval // self.n_envs, 1) == 0:
            polyak_update(self._params, self._target_params, self.config.tau)

    # ---- one gradient step --------------------------------------------------------------------------------------
    def _train_step(self) -> None:
        config = self.config
        obs, actions, returns, next_obs, discounts = self._sample(config.batch_size)
        actions = actions.view(actions.shape[0], -1, 1)  # (batch, heads, 1)

        # ---- targets: double DQN, per head
        with torch.no_grad():
            next_q_online = self.heads(run_mlp(self.q_net, next_obs)) if config.double_q else None
            targets = dqn_targets(returns, discounts, self.heads(run_mlp(self.q_target, next_obs)), next_q_online)

        # ---- loss: Huber on every head's chosen action
        q = self.heads(run_mlp(self.q_net, obs)).gather(2, actions).squeeze(2)
        loss = F.smooth_l1_loss(q, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._params, config.max_grad_norm)
        adam_step(self.optimizer)
        if self.topologies["critic"].step(self.num_timesteps):
            self._refresh_parameters()
        self._losses["loss"] = loss.detach()
