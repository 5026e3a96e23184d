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

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evosparse._config import check_unknown_keys, is_int, is_real, param
from evosparse.nn.activations import ACTIVATIONS
from evosparse.sparse.functional import BACKENDS
from evosparse.topology.schedule import DECAYS

STRATEGIES = ("dense", "static", "set", "rigl", "gmp")
NEW_WEIGHTS = ("zero", "init")


@dataclass(frozen=True)
class AlgoConfig:
    """Fields every off-policy agent shares (replay, optimisation, networks, sparsity)."""

    # ---- optimisation and replay ------------------------------------------------------------------------
    learning_rate: float = param(3e-4, "Adam learning rate of every network")
    buffer_size: int = param(1_000_000, "replay buffer capacity in transitions (all environments together)")
    learning_starts: int = param(100, "environment steps of uniform random actions before the first update")
    batch_size: int = param(256, "transitions per gradient step")
    gamma: float = param(0.99, "discount factor")
    tau: float = param(0.005, "Polyak coefficient of the target update (1.0: hard copy)")
    train_freq: int = param(1, "environment steps (per environment) between two update phases")
    gradient_steps: int = param(1, "gradient steps per update phase")
    n_envs: int = param(1, "parallel environments (gymnasium SyncVectorEnv) when the env is given by id")
    n_step: int = param(1, "n of the n-step returns in the replay buffer (1: one-step TD)")
    max_grad_norm: float | None = param(None, "clip the gradient norm of every network to this (None: no clipping)")
    # ---- networks ---------------------------------------------------------------------------------------
    actor_hidden: tuple[int, ...] = param((256, 256), "hidden layer sizes of the actor")
    critic_hidden: tuple[int, ...] = param((256, 256), "hidden layer sizes of each critic (DQN: the Q-network)")
    activation: str = param("relu", "hidden activation, one of evosparse.nn.ACTIVATIONS")
    backend: str = param("auto", "kernels of the sparse layers: auto, numba or torch")
    # ---- sparsity ---------------------------------------------------------------------------------------
    strategy: str = param("dense", "topology method: dense, static, set, rigl or gmp (dense pruned gradually)")
    actor_density: float = param(1.0, "overall weight density of the actor in (0, 1] (gmp: the final one)")
    critic_density: float = param(1.0, "overall weight density of each critic in (0, 1] (gmp: the final one)")
    update_every: int = param(1000, "environment steps between topology updates (DS-TD3, Graesser et al.: 1000)")
    zeta: float = param(0.05, "fraction of connections rewired per update, in [0, 1) (DS-TD3: 0.05)")
    decay: str = param("constant", "decay of zeta: constant (DS-TD3) or cosine (RigL, Graesser et al.)")
    stop_after: int | None = param(None, "no topology update at or after this environment step (None: never)")
    prune_start: int | None = param(None, "gmp: step of the first pruning event (None: update_every)")
    new_weights: str = param("zero", "value of a regrown SET connection: zero (function unchanged) or init")

    def __post_init__(self) -> None:
        if isinstance(self.actor_hidden, list):
            object.__setattr__(self, "actor_hidden", tuple(self.actor_hidden))
        if isinstance(self.critic_hidden, list):
            object.__setattr__(self, "critic_hidden", tuple(self.critic_hidden))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type in ("float", "float | None") and is_int(value):
                object.__setattr__(self, field.name, float(value))
        self.validate()

    # ---- validation -------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise a one-line ValueError naming the first invalid field, its value and the allowed range."""
        _integer(self, "buffer_size", 1)
        _integer(self, "learning_starts", 0)
        _integer(self, "batch_size", 1)
        _integer(self, "train_freq", 1)
        _integer(self, "gradient_steps", 1)
        _integer(self, "n_envs", 1)
        _integer(self, "n_step", 1)
        _integer(self, "update_every", 1)
        _interval(self, "learning_rate", 0, float("inf"), low_open=True)
        _interval(self, "gamma", 0, 1)
        _interval(self, "tau", 0, 1, low_open=True)
        _interval(self, "actor_density", 0, 1, low_open=True)
        _interval(self, "critic_density", 0, 1, low_open=True)
        _interval(self, "zeta", 0, 1, high_open=True)
        if self.max_grad_norm is not None:
            _interval(self, "max_grad_norm", 0, float("inf"), low_open=True)
        for name in ("actor_hidden", "critic_hidden"):
            value = getattr(self, name)
            if not (isinstance(value, tuple) and value and all(is_int(v) and v >= 1 for v in value)):
                raise ValueError(f"{name} must be one or more positive integers (e.g. 256,256), got {value!r}")
        _choice(self, "activation", ACTIVATIONS)
        _choice(self, "backend", BACKENDS)
        _choice(self, "strategy", STRATEGIES)
        _choice(self, "decay", DECAYS)
        _choice(self, "new_weights", NEW_WEIGHTS)
        if self.stop_after is not None:
            _integer(self, "stop_after", 1)
        if self.prune_start is not None:
            _integer(self, "prune_start", 1)
        if self.strategy == "dense" and (self.actor_density != 1 or self.critic_density != 1):
            raise ValueError(
                f"strategy 'dense' needs actor_density = critic_density = 1, got {self.actor_density} and "
                f"{self.critic_density}; use static, set, rigl or gmp for a sparse agent"
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

    # ---- serialisation ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> AlgoConfig:
        check_unknown_keys(values, cls.field_names(), source=source)
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str, *, source: str = "JSON config") -> AlgoConfig:
        return cls.from_dict(json.loads(text), source=source)

    def replace(self, **changes: Any) -> AlgoConfig:
        check_unknown_keys(changes, self.field_names(), source=f"{type(self).__name__} overrides")
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class DQNConfig(AlgoConfig):
    """DQN (Mnih et al. 2015) with the double-DQN target (van Hasselt et al. 2016). Defaults: SB3's DQN."""

    learning_rate: float = param(1e-4, "Adam learning rate (SB3: 1e-4)")
    batch_size: int = param(32, "transitions per gradient step (SB3: 32)")
    tau: float = param(1.0, "target update coefficient (SB3: 1.0, a hard copy every target_update_interval)")
    train_freq: int = param(4, "environment steps (per environment) between two update phases (SB3: 4)")
    max_grad_norm: float | None = param(10.0, "gradient norm clipping (SB3: 10)")
    critic_hidden: tuple[int, ...] = param((64, 64), "hidden layer sizes of the Q-network (SB3: 64,64)")
    target_update_interval: int = param(10_000, "environment steps between target updates (SB3: 10000)")
    exploration_fraction: float = param(0.1, "fraction of the learn() budget over which epsilon decays (SB3: 0.1)")
    exploration_initial_eps: float = param(1.0, "epsilon at the start (SB3: 1.0)")
    exploration_final_eps: float = param(0.05, "epsilon after the decay (SB3: 0.05)")
    double_q: bool = param(True, "double-DQN target: online argmax, target value (SB3: False, the max of the target)")

    def validate(self) -> None:
        super().validate()
        _integer(self, "target_update_interval", 1)
        _interval(self, "exploration_fraction", 0, 1, low_open=True)
        _interval(self, "exploration_initial_eps", 0, 1)
        _interval(self, "exploration_final_eps", 0, 1)
        _boolean(self, "double_q")


@dataclass(frozen=True)
class TD3Config(AlgoConfig):
    """TD3 (Fujimoto et al. 2018). Defaults: SB3's TD3, with the paper's Gaussian exploration noise."""

    learning_rate: float = param(1e-3, "Adam learning rate of actor and critics (SB3, paper: 1e-3)")
    policy_delay: int = param(2, "critic updates per actor and target update (paper: 2)")
    target_policy_noise: float = param(0.2, "std of the target policy smoothing noise, in [-1, 1] units (paper: 0.2)")
    target_noise_clip: float = param(0.5, "clip of the smoothing noise (paper: 0.5)")
    action_noise: float = param(0.1, "std of the Gaussian exploration noise in [-1, 1] units (paper: 0.1; SB3: none)")

    def validate(self) -> None:
        super().validate()
        _integer(self, "policy_delay", 1)
        for name in ("target_policy_noise", "target_noise_clip", "action_noise"):
            _interval(self, name, 0, float("inf"))


@dataclass(frozen=True)
class SACConfig(AlgoConfig):
    """SAC (Haarnoja et al. 2018) with automatic entropy tuning. Defaults: SB3's SAC."""

    learning_rate: float = param(3e-4, "Adam learning rate of actor, critics and temperature (SB3, paper: 3e-4)")
    alpha_init: float = param(1.0, "initial entropy temperature alpha (SB3 'auto': 1.0)")
    autotune: bool = param(True, "learn alpha towards target_entropy (SB3 ent_coef='auto')")
    target_entropy: float | None = param(None, "entropy target of the alpha loss (None: -|A|, the paper's)")
    target_update_interval: int = param(1, "gradient steps between target updates (SB3: 1)")

    def validate(self) -> None:
        super().validate()
        _interval(self, "alpha_init", 0, float("inf"), low_open=True)
        _boolean(self, "autotune")
        _integer(self, "target_update_interval", 1)
        if self.target_entropy is not None and not is_real(self.target_entropy):
            raise ValueError(f"target_entropy must be a finite number or None, got {self.target_entropy!r}")


# ---- checks (one line, naming field, value and allowed range) ------------------------------------------------
def _integer(config: AlgoConfig, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if not (is_int(value) and value >= minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _interval(
    config: AlgoConfig, name: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> None:
    value = getattr(config, name)
    ok = (
        is_real(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def _choice(config: AlgoConfig, name: str, options: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")


def _boolean(config: AlgoConfig, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
