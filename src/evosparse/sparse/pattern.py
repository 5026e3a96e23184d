"""The connectivity pattern of a sparse weight matrix: which (row, column) positions exist.

A pattern of an ``n_rows x n_cols`` matrix (rows = output neurons, columns = input neurons, the layout
of ``torch.nn.Linear.weight``) is kept in two orders:

* **CSR** (row-major, sorted by row then column): ``indptr`` (n_rows + 1) and ``cols`` (nnz). The
  weight values of a layer are stored in this order. ``rows`` (the row of each connection) is derived
  on demand (and not kept: it would cost 4 bytes per connection) for topology updates; the kernels do
  not need it.
* **CSC** (column-major): ``csc_indptr`` (n_cols + 1), ``csc_rows`` and ``csc_perm``; ``csc_perm[k]``
  is the CSR position of the k-th connection in column order. The transposed product (dX = dY W) at
  large batches runs over this view; it is a permutation of the CSR order, built on first use (8 more
  bytes per connection) and rebuilt only when the topology changes. Small-batch training of wide
  layers never builds it (:func:`evosparse.sparse.kernels.backward_csr` scatters over the CSR order).

Everything here costs O(nnz log nnz) or less; nothing allocates an ``n_rows x n_cols`` array.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit

INDEX_DTYPE = np.int32  # column / row indices: 4 bytes each, enough for 2**31 neurons per layer
OFFSET_DTYPE = np.int64  # indptr offsets: nnz may exceed 2**31 in very large layers


@dataclass(frozen=True, eq=False)
class SparsePattern:
    """Positions of the stored entries of an ``n_rows x n_cols`` sparse matrix, in CSR and CSC order."""

    n_rows: int
    n_cols: int
    indptr: np.ndarray
    cols: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        """Row (output neuron) of each connection, in CSR order (computed on each call, O(nnz))."""
        return np.repeat(np.arange(self.n_rows, dtype=INDEX_DTYPE), np.diff(self.indptr))

    @cached_property
    def _csc_view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        perm_dtype = INDEX_DTYPE if self.nnz < np.iinfo(INDEX_DTYPE).max else OFFSET_DTYPE
        csc_indptr, csc_perm = _counting_sort_by_column(self.cols, self.n_cols, np.empty(self.nnz, perm_dtype))
        return csc_indptr, _csc_rows(self.indptr, csc_perm, np.empty(self.nnz, INDEX_DTYPE)), csc_perm

    @property
    def csc_indptr(self) -> np.ndarray:
        """CSC offsets (n_cols + 1); builds the CSC view on first use."""
        return self._csc_view[0]

    @property
    def csc_rows(self) -> np.ndarray:
        """Row of each connection in column order; builds the CSC view on first use."""
        return self._csc_view[1]

    @property
    def csc_perm(self) -> np.ndarray:
        """CSR position of each connection in column order; builds the CSC view on first use."""
        return self._csc_view[2]

    @property
    def has_csc(self) -> bool:
        """Whether the CSC view is built (it costs 8 bytes per connection)."""
        return "_csc_view" in self.__dict__

    @property
    def nnz(self) -> int:
        return int(self.cols.shape[0])

    @property
    def density(self) -> float:
        total = self.n_rows * self.n_cols
        return self.nnz / total if total else 0.0

    def keys(self) -> np.ndarray:
        """Linear positions ``row * n_cols + col`` (int64), sorted ascending because CSR order is row-major."""
        return _csr_keys(self.indptr, self.cols, self.n_cols, np.empty(self.nnz, np.int64))

    def row_degrees(self) -> np.ndarray:
        """Number of connections of each row (fan-in of each output neuron)."""
        return np.diff(self.indptr)

    def col_degrees(self) -> np.ndarray:
        """Number of connections of each column (fan-out of each input neuron)."""
        return np.diff(self.csc_indptr)

    def index_bytes(self) -> int:
        """Bytes held by the index arrays: CSR, and the CSC view if built (not the on-demand ``rows``)."""
        arrays = (self.indptr, self.cols, *(self._csc_view if self.has_csc else ()))
        return int(sum(a.nbytes for a in arrays))

    @classmethod
    def from_coo(cls, rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> SparsePattern:
        """Build from unsorted coordinates. Raises ValueError on out-of-range or duplicate positions."""
        rows = np.asarray(rows, dtype=np.int64).ravel()
        cols = np.asarray(cols, dtype=np.int64).ravel()
        if rows.shape != cols.shape:
            raise ValueError(f"rows and cols must have the same length, got {rows.shape[0]} and {cols.shape[0]}")
        if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
            raise ValueError(f"row indices must be in [0, {n_rows}), got range [{rows.min()}, {rows.max()}]")
        if cols.size and (cols.min() < 0 or cols.max() >= n_cols):
            raise ValueError(f"column indices must be in [0, {n_cols}), got range [{cols.min()}, {cols.max()}]")
        keys = rows * n_cols + cols
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        if keys.size > 1 and np.any(keys[1:] == keys[:-1]):
            raise ValueError("duplicate (row, col) positions in the sparse pattern")
        return cls.from_sorted_keys(keys, n_rows, n_cols)

    @classmethod
    def from_sorted_keys(cls, keys: np.ndarray, n_rows: int, n_cols: int) -> SparsePattern:
        """Build from strictly increasing linear positions ``row * n_cols + col`` (no checks: hot path)."""
        indptr = np.empty(int(n_rows) + 1, dtype=OFFSET_DTYPE)
        cols = np.empty(keys.shape[0], dtype=INDEX_DTYPE)
        _split_keys(np.ascontiguousarray(keys, dtype=np.int64), int(n_cols), indptr, cols)
        return cls.from_csr(indptr, cols, n_rows, n_cols)

    @classmethod
    def from_csr(cls, indptr: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> SparsePattern:
        """Wrap CSR arrays (int64 offsets, int32 columns ascending within each row; no checks: hot path)."""
        return cls(n_rows=int(n_rows), n_cols=int(n_cols), indptr=indptr, cols=cols)


@njit(cache=True, nogil=True)
def _split_keys(keys, n_cols, indptr, cols):  # pragma: no cover - compiled
    """CSR offsets and columns of sorted keys in one pass (no int64 row / column temporaries)."""
    n_rows = indptr.shape[0] - 1
    row = 0
    indptr[0] = 0
    for k in range(keys.shape[0]):
        r = keys[k] // n_cols
        while row < r:
            row += 1
            indptr[row] = k
        cols[k] = keys[k] - r * n_cols
    while row < n_rows:
        row += 1
        indptr[row] = keys.shape[0]


@njit(cache=True, nogil=True)
def _csr_keys(indptr, cols, n_cols, out):  # pragma: no cover - compiled
    for r in range(indptr.shape[0] - 1):
        for k in range(indptr[r], indptr[r + 1]):
            out[k] = r * n_cols + cols[k]
    return out


@njit(cache=True, nogil=True)
def _csc_rows(indptr, csc_perm, out):  # pragma: no cover - compiled
    """Row of each connection in column order: out[j] = row of CSR position csc_perm[j]."""
    row_of = np.empty(csc_perm.shape[0], dtype=out.dtype)
    for r in range(indptr.shape[0] - 1):
        for k in range(indptr[r], indptr[r + 1]):
            row_of[k] = r
    for j in range(csc_perm.shape[0]):
        out[j] = row_of[csc_perm[j]]
    return out


@njit(cache=True, nogil=True)
def _counting_sort_by_column(cols, n_cols, perm):  # pragma: no cover - compiled
    """CSC offsets and the permutation CSR -> CSC in O(nnz + n_cols).

    Visiting connections in CSR order keeps rows ascending inside each column (a stable sort).
    """
    indptr = np.zeros(n_cols + 1, dtype=np.int64)
    for k in range(cols.shape[0]):
        indptr[cols[k] + 1] += 1
    for c in range(n_cols):
        indptr[c + 1] += indptr[c]
    next_slot = indptr[:-1].copy()
    for k in range(cols.shape[0]):
        c = cols[k]
        perm[next_slot[c]] = k
        next_slot[c] += 1
    return indptr, perm
