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

A pattern may instead be **row-blocked** (``block_rows`` = R > 1), the storage order for wide layers trained
at batches of a few samples: the rows are cut into blocks of R consecutive rows, and inside a block the
connections are sorted by column, then row. ``indptr`` (n_blocks + 1) then delimits blocks, not rows, and
``row_offsets`` (uint16, nnz) holds each connection's row minus its block's first row. Why: a product then
reads its inputs in ascending column order (a stream the prefetcher follows, not one random cache line per
connection) while the block's outputs stay in L2 (:mod:`evosparse.sparse.kernels`, ``spmm_blocked``). With
R = 1 the definition is plain CSR. :meth:`SparsePattern.to_blocked` and :meth:`SparsePattern.to_csr` convert
in O(nnz + n_blocks * n_cols) and return the permutation that carries the weights along. What is written
for CSR (the CSC view, :meth:`SparsePattern.keys`, the constructors) is CSR only: a blocked pattern raises
there rather than answer in the wrong order.

Everything here costs O(nnz log nnz) or less; nothing allocates an ``n_rows x n_cols`` array.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit, prange

INDEX_DTYPE = np.int32  # column / row indices: 4 bytes each, enough for 2**31 neurons per layer
OFFSET_DTYPE = np.int64  # indptr offsets: nnz may exceed 2**31 in very large layers
ROW_OFFSET_DTYPE = np.uint16  # row inside its block, in a row-blocked pattern: 2 bytes per connection
MAX_BLOCK_ROWS = int(np.iinfo(ROW_OFFSET_DTYPE).max) + 1


@dataclass(frozen=True, eq=False)
class SparsePattern:
    """Positions of the stored entries of an ``n_rows x n_cols`` sparse matrix, in CSR and CSC order."""

    n_rows: int
    n_cols: int
    indptr: np.ndarray
    cols: np.ndarray
    block_rows: int = 1
    row_offsets: np.ndarray | None = None

    @property
    def is_blocked(self) -> bool:
        """Whether the storage order is row-blocked (``block_rows`` > 1) rather than CSR."""
        return self.block_rows > 1

    @property
    def n_blocks(self) -> int:
        """Number of row blocks (``n_rows`` for CSR)."""
        return int(self.indptr.shape[0]) - 1

    @property
    def rows(self) -> np.ndarray:
        """Row (output neuron) of each connection, in storage order (computed on each call, O(nnz))."""
        if self.is_blocked:
            return _blocked_rows(self.indptr, self.row_offsets, self.block_rows, np.empty(self.nnz, INDEX_DTYPE))
        return np.repeat(np.arange(self.n_rows, dtype=INDEX_DTYPE), np.diff(self.indptr))

    def _require_csr(self, what: str) -> None:
        if self.is_blocked:
            raise ValueError(f"{what} needs a CSR pattern, this one is row-blocked (block_rows={self.block_rows})")

    def to_blocked(self, block_rows: int) -> tuple[SparsePattern, np.ndarray]:
        """This CSR pattern in row-blocked order, and ``perm``: blocked values = CSR values[perm]."""
        self._require_csr("to_blocked")
        block_rows = check_block_rows(block_rows)
        perm_dtype = _position_dtype(self.nnz)
        if block_rows == 1:
            return self, np.arange(self.nnz, dtype=perm_dtype)
        n_blocks = -(-self.n_rows // block_rows)
        block_ptr = self.indptr[np.minimum(np.arange(n_blocks + 1) * block_rows, self.n_rows)].astype(OFFSET_DTYPE)
        cols = np.empty(self.nnz, INDEX_DTYPE)
        offsets = np.empty(self.nnz, ROW_OFFSET_DTYPE)
        perm = np.empty(self.nnz, perm_dtype)
        # Two-level sort up to 2**22 columns (1.4x faster at 600,000; its low digit's counters then fit in L1);
        # wider layers keep the two-pass radix sort (the two-level one was 2x slower at 8M columns).
        sort = _csr_to_blocked_msd if self.n_cols <= _MSD_MAX_COLS else _csr_to_blocked
        sort(self.indptr, self.cols, block_rows, self.n_cols, cols, offsets, perm)
        blocked = SparsePattern(self.n_rows, self.n_cols, block_ptr, cols, block_rows, offsets)
        return blocked, perm

    def to_csr(self) -> tuple[SparsePattern, np.ndarray]:
        """This pattern in CSR order, and ``perm``: CSR values = these values[perm] (identity if already CSR)."""
        perm_dtype = _position_dtype(self.nnz)
        if not self.is_blocked:
            return self, np.arange(self.nnz, dtype=perm_dtype)
        indptr = np.empty(self.n_rows + 1, OFFSET_DTYPE)
        cols = np.empty(self.nnz, INDEX_DTYPE)
        perm = np.empty(self.nnz, perm_dtype)
        _blocked_to_csr(self.indptr, self.cols, self.row_offsets, self.block_rows, _ALL, indptr, cols, perm)
        return SparsePattern.from_csr(indptr, cols, self.n_rows, self.n_cols), perm

    def csr_keys(self, positions: np.ndarray) -> np.ndarray:
        """CSR keys ``row * n_cols + col`` (int64) of the connections at ``positions`` of the stored order."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.is_blocked:
            blocks = np.searchsorted(self.indptr, positions, side="right") - 1
            rows = blocks * self.block_rows + self.row_offsets[positions]
        else:
            rows = np.searchsorted(self.indptr, positions, side="right") - 1
        return rows * np.int64(self.n_cols) + self.cols[positions]

    def csr_where(self, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CSR ``indptr`` and ``cols`` of the connections where the boolean mask ``keep`` (over the stored order)
        is True: the survivors of a rewiring, per row, for the per-row sampler of a row-blocked layer (only the
        indices, so that its weights and optimizer state need not leave their row-blocked order)."""
        keep = np.asarray(keep, dtype=np.bool_)
        if keep.shape != (self.nnz,):
            raise ValueError(f"keep must be a boolean mask of shape ({self.nnz},), got {keep.shape}")
        if not self.is_blocked:
            kept_before = np.zeros(self.nnz + 1, OFFSET_DTYPE)  # kept_before[k]: kept connections before k
            np.cumsum(keep, out=kept_before[1:])
            return kept_before[self.indptr], self.cols[keep]
        indptr = np.empty(self.n_rows + 1, OFFSET_DTYPE)
        cols = np.empty(int(np.count_nonzero(keep)), INDEX_DTYPE)
        _blocked_to_csr(self.indptr, self.cols, self.row_offsets, self.block_rows, keep, indptr, cols, _NO_PERM)
        return indptr, cols

    @cached_property
    def _csc_view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._require_csr("the CSC view")
        perm_dtype = _position_dtype(self.nnz)
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
        self._require_csr("keys()")
        return _csr_keys(self.indptr, self.cols, self.n_cols, np.empty(self.nnz, np.int64))

    def row_degrees(self) -> np.ndarray:
        """Number of connections of each row (fan-in of each output neuron)."""
        if self.is_blocked:  # counted per block: no nnz-long array of rows (80 MB for a 20M-connection layer)
            return _blocked_row_degrees(self.indptr, self.row_offsets, self.block_rows, np.zeros(self.n_rows, np.int64))
        return np.diff(self.indptr)

    def col_degrees(self) -> np.ndarray:
        """Number of connections of each column (fan-out of each input neuron)."""
        if self.is_blocked:
            return np.bincount(self.cols, minlength=self.n_cols)
        return np.diff(self.csc_indptr)

    def index_bytes(self) -> int:
        """Bytes held by the index arrays: CSR, and the CSC view if built (not the on-demand ``rows``)."""
        arrays = (self.indptr, self.cols, *(self._csc_view if self.has_csc else ()))
        if self.is_blocked:
            arrays = (*arrays, self.row_offsets)
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

    @classmethod
    def checked(
        cls,
        indptr: np.ndarray,
        cols: np.ndarray,
        n_rows: int,
        n_cols: int,
        block_rows: int = 1,
        row_offsets: np.ndarray | None = None,
    ) -> SparsePattern:
        """Wrap arrays that come from outside (a state dict): CSR (``block_rows`` 1) or row-blocked.

        Every invariant the kernels rely on is checked in O(nnz) -- offsets, index ranges, the order inside each
        row or block, no duplicates -- and a ValueError names the first violation. Arrays already of the index
        dtypes are used as they are (no copy: a loaded checkpoint's arrays become the pattern).
        """
        block_rows = check_block_rows(block_rows)
        n_rows, n_cols = int(n_rows), int(n_cols)
        indptr, cols = np.asarray(indptr).ravel(), np.asarray(cols).ravel()
        n_blocks = -(-n_rows // block_rows)
        what = "block" if block_rows > 1 else "row"
        if indptr.shape[0] != n_blocks + 1 or not np.issubdtype(indptr.dtype, np.integer):
            raise ValueError(f"indptr must hold {n_blocks + 1} integer offsets (one per {what}, plus one)")
        if not np.issubdtype(cols.dtype, np.integer) or (cols.size and (cols.min() < 0 or cols.max() >= n_cols)):
            raise ValueError(f"column indices must be integers in [0, {n_cols})")
        indptr = indptr.astype(OFFSET_DTYPE, copy=False)
        if indptr[0] != 0 or indptr[-1] != cols.shape[0] or np.any(np.diff(indptr) < 0):
            raise ValueError(f"indptr must rise from 0 to nnz = {cols.shape[0]}")
        cols = cols.astype(INDEX_DTYPE, copy=False)
        if block_rows == 1:
            if row_offsets is not None:
                raise ValueError("row_offsets belong to a row-blocked pattern (block_rows > 1)")
            offsets = np.zeros(0, ROW_OFFSET_DTYPE)
        else:
            if row_offsets is None:
                raise ValueError("a row-blocked pattern (block_rows > 1) needs row_offsets")
            offsets = np.asarray(row_offsets).ravel()
            if offsets.shape != cols.shape or not np.issubdtype(offsets.dtype, np.integer):
                raise ValueError(f"row_offsets must hold one integer per connection ({cols.shape[0]})")
            if offsets.size and (offsets.min() < 0 or offsets.max() >= block_rows):
                raise ValueError(f"row_offsets must be in [0, {block_rows}) (block_rows)")
            offsets = offsets.astype(ROW_OFFSET_DTYPE, copy=False)
        bad = _first_disorder(indptr, cols, offsets, block_rows, n_rows)
        if bad >= 0:
            order = "column" if block_rows == 1 else "(column, row)"
            raise ValueError(
                f"connection {bad} breaks the {'CSR' if block_rows == 1 else 'row-blocked'} order: {order} must "
                f"strictly increase inside each {what} and rows stay below {n_rows}"
            )
        if block_rows == 1:
            return cls.from_csr(indptr, cols, n_rows, n_cols)
        return cls(n_rows, n_cols, indptr, cols, block_rows, offsets)


def permute(values: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """``values[perm]`` as a new array, in one parallel compiled pass (numpy would first copy ``perm`` to int64)."""
    return _gather(values, perm, np.empty(perm.shape[0], dtype=values.dtype))


@njit(cache=True, nogil=True, parallel=True)
def _gather(values, perm, out):  # pragma: no cover - compiled
    for k in prange(perm.shape[0]):
        out[k] = values[perm[k]]
    return out


def _position_dtype(nnz: int) -> type:
    """Dtype of an array of positions among ``nnz`` connections: 4 bytes while they fit, else 8."""
    return INDEX_DTYPE if nnz < np.iinfo(INDEX_DTYPE).max else OFFSET_DTYPE


AUTO_BLOCK_ROWS_RANGE = (4096, MAX_BLOCK_ROWS)


def auto_block_rows(n_rows: int, n_cols: int, nnz: int) -> int:
    """The block size for a wide layer at batches of a few samples: the power of two nearest to the number of
    rows whose connections hold about one per input neuron (``n_rows * n_cols / nnz``), within
    :data:`AUTO_BLOCK_ROWS_RANGE`.

    Why one per input: each block streams through the inputs (and, in the backward pass, their gradients) once,
    so fewer rows per block than that make this stream cost more than the connections themselves, and more make
    the block's outputs spill out of L2. Measured at batch 2 (BENCHMARKS.md section 3): 600,000 x 600,000 at
    epsilon 17 (34 connections per row): 16384 (this rule's choice) beats 32768 and 65536 by 1.1-1.9x;
    3.3M x 3.3M at epsilon 2 (4 per row): 65536 (the cap; the rule asks for 825,000) beats 16384 by 1.3x.
    """
    if nnz <= 0:
        return AUTO_BLOCK_ROWS_RANGE[0]
    ideal = n_rows * n_cols / nnz
    nearest = 1 << max(0, round(np.log2(ideal)))
    return int(min(max(nearest, AUTO_BLOCK_ROWS_RANGE[0]), AUTO_BLOCK_ROWS_RANGE[1]))


def check_block_rows(block_rows: int) -> int:
    """``block_rows`` as an int in [1, MAX_BLOCK_ROWS], or a one-line ValueError naming the allowed values."""
    if (
        isinstance(block_rows, bool)
        or not isinstance(block_rows, int | np.integer)
        or not 1 <= block_rows <= MAX_BLOCK_ROWS
    ):
        raise ValueError(f"block_rows must be an integer in [1, {MAX_BLOCK_ROWS}] (1: CSR order), got {block_rows!r}")
    return int(block_rows)


def check_block_rows_or_auto(block_rows: object, auto: str = "automatic") -> int:
    """``block_rows`` as an int: 0 (the automatic choice, described by ``auto`` in the error) or a block size
    :func:`check_block_rows` accepts; else a one-line ValueError naming the allowed values."""
    if block_rows == 0 and not isinstance(block_rows, bool):
        return 0
    try:
        return check_block_rows(block_rows)
    except ValueError:
        raise ValueError(
            f"block_rows must be 0 ({auto}) or an integer in [1, {MAX_BLOCK_ROWS}] (1: CSR order), got {block_rows!r}"
        ) from None


@njit(cache=True, nogil=True)
def _blocked_rows(block_ptr, row_offsets, block_rows, out):  # pragma: no cover - compiled
    for b in range(block_ptr.shape[0] - 1):
        for k in range(block_ptr[b], block_ptr[b + 1]):
            out[k] = b * block_rows + row_offsets[k]
    return out


_RADIX_BITS = 11  # digit of the column sort in _csr_to_blocked: 2048 counters, in L1
_MSD_MAX_COLS = 1 << 22  # to_blocked's two-level sort up to this many columns (BENCHMARKS.md section 3)


@njit(cache=True, nogil=True, parallel=True)
def _csr_to_blocked_msd(indptr, csr_cols, block_rows, n_cols, cols, offsets, perm):  # pragma: no cover - compiled
    """:func:`_csr_to_blocked` in two levels: a block's connections are first distributed by the high digit of
    their column (up to 2**11 buckets, a stable counting pass over the block), then each bucket, a few hundred
    connections that fit in L1, is sorted by the low digit with its own counting sort. One pass over the block's
    arrays instead of two; the same output as :func:`_csr_to_blocked` (both are stable, rows ascending).
    """
    n_rows = indptr.shape[0] - 1
    n_blocks = (n_rows + block_rows - 1) // block_rows
    bits = 1
    while (1 << bits) < n_cols:
        bits += 1
    low_bits = max(0, bits - _RADIX_BITS)
    n_high = 1 << (bits - low_bits)
    low_mask = (1 << low_bits) - 1
    for b in prange(n_blocks):
        first_row = b * block_rows
        last_row = min(first_row + block_rows, n_rows)
        start = indptr[first_row]
        n = indptr[last_row] - start
        bucket = np.zeros(n_high + 1, dtype=np.int64)
        for k in range(start, start + n):
            bucket[(csr_cols[k] >> low_bits) + 1] += 1
        for d in range(n_high):
            bucket[d + 1] += bucket[d]
        slot = bucket[:n_high].copy()
        tmp_cols = np.empty(n, dtype=cols.dtype)
        tmp_offsets = np.empty(n, dtype=offsets.dtype)
        tmp_perm = np.empty(n, dtype=perm.dtype)
        for r in range(first_row, last_row):  # CSR order: rows ascending, so each bucket keeps rows ascending
            for k in range(indptr[r], indptr[r + 1]):
                j = slot[csr_cols[k] >> low_bits]
                slot[csr_cols[k] >> low_bits] = j + 1
                tmp_cols[j] = csr_cols[k]
                tmp_offsets[j] = r - first_row
                tmp_perm[j] = k
        count = np.empty(low_mask + 2, dtype=np.int64)
        for h in range(n_high):
            lo, hi = bucket[h], bucket[h + 1]
            if hi - lo <= 1 or low_bits == 0:
                for i in range(lo, hi):
                    cols[start + i] = tmp_cols[i]
                    offsets[start + i] = tmp_offsets[i]
                    perm[start + i] = tmp_perm[i]
                continue
            count[:] = 0
            for i in range(lo, hi):
                count[(tmp_cols[i] & low_mask) + 1] += 1
            for d in range(low_mask + 1):
                count[d + 1] += count[d]
            for i in range(lo, hi):
                d = tmp_cols[i] & low_mask
                j = start + lo + count[d]
                count[d] += 1
                cols[j] = tmp_cols[i]
                offsets[j] = tmp_offsets[i]
                perm[j] = tmp_perm[i]


@njit(cache=True, nogil=True, parallel=True)
def _csr_to_blocked(indptr, csr_cols, block_rows, n_cols, cols, offsets, perm):  # pragma: no cover - compiled
    """Each block's CSR range sorted by column: a least-significant-digit radix sort on the column (11-bit
    digits: two passes up to 4M columns), each pass stable, and the CSR order keeps rows ascending inside a
    column, so every block ends sorted by (column, row). A block per task, in buffers of its own. One
    counting sort over all columns instead made a random access per connection to a counter array of n_cols:
    1.1 s for the 20M connections of a 600,000 x 600,000 layer here, vs 0.5-0.7 s."""
    n_rows = indptr.shape[0] - 1
    n_blocks = (n_rows + block_rows - 1) // block_rows
    n_passes = 1
    while (1 << (_RADIX_BITS * n_passes)) < n_cols:
        n_passes += 1
    mask = (1 << _RADIX_BITS) - 1
    for b in prange(n_blocks):
        first_row = b * block_rows
        last_row = min(first_row + block_rows, n_rows)
        start = indptr[first_row]
        n = indptr[last_row] - start
        count = np.empty(mask + 2, dtype=np.int64)
        src_cols = np.empty(n, dtype=cols.dtype)
        src_offsets = np.empty(n, dtype=offsets.dtype)
        src_perm = np.empty(n, dtype=perm.dtype)
        dst_cols = np.empty(n, dtype=cols.dtype)
        dst_offsets = np.empty(n, dtype=offsets.dtype)
        dst_perm = np.empty(n, dtype=perm.dtype)
        for r in range(first_row, last_row):
            for k in range(indptr[r], indptr[r + 1]):
                src_cols[k - start] = csr_cols[k]
                src_offsets[k - start] = r - first_row
                src_perm[k - start] = k
        for p in range(n_passes):
            if p == n_passes - 1:  # the last pass writes the result in place
                dst_cols = cols[start : start + n]
                dst_offsets = offsets[start : start + n]
                dst_perm = perm[start : start + n]
            shift = _RADIX_BITS * p
            count[:] = 0
            for i in range(n):
                count[((src_cols[i] >> shift) & mask) + 1] += 1
            for d in range(mask + 1):
                count[d + 1] += count[d]
            for i in range(n):
                digit = (src_cols[i] >> shift) & mask
                j = count[digit]
                count[digit] = j + 1
                dst_cols[j] = src_cols[i]
                dst_offsets[j] = src_offsets[i]
                dst_perm[j] = src_perm[i]
            src_cols, dst_cols = dst_cols, src_cols
            src_offsets, dst_offsets = dst_offsets, src_offsets
            src_perm, dst_perm = dst_perm, src_perm


@njit(cache=True, nogil=True, parallel=True)
def _blocked_to_csr(block_ptr, cols, offsets, block_rows, keep, indptr, csr_cols, perm):  # pragma: no cover
    """Counting sort by row, a block per task (a block's rows own one contiguous CSR range); each block's
    connections come in column order, so columns end ascending in every row. Only the connections where
    ``keep`` is True (an empty ``keep``: all of them); an empty ``perm`` is not written."""
    n_rows = indptr.shape[0] - 1
    n_blocks = block_ptr.shape[0] - 1
    every = keep.shape[0] == 0
    indptr[:] = 0
    for b in prange(n_blocks):
        for k in range(block_ptr[b], block_ptr[b + 1]):
            indptr[b * block_rows + offsets[k] + 1] += every or keep[k]
    for r in range(n_rows):
        indptr[r + 1] += indptr[r]
    for b in prange(n_blocks):
        first_row = b * block_rows
        slot = indptr[first_row : min(first_row + block_rows, n_rows)].copy()
        for k in range(block_ptr[b], block_ptr[b + 1]):
            if every or keep[k]:
                j = slot[offsets[k]]
                slot[offsets[k]] += 1
                csr_cols[j] = cols[k]
                if perm.shape[0]:
                    perm[j] = k


@njit(cache=True, nogil=True, parallel=True)
def _blocked_row_degrees(block_ptr, offsets, block_rows, degrees):  # pragma: no cover - compiled
    for b in prange(block_ptr.shape[0] - 1):  # a block's rows are its own: no two tasks count into one row
        first_row = b * block_rows
        for k in range(block_ptr[b], block_ptr[b + 1]):
            degrees[first_row + offsets[k]] += 1
    return degrees


_ALL = np.empty(0, dtype=np.bool_)  # ``keep`` of _blocked_to_csr: every connection
_NO_PERM = np.empty(0, dtype=INDEX_DTYPE)  # ``perm`` of _blocked_to_csr: not wanted


@njit(cache=True, nogil=True)
def _first_disorder(indptr, cols, offsets, block_rows, n_rows):  # pragma: no cover - compiled
    """Position of the first connection out of order (CSR: columns strictly ascending in a row; row-blocked:
    (column, row offset) strictly ascending in a block, rows inside the matrix), or -1."""
    for b in range(indptr.shape[0] - 1):
        rows_here = min(block_rows, n_rows - b * block_rows)
        for k in range(indptr[b], indptr[b + 1]):
            if block_rows > 1 and offsets[k] >= rows_here:
                return k
            if k > indptr[b]:
                if cols[k] < cols[k - 1]:
                    return k
                if cols[k] == cols[k - 1] and (block_rows == 1 or offsets[k] <= offsets[k - 1]):
                    return k
    return -1


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
