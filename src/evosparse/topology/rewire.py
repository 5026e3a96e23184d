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

from evosparse.nn.linear import SparseLinear
from evosparse.sparse.pattern import SparsePattern


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
    old = layer.pattern
    indptr, cols, source = merge_rewiring(old.indptr, old.cols, rewiring.keep, rewiring.new_keys, old.n_cols)
    pattern = SparsePattern.from_csr(indptr, cols, old.n_rows, old.n_cols)
    n_new = rewiring.new_keys.shape[0]

    def remap(tensor: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        # New CSR position i takes entry source[i] of concat(old tensor, fresh values), without building it.
        return gather_survivors(source, tensor, fresh.to(tensor.dtype))

    old_param_data = layer.values.data
    if pattern.nnz != old.nnz:
        old_param = layer.values
        layer.values = torch.nn.Parameter(remap(old_param_data.detach(), new_values), old_param.requires_grad)
        layer.set_pattern(pattern)
        fresh = torch.zeros(n_new, device=layer.values.device)
        replace_parameter(optimizer, old_param, layer.values, remap=lambda t: remap(t, fresh))
        return
    layer.set_pattern(pattern, remap(old_param_data.detach(), new_values))
    if optimizer is not None:
        state = optimizer.state.get(layer.values)
        if state:
            for name, value in list(state.items()):
                if torch.is_tensor(value) and value.shape == old_param_data.shape and value.dim() == 1:
                    state[name] = remap(value, torch.zeros(n_new, dtype=value.dtype, device=value.device))


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
