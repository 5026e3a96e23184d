"""``SparseLinear``: a fully connected layer whose weight matrix is truly sparse."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from numba import njit
from torch import nn

from evosparse.nn.dropout import SeededDropout, relu_dropout_, relu_dropout_grad
from evosparse.sparse.functional import (
    BACKENDS,
    SGDStep,
    _PatternTensors,
    check_inputs,
    host_tensor,
    linear_backward,
    linear_forward,
    sparse_linear,
)
from evosparse.sparse.init import check_density, erdos_renyi_pattern, erdos_renyi_probability, random_pattern
from evosparse.sparse.pattern import SparsePattern, check_block_rows, permute

WEIGHT_INITS = ("fan_in", "paper")
_INIT_CHUNK = 1 << 20  # connections initialised per chunk
DTYPES = (torch.float32, torch.float64)  # what the compiled kernels compute in (no float16 / bfloat16 CPU kernels)


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from a seed, an existing Generator (returned as is) or None (fresh entropy)."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class SparseLinear(nn.Module):
    r"""Applies :math:`y = x W^T + b` with a sparse ``W`` stored as indices + values.

    The weight is never a dense ``out x in`` tensor: ``values`` (an ``nn.Parameter`` of length nnz)
    holds the weights in CSR order of :attr:`pattern` (rows = output neurons), and the forward pass,
    input gradient and weight gradient all cost O(nnz x batch) (see :mod:`evosparse.sparse.functional`).

    The initial connectivity is Erdos-Renyi: each connection exists with probability
    ``epsilon * (in + out) / (in * out)`` (SET paper), or with probability ``density`` if given.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        epsilon: Erdos-Renyi sparsity parameter (the SET paper uses 20); ignored if ``density`` is given.
        density: fraction of the ``in x out`` connections to keep, in (0, 1].
        bias: if False, the layer learns no additive bias.
        weight_init: ``"fan_in"`` (default): He-uniform with each neuron's *actual* fan-in, so that sparse
            layers keep the activation scale of dense ones; ``"paper"``: the SET code's He-uniform
            with the dense fan-in, ``U(-sqrt(6 / in), sqrt(6 / in))``.
        backend: ``"auto"``, ``"numba"`` (compiled CPU kernels) or ``"torch"`` (device-agnostic).
        seed: int, ``numpy.random.Generator`` or None; drives topology and initial weights.
        dtype: ``torch.float32`` (default dtype) or ``torch.float64``: the compiled kernels' types. Half
            precision (float16, bfloat16) raises a TypeError here rather than failing in the forward pass.
        device: where ``values`` and ``bias`` live.
        block_rows: 1 (default): ``values`` in CSR order; R > 1: in *row-blocked* order (blocks of R output
            neurons, each sorted by input neuron; :mod:`evosparse.sparse.pattern`), the layout for layers of
            10^5 neurons and more trained at batches of a few samples, where it made a training step several
            times faster (BENCHMARKS.md section 3). The same numbers either way; numba backend (CPU) only.
            Pick R so that R x batch outputs fit well inside L2 (16384 at batch 2). Topology updates see the
            CSR order (:meth:`csr_order`); the state dict stores the layout it was saved in.
        empty: start with no connections (nothing drawn or initialised) and the bias at 0, for a layer whose
            state dict is loaded next: a resumed run's layers take their connections from the checkpoint, and
            drawing a random pattern first would only add its memory to the checkpoint's.

    Shape:
        - Input: :math:`(*, H_{in})`; Output: :math:`(*, H_{out})`.

    Example::

        >>> layer = SparseLinear(784, 1000, epsilon=20, seed=0)
        >>> layer(torch.randn(32, 784)).shape
        torch.Size([32, 1000])
        >>> round(layer.density, 3)
        0.045
    """

    # Set by evosparse.nn.FusedSGD: called in the backward pass, returns the SGD step to fuse into it (or None).
    fused_update: Callable[[], SGDStep | None] | None = None
    # The layout the layer keeps its values in between topology updates (1: CSR); see set_block_rows.
    block_rows: int = 1

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        epsilon: float = 20.0,
        density: float | None = None,
        bias: bool = True,
        weight_init: str = "fan_in",
        backend: str = "auto",
        seed: int | np.random.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        block_rows: int = 1,
        empty: bool = False,
    ) -> None:
        super().__init__()
        block_rows = check_block_rows(block_rows)
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        dtype = torch.get_default_dtype() if dtype is None else dtype
        _check_dtype(dtype)
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.epsilon = None if density is not None else float(epsilon)
        self.weight_init = weight_init
        self.backend = backend
        self.resized = False  # True once resize() removed neurons: the state dict then carries the shape
        rng = as_generator(seed)
        if empty:  # the sizing arguments are still checked: the loaded state must come from a valid layer
            if density is None:
                erdos_renyi_probability(self.in_features, self.out_features, epsilon)
            else:
                check_density(density)
            pattern = SparsePattern.from_csr(
                np.zeros(self.out_features + 1, np.int64), np.empty(0, np.int64), self.out_features, self.in_features
            )
        elif density is not None:
            pattern = random_pattern(self.out_features, self.in_features, density, rng)
        else:
            pattern = erdos_renyi_pattern(self.in_features, self.out_features, epsilon, rng)
        factory = {"dtype": dtype, "device": device}
        self.values = nn.Parameter(torch.empty(pattern.nnz, **factory))
        self.bias = nn.Parameter(torch.empty(self.out_features, **factory)) if bias else None
        self.block_rows = 1
        self.set_pattern(pattern)
        self.reset_parameters(rng)
        self.set_block_rows(block_rows)

    # ---- topology -------------------------------------------------------------------------------
    @property
    def pattern(self) -> SparsePattern:
        return self._pattern

    def set_pattern(self, pattern: SparsePattern, values: torch.Tensor | None = None) -> None:
        """Replace the connectivity (and, if given, the values, in the new pattern's CSR order).

        The ``values`` Parameter object is kept (its ``.data`` is swapped) so optimizers keep pointing at it.
        """
        if (pattern.n_rows, pattern.n_cols) != (self.out_features, self.in_features):
            raise ValueError(
                f"pattern shape {(pattern.n_rows, pattern.n_cols)} does not match layer "
                f"{(self.out_features, self.in_features)}"
            )
        if values is not None:
            if values.shape != (pattern.nnz,):
                raise ValueError(f"values must have shape ({pattern.nnz},), got {tuple(values.shape)}")
            self.values.data = values.to(self.values.device, self.values.dtype)
        elif self.values.shape[0] != pattern.nnz:
            raise ValueError("a pattern with a different nnz needs new values")
        self._pattern = pattern
        self._index_tensors: dict[torch.device, _PatternTensors] = {}

    def set_block_rows(self, block_rows: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Store the weights in row-blocked order with blocks of ``block_rows`` rows (1: CSR order).

        ``values`` (the same Parameter object) and its per-connection state in ``optimizer`` (SGD momentum,
        Adam moments) are permuted alike, so training continues exactly as before.
        """
        self.block_rows = check_block_rows(block_rows)
        self._relayout(self.block_rows, optimizer)

    @contextmanager
    def csr_order(self, optimizer: torch.optim.Optimizer | None = None) -> Iterator[None]:
        """Within the block, ``values`` (and its optimizer state) are in CSR order; the layer's own layout after.

        Topology updates run inside it (:class:`evosparse.topology.TopologyStrategy`): what they compute
        (keys, per-row growth, merges) is written for CSR order.
        """
        self._relayout(1, optimizer)
        try:
            yield
        finally:
            self._relayout(self.block_rows, optimizer)

    def _relayout(self, block_rows: int, optimizer: torch.optim.Optimizer | None) -> None:
        old = self._pattern
        if old.block_rows == block_rows:
            return
        if self.values.device.type != "cpu":
            raise ValueError(
                f"block_rows > 1 needs the layer on the CPU (numba backend), values are on {self.values.device}"
            )
        if not old.is_blocked:
            new, perm = old.to_blocked(block_rows)
        elif block_rows == 1:
            new, perm = old.to_csr()
        else:  # one block size to another: old -> CSR -> new composed into one gather
            csr, to_csr = old.to_csr()
            new, perm = csr.to_blocked(block_rows)
            perm = permute(to_csr, perm)
        # The old indices go before the tensors are permuted one at a time: the memory peak of a relayout is one
        # old and one new copy of a tensor, the new pattern and the permutation.
        self._pattern = new
        self._index_tensors = {}
        del old
        state = optimizer.state.get(self.values, {}) if optimizer is not None else {}
        per_connection = [k for k, t in state.items() if isinstance(t, torch.Tensor) and t.shape == self.values.shape]
        for key in per_connection:
            state[key] = permuted(state[key], perm)
        self.values.data = permuted(self.values.data, perm)

    def resize(self, *, keep_outputs: np.ndarray | None = None, keep_inputs: np.ndarray | None = None) -> np.ndarray:
        """Keep only the output neurons ``keep_outputs`` (rows) and / or input neurons ``keep_inputs`` (columns).

        Both are sorted, distinct neuron ids (None: keep all). The connections of removed neurons go; the
        others keep their CSR order. ``values`` (and ``bias`` when outputs go) become new, smaller
        Parameters, because a leaf's shape must not change while autograd may remember it: the caller
        points its optimizer at them (:func:`evosparse.topology.rewire.replace_parameter`). The layer is
        marked :attr:`resized`, so its state dict carries its new shape.

        Returns:
            CSR positions, in the old pattern, of the connections kept (to remap per-connection state).
        """
        pattern = self._pattern
        if pattern.is_blocked:
            raise ValueError(f"resize needs CSR order: call it inside layer.csr_order() (block_rows={self.block_rows})")
        new_row = _renumbering("keep_outputs", keep_outputs, self.out_features)
        new_col = _renumbering("keep_inputs", keep_inputs, self.in_features)
        kept = np.flatnonzero((new_row[pattern.rows] >= 0) & (new_col[pattern.cols] >= 0))
        n_out, n_in = int(new_row.max()) + 1, int(new_col.max()) + 1
        new_pattern = SparsePattern.from_coo(new_row[pattern.rows[kept]], new_col[pattern.cols[kept]], n_out, n_in)
        self.values = nn.Parameter(self.values.detach()[torch.from_numpy(kept)].clone(), self.values.requires_grad)
        if self.bias is not None and keep_outputs is not None:
            keep_t = torch.from_numpy(np.asarray(keep_outputs, dtype=np.int64))
            self.bias = nn.Parameter(self.bias.detach()[keep_t].clone(), self.bias.requires_grad)
        self.out_features, self.in_features = n_out, n_in
        self.resized = True
        self.set_pattern(new_pattern)
        return kept

    def _index_cache(self, device: torch.device) -> _PatternTensors:
        if device not in self._index_tensors:
            self._index_tensors[device] = _PatternTensors(self._pattern, device)
        return self._index_tensors[device]

    # ---- parameters -----------------------------------------------------------------------------
    def init_bounds(self, rows: np.ndarray | None = None) -> np.ndarray | float:
        """Half-width of the uniform init of new weights in ``rows`` (all connections if None)."""
        if self.weight_init == "paper":
            return math.sqrt(6.0 / self.in_features)
        bounds = self._row_bounds()
        return bounds[self._pattern.rows] if rows is None else bounds[rows]

    def _row_bounds(self) -> np.ndarray:
        """Half-width of the uniform init of each output neuron's weights (float64, one per row)."""
        if self.weight_init == "paper":
            return np.full(self.out_features, math.sqrt(6.0 / self.in_features))
        return np.sqrt(6.0 / np.maximum(self._pattern.row_degrees(), 1))

    def sample_weights(self, rows: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Fresh initial weights for connections ending in output neurons ``rows``."""
        bounds = self.init_bounds(rows)
        draw = rng.uniform(-1.0, 1.0, size=rows.shape[0]) * bounds
        return torch.as_tensor(draw, dtype=self.values.dtype, device=self.values.device)

    def sample_weights_csr(self, indptr: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """:meth:`sample_weights` of connections given per row (``indptr[r]:indptr[r + 1]`` end in neuron r).

        The same numbers as ``sample_weights(np.repeat(np.arange(n_rows), np.diff(indptr)), rng)``, without
        the int64 rows and the float64 bounds of every connection.
        """
        out = host_tensor(int(indptr[-1] - indptr[0]), self.values.dtype)
        _fill_uniform(indptr, 0, self._row_bounds(), rng, out)
        return out.to(self.values.device)

    def reset_parameters(self, seed: int | np.random.Generator | None = None) -> None:
        rng = as_generator(seed)
        if self._pattern.is_blocked:  # the draws are made in CSR order: the same weights in any layout
            with self.csr_order():
                self.reset_parameters(rng)
            return
        pattern = self._pattern
        row_bounds = self._row_bounds()
        with torch.no_grad():
            # Row by row in chunks of ~1M connections: the same draws as one sample_weights(pattern.rows)
            # call, without its nnz-long float64 temporaries (a wide layer's 20M connections: 480 MB).
            cpu = self.values.device.type == "cpu"
            values = self.values.data if cpu else torch.empty(pattern.nnz, dtype=self.values.dtype)
            start = 0
            while start < pattern.n_rows:
                end = int(np.searchsorted(pattern.indptr, pattern.indptr[start] + _INIT_CHUNK, side="right"))
                end = max(end - 1, start + 1)
                first, last = int(pattern.indptr[start]), int(pattern.indptr[end])
                _fill_uniform(pattern.indptr[start : end + 1], start, row_bounds, rng, values[first:last])
                start = end
            if not cpu:
                self.values.copy_(values)
            if self.bias is not None:
                self.bias.zero_()

    # ---- forward --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.values.dtype not in DTYPES:  # e.g. after .half(): say so rather than fail inside torch.sparse
            _check_dtype(self.values.dtype)
        return sparse_linear(
            x,
            self.values,
            self.bias,
            self._pattern,
            backend=self.backend,
            index_cache=self._index_cache,
            update=self.fused_update,
        )

    def forward_relu_dropout(self, x: torch.Tensor, dropout: SeededDropout | None = None) -> torch.Tensor:
        """``dropout(relu(self(x)))`` as one op of the numba backend, for a 2-D CPU float input.

        The same numbers as the three modules one after the other (the same key drawn from ``dropout``'s
        generator at the same moment, the same kernels), with fewer passes: ReLU and dropout run in place on
        the product's output, and the backward pass takes their mask from that output (> 0 exactly where the
        unit was active and kept) instead of hashing the dropout key again. ``SparseMLP`` uses it for its
        hidden blocks when no hook is registered (:func:`evosparse.nn.mlp.fusable_block`).
        """
        if self.values.dtype not in DTYPES:
            _check_dtype(self.values.dtype)
        check_inputs(x, self.values, self._pattern)
        drop = dropout is not None and dropout.training and dropout.p > 0
        key = dropout.draw_key() if drop else None
        return _SparseReluDropout.apply(
            x,
            self.values,
            self.bias,
            self._pattern,
            self._index_cache,
            self.fused_update,
            key,
            dropout.p if drop else 0.0,
            dropout.row_offset if drop else 0,
        )

    # ---- inspection -----------------------------------------------------------------------------
    @property
    def nnz(self) -> int:
        return self._pattern.nnz

    @property
    def density(self) -> float:
        return self._pattern.density

    def memory_bytes(self) -> dict[str, int]:
        """Bytes of this layer's weights: values, indices (both views), bias, and the dense equivalent."""
        element = self.values.element_size()
        bias = self.bias.numel() * element if self.bias is not None else 0
        values = self.values.numel() * element
        indices = self._pattern.index_bytes()
        dense = self.in_features * self.out_features * element + bias
        return {"values": values, "indices": indices, "bias": bias, "total": values + indices + bias, "dense": dense}

    def to_dense(self) -> torch.Tensor:
        """The weight as a dense ``out x in`` tensor (for inspection and tests only: O(in x out) memory)."""
        dense = torch.zeros(self.out_features, self.in_features, dtype=self.values.dtype, device=self.values.device)
        rows = torch.from_numpy(self._pattern.rows).long().to(dense.device)
        cols = torch.from_numpy(self._pattern.cols).long().to(dense.device)
        dense[rows, cols] = self.values.detach()
        return dense

    @classmethod
    def from_dense(
        cls,
        weight: torch.Tensor,
        mask: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        *,
        backend: str = "auto",
    ) -> SparseLinear:
        """A SparseLinear holding ``weight`` at the positions where ``mask`` is true (default: weight != 0)."""
        if weight.dim() != 2:
            raise ValueError(f"weight must be 2-D (out, in), got shape {tuple(weight.shape)}")
        _check_dtype(weight.dtype)
        mask = (weight != 0) if mask is None else mask.to(torch.bool)
        if mask.shape != weight.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} differs from weight shape {tuple(weight.shape)}")
        if not bool(mask.any()):
            raise ValueError("mask selects no connection; a sparse layer needs at least one")
        n_out, n_in = weight.shape
        rows, cols = (t.cpu().numpy() for t in mask.nonzero(as_tuple=True))
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        layer.in_features, layer.out_features = int(n_in), int(n_out)
        layer.epsilon, layer.weight_init, layer.backend, layer.resized = None, "fan_in", backend, False
        pattern = SparsePattern.from_coo(rows, cols, n_out, n_in)
        values = weight.detach()[torch.from_numpy(pattern.rows).long(), torch.from_numpy(pattern.cols).long()]
        layer.values = nn.Parameter(values.clone())
        layer.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        layer.set_pattern(pattern)
        return layer

    def extra_repr(self) -> str:
        sizing = f"epsilon={self.epsilon}" if self.epsilon is not None else "density given"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.nnz}, "
            f"density={self.density:.4f}, {sizing}, bias={self.bias is not None}"
        )

    # ---- state dict: the pattern travels with the values ------------------------------------------
    # The pattern is saved as its own arrays -- ``indptr`` and ``cols`` (+ ``row_offsets`` and ``block_rows`` when
    # row-blocked) -- shared with the layer, not copied: a checkpoint of a 54M-connection model costs no extra
    # memory to build (a ``rows`` copy would be 4 bytes per connection). State dicts of earlier versions
    # (``rows`` + ``cols``, any order) still load.
    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        pattern = self._pattern
        destination[prefix + "indptr"] = _shared_tensor(pattern.indptr)
        destination[prefix + "cols"] = _shared_tensor(pattern.cols)
        if pattern.is_blocked:  # cols, row_offsets and values are in this order: the loader keeps it
            destination[prefix + "row_offsets"] = _shared_tensor(pattern.row_offsets)
            destination[prefix + "block_rows"] = torch.tensor(pattern.block_rows, dtype=torch.int64)
        if self.resized:  # lost neurons during training (neuron importance pruning)
            destination[prefix + "shape"] = torch.tensor([self.out_features, self.in_features], dtype=torch.int64)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        keys = {name: prefix + name for name in ("indptr", "rows", "cols", "row_offsets", "block_rows", "shape")}
        if keys["shape"] in state_dict:
            n_out, n_in = (int(v) for v in state_dict[keys["shape"]])
            if (n_out, n_in) != (self.out_features, self.in_features):
                error_msgs.append(
                    f"{prefix}: saved layer shape {(n_out, n_in)} differs from {(self.out_features, self.in_features)}"
                    " (use evosparse.prune.adopt_structure before loading a run whose layers shrank)"
                )
                return
            self.resized = True
        has_csr = keys["indptr"] in state_dict and keys["cols"] in state_dict
        if has_csr or (keys["rows"] in state_dict and keys["cols"] in state_dict):
            try:
                pattern = self._saved_pattern(state_dict, keys, has_csr)
            except ValueError as error:
                error_msgs.append(f"{prefix}: invalid sparse pattern in state dict: {error}")
                return
            # Adopt the saved topology (and layout: the optimizer state saved beside it is in that order) first,
            # so the generic loader's shape check passes for any nnz.
            self.block_rows = pattern.block_rows
            self.set_pattern(pattern, torch.zeros(pattern.nnz, dtype=self.values.dtype))
        elif strict:
            missing_keys.extend(keys[name] for name in ("indptr", "cols") if keys[name] not in state_dict)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        for key in keys.values():
            if key in unexpected_keys:
                unexpected_keys.remove(key)

    def _saved_pattern(self, state_dict: dict[str, Any], keys: dict[str, str], has_csr: bool) -> SparsePattern:
        """The pattern a state dict holds, checked; the arrays of a loaded file are used without a copy."""
        block_rows = check_block_rows(int(state_dict[keys["block_rows"]])) if keys["block_rows"] in state_dict else 1
        n_out, n_in = self.out_features, self.in_features
        if has_csr:
            offsets = state_dict.get(keys["row_offsets"])
            return SparsePattern.checked(
                state_dict[keys["indptr"]].cpu().numpy(),
                state_dict[keys["cols"]].cpu().numpy(),
                n_out,
                n_in,
                block_rows,
                None if offsets is None else offsets.cpu().numpy(),
            )
        rows, cols = state_dict[keys["rows"]].cpu().numpy(), state_dict[keys["cols"]].cpu().numpy()
        pattern = SparsePattern.from_coo(rows, cols, n_out, n_in)
        if block_rows > 1:
            pattern = pattern.to_blocked(block_rows)[0]
        if not (np.array_equal(pattern.rows, rows) and np.array_equal(pattern.cols, cols)):
            order = "CSR (row-major)" if block_rows == 1 else f"row-blocked (block_rows={block_rows})"
            raise ValueError(f"rows / cols are not in {order} order")
        return pattern


class _SparseReluDropout(torch.autograd.Function):
    """A hidden block as one autograd op: dropout(relu(x W^T + b)) (numba backend, 2-D input)."""

    @staticmethod
    def forward(ctx, x2d, values, bias, pattern, index_cache, update, key, p, row_offset):
        out_t, xt = linear_forward(ctx, x2d, values, bias, pattern, "numba", index_cache, update)
        relu_dropout_(out_t.t(), key, p, row_offset)
        ctx.p = p
        ctx.save_for_backward(xt, values, out_t)
        return out_t.t()

    @staticmethod
    def backward(ctx, grad_out):
        xt, values, out_t = ctx.saved_tensors
        grad_z = relu_dropout_grad(grad_out.t(), out_t, ctx.p)
        grad_x, grad_values, grad_bias = linear_backward(ctx, xt, values, grad_z)
        return grad_x, grad_values, grad_bias, None, None, None, None, None, None


def _shared_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over ``array``'s memory (a copy only if the array is read-only, which torch cannot wrap)."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def permuted(tensor: torch.Tensor, perm: np.ndarray) -> torch.Tensor:
    """``tensor[perm]`` (a new tensor), in one compiled pass on the CPU (no int64 copy of ``perm``)."""
    if tensor.device.type == "cpu" and tensor.dtype in DTYPES:
        return torch.from_numpy(permute(tensor.detach().contiguous().numpy(), perm))
    return tensor[torch.from_numpy(perm).long().to(tensor.device)]


def _renumbering(name: str, keep: np.ndarray | None, size: int) -> np.ndarray:
    """New id of each of ``size`` neurons after keeping the sorted ids ``keep`` (-1: removed)."""
    if keep is None:
        return np.arange(size, dtype=np.int64)
    keep = np.asarray(keep, dtype=np.int64)
    if keep.ndim != 1 or keep.shape[0] == 0 or np.any(np.diff(keep) <= 0) or keep[0] < 0 or keep[-1] >= size:
        raise ValueError(f"{name} must be sorted, distinct neuron ids in [0, {size}) and not empty")
    new_id = np.full(size, -1, dtype=np.int64)
    new_id[keep] = np.arange(keep.shape[0])
    return new_id


def _check_dtype(dtype: torch.dtype) -> None:
    if dtype not in DTYPES:
        raise TypeError(f"dtype must be torch.float32 or torch.float64 (the sparse kernels' types), got {dtype}")


def _fill_uniform(
    indptr: np.ndarray, first_row: int, row_bounds: np.ndarray, rng: np.random.Generator, out: torch.Tensor
) -> None:
    """``out[k] = U(-1, 1) * row_bounds[row of k]`` for the connections of rows ``first_row, ...`` (CSR
    offsets ``indptr``, not necessarily from 0): one float64 draw per connection, rounded to ``out``'s dtype as
    ``torch.as_tensor`` would, in one compiled pass."""
    draws = rng.uniform(-1.0, 1.0, size=int(indptr[-1] - indptr[0]))
    _scale_by_row(indptr, first_row, row_bounds, draws, out.numpy())


@njit(cache=True, nogil=True)
def _scale_by_row(indptr, first_row, row_bounds, draws, out):  # pragma: no cover - compiled
    base = indptr[0]
    for r in range(indptr.shape[0] - 1):
        bound = row_bounds[first_row + r]
        for k in range(indptr[r] - base, indptr[r + 1] - base):
            out[k] = draws[k] * bound
