"""Historical markings: identical structural mutations within one generation share their numbers."""

from __future__ import annotations

import numpy as np

from evosparse.neat import InnovationTracker, NeatConfig, Population
from evosparse.neat.genome import initial_genome
from evosparse.neat.mutation import add_connection, add_node
from evosparse.neat.tasks.xor import XorTask


def test_same_connection_in_one_generation_gets_one_number_a_new_generation_a_new_one():
    tracker = InnovationTracker()
    first = tracker.connection(-1, 3)
    assert tracker.connection(-1, 3) == first
    assert tracker.connection(-2, 3) != first
    tracker.new_generation()
    assert tracker.connection(-1, 3) not in (first, first + 1)


def test_identical_splits_in_one_generation_share_node_and_innovations():
    config = NeatConfig(n_inputs=1, n_outputs=1)
    tracker = InnovationTracker(next_node_id=1)
    rng = np.random.default_rng(0)
    a = initial_genome(0, config, tracker, rng)
    b = initial_genome(1, config, tracker, rng)  # one connection each: -1 -> 0, the same gene
    assert add_node(a, config, tracker, rng) and add_node(b, config, tracker, rng)
    np.testing.assert_array_equal(a.node_ids, b.node_ids)
    np.testing.assert_array_equal(a.innovations, b.innovations)
    tracker.new_generation()
    c = initial_genome(2, config, tracker, rng)
    add_node(c, config, tracker, rng)
    assert c.node_ids[-1] != a.node_ids[-1] and not set(c.innovations[1:]) & set(a.innovations[1:])


def test_identical_new_connections_in_one_generation_share_the_number():
    config = NeatConfig(n_inputs=2, n_outputs=1, initial_connection="none")
    tracker = InnovationTracker(next_node_id=1)
    genomes = [initial_genome(k, config, tracker, np.random.default_rng(k)) for k in range(20)]
    for genome in genomes:  # only -1 -> 0 and -2 -> 0 are possible in feed-forward mode (and 0 -> 0 is a loop)
        add_connection(genome, config, tracker, np.random.default_rng(genome.key))
    numbers: dict[tuple[int, int], set[int]] = {}
    for genome in genomes:
        for pair, innovation in zip(zip(genome.sources.tolist(), genome.targets.tolist()), genome.innovations.tolist()):
            numbers.setdefault(pair, set()).add(innovation)
    assert len(numbers) == 2 and all(len(found) == 1 for found in numbers.values())


def test_an_innovation_number_always_means_the_same_connection_during_a_run(grown_config, grow):
    population = grow(grown_config, seed=3, generations=12)
    meaning: dict[int, tuple[int, int]] = {}
    for genome in population.genomes.values():
        genome.check()
        for innovation, pair in zip(genome.innovations.tolist(), zip(genome.sources.tolist(), genome.targets.tolist())):
            assert meaning.setdefault(innovation, pair) == pair


def test_population_shares_numbers_for_the_same_split_in_one_generation():
    # After one generation of XOR with frequent add-node, every hidden node id has exactly one (in, out) pair.
    config = NeatConfig(add_node_rate=0.5, add_connection_rate=0.0, population_size=60)
    population = Population(config, seed=1)
    task = XorTask()
    population.step(task)
    incoming: dict[int, set[int]] = {}
    for genome in population.genomes.values():
        for innovation, target in zip(genome.innovations.tolist(), genome.targets.tolist()):
            if target >= config.n_outputs:
                incoming.setdefault(target, set()).add(innovation)
    assert incoming, "some genome should have split a connection"
    assert all(len(innovations) == 1 for innovations in incoming.values())
    n_splits = sum(len(g.node_ids) - 1 for g in population.genomes.values())
    assert len(incoming) < n_splits  # two connections to split: several genomes must share a node
