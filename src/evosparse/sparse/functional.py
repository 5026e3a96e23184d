"""``sparse_linear``: Y = X W^T + b with W truly sparse, as a differentiable torch op.

Two backends compute the same three products (forward SpMM, transposed SpMM for dX, SDDMM for dW):

* ``"numba"``: the compiled CPU kernels of :mod:`evosparse.sparse.kernels` (float32 / float64, CPU).
* ``"torch"``: device-agnostic torch ops (``torch.sparse`` CSR products and a chunked gather for dW),
  used for CUDA tensors and as an independent reference on the CPU.

``"auto"`` picks numba for CPU float32/float64 tensors and torch otherwise.

Wide layers at batches of a few samples: the backward pass sweeps the CSR order once for both gradients
(:func:`~evosparse.sparse.kernels.backward_csr`), so the CSC view (8 bytes per connection) is never built.

Fused update (opt-in, ``update=``): the backward pass applies an SGD step to the weights in the same sweep
that computes dX, instead of writing dW for the optimizer to read again (``kernels.backward_csr_sgd``).

Layout trick: the kernels work on feature-major activations (features x batch). The forward returns
``Yt.t()`` -- a (batch, out) *view* of a feature-major buffer -- so the next layer's ``x.t()`` is
already contiguous and a whole network runs without transposing copies; elementwise activations
preserve that memory layout.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from evosparse.sparse import kernels
from evosparse.sparse.pattern import SparsePattern

BACKENDS = ("auto", "numba", "torch")
# At batches up to this the numba backward sweeps the CSR order once for both gradients
# (kernels.backward_csr); above it, dX runs over the CSC view (built on first use).
SMALL_BATCH = 4
_DW_CHUNK_ELEMENTS = 1 << 24  # torch backend: at most this many (nnz x batch) products live at once
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


def host_tensor(n: int, dtype: torch.dtype, *, zeros: bool = False) -> torch.Tensor:
    """A CPU tensor of ``n`` elements whose memory numpy allocated (zeroed if ``zeros``).

    numpy asks the kernel for transparent huge pages for large arrays (madvise); torch's allocator does not. A
    fresh 80 MB array is then written ~2.5x faster (fewer page faults, each costly under a hypervisor): it
    matters where a wide layer's rewiring allocates its new weights and optimizer state every update.
    """
    numpy_dtype = _NUMPY_DTYPES.get(dtype)
    if numpy_dtype is None:  # no numpy equivalent (bfloat16, ...): torch's own allocation
        return torch.zeros(n, dtype=dtype) if zeros else torch.empty(n, dtype=dtype)
    return torch.from_numpy(np.zeros(n, dtype=numpy_dtype) if zeros else np.empty(n, dtype=numpy_dtype))


_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}


@dataclass(frozen=True)
class SGDStep:
    """One ``torch.optim.SGD`` step on a layer's ``values``, applied inside its backward pass (fused).

    The fields are SGD's (``momentum_buffer``: the optimizer's state tensor of the values, nnz long; None
    without momentum); ``first_step``: the buffer is uninitialised and starts as the gradient.
    """

    lr: float
    weight_decay: float = 0.0
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    maximize: bool = False
    momentum_buffer: torch.Tensor | None = None
    first_step: bool = False


def sgd_step_(values: torch.Tensor, grad: torch.Tensor, step: SGDStep) -> None:
    """``torch.optim.SGD``'s update of ``values`` given its gradient, in place (the torch backend's fused path)."""
    grad = -grad if step.maximize else grad
    if step.weight_decay != 0:
        grad = grad + step.weight_decay * values
    if step.momentum != 0:
        buffer = step.momentum_buffer
        if step.first_step:
            buffer.copy_(grad)
        else:
            buffer.mul_(step.momentum).add_(grad, alpha=1 - step.dampening)
        grad = grad + step.momentum * buffer if step.nesterov else buffer
    values.add_(grad, alpha=-step.lr)


def resolve_backend(backend: str, x: torch.Tensor) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "numba" if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) else "torch"
    if backend == "numba" and (x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64)):
        raise ValueError(
            f"backend='numba' needs float32/float64 CPU tensors, got {x.dtype} on {x.device}; use backend='torch'"
        )
    return backend


class _PatternTensors:
    """Index tensors of a pattern on one device, built once per (pattern, device) and cached."""

    def __init__(self, pattern: SparsePattern, device: torch.device):
        as_tensor = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
        self.indptr = as_tensor(pattern.indptr)
        self.rows = as_tensor(pattern.rows).long()
        self.cols = as_tensor(pattern.cols).long()
        self.csc_indptr = as_tensor(pattern.csc_indptr)
        self.csc_rows = as_tensor(pattern.csc_rows).long()
        self.csc_perm = as_tensor(pattern.csc_perm)


def _torch_spmm(indptr, cols, values, shape, xt):
    # Patterns are valid by construction (SparsePattern), so torch's per-call invariant check is skipped.
    matrix = torch.sparse_csr_tensor(indptr, cols, values, size=shape, check_invariants=False)
    return torch.sparse.mm(matrix, xt) if xt.shape[1] else xt.new_zeros((shape[0], 0))


def _torch_sddmm(rows, cols, dyt, xt):
    out = dyt.new_empty(rows.shape[0])
    step = max(1, _DW_CHUNK_ELEMENTS // max(1, xt.shape[1]))
    for s in range(0, rows.shape[0], step):
        out[s : s + step] = (dyt[rows[s : s + step]] * xt[cols[s : s + step]]).sum(dim=1)
    return out


class SparseLinearFunction(torch.autograd.Function):
    """Autograd op: forward SpMM, backward transposed SpMM (dX) and SDDMM (dW), both O(nnz * batch)."""

    @staticmethod
    def forward(ctx, x2d, values, bias, pattern, backend, index_cache, update=None):
        out_t, xt = linear_forward(ctx, x2d, values, bias, pattern, backend, index_cache, update)
        ctx.save_for_backward(xt, values)
        return out_t.t()

    @staticmethod
    def backward(ctx, grad_out):
        xt, values = ctx.saved_tensors
        dyt = grad_out.t().contiguous()  # free when grad_out is feature-major (it usually is)
        grad_x, grad_values, grad_bias = linear_backward(ctx, xt, values, dyt)
        return grad_x, grad_values, grad_bias, None, None, None, None


def linear_forward(ctx, x2d, values, bias, pattern, backend, index_cache, update):
    """The forward product of an autograd op whose first inputs are (x2d, values, bias): ``(out_t, xt)``.

    ``out_t`` is the feature-major (n_rows, batch) output; ``xt`` the feature-major input, to save for
    :func:`linear_backward`. Records on ``ctx`` what the backward pass needs besides the saved tensors.
    """
    xt = x2d.t()  # already contiguous when x2d came from another sparse layer
    if not xt.is_contiguous():
        # A batch in row-major order (a first layer): numpy's transposing copy took a third of torch's time here.
        xt = torch.from_numpy(np.ascontiguousarray(x2d.detach().numpy().T)) if backend == "numba" else xt.contiguous()
    if backend == "numba":
        out_t = torch.empty((pattern.n_rows, xt.shape[1]), dtype=xt.dtype)
        bias_np = bias.detach().numpy() if bias is not None else np.empty(0, dtype=xt.numpy().dtype)
        if pattern.is_blocked:
            kernels.spmm_blocked(
                pattern.indptr,
                pattern.cols,
                pattern.row_offsets,
                pattern.block_rows,
                values.detach().numpy(),
                xt.numpy(),
                bias_np,
                out_t.numpy(),
            )
        else:
            kernels.spmm(pattern.indptr, pattern.cols, values.detach().numpy(), xt.numpy(), bias_np, out_t.numpy())
    else:
        idx = index_cache(xt.device)
        out_t = _torch_spmm(idx.indptr, idx.cols, values.detach(), (pattern.n_rows, pattern.n_cols), xt)
        if bias is not None:
            out_t = out_t + bias.detach()[:, None]
    ctx.pattern, ctx.backend, ctx.index_cache = pattern, backend, index_cache
    ctx.has_bias = bias is not None
    ctx.update = update
    return out_t, xt


def linear_backward(ctx, xt, values, dyt):
    """``(grad_x, grad_values, grad_bias)`` of :func:`linear_forward`'s op, given the feature-major ``dyt``."""
    pattern, backend = ctx.pattern, ctx.backend
    grad_x = grad_values = grad_bias = None
    step = ctx.update() if ctx.update is not None and ctx.needs_input_grad[1] else None
    if step is not None:
        grad_x = _fused_backward(ctx, values, dyt, xt, step)
    elif pattern.is_blocked:  # numba only (check_inputs); both gradients in one sweep at any batch
        grad_xt = torch.empty((pattern.n_cols if ctx.needs_input_grad[0] else 0, dyt.shape[1]), dtype=dyt.dtype)
        grad_values = torch.empty_like(values)
        kernels.backward_blocked(
            pattern.indptr,
            pattern.cols,
            pattern.row_offsets,
            pattern.block_rows,
            values.detach().numpy(),
            dyt.numpy(),
            xt.numpy(),
            grad_values.numpy(),
            grad_xt.numpy(),
            kernels.BLOCKED_CHUNKS,
        )
        grad_x = grad_xt.t() if ctx.needs_input_grad[0] else None
        grad_values = grad_values if ctx.needs_input_grad[1] else None
    elif backend == "numba" and dyt.shape[1] <= SMALL_BATCH and ctx.needs_input_grad[1]:
        # A few samples: both gradients in one sweep over the CSR order (no CSC view is ever built).
        dyt_np, values_np = dyt.numpy(), values.detach().numpy()
        grad_xt = torch.empty((pattern.n_cols if ctx.needs_input_grad[0] else 0, dyt.shape[1]), dtype=dyt.dtype)
        grad_values = torch.empty_like(values)
        kernels.backward_csr(
            pattern.indptr,
            pattern.cols,
            values_np,
            dyt_np,
            xt.numpy(),
            grad_values.numpy(),
            grad_xt.numpy(),
            kernels.backward_chunks(pattern.n_cols, dyt.shape[1], dyt.element_size()),
        )
        grad_x = grad_xt.t() if ctx.needs_input_grad[0] else None
    elif backend == "numba":
        dyt_np, xt_np, values_np = dyt.numpy(), xt.numpy(), values.detach().numpy()
        if ctx.needs_input_grad[0]:
            grad_xt = torch.empty((pattern.n_cols, dyt.shape[1]), dtype=dyt.dtype)
            kernels.spmm_transposed(
                pattern.csc_indptr, pattern.csc_rows, pattern.csc_perm, values_np, dyt_np, grad_xt.numpy()
            )
            grad_x = grad_xt.t()
        if ctx.needs_input_grad[1]:
            grad_values = torch.empty_like(values)
            kernels.sddmm(pattern.indptr, pattern.cols, dyt_np, xt_np, grad_values.numpy())
    else:
        idx = ctx.index_cache(dyt.device)
        if ctx.needs_input_grad[0]:
            csc_values = values.detach()[idx.csc_perm]
            shape = (pattern.n_cols, pattern.n_rows)
            grad_x = _torch_spmm(idx.csc_indptr, idx.csc_rows, csc_values, shape, dyt).t()
        if ctx.needs_input_grad[1]:
            grad_values = _torch_sddmm(idx.rows, idx.cols, dyt, xt)
    if ctx.has_bias and ctx.needs_input_grad[2]:
        grad_bias = _sum_over_batch(dyt)
    return grad_x, grad_values, grad_bias


def _sum_over_batch(dyt: torch.Tensor) -> torch.Tensor:
    """``dyt.sum(dim=1)`` of a feature-major (n, batch) gradient. At batch 1-2 as plain adds: the same numbers (a
    sum of two is one rounding either way), and for a 600,000 x 2 tensor 0.3 ms instead of torch's 4.6 ms for a
    reduction over a dimension of 2 (13 ms of a 365 ms training step on the one-million-neuron network)."""
    if dyt.shape[1] == 1:
        return dyt[:, 0].clone()
    if dyt.shape[1] == 2:
        return dyt[:, 0] + dyt[:, 1]
    return dyt.sum(dim=1)


def _fused_backward(ctx, values, dyt, xt, step: SGDStep) -> torch.Tensor | None:
    """dX, and the SGD step of ``values`` in place instead of dW (no gradient array on the numba backend)."""
    pattern = ctx.pattern
    need_dx = ctx.needs_input_grad[0]
    with torch.no_grad():
        if ctx.backend == "numba":
            buffer = step.momentum_buffer if step.momentum != 0 else values.new_empty(0)
            sgd = {
                "lr": float(step.lr),
                "weight_decay": float(step.weight_decay),
                "momentum": float(step.momentum),
                "dampening": float(step.dampening),
                "nesterov": bool(step.nesterov),
                "maximize": bool(step.maximize),
                "first_step": bool(step.first_step),
            }
            values_np, dyt_np, xt_np = values.detach().numpy(), dyt.numpy(), xt.numpy()
            if pattern.is_blocked:
                grad_xt = torch.empty((pattern.n_cols if need_dx else 0, dyt.shape[1]), dtype=dyt.dtype)
                kernels.backward_blocked_sgd(
                    pattern.indptr,
                    pattern.cols,
                    pattern.row_offsets,
                    pattern.block_rows,
                    values_np,
                    buffer.numpy(),
                    dyt_np,
                    xt_np,
                    grad_xt.numpy(),
                    kernels.BLOCKED_CHUNKS,
                    **sgd,
                )
                return grad_xt.t() if need_dx else None
            if dyt.shape[1] > SMALL_BATCH:
                # dX over the CSC view with the weights before the step, then the tiled dW products applied as
                # they come (at batch 40 the one-sweep scatter below was ~1.3x slower than this pair).
                grad_xt = None
                if need_dx:
                    grad_xt = torch.empty((pattern.n_cols, dyt.shape[1]), dtype=dyt.dtype)
                    kernels.spmm_transposed(
                        pattern.csc_indptr, pattern.csc_rows, pattern.csc_perm, values_np, dyt_np, grad_xt.numpy()
                    )
                kernels.sddmm_sgd(pattern.indptr, pattern.cols, dyt_np, xt_np, values_np, buffer.numpy(), **sgd)
                return grad_xt.t() if need_dx else None
            grad_xt = torch.empty((pattern.n_cols if need_dx else 0, dyt.shape[1]), dtype=dyt.dtype)
            kernels.backward_csr_sgd(
                pattern.indptr,
                pattern.cols,
                values_np,
                buffer.numpy(),
                dyt_np,
                xt_np,
                grad_xt.numpy(),
                kernels.backward_chunks(pattern.n_cols, dyt.shape[1], dyt.element_size()),
                **sgd,
            )
            return grad_xt.t() if need_dx else None
        idx = ctx.index_cache(dyt.device)
        grad_x = None
        if need_dx:  # with the weights before the step
            csc_values = values.detach()[idx.csc_perm]
            grad_x = _torch_spmm(idx.csc_indptr, idx.csc_rows, csc_values, (pattern.n_cols, pattern.n_rows), dyt).t()
        sgd_step_(values.detach(), _torch_sddmm(idx.rows, idx.cols, dyt, xt), step)
        return grad_x


def sparse_linear(
    x: torch.Tensor,
    values: torch.Tensor,
    bias: torch.Tensor | None,
    pattern: SparsePattern,
    *,
    backend: str = "auto",
    index_cache=None,
    update: Callable[[], SGDStep | None] | None = None,
) -> torch.Tensor:
    """Y = X W^T + b where W (``pattern.n_rows x pattern.n_cols``) holds ``values`` at ``pattern``'s positions.

    Args:
        x: input of shape (..., n_cols).
        values: weights in the pattern's CSR order, shape (nnz,).
        bias: shape (n_rows,) or None.
        pattern: the connectivity.
        backend: "auto", "numba" or "torch".
        index_cache: callable device -> index tensors (the layer passes its cache; built here if None).
        update: called in the backward pass; if it returns an :class:`SGDStep`, that step is applied to
            ``values`` in place during the backward sweep and ``values`` gets no gradient (the fused update,
            see :class:`evosparse.nn.FusedSGD`); None (or a call returning None): the usual gradient.

    Returns:
        Tensor of shape (..., n_rows).
    """
    check_inputs(x, values, pattern)
    backend = resolve_backend(backend, x)
    if pattern.is_blocked and backend != "numba":
        raise ValueError(
            f"a row-blocked layer (block_rows={pattern.block_rows}) runs on the numba backend only (CPU, float32 or "
            f"float64), got backend {backend!r} for {x.dtype} on {x.device}; use block_rows=1 elsewhere"
        )
    if index_cache is None:
        index_cache = lambda device: _PatternTensors(pattern, device)  # noqa: E731
    lead = x.shape[:-1]
    x2d = x if x.dim() == 2 else x.reshape(-1, pattern.n_cols)
    y = SparseLinearFunction.apply(x2d, values, bias, pattern, backend, index_cache, update)
    return y if x.dim() == 2 else y.reshape(*lead, pattern.n_rows)


def check_inputs(x: torch.Tensor, values: torch.Tensor, pattern: SparsePattern) -> None:
    """The input's features, the values' length and their dtypes agree with ``pattern`` (else a clear error)."""
    if x.shape[-1] != pattern.n_cols:
        raise ValueError(f"input has {x.shape[-1]} features, the layer expects {pattern.n_cols}")
    if values.shape != (pattern.nnz,):
        raise ValueError(f"values must have shape ({pattern.nnz},), got {tuple(values.shape)}")
    if values.dtype != x.dtype:
        raise TypeError(f"input dtype {x.dtype} differs from weight dtype {values.dtype}")
