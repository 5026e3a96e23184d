"""Erdos-Renyi sparse initialisation (SET paper, Mocanu et al. 2018, Section "Methods").

Each of the ``n_in * n_out`` possible connections exists with probability

    p = epsilon * (n_in + n_out) / (n_in * n_out)

so the number of connections grows linearly with the number of neurons, not quadratically. We draw
exactly ``round(p * n_in * n_out)`` distinct positions uniformly at random (the G(n, M) form of the
Erdos-Renyi model), so a layer's nnz is deterministic for given sizes; the dense matrix is never built.

These initialisers only build a :class:`SparsePattern`, so they live beside it (as ``torch.nn.init``
sits under the modules): the layers call them, and the topology strategies never need to be imported
to build a layer.

Budgets: every method of a comparison gets, layer by layer, the connection count of the Erdos-Renyi
initialisation with the same ``epsilon`` (:func:`erdos_renyi_nnz`), so methods differ only in *which*
connections they keep. :func:`epsilon_for_density` finds the epsilon of a whole network's target
(overall) density.

Paper: Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
connectivity inspired by network science", Nature Communications 9, 2383 (2018).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evosparse.sparse.pattern import SparsePattern
from evosparse.sparse.sampling import sample_csr


def erdos_renyi_probability(n_in: int, n_out: int, epsilon: float) -> float:
    """Connection probability ``epsilon (n_in + n_out) / (n_in n_out)``, capped at 1 (a dense layer)."""
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    return min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))


def check_density(density: float) -> float:
    """``density`` if it is in (0, 1] (a layer's fraction of its possible connections), else a ValueError."""
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    return density


def random_pattern(n_rows: int, n_cols: int, density: float, rng: np.random.Generator) -> SparsePattern:
    """A uniformly random pattern with ``round(density * n_rows * n_cols)`` connections (at least one)."""
    check_density(density)
    total = n_rows * n_cols
    nnz = min(total, max(1, int(round(density * total))))
    indptr, cols = sample_csr(n_rows, n_cols, nnz, rng)
    return SparsePattern.from_csr(indptr, cols, n_rows, n_cols)


def erdos_renyi_pattern(n_in: int, n_out: int, epsilon: float, rng: np.random.Generator) -> SparsePattern:
    """Erdos-Renyi pattern of a layer with ``n_in`` inputs and ``n_out`` outputs (shape n_out x n_in)."""
    return random_pattern(n_out, n_in, erdos_renyi_probability(n_in, n_out, epsilon), rng)


def erdos_renyi_nnz(n_in: int, n_out: int, epsilon: float) -> int:
    """Connections of an Erdos-Renyi layer (exactly what :func:`erdos_renyi_pattern` draws)."""
    total = n_in * n_out
    return min(total, max(1, int(round(erdos_renyi_probability(n_in, n_out, epsilon) * total))))


def network_nnz(layer_sizes: Sequence[int], epsilon: float) -> list[int]:
    """Connections of each layer of an Erdos-Renyi network with neurons ``layer_sizes`` (input first)."""
    return [erdos_renyi_nnz(a, b, epsilon) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]


def epsilon_for_density(layer_sizes: Sequence[int], target_density: float) -> float:
    """The epsilon whose Erdos-Renyi network has overall density closest to ``target_density`` (bisection).

    The overall density is the network's connections over its dense connections; each layer's own density
    differs (small layers saturate). Example: 784-1000-1000-1000-10 at 5% needs epsilon ~ 22.4 (the
    10-neuron output layer is dense).
    """
    if not 0 < target_density <= 1:
        raise ValueError(f"density must be in (0, 1], got {target_density}")
    sizes = [int(s) for s in layer_sizes]
    total = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    def overall(epsilon: float) -> float:
        return sum(network_nnz(sizes, epsilon)) / total

    low, high = 1e-6, float(max(sizes)) + 1.0  # at the high end every layer is dense
    if overall(high) <= target_density:
        return high
    for _ in range(100):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if overall(middle) < target_density else (low, middle)
    return high
