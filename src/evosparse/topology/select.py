"""Selecting what survives: one budget rule shared by every pruning and rewiring method.

A criterion scores each stored connection (magnitude, the SET sign rule, OBD saliency, SNIP
sensitivity, ...); :func:`keep_strongest` keeps the ``k`` best; :func:`prune_layer` applies that choice
to a :class:`SparseLinear` (nnz shrinks; weights and optimizer state of the survivors are kept).

The budgets themselves (Erdos-Renyi connection counts, the epsilon of a target density) live with the
initialisation, in :mod:`evosparse.sparse.init`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from evosparse.nn.linear import SparseLinear
from evosparse.topology.rewire import Rewiring, apply_rewiring


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
    """Keep the ``keep`` highest-scoring connections of ``layer`` (scores in the order of its values: CSR, or
    row-blocked); returns nnz removed. Ties are broken in CSR order whatever the layer's layout."""
    if scores.shape != (layer.nnz,):
        raise ValueError(f"scores must have shape ({layer.nnz},), got {scores.shape}")
    if keep >= layer.nnz:
        return 0
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (a sparse layer needs a connection), got {keep}")
    if layer.pattern.is_blocked:
        scores = scores[layer.pattern.to_csr()[1]]
    removed = layer.nnz - keep
    with layer.csr_order(optimizer):
        rewiring = Rewiring(keep=keep_strongest(scores, keep), new_keys=np.empty(0, dtype=np.int64))
        apply_rewiring(layer, rewiring, torch.empty(0, dtype=layer.values.dtype), optimizer)
    return removed
