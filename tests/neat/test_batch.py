"""The population-wide kernels agree with the per-genome reference functions and keep genomes valid."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evosparse.neat import InnovationTracker, NeatConfig, compatibility_distance
from evosparse.neat.batch import flatten, unflatten
from evosparse.neat.mutation import creates_cycle
from evosparse.neat.reproduction import mutate_all
from evosparse.neat.species import SpeciesSet


def reference_speciation(genomes, representatives, config, threshold):
    """The paper's rule, written out: first species whose representative is closer than the threshold."""
    representatives = list(representatives)
    assignment = []
    for genome in genomes:
        for index, representative in enumerate(representatives):
            if compatibility_distance(genome, representative, config) < threshold:
                assignment.append(index)
                break
        else:
            assignment.append(len(representatives))
            representatives.append(genome)
    return assignment


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), threshold=st.sampled_from([0.5, 1.5, 3.0]))
def test_batched_speciation_equals_the_rule(grow, grown_config, seed, threshold):
    population = grow(grown_config, seed=seed, generations=6)
    genomes = list(population.genomes.values())
    representatives = [s.representative for s in population.species.species.values()]
    species_set = SpeciesSet(threshold=threshold)
    species_set.species = {s.key: s for s in population.species.species.values()}
    species_set.next_key = population.species.next_key
    species_set.speciate(population.genomes, 99, grown_config, np.random.default_rng(0))
    expected = reference_speciation(genomes, representatives, grown_config, threshold)
    ordered = list(species_set.species.values())  # old species first, then new ones in order of founding
    got = []
    for genome in genomes:
        got.append(next(i for i, s in enumerate(ordered) if genome.key in s.members))
    # species that lost all members are dropped; compare the partitions
    assert _partition(got) == _partition(expected)


def _partition(labels):
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    return sorted(groups.values())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), feed_forward=st.booleans())
def test_mutate_all_keeps_genomes_valid(grow, seed, feed_forward):
    config = NeatConfig(
        n_inputs=3,
        n_outputs=2,
        population_size=30,
        add_node_rate=0.3,
        add_connection_rate=0.5,
        enable_toggle_rate=0.3,
        feed_forward=feed_forward,
    )
    population = grow(config, seed=seed, generations=5)
    parents = list(population.genomes.values())
    tracker = population.tracker
    tracker.new_generation()
    flat = flatten([g.copy() for g in parents])
    elite = np.zeros(flat.n_genomes, dtype=bool)
    elite[0] = True
    children = unflatten(mutate_all(flat, elite, config, tracker, np.random.default_rng(seed)), list(range(30)))
    for parent, child in zip(parents, children):
        child.check()  # sorted unique genes, endpoints exist, one gene per (source, target)
        assert len(child.node_ids) - len(parent.node_ids) in (0, 1)
        assert child.n_connections - parent.n_connections in (0, 1, 2)
        if feed_forward:  # no gene closes a cycle with the others
            for gene in range(child.n_connections):
                rest = child.copy()
                keep = np.arange(child.n_connections) != gene
                rest.sources, rest.targets = child.sources[keep], child.targets[keep]
                assert not creates_cycle(rest, int(child.sources[gene]), int(child.targets[gene]))
    assert children[0] == parents[0].copy(0)  # the elite is untouched


def test_batched_mutation_shares_numbers_for_identical_splits(make_genome):
    config = NeatConfig(n_inputs=1, n_outputs=1, add_node_rate=1.0)
    genomes = [make_genome([(0, -1, 0, 0.5)], key=k) for k in range(5)]
    tracker = InnovationTracker(next_innovation=1, next_node_id=1)
    children = unflatten(
        mutate_all(flatten(genomes), np.zeros(5, dtype=bool), config, tracker, np.random.default_rng(0)), list(range(5))
    )
    for child in children:
        np.testing.assert_array_equal(child.node_ids, [0, 1])
        np.testing.assert_array_equal(child.innovations, [0, 1, 2])
        np.testing.assert_array_equal(child.enabled, [False, True, True])
        np.testing.assert_array_equal(child.weights, [0.5, 1.0, 0.5])  # in: 1, out: the old weight


def test_flatten_reuses_a_generation_and_copies_changed_genomes(grow, grown_config):
    population = grow(grown_config, seed=0, generations=3)
    genomes = list(population.genomes.values())
    assert flatten(genomes) is population._flat
    genomes[3].weights = genomes[3].weights + 1.0  # replaced: must not be served from the old arrays
    flat = flatten(genomes)
    assert flat is not population._flat
    start, stop = flat.connection_ptr[3], flat.connection_ptr[4]
    np.testing.assert_array_equal(flat.weights[start:stop], genomes[3].weights)
