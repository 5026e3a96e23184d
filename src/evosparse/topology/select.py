"""Selecting what survives: one budget rule shared by every pruning and rewiring method.

A criterion scores each stored connection (magnitude, the SET sign rule, OBD saliency, SNIP
sensitivity, ...); :func:`keep_strongest` keeps the ``k`` best; :func:`prune_layer` applies that choice
to a :class:`SparseLinear` (nnz shrinks; weights and optimizer state of the survivors are kept).

Budgets: every method of a comparison gets, layer by layer, the connection count of the Erdos-Renyi
initialisation with the same ``epsilon`` (:func:`erdos_renyi_nnz`), so methods differ only in *which*
connections they keep. :func:`epsilon_for_density` finds the epsilon of a whole network's target density.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from evosparse.topology.erdos_renyi import erdos_renyi_probability
from evosparse.topology.rewire import Rewiring, apply_rewiring

if TYPE_CHECKING:  # the layer module imports topology for its initialisation
    from evosparse.nn.linear import SparseLinear


def smallest(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest scores in O(n) (a partition, not a sort); unordered."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k >= scores.shape[0]:
        return np.arange(scores.shape[0])
    return np.argpartition(scores, k - 1)[:k]


def keep_strongest(scores: np.ndarray, k: int) -> np.ndarray:
    """Sorted indices of the ``k`` largest scores (ties broken by position, so the choice is deterministic)."""
    if k >= scores.shape[0]:
        return np.arange(scores.shape[0])
    # Stable sort on -score: among equal scores the earlier position wins, whatever argpartition would do.
    return np.sort(np.argsort(-scores, kind="stable")[: max(k, 0)])


def global_budget(scores: Sequence[torch.Tensor], total_keep: int) -> list[int]:
    """Per-layer keep counts of one ranking of all layers' scores together (at least one per layer)."""
    flat = torch.cat([s.flatten().double() for s in scores]).numpy()
    kept = np.zeros(flat.shape[0], dtype=bool)
    kept[keep_strongest(flat, total_keep)] = True
    counts, offset = [], 0
    for s in scores:
        counts.append(max(1, int(kept[offset : offset + s.numel()].sum())))
        offset += s.numel()
    return counts


def prune_layer(
    layer: SparseLinear, scores: np.ndarray, keep: int, optimizer: torch.optim.Optimizer | None = None
) -> int:
    """Keep the ``keep`` highest-scoring connections of ``layer`` (scores in CSR order); returns nnz removed."""
    if scores.shape != (layer.nnz,):
        raise ValueError(f"scores must have shape ({layer.nnz},), got {scores.shape}")
    if keep >= layer.nnz:
        return 0
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (a sparse layer needs a connection), got {keep}")
    rewiring = Rewiring(keep=keep_strongest(scores, keep), new_keys=np.empty(0, dtype=np.int64))
    removed = layer.nnz - keep
    apply_rewiring(layer, rewiring, torch.empty(0, dtype=layer.values.dtype), optimizer)
    return removed


def erdos_renyi_nnz(n_in: int, n_out: int, epsilon: float) -> int:
    """Connections of an Erdos-Renyi layer (exactly what :func:`erdos_renyi_pattern` draws)."""
    total = n_in * n_out
    return min(total, max(1, int(round(erdos_renyi_probability(n_in, n_out, epsilon) * total))))


def network_nnz(layer_sizes: Sequence[int], epsilon: float) -> list[int]:
    return [erdos_renyi_nnz(a, b, epsilon) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]


def epsilon_for_density(layer_sizes: Sequence[int], density: float) -> float:
    """The epsilon whose Erdos-Renyi network has overall density closest to ``density`` (bisection).

    Example: 784-1000-1000-1000-10 at 5% density needs epsilon ~ 22.4 (the 10-neuron output layer is dense).
    """
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    sizes = [int(s) for s in layer_sizes]
    total = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    def overall(epsilon: float) -> float:
        return sum(network_nnz(sizes, epsilon)) / total

    low, high = 1e-6, float(max(sizes)) + 1.0  # at the high end every layer is dense
    if overall(high) <= density:
        return high
    for _ in range(100):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if overall(middle) < density else (low, middle)
    return high
