"""Compatibility distance (paper eq. 1) on hand-made genomes, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evosparse.neat import NeatConfig, compatibility_distance
from evosparse.neat.distance import gene_counts


def test_paper_figure_4_genomes(make_genome):
    # Parent 1 has genes 1-5 and 8; parent 2 has 1-7, 9, 10 (paper, Figure 4).
    parent_1 = make_genome([(i, -1, 0, w) for i, w in zip([1, 2, 3, 4, 5, 8], [0.5, -1.0, 2.0, 0.0, 1.0, 3.0])])
    parent_2 = make_genome(
        [(i, -2, 0, w) for i, w in zip([1, 2, 3, 4, 5, 6, 7, 9, 10], [1.0, -1.0, 1.0, 0.5, 1.0, 0, 0, 0, 0])]
    )
    # matching 1-5; disjoint 8 (in 1) and 6, 7 (in 2) -> D = 3; excess 9, 10 -> E = 2;
    # W = (|0.5-1| + 0 + |2-1| + |0-0.5| + 0) / 5 = 2.0 / 5 = 0.4
    assert gene_counts(parent_1.innovations, parent_1.weights, parent_2.innovations, parent_2.weights) == (2, 3, 5, 2.0)
    config = NeatConfig(excess_coefficient=1.0, disjoint_coefficient=2.0, weight_coefficient=0.5)
    # both have fewer than 20 genes: N = 1 -> 1*2 + 2*3 + 0.5*0.4 = 8.2
    assert compatibility_distance(parent_1, parent_2, config) == pytest.approx(8.2)
    # with N normalisation on (small_genome_size 0): N = 9 genes of the larger genome
    normalised = config.replace(small_genome_size=0)
    assert compatibility_distance(parent_1, parent_2, normalised) == pytest.approx(2 / 9 + 6 / 9 + 0.2)


def test_no_matching_genes_means_no_weight_term(make_genome):
    a = make_genome([(1, -1, 0, 5.0)])
    b = make_genome([(2, -2, 0, -5.0)])
    assert compatibility_distance(a, b, NeatConfig()) == pytest.approx(1.0 + 1.0)  # 1 disjoint + 1 excess


def test_empty_genomes_are_identical(make_genome):
    assert compatibility_distance(make_genome([]), make_genome([]), NeatConfig()) == 0.0


@st.composite
def gene_lists(draw):
    innovations = sorted(draw(st.sets(st.integers(0, 40), max_size=25)))
    weights = draw(st.lists(st.floats(-5, 5), min_size=len(innovations), max_size=len(innovations)))
    return [(i, -1, 0, w) for i, w in zip(innovations, weights)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(genes_a=gene_lists(), genes_b=gene_lists())
def test_symmetric_non_negative_and_zero_to_itself(make_genome, genes_a, genes_b):
    a, b = make_genome(genes_a), make_genome(genes_b)
    config = NeatConfig()
    assert compatibility_distance(a, b, config) == pytest.approx(compatibility_distance(b, a, config))
    assert compatibility_distance(a, b, config) >= 0
    assert compatibility_distance(a, a, config) == 0
    excess, disjoint, matching, _ = gene_counts(a.innovations, a.weights, b.innovations, b.weights)
    assert 2 * matching + excess + disjoint == len(genes_a) + len(genes_b)
    np.testing.assert_equal(matching, len(set(a.innovations.tolist()) & set(b.innovations.tolist())))
