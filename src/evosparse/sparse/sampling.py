"""Uniform sampling of distinct empty positions of a sparse matrix, without a dense matrix.

Positions are linear keys ``row * n_cols + col``. Both Erdos-Renyi initialisation (nothing occupied,
:mod:`evosparse.sparse.init`) and SET's random regrowth (the surviving connections occupied) draw from here.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

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
    """Boolean mask: which of the sorted ``queries`` are in ``sorted_keys``.

    One merge pass of the two sorted arrays when there are many queries (sequential reads), a binary
    search per query when they are few compared with the keys.
    """
    if sorted_keys.shape[0] == 0:
        return np.zeros(queries.shape[0], dtype=bool)
    if queries.shape[0] * 16 < sorted_keys.shape[0]:
        pos = np.minimum(np.searchsorted(sorted_keys, queries), sorted_keys.shape[0] - 1)
        return sorted_keys[pos] == queries
    return _merge_contains(sorted_keys, queries)


@njit(cache=True, nogil=True)
def _merge_contains(sorted_keys, queries):  # pragma: no cover - compiled
    found = np.zeros(queries.shape[0], dtype=np.bool_)
    k = 0
    for i in range(queries.shape[0]):
        while k < sorted_keys.shape[0] and sorted_keys[k] < queries[i]:
            k += 1
        found[i] = k < sorted_keys.shape[0] and sorted_keys[k] == queries[i]
    return found


def sample_csr(n_rows: int, n_cols: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct positions drawn uniformly from an empty ``n_rows x n_cols`` matrix, as CSR arrays.

    The same distribution as :func:`sample_free_keys` with nothing occupied (a uniform ``count``-subset),
    built without any int64 array of ``count`` keys and without a global sort. It draws ``count``
    independent uniform positions and keeps the distinct ones, topped up until ``count`` are distinct;
    the independent positions are drawn row by row:

    1. how many of the ``count`` positions fall in each row: one multinomial draw (equal row probabilities);
    2. their columns: independent uniform int32 draws, written straight into the rows' slots (the
       columns are independent of the rows, so the i-th draw may go to the i-th slot);
    3. sort each row's few columns and drop repeats (rows are independent: parallel);
    4. draw as many positions as were repeats, keep those still free, until ``count`` are distinct, and
       merge them in.

    Stopping depends only on how many distinct positions were drawn, so the result is a uniform
    ``count``-subset (any permutation of the positions leaves the draws' distribution unchanged).

    Cost: O(n_rows + count log(count / n_rows)) time; memory: the int32 columns and int64 offsets.

    Returns:
        ``indptr`` (int64, n_rows + 1) and ``cols`` (int32, ascending within each row).
    """
    total = int(n_rows) * int(n_cols)
    if count < 0 or count > total:
        raise ValueError(f"cannot draw {count} positions from a {n_rows} x {n_cols} matrix")
    if count == total:  # dense: every position, nothing to draw
        indptr = np.arange(0, total + 1, n_cols, dtype=np.int64)
        return indptr, np.tile(np.arange(n_cols, dtype=np.int32), n_rows)
    if count > _ENUMERATE_ABOVE_FILL * total:  # nearly dense: listing the positions is cheap
        keys = sample_free_keys(n_rows, n_cols, count, np.empty(0, dtype=np.int64), rng)
        return _keys_to_csr(keys, n_rows, n_cols)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(rng.multinomial(count, np.full(n_rows, 1.0 / n_rows)), out=indptr[1:])
    cols = rng.integers(0, n_cols, size=count, dtype=np.int32)
    distinct = np.empty(n_rows, dtype=np.int64)
    _sort_rows_drop_repeats(indptr, cols, distinct)
    missing = count - int(distinct.sum())
    extra = np.empty(0, dtype=np.int64)
    while missing > 0:
        draw = _sorted_unique(rng.integers(0, total, size=missing, dtype=np.int64))
        draw = draw[~_in_rows(indptr, cols, distinct, n_cols, draw) & ~_contains(extra, draw)]
        extra = np.sort(np.concatenate([extra, draw]))
        missing -= draw.shape[0]
    return _merge_rows(indptr, cols, distinct, extra, n_cols)


def _keys_to_csr(keys: np.ndarray, n_rows: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n_cols, minlength=n_rows), out=indptr[1:])
    return indptr, (keys % n_cols).astype(np.int32)


@njit(cache=True, nogil=True)
def _insertion_sort(a, start, end):  # pragma: no cover - compiled
    """Sort ``a[start:end]`` in place: rows hold a few dozen columns, where this beats a general sort's setup
    (numba's ``ndarray.sort`` on a slice took ~2 us per row); long rows (dense-ish layers) use that sort."""
    if end - start > 64:
        a[start:end].sort()
        return
    for i in range(start + 1, end):
        v = a[i]
        j = i - 1
        while j >= start and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@njit(cache=True, nogil=True, parallel=True)
def _sort_rows_drop_repeats(indptr, cols, distinct):  # pragma: no cover - compiled
    """Sort each row's columns; its ``distinct[r]`` different columns end up first (the rest is stale)."""
    for r in prange(indptr.shape[0] - 1):
        start, end = indptr[r], indptr[r + 1]
        if end == start:
            distinct[r] = 0
            continue
        _insertion_sort(cols, start, end)
        n = 1
        for k in range(start + 1, end):
            if cols[k] != cols[start + n - 1]:
                cols[start + n] = cols[k]
                n += 1
        distinct[r] = n


@njit(cache=True, nogil=True)
def _in_rows(indptr, cols, distinct, n_cols, keys):  # pragma: no cover - compiled
    """Which keys are among the first ``distinct[r]`` (sorted) columns of their row r (binary search)."""
    found = np.zeros(keys.shape[0], dtype=np.bool_)
    for i in range(keys.shape[0]):
        r = keys[i] // n_cols
        c = keys[i] - r * n_cols
        start = indptr[r]
        k = np.searchsorted(cols[start : start + distinct[r]], c)
        found[i] = k < distinct[r] and cols[start + k] == c
    return found


@njit(cache=True, nogil=True, parallel=True)
def _merge_rows(indptr, cols, distinct, extra, n_cols):  # pragma: no cover - compiled
    """CSR of the rows' distinct columns plus the sorted ``extra`` keys (none of them already present)."""
    n_rows = indptr.shape[0] - 1
    if extra.shape[0] == 0 and distinct.sum() == cols.shape[0]:
        return indptr, cols
    # extra_start[r]: the first extra key of row r or a later row (the keys are sorted)
    extra_start = np.searchsorted(extra // n_cols, np.arange(n_rows + 1))
    out_indptr = np.zeros(n_rows + 1, dtype=np.int64)
    for r in range(n_rows):
        out_indptr[r + 1] = out_indptr[r] + distinct[r] + extra_start[r + 1] - extra_start[r]
    out_cols = np.empty(out_indptr[n_rows], dtype=cols.dtype)
    for r in prange(n_rows):  # rows are independent once their places are known
        k, end = indptr[r], indptr[r] + distinct[r]
        e, e_end = extra_start[r], extra_start[r + 1]
        for n in range(out_indptr[r], out_indptr[r + 1]):
            if e < e_end and (k >= end or extra[e] - r * n_cols < cols[k]):
                out_cols[n] = extra[e] - r * n_cols
                e += 1
            else:
                out_cols[n] = cols[k]
                k += 1
    return out_indptr, out_cols


def sample_free_rows(
    indptr: np.ndarray, cols: np.ndarray, keep: np.ndarray, n_cols: int, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct positions drawn uniformly from those a CSR pattern's survivors leave empty, per row.

    The occupied positions are the connections of (``indptr``, ``cols``) where ``keep`` is True (a boolean
    mask over the CSR order): SET's regrowth after its removal step. The same distribution as
    :func:`sample_free_keys` on the survivors' keys (a uniform ``count``-subset of the empty positions), and
    the same algorithm as :func:`sample_csr` (independent uniform positions counted per row by one
    multinomial draw, their columns drawn as int32, each row sorted, repeats and survivors' positions
    rejected, topped up until ``count`` are new), but with no int64 array of nnz or ``count`` keys and no
    global sort: O(nnz + n_rows) time, memory the int32 columns of the new positions.

    Returns:
        ``new_indptr`` (int64, n_rows + 1) and ``new_cols`` (int32, ascending within each row) of the new
        positions.
    """
    n_rows = indptr.shape[0] - 1
    total = int(n_rows) * int(n_cols)
    occupied = int(np.count_nonzero(keep))
    free = total - occupied
    if count < 0 or count > free:
        raise ValueError(f"cannot draw {count} empty positions: only {free} of {total} are free")
    if occupied + count > _ENUMERATE_ABOVE_FILL * total:  # nearly full (small layers): list the free keys
        survivors = _csr_keys_where(indptr, cols, keep, n_cols)
        return _keys_to_csr(sample_free_keys(n_rows, n_cols, count, survivors, rng), n_rows, n_cols)
    new_indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(rng.multinomial(count, np.full(n_rows, 1.0 / n_rows)), out=new_indptr[1:])
    new_cols = rng.integers(0, n_cols, size=count, dtype=cols.dtype)
    distinct = np.empty(n_rows, dtype=np.int64)
    _sort_rows_drop_taken(indptr, cols, keep, new_indptr, new_cols, distinct)
    missing = count - int(distinct.sum())
    extra = np.empty(0, dtype=np.int64)
    while missing > 0:
        draw = _sorted_unique(rng.integers(0, total, size=missing, dtype=np.int64))
        taken = _in_rows(new_indptr, new_cols, distinct, n_cols, draw) | _kept_in_rows(indptr, cols, keep, n_cols, draw)
        draw = draw[~taken & ~_contains(extra, draw)]
        extra = np.sort(np.concatenate([extra, draw]))
        missing -= draw.shape[0]
    return _merge_rows(new_indptr, new_cols, distinct, extra, n_cols)


@njit(cache=True, nogil=True)
def _csr_keys_where(indptr, cols, keep, n_cols):  # pragma: no cover - compiled
    out = np.empty(np.count_nonzero(keep), dtype=np.int64)
    n = 0
    for r in range(indptr.shape[0] - 1):
        for k in range(indptr[r], indptr[r + 1]):
            if keep[k]:
                out[n] = r * n_cols + cols[k]
                n += 1
    return out


@njit(cache=True, nogil=True, parallel=True)
def _sort_rows_drop_taken(indptr, cols, keep, new_indptr, new_cols, distinct):  # pragma: no cover - compiled
    """Sort each row's new columns; the ``distinct[r]`` that repeat neither each other nor a kept column of the
    row (sorted: one merge pass) end up first (the rest is stale)."""
    for r in prange(new_indptr.shape[0] - 1):
        start, end = new_indptr[r], new_indptr[r + 1]
        _insertion_sort(new_cols, start, end)
        k, old_end = indptr[r], indptr[r + 1]
        n = 0
        for i in range(start, end):
            c = new_cols[i]
            if n > 0 and new_cols[start + n - 1] == c:
                continue
            while k < old_end and cols[k] < c:
                k += 1
            if k < old_end and cols[k] == c and keep[k]:
                continue
            new_cols[start + n] = c
            n += 1
        distinct[r] = n


@njit(cache=True, nogil=True)
def _kept_in_rows(indptr, cols, keep, n_cols, keys):  # pragma: no cover - compiled
    """Which keys are kept connections of the pattern (binary search in their row)."""
    found = np.zeros(keys.shape[0], dtype=np.bool_)
    for i in range(keys.shape[0]):
        r = keys[i] // n_cols
        c = keys[i] - r * n_cols
        start, end = indptr[r], indptr[r + 1]
        k = start + np.searchsorted(cols[start:end], c)
        found[i] = k < end and cols[k] == c and keep[k]
    return found
