"""The table of RL algorithms: name -> class and the action-space kinds it supports.

Adding an algorithm touches its own module and one line here. :func:`make_agent` is what the CLI and the
run folders call: it checks the name, the environment's action space and the densities, each failing
with a one-line error that names the argument and the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from evosparse.rl.base import BaseAlgorithm
from evosparse.rl.config import AlgoConfig
from evosparse.rl.dqn import DQN
from evosparse.rl.sac import SAC
from evosparse.rl.td3 import TD3


@dataclass(frozen=True)
class AlgorithmEntry:
    cls: type[BaseAlgorithm]
    action_kinds: tuple[str, ...]
    paper: str

    @property
    def config_class(self) -> type[AlgoConfig]:
        return self.cls.config_class


ALGORITHMS: dict[str, AlgorithmEntry] = {
    "dqn": AlgorithmEntry(DQN, DQN.action_kinds, "Mnih et al. 2015; van Hasselt et al. 2016 (double DQN)"),
    "td3": AlgorithmEntry(TD3, TD3.action_kinds, "Fujimoto et al. 2018"),
    "sac": AlgorithmEntry(SAC, SAC.action_kinds, "Haarnoja et al. 2018"),
}


def algorithm_class(name: str) -> type[BaseAlgorithm]:
    """The class of algorithm ``name``; ValueError naming the known ones otherwise."""
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}; got {name!r}")
    return ALGORITHMS[name].cls


def make_agent(
    name: str,
    env: gym.Env | gym.vector.VectorEnv | str,
    config: AlgoConfig | None = None,
    *,
    seed: int = 0,
    **overrides: Any,
) -> BaseAlgorithm:
    """``ALGORITHMS[name].cls(env, config, seed=seed, **overrides)`` with the name checked first."""
    return algorithm_class(name)(env, config, seed=seed, **overrides)
