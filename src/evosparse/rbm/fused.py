"""A whole CD-k pass of a sparse RBM in one compiled call: the fast path of :class:`ContrastiveDivergence`.

Why: at the SET-RBM reference setting (COIL20, 200 hidden, 12,240 connections, batch 10) one CD-1 update
is ~0.4 M multiply-adds, a few tens of microseconds of arithmetic, but the step-by-step path
(:meth:`ContrastiveDivergence.step`: three kernel calls plus ~30 small numpy operations for the sigmoids,
samples, means, concatenations and the momentum update) spent ~0.5 ms per update in call overheads and
temporary arrays (cProfile, BENCHMARKS.md section 9). :func:`cd_epoch` runs every mini-batch of an epoch
inside one compiled call: a serial driver that calls compiled stages (the products are the sparse kernels'
own ``spmm`` and ``sddmm``, plus a two-rows-at-a-time product for batches narrower than one register).

Why stages and not one function: the first version inlined every stage into one parallel function, and
Numba's parallel passes grow much faster than linearly with a function's size: it took 141 s to compile on
an empty cache (per dtype), a silent wait on a user's first ``evosparse rbm train``. As stages, the fused
path adds ~15 s to the ~11-15 s the sparse kernels take anyway, once per machine (cached on disk;
``benchmarks/bench_rbm.py compile``).

What it computes is *bit-identical* to the step-by-step path, which stays the reference
(``tests/rbm/test_fused.py`` compares them): per mini-batch, in the same order,

1. v0 = the batch, feature-major (n_visible, B); p0 = sigmoid(c + W v0) (row tiles of ``spmm``);
2. h0 ~ Bernoulli(p0): the same uniform draws, in the same (row-major) order, from the same numpy
   ``Generator`` (Numba calls its bit generator), so the generator ends in the same state;
3. the reconstruction E[v | h0] = sigmoid(b + W^T h0) (``spmm_transposed``: CSR values gathered into
   CSC order), and the batch's reconstruction error;
4. k - 1 further Gibbs steps (sampled visible states, Bernoulli or Gaussian), then vk = E[v | h_k] and
   pk = p(h | vk);
5. the statistics <v h>_data / B - <v h>_model / B as one SDDMM of the stacked phases, and the momentum /
   weight-decay update of weights and biases (the same float operations in the same order; the biases'
   batch means are numpy's pairwise sum, reproduced by :func:`_pairwise_sum`).

Bit identity rests on: the same row tiles (explicit fused multiply-adds), IEEE arithmetic without
fast-math (no reassociation, no contraction), the sigmoid computed as scipy's ``expit`` does
(1 / (1 + exp(-x)) in the model's precision), and numpy's own summation order for the means.

Only the non-persistent sparse case is fused; PCD and the dense RBM (BLAS products) take the step-by-step path.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from evosparse.sparse.kernels import (
    REGISTER_BYTES,
    _row_tail,
    _sddmm,
    _spmm,
    _vfma,
    _vload_masked,
    _vsplat,
    _vstore_masked,
)

__all__ = ["cd_epoch"]

# No fastmath: the fused pass must round exactly as the numpy path does (see the module docstring).
_JIT = {"parallel": True, "fastmath": False, "cache": True, "nogil": True, "boundscheck": False}
# The driver is serial: its stages run in parallel, and a parallel driver would be compiled as one unit again.
_DRIVER = {"fastmath": False, "cache": True, "nogil": True, "boundscheck": False}
# Stages of O(units x batch) work run serially: a prange there saves microseconds and costs a second or two of
# compilation each.
_SERIAL = _DRIVER


# ---- random draws in the model's precision, from a numpy Generator -----------------------------------
def _uniform(generator, like):  # pragma: no cover - replaced by the overload inside compiled code
    raise NotImplementedError


def _normal(generator, like):  # pragma: no cover - replaced by the overload inside compiled code
    raise NotImplementedError


@overload(_uniform)
def _uniform_overload(generator, like):
    """``generator.random(dtype=like's dtype)``: the draw ``Generator.random(shape, dtype)`` makes per element."""
    if like == types.float32:
        return lambda generator, like: generator.random(dtype=np.float32)
    return lambda generator, like: generator.random(dtype=np.float64)


@overload(_normal)
def _normal_overload(generator, like):
    if like == types.float32:
        return lambda generator, like: generator.standard_normal(dtype=np.float32)
    return lambda generator, like: generator.standard_normal(dtype=np.float64)


# ---- numpy's summation order --------------------------------------------------------------------------
@njit(**_SERIAL)
def _pairwise_block(a, start, n):  # pragma: no cover - compiled
    """numpy's ``pairwise_sum`` of at most 128 values: a plain loop below 8, else 8 interleaved partial sums."""
    if n < 8:
        total = -a.dtype.type(0)
        for i in range(n):
            total += a[start + i]
        return total
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    while i < n - n % 8:
        r0 += a[start + i]
        r1 += a[start + i + 1]
        r2 += a[start + i + 2]
        r3 += a[start + i + 3]
        r4 += a[start + i + 4]
        r5 += a[start + i + 5]
        r6 += a[start + i + 6]
        r7 += a[start + i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += a[start + i]
        i += 1
    return total


@njit(**_SERIAL)
def _row_sum(a, row, n):  # pragma: no cover - compiled
    """sum(a[row, :n]) in numpy's order; up to 128 values inline (no call, no view: ~2,400 sums per update)."""
    if n > 128:
        return _pairwise_sum(a[row], 0, n)
    if n < 8:
        total = -a.dtype.type(0)
        for i in range(n):
            total += a[row, i]
        return total
    r0, r1, r2, r3 = a[row, 0], a[row, 1], a[row, 2], a[row, 3]
    r4, r5, r6, r7 = a[row, 4], a[row, 5], a[row, 6], a[row, 7]
    i = 8
    while i < n - n % 8:
        r0 += a[row, i]
        r1 += a[row, i + 1]
        r2 += a[row, i + 2]
        r3 += a[row, i + 3]
        r4 += a[row, i + 4]
        r5 += a[row, i + 5]
        r6 += a[row, i + 6]
        r7 += a[row, i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += a[row, i]
        i += 1
    return total


@njit(fastmath=False, cache=True, boundscheck=False)
def _pairwise_sum(a, start, n):  # pragma: no cover - compiled
    """sum(a[start:start + n]) in exactly numpy's order (``pairwise_sum`` of numpy's ``add.reduce``).

    Up to 128 values one block (:func:`_pairwise_block`); above, numpy halves the range (the first half a
    multiple of 8 long) and adds the two halves' sums. That recursion runs here on an explicit stack (Numba's
    on-disk cache cannot reload a recursive function). Matching numpy makes ``x.mean(axis=1)`` and the
    error's mean bit-identical to the numpy path.
    """
    if n <= 128:
        return _pairwise_block(a, start, n)
    starts = np.empty(192, dtype=np.int64)  # depth <= 2 log2(n) + 1 pending tasks
    lengths = np.empty(192, dtype=np.int64)
    combine = np.empty(192, dtype=np.bool_)
    sums = np.empty(96, dtype=a.dtype)
    starts[0], lengths[0], combine[0] = start, n, False
    n_tasks, n_sums = 1, 0
    while n_tasks > 0:
        n_tasks -= 1
        s, m = starts[n_tasks], lengths[n_tasks]
        if combine[n_tasks]:  # both halves are on the value stack: left + right
            sums[n_sums - 2] = sums[n_sums - 2] + sums[n_sums - 1]
            n_sums -= 1
        elif m <= 128:
            sums[n_sums] = _pairwise_block(a, s, m)
            n_sums += 1
        else:
            half = m // 2
            half -= half % 8
            starts[n_tasks], lengths[n_tasks], combine[n_tasks] = s, m, True  # after both halves
            starts[n_tasks + 1], lengths[n_tasks + 1], combine[n_tasks + 1] = s + half, m - half, False
            starts[n_tasks + 2], lengths[n_tasks + 2], combine[n_tasks + 2] = s, half, False  # popped first
            n_tasks += 3
    return sums[0]


# ---- products of a small batch: two rows at a time --------------------------------------------------------
@njit(fastmath=False, boundscheck=False, inline="always")
def _two_row_tails(indptr, index, values, dense, init0, init1, out, row, n_valid):  # pragma: no cover
    """``_spmm_row`` of rows ``row`` and ``row + 1`` for a batch narrower than one register (``n_valid`` < lanes).

    Each row's sum is the same chain of fused multiply-adds in the same order as in ``_spmm_row`` (so the same
    bits); running two rows' chains side by side hides the multiply-add latency that one short row cannot
    (h -> v at the reference setting: 1,024 rows of ~12 connections; 1.7x faster measured).
    """
    s0, e0, s1, e1 = indptr[row], indptr[row + 1], indptr[row + 1], indptr[row + 2]
    acc0, acc1 = _vsplat(init0, 1), _vsplat(init1, 1)
    common = min(e0 - s0, e1 - s1)
    for t in range(common):
        acc0 = _vfma(values[s0 + t], _vload_masked(dense, index[s0 + t], 0, n_valid, 1), acc0)
        acc1 = _vfma(values[s1 + t], _vload_masked(dense, index[s1 + t], 0, n_valid, 1), acc1)
    for m in range(s0 + common, e0):
        acc0 = _vfma(values[m], _vload_masked(dense, index[m], 0, n_valid, 1), acc0)
    for m in range(s1 + common, e1):
        acc1 = _vfma(values[m], _vload_masked(dense, index[m], 0, n_valid, 1), acc1)
    _vstore_masked(out, row, 0, n_valid, acc0)
    _vstore_masked(out, row + 1, 0, n_valid, acc1)


@njit(**_JIT)
def _spmm_narrow(indptr, index, values, dense, bias, out):  # pragma: no cover - compiled
    """``spmm`` (the same sums, bit for bit) for a batch narrower than one register, two rows at a time.

    ``bias`` may be empty (start from 0). Wider batches call :func:`evosparse.sparse.kernels.spmm` itself.
    """
    n_rows, batch = out.shape
    zero = values.dtype.type(0)
    has_bias = bias.shape[0] > 0
    for pair in prange(n_rows // 2):
        row = 2 * pair
        init0 = bias[row] if has_bias else zero
        init1 = bias[row + 1] if has_bias else zero
        _two_row_tails(indptr, index, values, dense, init0, init1, out, row, batch)
    if n_rows % 2:  # the last row alone: ``_spmm_row``'s only tile at this width, one masked register
        last = n_rows - 1
        _row_tail(indptr[last], indptr[last + 1], index, values, dense, bias[last] if has_bias else zero, out, last, 0,
                  batch, 1)  # fmt: skip


@njit(**_SERIAL)
def _spmm_rows(indptr, index, values, dense, bias, out):  # pragma: no cover - compiled
    """out[r] = (bias[r] or 0) + sum_k values[k] dense[index[k]] for every row: the ``spmm`` kernel's sums."""
    if out.shape[1] < REGISTER_BYTES // values.itemsize:
        _spmm_narrow(indptr, index, values, dense, bias, out)
    else:
        _spmm(indptr, index, values, dense, bias, out)  # the compiled kernel (spmm is its Python wrapper)


# ---- the stages of one update: each its own compiled function ------------------------------------------
# Why separate functions and not one: Numba's parallel passes (parfor fusion, array analysis, the outlining of
# each prange into a gufunc) grow much faster than linearly with the size of a function. One epoch function
# with every stage inlined took 141 s to compile on a cold cache (one signature). Now the stages compile (and
# are cached) one by one, called from a serial driver, and the products and statistics are the sparse kernels'
# own ``spmm`` and ``sddmm`` (compiled once for the whole library, and the numpy path's code by construction).
# A stage call costs ~1 us, against tens of microseconds of arithmetic per stage at the smallest useful size.
@njit(**_SERIAL)
def _gather_batch(x, order, start, out):  # pragma: no cover - compiled
    """out (n_visible, batch) = x[order[start : start + batch]].T, cast to out's dtype."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = x[order[start + j], i]


@njit(**_JIT)
def _gather_values(values, permutation, out):  # pragma: no cover - compiled
    """out = values[permutation]: the CSR values in CSC order, for the products W^T h."""
    for m in prange(out.shape[0]):
        out[m] = values[permutation[m]]


@njit(**_JIT)
def _hidden_probabilities(indptr, cols, weights, hidden_bias, vt, out):  # pragma: no cover - compiled
    """out = sigmoid(c + W vt): ``spmm`` with the bias as the tile's start value, then expit per row."""
    one = weights.dtype.type(1)
    _spmm_rows(indptr, cols, weights, vt, hidden_bias, out)
    for r in prange(out.shape[0]):
        for j in range(out.shape[1]):
            out[r, j] = one / (one + np.exp(-out[r, j]))


@njit(**_JIT)
def _visible_mean(csc_indptr, csc_rows, csc_values, visible_bias, gaussian, ht, out):  # pragma: no cover
    """out = E[v | h]: W^T ht (``spmm`` over the CSC view, from 0), + b, then expit unless Gaussian."""
    one = csc_values.dtype.type(1)
    _spmm_rows(csc_indptr, csc_rows, csc_values, ht, np.empty(0, dtype=csc_values.dtype), out)
    for c in prange(out.shape[0]):
        for j in range(out.shape[1]):
            pre = out[c, j] + visible_bias[c]
            out[c, j] = pre if gaussian else one / (one + np.exp(-pre))


@njit(**_SERIAL)
def _reconstruction_error(v0, reconstruction, squares):  # pragma: no cover - compiled
    """numpy's ``mean((v0 - reconstruction) ** 2)``: the squares in row-major order, then its pairwise sum."""
    n_visible, batch = v0.shape
    for i in range(n_visible):
        for j in range(batch):
            difference = v0[i, j] - reconstruction[i, j]
            squares[i * batch + j] = difference * difference
    return _pairwise_sum(squares, 0, n_visible * batch) / v0.dtype.type(n_visible * batch)


@njit(**_SERIAL)
def _bernoulli(generator, probabilities, out):  # pragma: no cover - compiled
    """out = (u < p) with u uniform, drawn row-major as ``rng.random(p.shape, dtype) < p`` draws them."""
    zero, one = out.dtype.type(0), out.dtype.type(1)
    for r in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[r, j] = one if _uniform(generator, zero) < probabilities[r, j] else zero


@njit(**_SERIAL)
def _sample_visible(generator, gaussian, visible):  # pragma: no cover - compiled
    """``sample_visible_t`` in place: serial, in the draws' order (Gaussian noise or Bernoulli draws)."""
    zero, one = visible.dtype.type(0), visible.dtype.type(1)
    for i in range(visible.shape[0]):
        for j in range(visible.shape[1]):
            if gaussian:
                visible[i, j] = visible[i, j] + _normal(generator, zero)
            else:
                visible[i, j] = one if _uniform(generator, zero) < visible[i, j] else zero


@njit(**_SERIAL)
def _stack_phases(v0, p0, vk, pk, hidden_stack, visible_stack):  # pragma: no cover - compiled
    """The two phases side by side along the batch, the hidden side scaled by +1/B and -1/B, so that
    <v h>_data / B - <v h>_model / B is one SDDMM (as the numpy path's concatenation)."""
    n_hidden, batch = p0.shape
    dtype = p0.dtype
    scale_data, scale_model = dtype.type(1.0 / batch), dtype.type(-1.0 / batch)
    for r in range(n_hidden):
        for j in range(batch):
            hidden_stack[r, j] = p0[r, j] * scale_data
            hidden_stack[r, batch + j] = pk[r, j] * scale_model
    for i in range(v0.shape[0]):
        for j in range(batch):
            visible_stack[i, j] = v0[i, j]
            visible_stack[i, batch + j] = vk[i, j]


@njit(**_SERIAL)
def _update_biases(v0, p0, vk, pk, visible_bias, hidden_bias, velocity_visible, velocity_hidden, lr, momentum):
    """The biases' momentum update from the phases' means (numpy's summation order): O(units x batch), serial."""
    batch = p0.shape[1]
    count = p0.dtype.type(batch)
    for i in range(v0.shape[0]):
        gradient = _row_sum(v0, i, batch) / count - _row_sum(vk, i, batch) / count
        velocity_visible[i] = velocity_visible[i] * momentum + lr * gradient
        visible_bias[i] = visible_bias[i] + velocity_visible[i]
    for r in range(p0.shape[0]):
        gradient = _row_sum(p0, r, batch) / count - _row_sum(pk, r, batch) / count
        velocity_hidden[r] = velocity_hidden[r] * momentum + lr * gradient
        hidden_bias[r] = hidden_bias[r] + velocity_hidden[r]


@njit(**_JIT)
def _update_weights(statistics, weights, velocity, lr, momentum, weight_decay):  # pragma: no cover - compiled
    """The weights' momentum and weight-decay update (the numpy path's float operations, in its order)."""
    for m in prange(weights.shape[0]):
        gradient = statistics[m] - weight_decay * weights[m]
        velocity[m] = velocity[m] * momentum + lr * gradient
        weights[m] = weights[m] + velocity[m]


# ---- one epoch -------------------------------------------------------------------------------------------
@njit(**_DRIVER)
def cd_epoch(x, order, batch_size, indptr, cols, csc_indptr, csc_rows, csc_perm, weights, visible_bias,
             hidden_bias, velocity_weights, velocity_visible, velocity_hidden, lr, momentum, weight_decay, k,
             gaussian, generator, errors):  # fmt: skip  # pragma: no cover - compiled
    """CD-k updates of a sparse RBM on the mini-batches ``x[order[s : s + batch_size]]``, in place.

    Args:
        x: the data (n, n_visible), batch-major, any float dtype (cast to the model's on the fly).
        order: the sample order (a permutation for an epoch, ``arange`` for one step).
        indptr, cols: the pattern's CSR view (rows = hidden units); csc_indptr, csc_rows, csc_perm: its CSC view.
        weights, visible_bias, hidden_bias and the three velocity arrays: updated in place.
        lr, momentum, weight_decay: scalars of the model's dtype; k: Gibbs steps; gaussian: visible units.
        generator: the learner's numpy Generator (draws advance its state exactly as the numpy path does).
        errors: (n_batches,) float64, filled with each batch's reconstruction error.
    """
    n = order.shape[0]
    n_hidden = indptr.shape[0] - 1
    n_visible = csc_indptr.shape[0] - 1
    dtype = weights.dtype
    csc_values = np.empty(weights.shape[0], dtype=dtype)
    statistics = np.empty(weights.shape[0], dtype=dtype)
    for b in range((n + batch_size - 1) // batch_size):
        start = b * batch_size
        batch = min(batch_size, n - start)
        # 1. v0 and p0
        v0 = np.empty((n_visible, batch), dtype=dtype)
        _gather_batch(x, order, start, v0)
        p0 = np.empty((n_hidden, batch), dtype=dtype)
        _hidden_probabilities(indptr, cols, weights, hidden_bias, v0, p0)
        # 2. h0 ~ p(h | v0)
        h = np.empty((n_hidden, batch), dtype=dtype)
        _bernoulli(generator, p0, h)
        # 3. the reconstruction and its error
        _gather_values(weights, csc_perm, csc_values)
        reconstruction = np.empty((n_visible, batch), dtype=dtype)
        _visible_mean(csc_indptr, csc_rows, csc_values, visible_bias, gaussian, h, reconstruction)
        errors[b] = _reconstruction_error(v0, reconstruction, np.empty(n_visible * batch, dtype=dtype))
        # 4. the negative phase
        vk = reconstruction
        if k > 1:
            visible = np.empty((n_visible, batch), dtype=dtype)
            pre = np.empty((n_hidden, batch), dtype=dtype)
            for _ in range(k - 1):
                _visible_mean(csc_indptr, csc_rows, csc_values, visible_bias, gaussian, h, visible)
                _sample_visible(generator, gaussian, visible)
                _hidden_probabilities(indptr, cols, weights, hidden_bias, visible, pre)
                _bernoulli(generator, pre, h)
            vk = np.empty((n_visible, batch), dtype=dtype)
            _visible_mean(csc_indptr, csc_rows, csc_values, visible_bias, gaussian, h, vk)
        pk = np.empty((n_hidden, batch), dtype=dtype)
        _hidden_probabilities(indptr, cols, weights, hidden_bias, vk, pk)
        # 5. statistics and the update
        hidden_stack = np.empty((n_hidden, 2 * batch), dtype=dtype)
        visible_stack = np.empty((n_visible, 2 * batch), dtype=dtype)
        _stack_phases(v0, p0, vk, pk, hidden_stack, visible_stack)
        _sddmm(indptr, cols, hidden_stack, visible_stack, statistics)
        _update_weights(statistics, weights, velocity_weights, lr, momentum, weight_decay)
        _update_biases(v0, p0, vk, pk, visible_bias, hidden_bias, velocity_visible, velocity_hidden, lr, momentum)
