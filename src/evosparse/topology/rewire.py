"""Applying a topology change to a SparseLinear layer and to its optimizer state.

Every strategy (SET, RigL, pruning, ...) describes a change as a :class:`Rewiring`: which stored
connections survive and which new positions appear. :func:`apply_rewiring` is the one place that turns
that description into a new pattern, carries surviving weights *and their optimizer state* (SGD
momentum, Adam moments, ...) to their new CSR positions, and starts new connections with the given
weights and zero optimizer state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit, prange

from evosparse.nn.linear import SparseLinear, permuted
from evosparse.sparse.functional import host_tensor
from evosparse.sparse.pattern import ROW_OFFSET_DTYPE, SparsePattern


@dataclass(frozen=True)
class Rewiring:
    """A topology change of one layer.

    Attributes:
        keep: sorted indices (CSR positions in the old pattern) of the surviving connections.
        new_keys: sorted linear keys ``row * n_cols + col`` of new connections; none of them may be a
            surviving position.
    """

    keep: np.ndarray
    new_keys: np.ndarray


def apply_rewiring(
    layer: SparseLinear,
    rewiring: Rewiring,
    new_values: torch.Tensor,
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Rebuild ``layer``'s pattern from ``rewiring``; ``new_values`` are the weights of ``new_keys``.

    When nnz stays the same (SET, RigL) the ``layer.values`` Parameter object stays the same (its data is
    swapped), so the optimizer keeps tracking it. When nnz changes (pruning) the layer gets a new
    Parameter, which replaces the old one in the optimizer: autograd remembers a leaf's shape for as long
    as any graph that used it is alive, so resizing a Parameter in place could break the next backward.
    Either way every per-element state tensor is remapped like the weights, with zeros for the new
    connections; scalar state (Adam's ``step``) is kept.
    """
    _require_csr(layer)
    old = layer.pattern
    indptr, cols, source = merge_rewiring(old.indptr, old.cols, rewiring.keep, rewiring.new_keys, old.n_cols)
    pattern = SparsePattern.from_csr(indptr, cols, old.n_rows, old.n_cols)
    # New CSR position i takes entry source[i] of concat(old tensor, fresh values), without building it.
    _replace(layer, pattern, lambda tensor, fresh: gather_survivors(source, tensor, fresh), new_values, optimizer)


def apply_rows(
    layer: SparseLinear,
    keep: np.ndarray,
    new_indptr: np.ndarray,
    new_cols: np.ndarray,
    new_values: torch.Tensor,
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """:func:`apply_rewiring` of a change given per row: the survivors as a boolean mask over the stored order,
    the new positions as CSR arrays (``new_indptr``, ``new_cols``), their weights in that order.

    The same result as ``apply_rewiring(layer, Rewiring(flatnonzero(keep), new keys), ...)`` without any
    array of keys or positions: each row's survivors and new connections are merged again for every tensor
    (weights, then each optimizer state), straight from the old arrays, so the memory peak of rewiring a
    wide layer is the new columns and the old and new copies of one tensor.

    A row-blocked layer is rewired in its own order (the new positions are sorted into it, then each block's
    survivors and new connections are merged): the same pattern, weights and state as converting it to CSR
    order, rewiring and converting back, without the two conversions of every per-connection tensor (on the
    Liu shape, half the rewiring's fresh memory and a third of its time: BENCHMARKS.md section 3).
    """
    old = layer.pattern
    old_indptr, old_cols, old_offsets, block_rows = old.indptr, old.cols, _offsets(old), old.block_rows
    if old.is_blocked:  # the new positions in the layer's order; their weights follow
        new, perm = SparsePattern.from_csr(new_indptr, new_cols, old.n_rows, old.n_cols).to_blocked(block_rows)
        new_indptr, new_cols, new_offsets = new.indptr, new.cols, new.row_offsets
        new_values = permuted(new_values, perm)
        del new, perm
    else:
        new_offsets = _NO_OFFSETS
    del old
    new_index = (new_indptr, new_cols, new_offsets)
    indptr, cols, offsets, is_new = merge_rows((old_indptr, old_cols, old_offsets), keep, new_index, block_rows)
    # The weights and their state are merged from the old row offsets, the mask and the flags alone: without a
    # reference here, the old columns (and row offsets) go as soon as the layer takes the new pattern, before the
    # first tensor is merged (a memory peak lower by their size: 120 MB for a 20M-connection row-blocked layer).
    del old_cols, old_offsets, new_index
    merge = (old_indptr, keep, new_indptr, indptr, is_new)
    if block_rows > 1:
        pattern = SparsePattern(layer.out_features, layer.in_features, indptr, cols, block_rows, offsets)
    else:
        pattern = SparsePattern.from_csr(indptr, cols, layer.out_features, layer.in_features)
    del cols, offsets

    def remap(tensor: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        if tensor.device.type != "cpu" or tensor.dtype not in (torch.float32, torch.float64):
            return gather_survivors(_sources(merge, keep.shape[0], fresh.shape[0]), tensor, fresh)
        out = host_tensor(int(indptr[-1]), tensor.dtype)
        old_values, fresh_values = tensor.detach().contiguous().numpy(), fresh.detach().contiguous().numpy()
        _merge_values(*merge, old_values, fresh_values, out.numpy(), _MERGE_PARTS)
        return out

    _replace(layer, pattern, remap, new_values, optimizer)


_NO_OFFSETS = np.empty(0, dtype=ROW_OFFSET_DTYPE)  # the row offsets of a CSR pattern: none


def _offsets(pattern: SparsePattern) -> np.ndarray:
    return pattern.row_offsets if pattern.is_blocked else _NO_OFFSETS


def _require_csr(layer: SparseLinear) -> None:
    if layer.pattern.is_blocked:
        raise ValueError(
            f"rewiring needs the layer in CSR order, it is row-blocked (block_rows={layer.pattern.block_rows}): "
            "apply it inside `with layer.csr_order(optimizer):`"
        )


def _replace(
    layer: SparseLinear,
    pattern: SparsePattern,
    remap,
    new_values: torch.Tensor,
    optimizer,
) -> None:
    """Give ``layer`` the new ``pattern``; ``remap(tensor, fresh)`` carries a per-connection tensor to it
    (survivors from ``tensor``, new connections from ``fresh``, both of one dtype)."""
    n_new = new_values.shape[0]
    old_nnz = layer.nnz
    old_param_data = layer.values.data
    if pattern.nnz == old_nnz:  # the old indices go before the weights are merged (nothing below reads them)
        layer.set_pattern(pattern)
    merged_values = remap(old_param_data.detach(), new_values.to(old_param_data.dtype))
    if pattern.nnz != old_nnz:
        old_param = layer.values
        layer.values = torch.nn.Parameter(merged_values, old_param.requires_grad)
        layer.set_pattern(pattern)
        fresh = _zeros(n_new, layer.values)
        replace_parameter(optimizer, old_param, layer.values, remap=lambda t: remap(t, fresh.to(t.dtype)))
        return
    layer.set_pattern(pattern, merged_values)
    del old_param_data, merged_values  # the old weights go before the optimizer state is remapped (a lower peak)
    if optimizer is not None:
        state = optimizer.state.get(layer.values)
        if state:
            for name in list(state):
                value = state[name]
                if torch.is_tensor(value) and value.shape == (old_nnz,):
                    state[name] = remap(value, _zeros(n_new, value))
                del value  # the old state tensor goes before the next one is remapped


def _zeros(n: int, like: torch.Tensor) -> torch.Tensor:
    """``n`` zeros of ``like``'s dtype and device (on the CPU in numpy's memory: see ``host_tensor``)."""
    if like.device.type == "cpu":
        return host_tensor(n, like.dtype, zeros=True)
    return torch.zeros(n, dtype=like.dtype, device=like.device)


def merge_rows(
    index: tuple[np.ndarray, np.ndarray, np.ndarray],
    keep: np.ndarray,
    new_index: tuple[np.ndarray, np.ndarray, np.ndarray],
    block_rows: int = 1,
    *,
    sources: bool = False,
    values: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple:
    """:func:`merge_rewiring` with the survivors as a boolean mask ``keep`` and the new positions as arrays of the
    same layout: ``index`` and ``new_index`` are ``(indptr, cols, row_offsets)`` of the old pattern and of the new
    positions, CSR (``block_rows`` 1, empty row offsets) or row-blocked (both in blocks of ``block_rows`` rows).

    Rows (blocks) are merged independently (in parallel) into their place of the output. Returns the new
    ``(indptr, cols, row_offsets, is_new)`` (``is_new``: a boolean per new position, True for a new connection:
    what merging a per-connection tensor needs besides ``indptr`` and ``keep``), with ``sources=True`` also
    ``source`` as :func:`merge_rewiring` does, and with ``values=(old weights, new connections' weights)`` (CPU
    float tensors of one dtype) also the weights in the new order. Raises ValueError if a new position is a
    survivor, is repeated, or is out of order within its row (block).
    """
    indptr, cols, offsets = index
    out_indptr = np.zeros(indptr.shape[0], dtype=indptr.dtype)
    _row_sizes(indptr, keep, new_index[0], out_indptr[1:])
    np.cumsum(out_indptr, out=out_indptr)
    n_out = int(out_indptr[-1])
    out_index = (out_indptr, np.empty(n_out, dtype=cols.dtype), np.empty(n_out if block_rows > 1 else 0, offsets.dtype))
    is_new = np.empty(n_out, dtype=np.bool_)
    if _merge_cols(*index, keep, *new_index, block_rows, *out_index, is_new, _MERGE_PARTS):
        raise ValueError("rewiring would create a duplicate connection")
    out: tuple = ((*out_index, is_new),)
    merge = (indptr, keep, new_index[0], out_indptr, is_new)
    if sources:
        out += (_sources(merge, cols.shape[0], new_index[1].shape[0]),)
    if values is not None:
        out += (_merged(merge, values[0].numpy(), values[1].numpy()),)
    return out if len(out) > 1 else out[0]


def _merged(merge: tuple, old: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """A per-connection array in the merged order of :func:`merge_rows` (survivors' ``old``, new ones' ``fresh``);
    ``merge`` is ``(old indptr, keep, new indptr, merged indptr, is_new)``."""
    out = np.empty(merge[-1].shape[0], dtype=old.dtype)
    _merge_values(*merge, old, fresh, out, _MERGE_PARTS)
    return out


def _sources(merge: tuple, n_old: int, n_new: int) -> np.ndarray:
    """Where each merged entry comes from: old position k, or ``n_old + j`` for the j-th new connection."""
    source_dtype = np.int32 if n_old + n_new < np.iinfo(np.int32).max else np.int64
    return _merged(merge, np.arange(n_old, dtype=source_dtype), np.arange(n_old, n_old + n_new, dtype=source_dtype))


@njit(cache=True, nogil=True, parallel=True)
def _row_sizes(indptr, keep, new_indptr, out):  # pragma: no cover - compiled
    for r in prange(indptr.shape[0] - 1):
        n = new_indptr[r + 1] - new_indptr[r]
        for k in range(indptr[r], indptr[r + 1]):
            n += keep[k]
        out[r] = n


# Rows are merged in parallel, in this many groups of consecutive rows (each with its own row buffer).
_MERGE_PARTS = 64
_CHUNK = 2048  # survivors packed at a time (a row-blocked layer's block holds ~500,000 connections)
_NO_KEY = np.iinfo(np.int64).max  # a sentinel above every position's order key


@njit(cache=True, nogil=True, parallel=True)
def _merge_cols(  # pragma: no cover - compiled
    indptr,
    cols,
    offsets,
    keep,
    new_indptr,
    new_cols,
    new_offsets,
    block_rows,
    out_indptr,
    out_cols,
    out_offsets,
    is_new,
    n_parts,
):
    """Per row (block), the surviving positions and the new ones merged in ascending order (column, then row
    offset) into ``out_cols`` (and ``out_offsets``); ``is_new`` marks the new ones.

    Returns True if a new position is a survivor, is repeated, negative, or out of order in its row. Why two
    steps per row (the survivors packed into buffers, then a merge that picks with selects, not jumps): a
    random 30% of the connections are dropped, so "is this one kept?" and "which list is next?" are coin
    flips to the branch predictor. Measured on a 20.4M-connection layer: 90 ms for the columns, against ~135 ms
    for the branchy merge of columns and weights it replaced; the whole rewiring came out no faster within this
    machine's noise (BENCHMARKS.md, section 3), so this is kept for being one routine instead of two.
    """
    n_rows = indptr.shape[0] - 1
    blocked = block_rows > 1
    bad = np.zeros(n_rows, dtype=np.bool_)  # per row: a scalar flag is not a safe prange reduction
    n_parts = max(1, min(n_parts, n_rows))
    for t in prange(n_parts):
        kept = np.empty(_CHUNK + 1, dtype=np.int64)  # the survivors' order keys
        kept_cols = np.empty(_CHUNK + 1, dtype=cols.dtype)
        kept_offsets = np.empty(_CHUNK + 1 if blocked else 0, dtype=offsets.dtype)
        for r in range(n_rows * t // n_parts, n_rows * (t + 1) // n_parts):
            start, end = indptr[r], indptr[r + 1]
            e, e_end = new_indptr[r], new_indptr[r + 1]
            n = out_indptr[r]
            previous = -1
            chunk = start
            while True:  # a chunk of the old row at a time: the packed survivors stay in L1
                chunk_end = min(chunk + _CHUNK, end)
                last_chunk = chunk_end == end
                n_kept = _pack_keys(cols, offsets, block_rows, keep, chunk, chunk_end, kept)
                kept[n_kept] = _NO_KEY
                _pack(cols, keep, chunk, chunk_end, kept_cols)
                if blocked:
                    _pack(offsets, keep, chunk, chunk_end, kept_offsets)
                j = 0
                # The chunk's survivors, the new positions before its last one (and in the last chunk, the rest).
                while j < n_kept or (last_chunk and e < e_end):
                    new_key = _key_or_sentinel(new_cols, new_offsets, block_rows, e, e_end)
                    kept_key = kept[j]
                    take_new = new_key < kept_key
                    key = new_key if take_new else kept_key
                    bad[r] |= (new_key == kept_key) | (key <= previous)
                    # Both loaded first (min() keeps the read in bounds), so that the pick is a select, not a jump.
                    last_new = min(e, e_end - 1)
                    out_cols[n] = new_cols[last_new] if take_new else kept_cols[j]
                    if blocked:
                        out_offsets[n] = new_offsets[last_new] if take_new else kept_offsets[j]
                    is_new[n] = take_new
                    previous = key
                    n += 1
                    e += take_new
                    j += not take_new
                chunk = chunk_end
                if last_chunk:
                    break
    return bad.any()


@njit(cache=True, nogil=True, parallel=True)
def _merge_values(indptr, keep, new_indptr, out_indptr, is_new, old, fresh, out, n_parts):  # pragma: no cover
    """``out`` in the merged order of :func:`_merge_cols`: where ``is_new``, the row's next entry of ``fresh``, else
    its next surviving entry of ``old`` (survivors packed a chunk at a time, picked with selects, not jumps)."""
    n_rows = indptr.shape[0] - 1
    n_parts = max(1, min(n_parts, n_rows))
    for t in prange(n_parts):
        kept = np.empty(_CHUNK + 1, dtype=old.dtype)
        for r in range(n_rows * t // n_parts, n_rows * (t + 1) // n_parts):
            start, end = indptr[r], indptr[r + 1]
            e, e_end = new_indptr[r], new_indptr[r + 1]
            n = out_indptr[r]
            chunk = start
            while True:  # the chunks of _merge_cols
                chunk_end = min(chunk + _CHUNK, end)
                last_chunk = chunk_end == end
                n_kept = _pack(old, keep, chunk, chunk_end, kept)
                if e == e_end:  # survivors only from here on
                    out[n : n + n_kept] = kept[:n_kept]
                    n += n_kept
                else:
                    j = 0
                    while j < n_kept or (last_chunk and e < e_end):
                        new = is_new[n]
                        new_value, kept_value = fresh[min(e, e_end - 1)], kept[j]  # both loaded: a select
                        out[n] = new_value if new else kept_value
                        n += 1
                        e += new
                        j += not new
                chunk = chunk_end
                if last_chunk:
                    break


@njit(inline="always")
def _pack(source, keep, start, end, kept):
    """``kept[:count]`` = the kept entries of ``source[start:end]``, without a branch per entry; returns count.
    ``kept`` needs one slot more than the row: every entry is written, only kept ones advance the cursor."""
    j = 0
    for k in range(start, end):
        kept[j] = source[k]
        j += keep[k]
    return j


@njit(inline="always")
def _pack_keys(cols, offsets, block_rows, keep, start, end, kept):
    """:func:`_pack` of the order keys (:func:`_key`) of ``start:end``."""
    j = 0
    for k in range(start, end):
        kept[j] = _key(cols, offsets, block_rows, k)
        j += keep[k]
    return j


@njit(inline="always")
def _key(cols, offsets, block_rows, k):
    """Where connection k sorts in its row (CSR: its column) or block (column, then row offset)."""
    if block_rows > 1:
        return np.int64(cols[k]) * block_rows + np.int64(offsets[k])
    return np.int64(cols[k])


@njit(inline="always")
def _key_or_sentinel(new_cols, new_offsets, block_rows, e, e_end):
    return _key(new_cols, new_offsets, block_rows, e) if e < e_end else np.int64(_NO_KEY)


def merge_rewiring(
    indptr: np.ndarray, cols: np.ndarray, keep: np.ndarray, new_keys: np.ndarray, n_cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The new CSR arrays of survivors ``keep`` plus ``new_keys``, and where each new entry comes from.

    Both inputs are sorted in row-major order, so one merge pass per row replaces a sort of all the keys:
    O(nnz), no int64 key array. ``source[i]`` is the old CSR position of new entry i, or
    ``old nnz + j`` for the j-th new key (int32 when that fits). Raises ValueError on a new key that
    is already a survivor (or repeated) or outside the matrix.
    """
    n_old = cols.shape[0]
    n_total = keep.shape[0] + new_keys.shape[0]
    source_dtype = np.int32 if n_old + new_keys.shape[0] < np.iinfo(np.int32).max else np.int64
    out_indptr = np.empty(indptr.shape[0], dtype=indptr.dtype)
    out_cols = np.empty(n_total, dtype=cols.dtype)
    source = np.empty(n_total, dtype=source_dtype)
    keep = np.ascontiguousarray(keep, dtype=np.int64)
    new_keys = np.ascontiguousarray(new_keys, dtype=np.int64)
    status = _merge(indptr, cols, keep, new_keys, n_cols, out_indptr, out_cols, source)
    if status == 1:
        raise ValueError("rewiring would create a duplicate connection")
    if status == 2:
        raise ValueError("new connections must be sorted keys inside the matrix")
    return out_indptr, out_cols, source


def gather_survivors(source: np.ndarray, tensor: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """``concat(tensor, fresh)[source]`` in one pass (numba on CPU float tensors, torch otherwise)."""
    if tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.float64) and fresh.device.type == "cpu":
        out = torch.empty(source.shape[0], dtype=tensor.dtype)
        _gather(source, tensor.detach().contiguous().numpy(), fresh.detach().contiguous().numpy(), out.numpy())
        return out
    index = torch.from_numpy(source.astype(np.int64)).to(tensor.device)
    return torch.cat([tensor, fresh.to(tensor.device)])[index]


@njit(cache=True, nogil=True)
def _merge(indptr, cols, keep, new_keys, n_cols, out_indptr, out_cols, source):  # pragma: no cover - compiled
    n_rows = indptr.shape[0] - 1
    n_old = cols.shape[0]
    i = 0  # next survivor
    e = 0  # next new key
    n = 0  # next output slot
    out_indptr[0] = 0
    for r in range(n_rows):
        end = indptr[r + 1]
        while True:
            has_kept = i < keep.shape[0] and keep[i] < end
            has_new = e < new_keys.shape[0] and new_keys[e] // n_cols == r
            if not (has_kept or has_new):
                break
            take_kept = has_kept
            if has_kept and has_new:
                kept_col = cols[keep[i]]
                new_col = new_keys[e] - r * n_cols
                if kept_col == new_col:
                    return 1
                take_kept = kept_col < new_col
            if take_kept:
                out_cols[n] = cols[keep[i]]
                source[n] = keep[i]
                i += 1
            else:
                new_col = new_keys[e] - r * n_cols
                if n > out_indptr[r] and out_cols[n - 1] >= new_col:
                    return 1  # a repeated new key (or one out of order)
                out_cols[n] = new_col
                source[n] = n_old + e
                e += 1
            n += 1
        out_indptr[r + 1] = n
    if e < new_keys.shape[0] or i < keep.shape[0]:
        return 2
    return 0


@njit(cache=True, nogil=True, parallel=True)
def _gather(source, old, fresh, out):  # pragma: no cover - compiled
    n_old = old.shape[0]
    for i in prange(source.shape[0]):
        s = source[i]
        out[i] = old[s] if s < n_old else fresh[s - n_old]


def replace_parameter(
    optimizer: torch.optim.Optimizer | None, old: torch.nn.Parameter, new: torch.nn.Parameter, remap=None
) -> None:
    """Let ``optimizer`` optimise ``new`` instead of ``old``; per-element state is passed through ``remap``."""
    if optimizer is None:
        return
    for group in optimizer.param_groups:
        group["params"] = [new if p is old else p for p in group["params"]]
    state = optimizer.state.pop(old, None)
    if state:
        moved = {}
        for key, value in state.items():
            if remap is not None and torch.is_tensor(value) and value.shape == old.shape and value.dim() > 0:
                moved[key] = remap(value)
            else:
                moved[key] = value
        optimizer.state[new] = moved
