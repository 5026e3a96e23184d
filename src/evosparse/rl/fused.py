"""One autograd node for a whole MLP (or several MLPs reading the same input): the agents' fast path.

An RL update runs a dozen small MLP passes (256-wide layers, batch 256), where the per-layer cost of
autograd nodes, module calls and tensor wrapping is as large as the arithmetic. :func:`run_mlps` runs
``DenseMLP`` / ``SparseMLP`` networks layer by layer inside ONE ``torch.autograd.Function``:

1. **forward**, feature-major (features x batch, the layout of the sparse kernels): for each network and
   layer, ``H_l = act(W_l H_{l-1} + b_l)``, the activation in place; the inputs of every layer are kept.
2. **backward**, in reverse: ``dW_l = dY_l H_{l-1}^T`` (only where the weight needs a gradient: the
   critic is frozen in the actor's loss), ``db_l = sum_batch dY_l``, ``dH_{l-1} = W_l^T dY_l`` (skipped
   for the data input), then the activation's derivative from the kept output.
   The twin critics (two networks on one input) are one call, one node, one output of shape (2, batch).

Each layer runs one of three ways, chosen by its kind and density (deterministic, so a seed reproduces
a run and a resume continues it exactly):

* ``nn.Linear``: dense GEMMs (``addmm`` / ``mm``).
* ``SparseLinear`` at density < :data:`DENSE_PATH_DENSITY`: the O(nnz x batch) kernels of
  :mod:`evosparse.sparse.kernels` (SpMM, transposed SpMM, SDDMM) on the layer's stored indices.
* ``SparseLinear`` at density >= :data:`DENSE_PATH_DENSITY` with at most :data:`DENSE_PATH_MAX_ENTRIES`
  positions: its values are scattered into a transient dense matrix for dense GEMMs, and the weight
  gradient is read back at the stored positions only. It computes the same function (only rounding
  differs) and stores nothing dense between calls; at these densities a GEMM does 1-3.3x the arithmetic
  of the sparse kernels but runs about as fast or faster here (BENCHMARKS.md section 8.4: 256 x 256 at
  batch 256, one thread, the kernels take ~0.9x a GEMM's time at density 0.3 and 1-1.3x at 0.45, the
  hidden-layer density of a "50%" agent, whose small input and output layers the Erdos-Renyi spread
  keeps fully dense; at 0.2 they take ~0.6x).

Networks with other activations, dropout, layers without bias, non-CPU or non-float tensors fall back
to the modules' own forward (same results, slower), and so do passes with gradients through layers with
forward hooks (RigL's gradient probe records the layers' inputs and output gradients through them).
"""

from __future__ import annotations

import weakref

import numpy as np
import torch
from torch import nn

from evosparse.nn import DenseMLP, SparseLinear, SparseMLP
from evosparse.sparse import kernels

DENSE_PATH_DENSITY = 0.3  # a sparse layer at least this dense runs as dense GEMMs on a scattered copy
DENSE_PATH_MAX_ENTRIES = 1 << 20  # ... if its dense matrix has at most this many entries (4 MB in float32)
_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh"}
_DENSE, _SCATTER, _SPARSE = 0, 1, 2


class _LayerPlan:
    """How one layer runs: kind, sizes, pattern, scatter positions (built once per pattern)."""

    __slots__ = ("kind", "layer", "pattern", "positions", "n_out", "n_in")

    def __init__(self, layer: nn.Module) -> None:
        self.layer, self.n_out, self.n_in = layer, layer.out_features, layer.in_features
        self.pattern = self.positions = None
        if isinstance(layer, nn.Linear):
            self.kind = _DENSE
            return
        self.pattern = pattern = layer.pattern
        if pattern.density >= DENSE_PATH_DENSITY and self.n_out * self.n_in <= DENSE_PATH_MAX_ENTRIES:
            self.kind = _SCATTER
            self.positions = torch.from_numpy(pattern.rows.astype(np.int64) * self.n_in + pattern.cols)
        else:
            self.kind = _SPARSE

    def weight(self) -> torch.Tensor:
        return self.layer.weight if self.kind == _DENSE else self.layer.values

    def current(self) -> bool:
        """False once the layer's pattern was replaced (a topology update)."""
        return self.pattern is (None if self.kind == _DENSE else self.layer.pattern)


class _MLPPlan:
    """The layers and activation of one MLP, or None if it cannot take the fast path."""

    __slots__ = ("blocks", "layers", "activation")

    def __init__(self, mlp: nn.Module) -> None:
        self.blocks = tuple(mlp.net)  # no reference to ``mlp`` itself: the plan cache is keyed weakly by it
        self.layers: list[_LayerPlan] = []
        self.activation = None
        linears, activations = self.blocks[0::2], self.blocks[1::2]
        names = {_ACTIVATIONS.get(type(a)) for a in activations}
        if len(names) > 1 or None in names:
            return
        if not all(isinstance(layer, nn.Linear | SparseLinear) and layer.bias is not None for layer in linears):
            return
        if any(isinstance(layer, SparseLinear) and layer.backend == "torch" for layer in linears):
            return
        self.activation = names.pop() if names else "relu"
        self.layers = [_LayerPlan(layer) for layer in linears]

    def current(self, mlp: nn.Module) -> bool:
        return tuple(mlp.net) == self.blocks and all(layer.current() for layer in self.layers)


_PLANS: weakref.WeakKeyDictionary[nn.Module, _MLPPlan] = weakref.WeakKeyDictionary()


def _plan(mlp: nn.Module) -> _MLPPlan | None:
    """The network's plan, rebuilt when a layer or a pattern was replaced; None if it has no fast path."""
    if not isinstance(mlp, DenseMLP | SparseMLP):
        return None
    plan = _PLANS.get(mlp)
    if plan is None or not plan.current(mlp):
        plan = _PLANS[mlp] = _MLPPlan(mlp)
    return plan if plan.layers else None


def run_mlps(mlps: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The MLPs' outputs on input ``x`` (batch, n_in), feature-major and stacked: (sum of n_out, batch)."""
    plans = [_plan(mlp) for mlp in mlps]
    fast = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.dim() == 2
    if not fast or any(plan is None for plan in plans) or any(p.weight().dtype != x.dtype for p in _layers(plans)):
        return torch.cat([mlp(x).t() for mlp in mlps])
    if torch.is_grad_enabled() and any(p.layer._forward_hooks or p.layer._forward_pre_hooks for p in _layers(plans)):
        return torch.cat([mlp(x).t() for mlp in mlps])  # RigL's gradient probe watches the layers' calls
    params = []
    for layer in _layers(plans):
        params += (layer.weight(), layer.layer.bias)
    return _FusedMLPs.apply(plans, x, *params)


def run_mlp(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One MLP's output (batch, n_out) through the fast path (a view of a feature-major buffer)."""
    return run_mlps([mlp], x).t()


def _layers(plans: list[_MLPPlan]):
    return (layer for plan in plans for layer in plan.layers)


def _dense_weight(layer: _LayerPlan, weight: torch.Tensor) -> torch.Tensor:
    if layer.kind == _DENSE:
        return weight
    # scatter_ / index_select: 3-4x faster here than advanced indexing (dense[positions] = weight) at 256 x 256
    return weight.new_zeros(layer.n_out * layer.n_in).scatter_(0, layer.positions, weight).view(layer.n_out, layer.n_in)


class _FusedMLPs(torch.autograd.Function):
    """Forward and backward of whole MLPs, layer by layer, with the ops (and memory layouts) the modules'
    own autograd uses -- ``F.linear``'s addmm for dense layers, :mod:`evosparse.sparse.functional`'s
    kernel calls for sparse ones -- so a dense agent computes bit for bit what its modules would."""

    @staticmethod
    def forward(ctx, plans, x, *params):
        outputs, inputs, weights = [], [], []
        i = 0
        for plan in plans:
            h = x.detach()
            last = len(plan.layers) - 1
            for l, layer in enumerate(plan.layers):
                weight, bias = params[i].detach(), params[i + 1].detach()
                i += 2
                if layer.kind == _SPARSE:
                    xt = h.t().contiguous()  # free when h came from a sparse layer
                    inputs.append(xt)
                    weights.append(weight)
                    out_t = torch.empty((layer.n_out, xt.shape[1]), dtype=xt.dtype)
                    pattern = layer.pattern
                    kernels.spmm(pattern.indptr, pattern.cols, weight.numpy(), xt.numpy(), bias.numpy(), out_t.numpy())
                    out = out_t.t()
                else:
                    inputs.append(h)
                    dense = _dense_weight(layer, weight)
                    weights.append(dense)
                    out = torch.addmm(bias, h, dense.t())
                if l < last:
                    out = out.relu_() if plan.activation == "relu" else out.tanh_()
                h = out
            outputs.append(h.t())
        ctx.plans, ctx.inputs, ctx.weights = plans, inputs, weights
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    @staticmethod
    def backward(ctx, grad):
        plans, inputs, weights = ctx.plans, ctx.inputs, ctx.weights
        needs = ctx.needs_input_grad
        grads: list[torch.Tensor | None] = [None] * (len(needs) - 2)
        grad_x = None
        first_layer, first_row = 0, 0  # index of the plan's first layer; its first output row in ``grad``
        for plan in plans:
            n_layers = len(plan.layers)
            n_out = plan.layers[-1].n_out
            dy = grad[first_row : first_row + n_out].t()  # (batch, n_out)
            first_row += n_out
            for l in range(n_layers - 1, -1, -1):
                layer, k = plan.layers[l], first_layer + l
                saved, weight = inputs[k], weights[k]
                need_input = l > 0 or needs[1]
                if layer.kind == _SPARSE:
                    dyt = dy.t().contiguous()  # free when dy is feature-major (it usually is)
                    if needs[2 + 2 * k]:
                        grad_weight = torch.empty_like(weight)
                        pattern = layer.pattern
                        kernels.sddmm(pattern.indptr, pattern.cols, dyt.numpy(), saved.numpy(), grad_weight.numpy())
                        grads[2 * k] = grad_weight
                    if needs[3 + 2 * k]:
                        grads[2 * k + 1] = dyt.sum(dim=1)
                    if need_input:
                        dx_t = torch.empty((layer.n_in, dyt.shape[1]), dtype=dyt.dtype)
                        pattern = layer.pattern
                        kernels.spmm_transposed(
                            pattern.csc_indptr, pattern.csc_rows, pattern.csc_perm, weight.numpy(), dyt.numpy(),
                            dx_t.numpy(),
                        )  # fmt: skip
                        dx = dx_t.t()
                else:
                    if needs[2 + 2 * k]:
                        grad_weight = dy.t().mm(saved)
                        if layer.kind == _SCATTER:  # the stored positions only
                            grad_weight = grad_weight.view(-1).index_select(0, layer.positions)
                        grads[2 * k] = grad_weight
                    if needs[3 + 2 * k]:
                        grads[2 * k + 1] = dy.sum(0)
                    if need_input:
                        dx = dy.mm(weight)
                if not need_input:
                    break
                if l == 0:
                    grad_x = dx if grad_x is None else grad_x + dx
                    break
                output = saved.t() if layer.kind == _SPARSE else saved  # this layer's input: the activation below
                if plan.activation == "relu":  # zero where the output is <= 0, as nn.ReLU's backward
                    dy = torch.ops.aten.threshold_backward(dx, output, 0)
                else:  # d tanh = 1 - tanh^2, from the kept output, as nn.Tanh's backward
                    dy = torch.ops.aten.tanh_backward(dx, output)
            first_layer += n_layers
        ctx.inputs = ctx.weights = None
        return None, grad_x, *grads
