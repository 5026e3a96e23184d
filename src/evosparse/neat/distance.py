"""Compatibility distance delta = c1 E / N + c2 D / N + c3 W (paper, equation 1).

E counts excess genes (innovation beyond the other genome's last), D disjoint genes (the other
mismatches), W is the mean absolute weight difference of matching genes, N the number of genes of the
larger genome, set to 1 when both have fewer than ``small_genome_size`` genes (paper, Section 3.3).
Connection genes only, as in the paper. One merge over the two sorted innovation lists, compiled.

Paper: Stanley & Miikkulainen 2002, Section 3.3, equation (1).
"""

from __future__ import annotations

import numba

from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome


@numba.njit(cache=True)
def gene_counts(innovations_a, weights_a, innovations_b, weights_b):
    """(excess, disjoint, matching, sum of |weight difference| over matching genes) of two sorted lists."""
    i = j = 0
    n_a, n_b = len(innovations_a), len(innovations_b)
    matching = disjoint = 0
    weight_sum = 0.0
    while i < n_a and j < n_b:
        if innovations_a[i] == innovations_b[j]:
            matching += 1
            weight_sum += abs(weights_a[i] - weights_b[j])
            i += 1
            j += 1
        elif innovations_a[i] < innovations_b[j]:
            disjoint += 1
            i += 1
        else:
            disjoint += 1
            j += 1
    excess = (n_a - i) + (n_b - j)  # whatever is left after the shorter history ends
    return excess, disjoint, matching, weight_sum


def compatibility_distance(genome_a: Genome, genome_b: Genome, config: NeatConfig) -> float:
    """delta(a, b) of equation 1 with the config's c1, c2, c3."""
    excess, disjoint, matching, weight_sum = gene_counts(
        genome_a.innovations, genome_a.weights, genome_b.innovations, genome_b.weights
    )
    larger = max(genome_a.n_connections, genome_b.n_connections)
    n = 1 if larger < config.small_genome_size else larger
    mean_weight_difference = weight_sum / matching if matching else 0.0
    return (
        config.excess_coefficient * excess / n
        + config.disjoint_coefficient * disjoint / n
        + config.weight_coefficient * mean_weight_difference
    )
