"""Uniform sampling of distinct empty positions of a sparse matrix, without a dense matrix.

Positions are linear keys ``row * n_cols + col``. Both Erdos-Renyi initialisation (nothing occupied,
:mod:`evosparse.sparse.init`) and SET's random regrowth (the surviving connections occupied) draw from here.
"""

from __future__ import annotations

import numpy as np

# Above this occupied fraction, rejection sampling wastes draws; listing the free keys is then cheap
# because the matrix has at most 1 / (1 - 0.5) = 2x more positions than stored connections.
_ENUMERATE_ABOVE_FILL = 0.5


def sample_free_keys(
    n_rows: int, n_cols: int, count: int, occupied: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``count`` distinct keys uniformly from the positions not in ``occupied``.

    Args:
        n_rows, n_cols: matrix shape.
        count: how many positions to draw.
        occupied: sorted, unique int64 keys that must not be drawn.
        rng: the random source.

    Returns:
        Sorted int64 array of ``count`` keys.

    Cost: O((nnz + count) log(nnz + count)) expected when the matrix is at most half full, and
    O(n_rows * n_cols) = O(nnz) otherwise.
    """
    total = int(n_rows) * int(n_cols)
    free = total - occupied.shape[0]
    if count < 0 or count > free:
        raise ValueError(f"cannot draw {count} empty positions: only {free} of {total} are free")
    if count == 0:
        return np.empty(0, dtype=np.int64)
    if occupied.shape[0] + count > _ENUMERATE_ABOVE_FILL * total:
        free_keys = np.setdiff1d(np.arange(total, dtype=np.int64), occupied, assume_unique=True)
        return np.sort(rng.choice(free_keys, size=count, replace=False))
    chosen = np.empty(0, dtype=np.int64)
    while chosen.shape[0] < count:
        need = count - chosen.shape[0]
        # Oversample a little so that one round usually suffices after collisions are dropped.
        draw = rng.integers(0, total, size=int(need * 1.1) + 16, dtype=np.int64)
        draw = _sorted_unique(draw)
        draw = draw[~_contains(occupied, draw) & ~_contains(chosen, draw)]
        if draw.shape[0] > need:
            # Keep a uniformly random subset (not the smallest keys, which would bias towards low rows).
            draw = draw[np.sort(rng.choice(draw.shape[0], size=need, replace=False))]
        chosen = np.sort(np.concatenate([chosen, draw]))
    return chosen


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (``np.unique`` took a slow hashing path on int64 in numpy 2.x)."""
    keys = np.sort(keys)
    if keys.shape[0] < 2:
        return keys
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))]


def _contains(sorted_keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Boolean mask: which queries are in ``sorted_keys`` (binary search, no re-sorting of the keys)."""
    if sorted_keys.shape[0] == 0:
        return np.zeros(queries.shape[0], dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, queries), sorted_keys.shape[0] - 1)
    return sorted_keys[pos] == queries
