"""Deterministic evaluation of a policy: ``n`` episodes on a separate environment, with fixed seeds.

Episode ``i`` starts from ``env.reset(seed=seed + i)``, so every evaluation of a run (and of every run with
the same ``seed``) sees the same start states: differences in the returns come from the policy alone.
Evaluation never touches the training environment, the agent's random generators or its replay buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np


class Policy(Protocol):
    def predict(self, observation: Any, deterministic: bool = True) -> tuple[Any, Any]: ...


@dataclass(frozen=True)
class Evaluation:
    """Returns and lengths of the evaluation episodes, in episode order."""

    returns: tuple[float, ...]
    lengths: tuple[int, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0), as SB3's ``evaluate_policy`` reports it."""
        return float(np.std(self.returns))

    def row(self) -> dict[str, float]:
        """The history columns of this evaluation."""
        return {
            "return_mean": self.mean,
            "return_std": self.std,
            "return_min": float(np.min(self.returns)),
            "return_max": float(np.max(self.returns)),
            "length_mean": float(np.mean(self.lengths)),
        }


def evaluate_policy(
    policy: Policy,
    env: gym.Env,
    *,
    episodes: int = 10,
    seed: int = 0,
    deterministic: bool = True,
    max_steps: int = 1_000_000,
) -> Evaluation:
    """Play ``episodes`` episodes of ``policy`` on ``env`` (episode i from ``reset(seed=seed + i)``).

    ``max_steps`` bounds an episode of an environment without a time limit (a safety net, not a setting).
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
    returns, lengths = [], []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, length, done = 0.0, 0, False
        while not done and length < max_steps:
            action, _ = policy.predict(observation, deterministic=deterministic)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            length += 1
            done = terminated or truncated
        if not math.isfinite(total):
            raise FloatingPointError(f"evaluation episode {episode} has a non-finite return {total}")
        returns.append(total)
        lengths.append(length)
    return Evaluation(tuple(returns), tuple(lengths))
