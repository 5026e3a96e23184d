"""XOR, the NEAT paper's first benchmark: fitness (4 - sum of errors)^2, solved when all four patterns
are on the right side of 0.5.

Paper: Stanley & Miikkulainen 2002, Section 4.1 (the original C++ code's fitness and success test).
"""

from __future__ import annotations

import numpy as np

from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome
from evosparse.neat.phenotype import Networks

INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
TARGETS = np.array([0.0, 1.0, 1.0, 0.0])


class XorTask:
    """Fitness function and success test of XOR; all genomes of a generation evaluated in one call."""

    name = "xor"
    n_inputs, n_outputs = 2, 1
    max_fitness = 16.0

    def outputs(self, genomes: list[Genome], config: NeatConfig) -> np.ndarray:
        """(n_genomes, 4) outputs on the four patterns (feed-forward, or 1 + depth recurrent steps)."""
        networks = Networks.from_genomes(genomes, config)
        if config.feed_forward:
            return networks.activate(INPUTS)[:, :, 0]
        outputs = np.zeros((len(genomes), 4))
        for pattern, inputs in enumerate(INPUTS):  # recurrent: let the signal settle, as neat-python's example
            networks.reset()
            for _ in range(5):
                out = networks.step(np.tile(inputs, (len(genomes), 1)))
            outputs[:, pattern] = out[:, 0]
        return outputs

    def __call__(self, genomes: list[tuple[int, Genome]], config: NeatConfig) -> None:
        outputs = self.outputs([genome for _, genome in genomes], config)
        errors = np.abs(outputs - TARGETS).sum(axis=1)
        for (_, genome), error in zip(genomes, errors.tolist()):
            genome.fitness = (4.0 - error) ** 2

    def solution(self, genomes: list[Genome], config: NeatConfig) -> Genome | None:
        """The fittest genome that classifies all four patterns, else None."""
        outputs = self.outputs(genomes, config)
        correct = np.all((outputs >= 0.5) == (TARGETS >= 0.5), axis=1)
        if not correct.any():
            return None
        candidates = np.flatnonzero(correct)
        return genomes[int(candidates[np.argmax([genomes[i].fitness for i in candidates])])]
