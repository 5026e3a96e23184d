"""Crossover aligned by innovation number.

"Matching genes are inherited randomly, whereas disjoint genes and excess genes are inherited from the
more fit parent" (paper, Section 3.2, Figure 4). A gene disabled in either parent stays disabled with
probability ``disable_inherited_rate`` (paper: 75%). With equal fitness the smaller genome counts as the
fitter parent (as in the original NEAT code), so the child never gains structure neither parent tested.
The child's structure is the fitter parent's; only weights, biases and enabled flags mix.

Paper: Stanley & Miikkulainen 2002, Section 3.2.
"""

from __future__ import annotations

import numpy as np

from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome


def fitter_first(parent_a: Genome, parent_b: Genome) -> tuple[Genome, Genome]:
    """(fitter, other); ties go to the genome with fewer connection genes."""
    fitness_a, fitness_b = parent_a.fitness or 0.0, parent_b.fitness or 0.0
    if fitness_a > fitness_b or (fitness_a == fitness_b and parent_a.n_connections <= parent_b.n_connections):
        return parent_a, parent_b
    return parent_b, parent_a


def crossover(parent_a: Genome, parent_b: Genome, key: int, config: NeatConfig, rng: np.random.Generator) -> Genome:
    """A child of two evaluated parents (``fitness`` set)."""
    fitter, other = fitter_first(parent_a, parent_b)
    child = fitter.copy(key)
    # Connection genes: matching ones take either parent's weight at random.
    _, in_fitter, in_other = np.intersect1d(
        fitter.innovations, other.innovations, assume_unique=True, return_indices=True
    )
    from_other = rng.random(len(in_fitter)) < 0.5
    child.weights[in_fitter[from_other]] = other.weights[in_other[from_other]]
    either_disabled = ~fitter.enabled[in_fitter] | ~other.enabled[in_other]
    stays_disabled = rng.random(len(in_fitter)) < config.disable_inherited_rate
    child.enabled[in_fitter] = ~(either_disabled & stays_disabled)
    # Node genes: matching nodes take either parent's bias and activation at random.
    _, nodes_fitter, nodes_other = np.intersect1d(
        fitter.node_ids, other.node_ids, assume_unique=True, return_indices=True
    )
    from_other = rng.random(len(nodes_fitter)) < 0.5
    child.biases[nodes_fitter[from_other]] = other.biases[nodes_other[from_other]]
    child.activations[nodes_fitter[from_other]] = other.activations[nodes_other[from_other]]
    return child
