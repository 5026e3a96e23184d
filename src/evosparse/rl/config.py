"""Frozen, validated settings of the RL agents: one dataclass per algorithm, shared network/sparsity fields.

Defaults are the papers' and Stable-Baselines3's (SB3 2.x), so that a dense agent can be compared with SB3
at equal settings; where they differ the field doc says which one we follow. The network and sparsity
fields are shared by every algorithm:

* ``actor_hidden`` / ``critic_hidden``: hidden sizes (DQN's Q-network is its "critic");
* ``actor_density`` / ``critic_density``: 1.0 = a dense ``nn.Linear`` network (``DenseMLP``) under the
  ``dense`` and ``gmp`` strategies, otherwise a truly sparse ``SparseMLP`` with that overall density,
  spread over the layers by the Erdos-Renyi rule (small layers denser, as in RigL and Graesser et al.);
* ``strategy``: ``dense``, ``static`` (fixed random topology), ``set``, ``rigl`` (dynamic sparse
  training) or ``gmp`` (a dense agent pruned to the target densities by gradual magnitude pruning);
* the topology schedule: every ``update_every`` environment steps, a fraction ``zeta`` (``decay``
  constant or cosine) of each sparse layer is rewired, never at or after ``stop_after`` steps.
  DS-TD3 (Sokar et al. 2022): set, zeta 0.05 every 1000 steps, stopping before the end;
  Graesser et al. (2022): rigl/set, cosine decay from 0.1 every 1000 steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from evosparse._config import Config, at_least, between, non_negative, one_of, param, positive, sizes
from evosparse.nn.activations import ACTIVATIONS
from evosparse.sparse.functional import BACKENDS
from evosparse.topology.schedule import DECAYS

STRATEGIES = ("dense", "static", "set", "rigl", "gmp")
NEW_WEIGHTS = ("zero", "init")
_UNIT = between(0, 1)


def _actor_output_scale():
    """The field of the agents with an actor (a new dataclass field per class)."""
    return param(
        1.0,
        "factor on the initial weights and biases of the actor's output layer (1: PyTorch's init; small: the policy "
        "starts at the centre of the action space, e.g. a residual agent at its base controller)",
        rule=between(0, 1, low_open=True),
    )


_DENSITY = between(0, 1, low_open=True)


@dataclass(frozen=True)
class AlgoConfig(Config):
    """Fields every off-policy agent shares (replay, optimisation, networks, sparsity)."""

    # ---- optimisation and replay ------------------------------------------------------------------------
    learning_rate: float = param(3e-4, "Adam learning rate of every network", rule=positive)
    buffer_size: int = param(
        1_000_000, "replay buffer capacity in transitions (all environments together)", rule=at_least(1)
    )
    learning_starts: int = param(
        100, "environment steps of uniform random actions before the first update", rule=at_least(0)
    )
    batch_size: int = param(256, "transitions per gradient step", rule=at_least(1))
    gamma: float = param(0.99, "discount factor", rule=_UNIT)
    tau: float = param(
        0.005, "Polyak coefficient of the target update (1.0: hard copy)", rule=between(0, 1, low_open=True)
    )
    train_freq: int = param(1, "environment steps (per environment) between two update phases", rule=at_least(1))
    gradient_steps: int = param(1, "gradient steps per update phase", rule=at_least(1))
    n_envs: int = param(
        1, "parallel environments (gymnasium SyncVectorEnv) when the env is given by id", rule=at_least(1)
    )
    n_step: int = param(1, "n of the n-step returns in the replay buffer (1: one-step TD)", rule=at_least(1))
    max_grad_norm: float | None = param(
        None, "clip the gradient norm of every network to this (None: no clipping)", rule=positive
    )
    # ---- inputs and rewards -----------------------------------------------------------------------------
    reward_period: int | None = param(
        None,
        "the environment pays the summed reward of each block of this many steps (from an episode's start) at "
        "once: learn per-step rewards from the block sums (return decomposition, evosparse.rl.decomposition; "
        "None: learn from the rewards as paid)",
        rule=at_least(1),
    )
    normalize_observations: bool = param(
        False, "scale observations by running mean and std (evosparse.rl.normalize; SB3 VecNormalize)"
    )
    observation_clip: float = param(10.0, "clip of the normalised observations, in standard deviations", rule=positive)
    reward_scale: float = param(
        1.0, "factor on the rewards the agent learns from (reported returns stay unscaled)", rule=positive
    )
    # ---- networks ---------------------------------------------------------------------------------------
    actor_hidden: tuple[int, ...] = param((256, 256), "hidden layer sizes of the actor", rule=sizes)
    critic_hidden: tuple[int, ...] = param(
        (256, 256), "hidden layer sizes of each critic (DQN: the Q-network)", rule=sizes
    )
    activation: str = param("relu", "hidden activation", rule=one_of(ACTIVATIONS))
    backend: str = param("auto", "kernels of the sparse layers", rule=one_of(BACKENDS))
    # ---- sparsity ---------------------------------------------------------------------------------------
    strategy: str = param(
        "dense", "topology method (gmp: a dense agent pruned gradually to the densities)", rule=one_of(STRATEGIES)
    )
    actor_density: float = param(1.0, "overall weight density of the actor (gmp: the final one)", rule=_DENSITY)
    critic_density: float = param(1.0, "overall weight density of each critic (gmp: the final one)", rule=_DENSITY)
    update_every: int = param(
        1000, "environment steps between topology updates (DS-TD3, Graesser et al.: 1000)", rule=at_least(1)
    )
    zeta: float = param(
        0.05, "fraction of connections rewired per update (DS-TD3: 0.05)", rule=between(0, 1, high_open=True)
    )
    decay: str = param(
        "constant", "decay of zeta: constant (DS-TD3) or cosine (RigL, Graesser et al.)", rule=one_of(DECAYS)
    )
    stop_after: int | None = param(
        None, "no topology update at or after this environment step (None: never)", rule=at_least(1)
    )
    prune_start: int | None = param(None, "gmp: step of the first pruning event (None: update_every)", rule=at_least(1))
    new_weights: str = param(
        "zero", "value of a regrown SET connection: zero (function unchanged) or init", rule=one_of(NEW_WEIGHTS)
    )

    def validate(self) -> None:
        """Rules between fields (one-line ValueErrors naming the fields and values)."""
        if self.strategy == "dense" and (self.actor_density != 1 or self.critic_density != 1):
            raise ValueError(
                f"strategy 'dense' needs actor_density = critic_density = 1, got {self.actor_density} and "
                f"{self.critic_density}; use static, set, rigl or gmp for a sparse agent"
            )
        if self.reward_period is not None and self.n_step != 1:
            raise ValueError(
                f"reward_period needs n_step = 1 (the learned per-step reward replaces the paid one), got n_step "
                f"{self.n_step}"
            )
        if self.decay == "cosine" and self.stop_after is None:
            raise ValueError("decay 'cosine' needs stop_after (the step where the rewired fraction reaches 0)")
        if self.strategy == "gmp":
            if self.stop_after is None:
                raise ValueError("strategy 'gmp' needs stop_after (the step where pruning reaches the target density)")
            start = self.prune_start or self.update_every
            if start % self.update_every or start >= self.stop_after:
                raise ValueError(
                    f"prune_start must be a multiple of update_every ({self.update_every}) below stop_after "
                    f"({self.stop_after}), got {start}"
                )

    @property
    def sparse(self) -> bool:
        """True if the agent's networks are (or end) truly sparse."""
        return self.strategy != "dense"

    @classmethod
    def field_names(cls) -> list[str]:
        return cls.flat_names()


@dataclass(frozen=True)
class DQNConfig(AlgoConfig):
    """DQN (Mnih et al. 2015) with the double-DQN target (van Hasselt et al. 2016). Defaults: SB3's DQN."""

    learning_rate: float = param(1e-4, "Adam learning rate (SB3: 1e-4)", rule=positive)
    batch_size: int = param(32, "transitions per gradient step (SB3: 32)", rule=at_least(1))
    tau: float = param(
        1.0,
        "target update coefficient (SB3: 1.0, a hard copy every target_update_interval)",
        rule=between(0, 1, low_open=True),
    )
    train_freq: int = param(
        4, "environment steps (per environment) between two update phases (SB3: 4)", rule=at_least(1)
    )
    max_grad_norm: float | None = param(10.0, "gradient norm clipping (SB3: 10)", rule=positive)
    critic_hidden: tuple[int, ...] = param((64, 64), "hidden layer sizes of the Q-network (SB3: 64,64)", rule=sizes)
    target_update_interval: int = param(
        10_000, "environment steps between target updates (SB3: 10000)", rule=at_least(1)
    )
    exploration_fraction: float = param(
        0.1, "fraction of the learn() budget over which epsilon decays (SB3: 0.1)", rule=between(0, 1, low_open=True)
    )
    exploration_initial_eps: float = param(1.0, "epsilon at the start (SB3: 1.0)", rule=_UNIT)
    exploration_final_eps: float = param(0.05, "epsilon after the decay (SB3: 0.05)", rule=_UNIT)
    double_q: bool = param(True, "double-DQN target: online argmax, target value (SB3: False, the target's max)")


@dataclass(frozen=True)
class TD3Config(AlgoConfig):
    """TD3 (Fujimoto et al. 2018). Defaults: SB3's TD3, with the paper's Gaussian exploration noise."""

    learning_rate: float = param(1e-3, "Adam learning rate of actor and critics (SB3, paper: 1e-3)", rule=positive)
    policy_delay: int = param(2, "critic updates per actor and target update (paper: 2)", rule=at_least(1))
    target_policy_noise: float = param(
        0.2, "std of the target policy smoothing noise, in [-1, 1] action units (paper: 0.2)", rule=non_negative
    )
    target_noise_clip: float = param(0.5, "clip of the smoothing noise (paper: 0.5)", rule=non_negative)
    action_noise: float = param(
        0.1, "std of the Gaussian exploration noise in [-1, 1] action units (paper: 0.1; SB3: none)", rule=non_negative
    )
    actor_output_scale: float = _actor_output_scale()


@dataclass(frozen=True)
class SACConfig(AlgoConfig):
    """SAC (Haarnoja et al. 2018) with automatic entropy tuning. Defaults: SB3's SAC."""

    learning_rate: float = param(
        3e-4, "Adam learning rate of actor, critics and temperature (SB3, paper: 3e-4)", rule=positive
    )
    alpha_init: float = param(1.0, "initial entropy temperature alpha (SB3 'auto': 1.0)", rule=positive)
    autotune: bool = param(True, "learn alpha towards target_entropy (SB3 ent_coef='auto')")
    target_entropy: float | None = param(None, "entropy target of the alpha loss (None: -|A|, the paper's)")
    target_update_interval: int = param(1, "gradient steps between target updates (SB3: 1)", rule=at_least(1))
    actor_output_scale: float = _actor_output_scale()
