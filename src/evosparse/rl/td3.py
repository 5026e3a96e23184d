"""TD3: twin critics, target policy smoothing, delayed actor and target updates, Gaussian exploration.

One gradient step (:meth:`TD3._train_step`), on a batch (s, a, R, s', d) where R is the (n-step) return and
d = gamma^k (1 - terminated) its bootstrap discount:

1. **targets**: a' = clip(mu_target(s') + clip(N(0, sigma~), -c, c), -1, 1); y = R + d min_i Q_i_target(s', a')
2. **critic loss**: sum_i mean (Q_i(s, a) - y)^2, one Adam step for both critics, then their topology update
3. **actor loss** (every ``policy_delay`` steps): -mean Q_1(s, mu(s)), one Adam step, topology update
4. **target update** (with the actor): Polyak averaging of actor and critic targets.

Exploration: a = clip(mu(s) + N(0, sigma), -1, 1), scaled to the Box.

Paper: Fujimoto, van Hoof, Meger, "Addressing Function Approximation Error in Actor-Critic Methods",
ICML 2018, Algorithm 1. Sparse variant: Sokar, Mocanu, Pechenizkiy, "Dynamic Sparse Training for Deep
Reinforcement Learning" (DS-TD3), IJCAI 2022.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from evosparse.rl.base import BaseAlgorithm, adam_step, polyak_update
from evosparse.rl.config import TD3Config
from evosparse.rl.networks import DeterministicActor, TwinCritic, scale_output_layer


def smoothed_target_actions(
    target_actions: torch.Tensor, noise: torch.Tensor, *, noise_std: float, noise_clip: float
) -> torch.Tensor:
    """Target policy smoothing: ``clip(mu'(s') + clip(noise_std * noise, -c, c), -1, 1)`` for standard normal noise."""
    return (target_actions + (noise * noise_std).clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def clipped_double_q_targets(returns: torch.Tensor, discounts: torch.Tensor, next_q: torch.Tensor) -> torch.Tensor:
    """``y = R + d min(Q_1', Q_2')`` with ``next_q`` of shape (2, batch) (paper, Eq. 10)."""
    return returns + discounts * next_q.min(0).values


def twin_critic_loss(q: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``sum_i mean_b (Q_i(s_b, a_b) - y_b)^2`` for ``q`` of shape (2, batch) (SB3: the sum of both MSEs)."""
    return (q - targets).square().mean(1).sum()


class TD3(BaseAlgorithm):
    """TD3 agent (see the module doc). Example: ``TD3("Pendulum-v1", seed=0).learn(10_000)``."""

    name = "td3"
    config_class = TD3Config
    action_kinds = ("box",)

    def _setup(self, rng: np.random.Generator) -> None:
        config = self.config
        if not np.all(np.isfinite(self.action_space.low) & np.isfinite(self.action_space.high)):
            raise ValueError(f"td3 needs a bounded Box action space, got {self.action_space}")
        self.action_dim = int(np.prod(self.action_space.shape))
        actor_sizes = [self.obs_dim, *config.actor_hidden, self.action_dim]
        critic_sizes = [self.obs_dim + self.action_dim, *config.critic_hidden, 1]
        self.actor = DeterministicActor(self._mlp(actor_sizes, config.actor_density, rng))
        if config.actor_output_scale != 1.0:  # after all draws: the same random stream as the unscaled agent
            scale_output_layer(self.actor.mlp, config.actor_output_scale)
        self.critic = TwinCritic(*(self._mlp(critic_sizes, config.critic_density, rng) for _ in range(2)))
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer, self.critic_optimizer = self._adam(self.actor), self._adam(self.critic)
        self.networks = {
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }
        self.optimizers = {"actor": self.actor_optimizer, "critic": self.critic_optimizer}
        seeds = rng.integers(2**31, size=2)
        self.topologies = {
            "actor": self._topology(
                self.actor, self.actor_optimizer, (self.actor_target,), [actor_sizes], config.actor_density, seeds[0]
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
        self._online = self._actor_params + self._critic_params
        self._targets = list(self.actor_target.parameters()) + list(self.critic_target.parameters())

    # ---- acting -------------------------------------------------------------------------------------------------
    def _explore(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            mean = self.actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        noise = self.rng.normal(0.0, self.config.action_noise, size=mean.shape)
        scaled = np.clip(mean + noise, -1.0, 1.0).astype(np.float32)
        return self._unscale(scaled), scaled

    def _policy(self, obs: torch.Tensor, deterministic: bool) -> np.ndarray:
        if not deterministic:
            return self._explore(obs.numpy())[0]
        return self._unscale(self.actor(obs).numpy())

    # ---- one gradient step --------------------------------------------------------------------------------------
    def _train_step(self) -> None:
        config = self.config
        obs, actions, returns, next_obs, discounts = self._sample(config.batch_size)

        # ---- targets: clipped double Q with target policy smoothing (paper, Eq. 14-15)
        with torch.no_grad():
            noise = torch.randn(actions.shape, generator=self.generator)
            next_actions = smoothed_target_actions(
                self.actor_target(next_obs),
                noise,
                noise_std=config.target_policy_noise,
                noise_clip=config.target_noise_clip,
            )
            targets = clipped_double_q_targets(returns, discounts, self.critic_target(next_obs, next_actions))

        # ---- critic loss: both critics regress on the same target
        critic_loss = twin_critic_loss(self.critic(obs, actions), targets)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._critic_params, config.max_grad_norm)
        adam_step(self.critic_optimizer)
        changed = self.topologies["critic"].step(self.num_timesteps)
        self._losses["critic_loss"] = critic_loss.detach()

        # ---- actor loss: delayed, every policy_delay critic steps (the count includes this step)
        if (self.n_updates + 1) % config.policy_delay == 0:
            for p in self._critic_params:  # no critic weight gradients in the actor's backward pass
                p.requires_grad_(False)
            actor_loss = -self.critic.first(obs, self.actor(obs)).mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            for p in self._critic_params:
                p.requires_grad_(True)
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self._actor_params, config.max_grad_norm)
            adam_step(self.actor_optimizer)
            changed = self.topologies["actor"].step(self.num_timesteps) or changed
            self._losses["actor_loss"] = actor_loss.detach()
            if changed:
                self._refresh_parameters()

            # ---- target update: Polyak averaging of both targets
            polyak_update(self._online, self._targets, config.tau)
        elif changed:
            self._refresh_parameters()
