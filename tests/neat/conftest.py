"""Fixtures of the NEAT tests: hand-made genomes and genomes grown by a few generations of evolution."""

from __future__ import annotations

import numpy as np
import pytest

from evosparse.neat import Genome, NeatConfig, Population


def genome_from(connections, *, hidden=(), n_outputs=1, key=0, biases=None, activation=0) -> Genome:
    """A genome from rows (innovation, source, target, weight[, enabled]); output nodes 0..n_outputs-1."""
    node_ids = np.array(list(range(n_outputs)) + sorted(hidden), dtype=np.int64)
    rows = sorted(connections)
    return Genome(
        key,
        node_ids=node_ids,
        biases=np.zeros(len(node_ids)) if biases is None else np.asarray(biases, dtype=np.float64),
        activations=np.full(len(node_ids), activation, dtype=np.int8),
        innovations=[row[0] for row in rows],
        sources=[row[1] for row in rows],
        targets=[row[2] for row in rows],
        weights=[row[3] for row in rows],
        enabled=[row[4] if len(row) > 4 else True for row in rows],
    )


def random_fitness(seed: int):
    """A fitness function that scores genomes at random (reproducibly): evolution without a task."""
    rng = np.random.default_rng(seed)

    def fitness(genomes, config) -> None:
        for _, genome in genomes:
            genome.fitness = float(rng.random())

    return fitness


def evolve(config: NeatConfig, *, seed: int, generations: int) -> Population:
    population = Population(config, seed=seed)
    population.run(random_fitness(seed), generations)
    return population


@pytest.fixture
def grown_config() -> NeatConfig:
    """Structural mutations made frequent, so a few generations grow varied topologies."""
    return NeatConfig(
        n_inputs=3, n_outputs=2, population_size=40, add_node_rate=0.3, add_connection_rate=0.4, enable_toggle_rate=0.1
    )


@pytest.fixture
def make_genome():
    """``genome_from``: a genome from rows (innovation, source, target, weight[, enabled])."""
    return genome_from


@pytest.fixture
def grow():
    """``evolve(config, seed=, generations=)``: a population after that many generations of random fitness."""
    return evolve
