"""Erdos-Renyi sparse initialisation (SET paper, Mocanu et al. 2018, Section "Methods").

Each of the ``n_in * n_out`` possible connections exists with probability

    p = epsilon * (n_in + n_out) / (n_in * n_out)

so the number of connections grows linearly with the number of neurons, not quadratically. We draw
exactly ``round(p * n_in * n_out)`` distinct positions uniformly at random (the G(n, M) form of the
Erdos-Renyi model), so a layer's nnz is deterministic for given sizes; the dense matrix is never built.

Paper: Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
connectivity inspired by network science", Nature Communications 9, 2383 (2018).
"""

from __future__ import annotations

import numpy as np

from evosparse.sparse.pattern import SparsePattern
from evosparse.topology.sampling import sample_free_keys


def erdos_renyi_probability(n_in: int, n_out: int, epsilon: float) -> float:
    """Connection probability ``epsilon (n_in + n_out) / (n_in n_out)``, capped at 1 (a dense layer)."""
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    return min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))


def random_pattern(n_rows: int, n_cols: int, density: float, rng: np.random.Generator) -> SparsePattern:
    """A uniformly random pattern with ``round(density * n_rows * n_cols)`` connections (at least one)."""
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    total = n_rows * n_cols
    nnz = min(total, max(1, int(round(density * total))))
    keys = sample_free_keys(n_rows, n_cols, nnz, np.empty(0, dtype=np.int64), rng)
    return SparsePattern.from_sorted_keys(keys, n_rows, n_cols)


def erdos_renyi_pattern(n_in: int, n_out: int, epsilon: float, rng: np.random.Generator) -> SparsePattern:
    """Erdos-Renyi pattern of a layer with ``n_in`` inputs and ``n_out`` outputs (shape n_out x n_in)."""
    return random_pattern(n_out, n_in, erdos_renyi_probability(n_in, n_out, epsilon), rng)
