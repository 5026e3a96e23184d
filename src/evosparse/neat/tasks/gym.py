"""Any gymnasium environment by id: every genome of a generation plays in its own copy of the
environment; each tick, one batched network step for all genomes, then every live environment steps.

Observations are flattened into the inputs. Actions: ``Discrete(n)`` takes the argmax of n outputs
(or output >= 0.5 for one output and n = 2); a ``Box`` takes the outputs mapped from the sigmoid's
[0, 1] onto [low, high] (or as they are when unbounded). Fitness is the mean return over ``episodes``
episodes, all genomes starting from the same seeds ``seed, seed + 1, ...``; a genome solves the task
when its fitness reaches ``reward_threshold`` (default: the environment's registered threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome
from evosparse.neat.phenotype import Networks


def _gymnasium():
    try:
        import gymnasium
    except ImportError:  # pragma: no cover - gymnasium is a dependency
        raise ImportError("the gymnasium tasks need gymnasium: pip install gymnasium") from None
    return gymnasium


@dataclass
class GymTask:
    """A gymnasium environment as a NEAT fitness function."""

    env_id: str
    episodes: int = 1
    seed: int = 0
    max_steps: int | None = None
    reward_threshold: float | None = None

    def __post_init__(self) -> None:
        gymnasium = _gymnasium()
        try:
            env = gymnasium.make(self.env_id)
        except gymnasium.error.Error as error:
            raise ValueError(f"unknown gymnasium environment id {self.env_id!r}: {error}") from None
        self.observation_space, self.action_space = env.observation_space, env.action_space
        if self.reward_threshold is None and env.spec is not None:
            self.reward_threshold = env.spec.reward_threshold
        env.close()
        spaces = gymnasium.spaces
        self.n_inputs = int(spaces.flatdim(self.observation_space))
        if isinstance(self.action_space, spaces.Discrete):
            self.n_outputs = int(self.action_space.n)
        elif isinstance(self.action_space, spaces.Box):
            self.n_outputs = int(np.prod(self.action_space.shape))
        else:
            raise ValueError(f"{self.env_id}: action space {self.action_space} is neither Discrete nor Box")
        self.name = self.env_id

    def actions(self, outputs: np.ndarray) -> np.ndarray:
        spaces = _gymnasium().spaces
        if isinstance(self.action_space, spaces.Discrete):
            if outputs.shape[1] == 1:
                return (outputs[:, 0] >= 0.5).astype(np.int64) + self.action_space.start
            return outputs.argmax(axis=1) + self.action_space.start
        low, high = self.action_space.low.ravel(), self.action_space.high.ravel()
        bounded = np.isfinite(low) & np.isfinite(high)
        mapped = np.where(bounded, low + np.clip(outputs, 0.0, 1.0) * (high - low), outputs)
        return mapped.reshape(len(outputs), *self.action_space.shape).astype(self.action_space.dtype)

    def returns(self, genomes: list[Genome], config: NeatConfig) -> np.ndarray:
        """Mean return of each genome; one batched network step per tick, then each live environment steps."""
        gymnasium = _gymnasium()
        networks = Networks.from_genomes(genomes, config)
        n = len(genomes)
        envs = [gymnasium.make(self.env_id) for _ in range(n)]
        total = np.zeros(n)
        try:
            for episode in range(self.episodes):
                observations = np.stack(
                    [np.asarray(env.reset(seed=self.seed + episode)[0], dtype=np.float64).ravel() for env in envs]
                )
                networks.reset()
                alive = list(range(n))
                steps = 0
                while alive and (self.max_steps is None or steps < self.max_steps):
                    actions = self.actions(networks.step(observations))
                    still_alive = []
                    for g in alive:
                        observation, reward, terminated, truncated, _ = envs[g].step(actions[g])
                        observations[g] = np.asarray(observation, dtype=np.float64).ravel()
                        total[g] += reward
                        if not (terminated or truncated):
                            still_alive.append(g)
                    alive = still_alive
                    steps += 1
        finally:
            for env in envs:
                env.close()
        return total / self.episodes

    def __call__(self, genomes: list[tuple[int, Genome]], config: NeatConfig) -> None:
        for (_, genome), value in zip(genomes, self.returns([g for _, g in genomes], config).tolist()):
            genome.fitness = value

    def solution(self, genomes: list[Genome], config: NeatConfig) -> Genome | None:
        best = max(genomes, key=lambda g: g.fitness)
        if self.reward_threshold is None:
            return None
        return best if best.fitness >= self.reward_threshold else None
