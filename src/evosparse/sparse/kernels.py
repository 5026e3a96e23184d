"""Compiled CPU kernels for a sparse layer (Numba, parallel over output rows, cached on disk).

Activations are *feature-major*: ``xt`` has shape (features, batch), so the batch values of one
neuron are contiguous and every connection touches one contiguous vector. With W stored in CSR order
(rows = output neurons):

* ``spmm``:  Yt[r, :] = bias[r] + sum_k values[k] * Xt[cols[k], :]   (forward, Y = X W^T + b)
* the same ``spmm`` over the CSC view gives dXt = W^T dYt             (input gradient, dX = dY W)
* ``sddmm``: dW[k] = <dYt[rows[k], :], Xt[cols[k], :]>                (weight gradient at stored positions)

Each costs O(nnz * batch). ``spmm`` accumulates four connections per pass over the batch, so the
output row is loaded and stored a quarter as often as in the textbook loop (the kernels are bound by
memory traffic, not arithmetic; see ../shared/NOTES-kernels.md).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

_JIT = {"parallel": True, "fastmath": True, "cache": True, "nogil": True, "boundscheck": False}


@njit(**_JIT)
def spmm(indptr, cols, values, xt, bias, out):  # pragma: no cover - compiled
    """out[r, :] = bias[r] + sum over row r's connections k of values[k] * xt[cols[k], :].

    ``bias`` may be empty (no bias). ``out`` has shape (n_rows, batch) and is fully overwritten.
    """
    n_rows = indptr.shape[0] - 1
    batch = xt.shape[1]
    has_bias = bias.shape[0] > 0
    for r in prange(n_rows):
        acc = out[r]
        start = indptr[r]
        end = indptr[r + 1]
        b0 = bias[r] if has_bias else values.dtype.type(0)
        for j in range(batch):
            acc[j] = b0
        k = start
        # Four connections per sweep: one load/store of acc per four multiply-adds.
        while k + 4 <= end:
            w0 = values[k]
            w1 = values[k + 1]
            w2 = values[k + 2]
            w3 = values[k + 3]
            x0 = xt[cols[k]]
            x1 = xt[cols[k + 1]]
            x2 = xt[cols[k + 2]]
            x3 = xt[cols[k + 3]]
            for j in range(batch):
                acc[j] += w0 * x0[j] + w1 * x1[j] + w2 * x2[j] + w3 * x3[j]
            k += 4
        while k < end:
            w0 = values[k]
            x0 = xt[cols[k]]
            for j in range(batch):
                acc[j] += w0 * x0[j]
            k += 1


@njit(**_JIT)
def spmm_transposed(csc_indptr, csc_rows, csc_perm, values, dyt, out):  # pragma: no cover - compiled
    """out[c, :] = sum over column c's connections of values * dyt[row, :]  (dXt = W^T dYt).

    Runs ``spmm``'s loop over the CSC view; the values are read through ``csc_perm`` (CSR positions).
    """
    n_cols = csc_indptr.shape[0] - 1
    batch = dyt.shape[1]
    for c in prange(n_cols):
        acc = out[c]
        start = csc_indptr[c]
        end = csc_indptr[c + 1]
        for j in range(batch):
            acc[j] = 0
        k = start
        while k + 4 <= end:
            w0 = values[csc_perm[k]]
            w1 = values[csc_perm[k + 1]]
            w2 = values[csc_perm[k + 2]]
            w3 = values[csc_perm[k + 3]]
            g0 = dyt[csc_rows[k]]
            g1 = dyt[csc_rows[k + 1]]
            g2 = dyt[csc_rows[k + 2]]
            g3 = dyt[csc_rows[k + 3]]
            for j in range(batch):
                acc[j] += w0 * g0[j] + w1 * g1[j] + w2 * g2[j] + w3 * g3[j]
            k += 4
        while k < end:
            w0 = values[csc_perm[k]]
            g0 = dyt[csc_rows[k]]
            for j in range(batch):
                acc[j] += w0 * g0[j]
            k += 1


@njit(**_JIT)
def sddmm(indptr, cols, dyt, xt, out_values):  # pragma: no cover - compiled
    """out_values[k] = <dyt[r, :], xt[cols[k], :]> for every stored connection k of every row r."""
    n_rows = indptr.shape[0] - 1
    batch = xt.shape[1]
    for r in prange(n_rows):
        g = dyt[r]
        for k in range(indptr[r], indptr[r + 1]):
            x = xt[cols[k]]
            s = out_values.dtype.type(0)
            for j in range(batch):
                s += g[j] * x[j]
            out_values[k] = s


def set_num_threads(n: int) -> None:
    """Number of threads the compiled kernels use (at most the number Numba started with)."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel for float32 and float64."""
    indptr = np.array([0, 1], dtype=np.int64)
    cols = np.array([0], dtype=np.int32)
    perm = np.array([0], dtype=np.int64)
    for dtype in (np.float32, np.float64):
        values = np.ones(1, dtype=dtype)
        xt = np.ones((1, 2), dtype=dtype)
        out = np.empty((1, 2), dtype=dtype)
        spmm(indptr, cols, values, xt, np.empty(0, dtype=dtype), out)
        spmm_transposed(indptr, cols, perm, values, xt, out)
        sddmm(indptr, cols, xt, xt, np.empty(1, dtype=dtype))
