"""Crossover keeps genes aligned by innovation number; the fitter parent gives disjoint and excess genes."""

from __future__ import annotations

import numpy as np
import pytest

from evosparse.neat import NeatConfig, crossover
from evosparse.neat.batch import Flat, crossover_flat, flatten, unflatten


def figure_4_parents(make_genome):
    # Paper, Figure 4: parent 1 (fitter here) has genes 1-5 and 8, parent 2 has 1-7, 9 and 10.
    parent_1 = make_genome(
        [(1, -1, 0, 1.0), (2, -2, 0, 2.0, False), (3, -3, 0, 3.0), (4, -2, 5, 4.0), (5, 5, 0, 5.0), (8, -1, 5, 8.0)],
        hidden=[5],
        key=1,
    )
    parent_2 = make_genome(
        [
            (1, -1, 0, -1.0),
            (2, -2, 0, -2.0, False),
            (3, -3, 0, -3.0),
            (4, -2, 5, -4.0),
            (5, 5, 0, -5.0, False),
            (6, 5, 6, -6.0),
            (7, 6, 0, -7.0),
            (9, -3, 5, -9.0),
            (10, -1, 6, -10.0),
        ],
        hidden=[5, 6],
        key=2,
    )
    parent_1.fitness, parent_2.fitness = 2.0, 1.0
    return parent_1, parent_2


def test_child_has_the_fitter_parents_genes_aligned(make_genome):
    parent_1, parent_2 = figure_4_parents(make_genome)
    config = NeatConfig(n_inputs=3)
    for seed in range(20):
        child = crossover(parent_1, parent_2, 7, config, np.random.default_rng(seed))
        child.check()
        np.testing.assert_array_equal(child.innovations, parent_1.innovations)  # 6 and 7, 9, 10 are not inherited
        np.testing.assert_array_equal(child.sources, parent_1.sources)
        np.testing.assert_array_equal(child.targets, parent_1.targets)
        np.testing.assert_array_equal(child.node_ids, parent_1.node_ids)
        # matching genes 1-5 take either parent's weight at the same innovation; gene 8 is parent 1's
        for gene in range(5):
            assert abs(child.weights[gene]) == gene + 1
        assert child.weights[5] == 8.0
        assert child.enabled[0] and child.enabled[2] and child.enabled[5]  # enabled in both / only in parent 1


def test_matching_genes_mix_and_disabled_genes_mostly_stay_disabled(make_genome):
    parent_1, parent_2 = figure_4_parents(make_genome)
    config = NeatConfig(n_inputs=3, disable_inherited_rate=0.75)
    children = [crossover(parent_1, parent_2, 7, config, np.random.default_rng(seed)) for seed in range(400)]
    from_parent_2 = np.mean([child.weights[0] < 0 for child in children])
    assert 0.4 < from_parent_2 < 0.6
    disabled = np.mean([not child.enabled[4] for child in children])  # gene 5: disabled in parent 2 only
    assert 0.65 < disabled < 0.85


def test_equal_fitness_takes_the_smaller_genomes_structure(make_genome):
    parent_1, parent_2 = figure_4_parents(make_genome)
    parent_1.fitness = parent_2.fitness = 1.0
    child = crossover(parent_2, parent_1, 7, NeatConfig(n_inputs=3), np.random.default_rng(0))
    np.testing.assert_array_equal(child.innovations, parent_1.innovations)


@pytest.mark.parametrize("mix", [True, False])
def test_batched_crossover_keeps_the_same_alignment(make_genome, mix):
    parent_1, parent_2 = figure_4_parents(make_genome)
    flat = flatten([parent_1, parent_2])
    out = crossover_flat(
        flat.node_ptr,
        flat.node_ids,
        flat.biases,
        flat.activations,
        flat.connection_ptr,
        flat.innovations,
        flat.sources,
        flat.targets,
        flat.weights,
        flat.enabled,
        np.array([0]),
        np.array([1]),
        np.array([mix]),
        np.random.default_rng(1).random(64),
        0.75,
    )
    (child,) = unflatten(Flat(*out), [9])
    child.check()
    np.testing.assert_array_equal(child.innovations, parent_1.innovations)
    np.testing.assert_array_equal(np.abs(child.weights), np.abs(parent_1.weights))
    if not mix:  # a copy
        np.testing.assert_array_equal(child.weights, parent_1.weights)
        np.testing.assert_array_equal(child.enabled, parent_1.enabled)
