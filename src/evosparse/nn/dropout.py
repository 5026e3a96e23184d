"""Dropout driven by an explicit torch.Generator, fast on the CPU, with masks that cost no memory.

``torch.nn.Dropout`` draws from torch's global generator and, on the CPU, spends more time drawing
Bernoulli numbers (about 10 ns each on the build machines) than a sparse layer spends on its products;
in a SET-MLP epoch it was the largest single cost. Here each call takes *one* 63-bit key from the
module's generator, and the keep/drop decision of element (i, j) is a counter-based hash of (key, i, j):
a 32-bit integer mixer (Wellons' "lowbias32") of the column and the key's low half, hoisted out of the loop
over the batch, mixed once more with the row and the key's high half. 32-bit lanes vectorise on AVX2, which
has no 64-bit multiply: ~4x faster here than the SplitMix64 finaliser of (key, i * n_cols + j) used before
(25 vs 105 us for a 40 x 1000 float32 block), with the same keep-rate statistics. So:

* the masks are a deterministic function of the generator state (checkpoint it and a resumed run
  drops exactly the same units);
* the backward pass recomputes the mask from the key instead of storing it;
* the work is a parallel, branch-free loop over the elements in memory order (feature-major or not);
* a data-parallel worker that holds rows ``offset ...`` of a global batch sets ``row_offset`` and draws the
  very masks single-process training of the whole batch draws for those rows
  (:mod:`evosparse.train.distributed`).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange
from torch import nn

from evosparse.sparse.kernels import call_sized

_LOW32 = 0xFFFFFFFF
_MIX1 = np.uint32(0x7FEB352D)
_MIX2 = np.uint32(0x846CA68B)
_GOLDEN = np.uint32(0x9E3779B9)
_S8, _S15, _S16 = np.uint32(8), np.uint32(15), np.uint32(16)


@njit(inline="always", cache=True)
def _mix32(x):  # pragma: no cover - compiled
    """Wellons' lowbias32: a bijection of uint32 with near-ideal avalanche (every np.uint32 keeps it 32-bit)."""
    x = np.uint32(x ^ (x >> _S16))
    x = np.uint32(x * _MIX1)
    x = np.uint32(x ^ (x >> _S15))
    x = np.uint32(x * _MIX2)
    return np.uint32(x ^ (x >> _S16))


@njit(inline="always", cache=True)
def _column_hash(key_low, column):  # pragma: no cover - compiled
    return _mix32(np.uint32(np.uint32(column) ^ key_low))


@njit(inline="always", cache=True)
def _keeps(column_hash, key_high, row, threshold):  # pragma: no cover - compiled
    """Keep element (row, column) if the top 24 bits of its hash are >= threshold = ceil(p * 2**24)."""
    h = _mix32(np.uint32(column_hash ^ np.uint32(key_high + np.uint32(row) * _GOLDEN)))
    return np.int32(h >> _S8) >= threshold


_DROPOUT_ELEMENTS_PER_SECOND = 3e9  # one thread of _dropout_kernel (AMD Zen 4: 40 x 1000 float32 in 13 us)
_GRAD_ELEMENTS_PER_SECOND = 9e9  # one thread of _relu_dropout_grad_kernel (the same block in 4.5 us)


def _dropout_apply(x, out, key, p, scale, feature_major, row_offset, relu=False) -> None:
    """:func:`_dropout_kernel`, on one thread when the block is too small to pay for waking others
    (:func:`evosparse.sparse.kernels.call_sized`)."""
    seconds = x.size / _DROPOUT_ELEMENTS_PER_SECOND
    call_sized(seconds, _dropout_kernel, x, out, key, p, scale, feature_major, row_offset, relu)


def _relu_dropout_grad(grad, out, scale, result) -> None:
    """:func:`_relu_dropout_grad_kernel`, on one thread for a small block (as :func:`_dropout_apply`)."""
    call_sized(grad.size / _GRAD_ELEMENTS_PER_SECOND, _relu_dropout_grad_kernel, grad, out, scale, result)


@njit(parallel=True, cache=True, nogil=True)
def _dropout_kernel(x, out, key, p, scale, feature_major, row_offset, relu=False):  # pragma: no cover - compiled
    """out[i, j] = v * scale if element (row_offset + i, j) is kept else 0, v = relu(x[i, j]) if ``relu`` else
    x[i, j]; ``out`` may be ``x``. ``p`` = 0 keeps every element (ReLU alone with ``scale`` 1).

    Not fastmath: ``x <= 0`` must stay false for NaN (ReLU keeps NaN, as ``torch.clamp_min`` does, so that the
    divergence guard still sees it); the hash is integer arithmetic either way.
    """
    n_rows, n_cols = x.shape
    key_low = np.uint32(key & _LOW32)
    key_high = np.uint32((key >> 32) & _LOW32)
    threshold = np.int32(np.ceil(p * (1 << 24)))
    zero = x.dtype.type(0)
    if feature_major:  # loop columns outside so that the inner loop walks contiguous memory
        for j in prange(n_cols):
            column_hash = _column_hash(key_low, j)
            for i in range(n_rows):
                v = zero if relu and x[i, j] <= zero else x[i, j]
                out[i, j] = v * scale if _keeps(column_hash, key_high, row_offset + i, threshold) else zero
    else:
        for i in prange(n_rows):
            for j in range(n_cols):
                v = zero if relu and x[i, j] <= zero else x[i, j]
                kept = _keeps(_column_hash(key_low, j), key_high, row_offset + i, threshold)
                out[i, j] = v * scale if kept else zero


@njit(parallel=True, cache=True, nogil=True)
def _relu_dropout_grad_kernel(grad, out, scale, result):  # pragma: no cover - compiled
    """result = grad * scale where out > 0, else 0: the backward pass of ReLU then dropout, from the output.

    ``out = relu(z) * scale`` (kept) or 0 (dropped) is > 0 exactly where z > 0 and the unit was kept, so the
    mask needs no hash; the products are the ones the dropout kernel computes (float64 scale), and the zeroes
    where ``out <= 0`` are ReLU's (``threshold_backward``), so the gradient is bit for bit the unfused one.
    """
    n_rows, n_cols = grad.shape
    for i in prange(n_rows):
        for j in range(n_cols):
            result[i, j] = 0.0 if out[i, j] <= 0 else grad[i, j] * scale


def relu_dropout_(out: torch.Tensor, key: int | None, p: float, row_offset: int = 0) -> None:
    """ReLU, then (if ``key`` is not None) this module's dropout with ``key``, in place on the 2-D CPU ``out``.

    The same numbers as ``SeededDropout`` after ``torch.relu``, in one compiled pass of the dropout kernel:
    ReLU is exact (``max(x, 0)``, NaN kept as torch keeps it), the mask the same key's.
    """
    array = out.detach().numpy()
    if key is None:  # ReLU alone: every element kept (p = 0), scale 1
        key, p = 0, 0.0
    _dropout_apply(array, array, key, p, 1.0 / (1.0 - p), out.stride(0) < out.stride(1), row_offset, True)


def relu_dropout_grad(grad: torch.Tensor, out: torch.Tensor, p: float) -> torch.Tensor:
    """The gradient of :func:`relu_dropout_`'s input, given its C-contiguous 2-D CPU output ``out`` and rate ``p``.

    ``p`` = 0: ReLU's gradient alone (the scale is 1, an exact product).
    """
    result = torch.empty_like(out)
    _relu_dropout_grad(grad.contiguous().numpy(), out.detach().numpy(), 1.0 / (1.0 - p), result.numpy())
    return result


def _apply(x: torch.Tensor, key: int, p: float, row_offset: int = 0) -> torch.Tensor:
    out = torch.empty_like(x)  # keeps x's strides, so feature-major stays feature-major
    feature_major = x.stride(0) < x.stride(1)
    _dropout_apply(x.detach().numpy(), out.numpy(), key, p, 1.0 / (1.0 - p), feature_major, row_offset)
    return out


class _HashDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, key, p, row_offset):
        ctx.key, ctx.p, ctx.row_offset = key, p, row_offset
        return _apply(x, key, p, row_offset)

    @staticmethod
    def backward(ctx, grad):
        # d(x * mask * scale)/dx = mask * scale: the same operation on the gradient, same key.
        return _apply(grad, ctx.key, ctx.p, ctx.row_offset), None, None, None


class SeededDropout(nn.Module):
    """Inverted dropout (Srivastava et al. 2014) whose masks come from ``generator``.

    Args:
        p: probability of dropping a unit, in [0, 1).
        generator: source of one key per forward call.

    2-D float32/float64 CPU inputs take the hashed path above; anything else falls back to a
    Bernoulli mask drawn from the same generator.

    Attributes:
        row_offset: index of the input's first row in the global batch (0 but in data-parallel training, where
            a worker's shard starts at its offset): the hashed masks then equal single-process training's.
    """

    def __init__(self, p: float, generator: torch.Generator) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
            raise ValueError(f"dropout must be in [0, 1), got {p!r}")
        self.p = p
        self.generator = generator
        self.row_offset = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        key = self.draw_key()
        if x.dim() == 2 and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
            return _HashDropout.apply(x, key, self.p, self.row_offset)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)

    def draw_key(self) -> int:
        """The key of one call's masks: one draw from the generator (every training call with p > 0 takes one)."""
        return int(torch.randint(0, 2**63 - 1, (1,), generator=self.generator))

    def extra_repr(self) -> str:
        return f"p={self.p}"
