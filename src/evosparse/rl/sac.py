"""SAC: twin soft Q critics, a squashed Gaussian actor and automatic entropy tuning.

One gradient step (:meth:`SAC._train_step`), in Stable-Baselines3's order, on a batch (s, a, R, s', d):

1. **actor sample and alpha loss**: a~, log pi(a~|s) from the actor; if ``autotune``,
   L(alpha) = -mean log(alpha) (log pi(a~|s) + H_target), H_target = -|A| (alpha of this step: before the update)
2. **targets**: a' ~ pi(.|s'); y = R + d (min_i Q_i_target(s', a') - alpha log pi(a'|s'))
3. **critic loss**: 0.5 sum_i mean (Q_i(s, a) - y)^2, one Adam step for both critics, topology update
4. **actor loss**: mean(alpha log pi(a~|s) - min_i Q_i(s, a~)), one Adam step, topology update
5. **target update** every ``target_update_interval`` steps: Polyak averaging of the critic target.

Paper: Haarnoja et al., "Soft Actor-Critic Algorithms and Applications", arXiv:1812.05905 (2018),
Algorithm 1 and Eq. 18 (temperature); sparse SAC: Graesser, Evci, Elsen, Castro, "The State of Sparse
Training in Deep Reinforcement Learning", ICML 2022.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from evosparse.rl.base import BaseAlgorithm, adam_step, polyak_update
from evosparse.rl.config import SACConfig
from evosparse.rl.networks import SquashedGaussianActor, TwinCritic, scale_output_layer
from evosparse.rl.td3 import twin_critic_loss


def soft_q_targets(
    returns: torch.Tensor, discounts: torch.Tensor, next_q: torch.Tensor, next_log_prob: torch.Tensor, alpha
) -> torch.Tensor:
    """``y = R + d (min(Q_1', Q_2') - alpha log pi(a'|s'))`` for ``next_q`` of shape (2, batch) (paper, Eq. 3)."""
    return returns + discounts * (next_q.min(0).values - alpha * next_log_prob)


def alpha_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """``-mean log(alpha) (log pi(a|s) + H_target)`` (paper, Eq. 18; SB3 differentiates log alpha)."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


def actor_loss(alpha, log_prob: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``mean(alpha log pi(a~|s) - min_i Q_i(s, a~))`` for ``q`` of shape (2, batch) (paper, Eq. 7)."""
    return (alpha * log_prob - q.min(0).values).mean()


class SAC(BaseAlgorithm):
    """SAC agent (see the module doc). Example: ``SAC("Pendulum-v1", seed=0).learn(10_000)``."""

    name = "sac"
    config_class = SACConfig
    action_kinds = ("box",)

    def _setup(self, rng: np.random.Generator) -> None:
        config = self.config
        if not np.all(np.isfinite(self.action_space.low) & np.isfinite(self.action_space.high)):
            raise ValueError(f"sac needs a bounded Box action space, got {self.action_space}")
        self.action_dim = int(np.prod(self.action_space.shape))
        actor_sizes = [self.obs_dim, *config.actor_hidden, 2 * self.action_dim]  # mean and log std
        critic_sizes = [self.obs_dim + self.action_dim, *config.critic_hidden, 1]
        self.actor = SquashedGaussianActor(self._mlp(actor_sizes, config.actor_density, rng), self.action_dim)
        if config.actor_output_scale != 1.0:  # after all draws: the same random stream as the unscaled agent
            scale_output_layer(self.actor.mlp, config.actor_output_scale)
        self.critic = TwinCritic(*(self._mlp(critic_sizes, config.critic_density, rng) for _ in range(2)))
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.nn.Parameter(torch.tensor(float(np.log(config.alpha_init))))
        self.target_entropy = -float(self.action_dim) if config.target_entropy is None else config.target_entropy
        self.actor_optimizer, self.critic_optimizer = self._adam(self.actor), self._adam(self.critic)
        self.alpha_optimizer = self._adam([self.log_alpha])
        self.networks = {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}
        self.optimizers = {
            "actor": self.actor_optimizer,
            "critic": self.critic_optimizer,
            "alpha": self.alpha_optimizer,
        }
        seeds = rng.integers(2**31, size=2)
        self.topologies = {
            "actor": self._topology(
                self.actor, self.actor_optimizer, (), [actor_sizes], config.actor_density, seeds[0]
            ),
            "critic": self._topology(
                self.critic,
                self.critic_optimizer,
                (self.critic_target,),
                [critic_sizes] * 2,
                config.critic_density,
                seeds[1],
            ),
        }
        self._refresh_parameters()

    def _refresh_parameters(self) -> None:
        self._actor_params = list(self.actor.parameters())
        self._critic_params = list(self.critic.parameters())
        self._critic_target_params = list(self.critic_target.parameters())

    def _extra_state(self) -> dict[str, torch.Tensor]:
        return {"log_alpha": self.log_alpha.detach().clone()}

    def _load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"])

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.exp())

    # ---- acting -------------------------------------------------------------------------------------------------
    def _noise(self, batch: int) -> torch.Tensor:
        return torch.randn((batch, self.action_dim), generator=self.generator)

    def _explore(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            scaled, _ = self.actor(torch.as_tensor(obs, dtype=torch.float32), self._noise(obs.shape[0]))
        scaled = scaled.numpy()
        return self._unscale(scaled), scaled

    def _policy(self, obs: torch.Tensor, deterministic: bool) -> np.ndarray:
        scaled, _ = self.actor(obs, None if deterministic else self._noise(obs.shape[0]))
        return self._unscale(scaled.numpy())

    # ---- one gradient step --------------------------------------------------------------------------------------
    def _train_step(self) -> None:
        config = self.config
        obs, actions, returns, next_obs, discounts = self._sample(config.batch_size)

        # ---- actor sample and alpha loss (alpha of this step is the one before its update, as in SB3)
        new_actions, log_prob = self.actor(obs, self._noise(obs.shape[0]))
        alpha = self.log_alpha.detach().exp()
        if config.autotune:
            loss = alpha_loss(self.log_alpha, log_prob, self.target_entropy)
            self.alpha_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            adam_step(self.alpha_optimizer)
            self._losses["alpha_loss"] = loss.detach()

        # ---- targets: soft clipped double Q (entropy bonus of the next action)
        with torch.no_grad():
            next_actions, next_log_prob = self.actor(next_obs, self._noise(obs.shape[0]))
            next_q = self.critic_target(next_obs, next_actions)
            targets = soft_q_targets(returns, discounts, next_q, next_log_prob, alpha)

        # ---- critic loss
        critic_loss = 0.5 * twin_critic_loss(self.critic(obs, actions), targets)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._critic_params, config.max_grad_norm)
        adam_step(self.critic_optimizer)
        changed = self.topologies["critic"].step(self.num_timesteps)

        # ---- actor loss (critic weights frozen: no weight gradients wasted on them)
        for p in self._critic_params:
            p.requires_grad_(False)
        policy_loss = actor_loss(alpha, log_prob, self.critic(obs, new_actions))
        self.actor_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        for p in self._critic_params:
            p.requires_grad_(True)
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._actor_params, config.max_grad_norm)
        adam_step(self.actor_optimizer)
        changed = self.topologies["actor"].step(self.num_timesteps) or changed
        if changed:
            self._refresh_parameters()
        self._losses.update(critic_loss=critic_loss.detach(), actor_loss=policy_loss.detach(), alpha=alpha)

        # ---- target update
        if (self.n_updates + 1) % config.target_update_interval == 0:
            polyak_update(self._critic_params, self._critic_target_params, config.tau)
