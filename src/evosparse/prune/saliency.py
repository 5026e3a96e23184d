"""Importance scores of connections: magnitude, SNIP sensitivity and Optimal Brain Damage saliency.

Every function returns, for each weight layer of the model (``nn.Linear`` or :class:`SparseLinear`, in
order), a tensor shaped like its weights (``weight`` for a dense layer, ``values`` for a sparse one).
Higher means more important; the selector (:mod:`evosparse.topology.select`) keeps the highest.

Optimal Brain Damage (LeCun, Denker, Solla 1990): deleting weight ``w_k`` raises the loss by about
``s_k = 0.5 * h_kk * w_k^2``, with ``h_kk`` the diagonal of the Hessian. For a layer ``z = W x + b`` the
diagonal entry of weight (i, j) is ``h = mean_b d2E/dz_i^2 (b) * x_j(b)^2``, so once the per-neuron
second derivatives ``s = d2E/dz^2`` are known it is a sampled dense-dense product (SDDMM) at the stored
positions -- our sparse weight-gradient kernel, run on ``x^2`` with output "gradient" ``s``. Two ways to
get ``s``:

* ``"lecun"``: the paper's recursion, one backward sweep of second derivatives with the
  Levenberg-Marquardt simplification (off-diagonal terms and ``f''`` dropped):
  ``s_out = p (1 - p)`` (softmax + cross-entropy), ``s_in = f'(z)^2 * (W^2)^T s_next``.
* ``"gauss_newton"``: the exact diagonal of the Gauss-Newton matrix, from one backward pass per class
  ``c`` (``delta_c = dz_c / dz``): ``s = sum_c p_c delta_c^2 - (sum_c p_c delta_c)^2``. For networks with
  piecewise-linear activations (ReLU, All-ReLU) this *is* the diagonal of the true Hessian almost
  everywhere (the outputs are piecewise linear in any single weight), which the tests check against
  finite differences.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evosparse.nn.linear import SparseLinear
from evosparse.sparse.functional import sparse_linear

HESSIANS = ("gauss_newton", "lecun")


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The model's ``nn.Linear`` and SparseLinear layers, in definition order."""
    return [m for m in model.modules() if isinstance(m, nn.Linear | SparseLinear)]


def weights_of(layer: nn.Module) -> torch.Tensor:
    return layer.values if isinstance(layer, SparseLinear) else layer.weight


def magnitude_scores(model: nn.Module) -> list[torch.Tensor]:
    return [weights_of(layer).detach().abs() for layer in weight_layers(model)]


def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int):
    for begin in range(0, x.shape[0], batch_size):
        yield x[begin : begin + batch_size], y[begin : begin + batch_size]


def snip_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256) -> list[torch.Tensor]:
    """SNIP connection sensitivity ``|dL/dw * w|`` (Lee et al. 2019), gradients summed over ``(x, y)``."""
    layers = weight_layers(model)
    params = [weights_of(layer) for layer in layers]
    grads = [torch.zeros_like(p) for p in params]
    with torch.enable_grad():  # callers may hold no_grad (topology updates do)
        for xb, yb in _batches(x, y, batch_size):
            loss = F.cross_entropy(model(xb), yb, reduction="sum") / x.shape[0]
            for total, g in zip(grads, torch.autograd.grad(loss, params)):
                total += g
    return [(g * p.detach()).abs() for g, p in zip(grads, params)]


class _Recorder:
    """Forward hooks that keep each weight layer's input and output (pre-activation) of one pass."""

    def __init__(self, layers: list[nn.Module]) -> None:
        self.inputs: list[torch.Tensor | None] = [None] * len(layers)
        self.outputs: list[torch.Tensor | None] = [None] * len(layers)
        self.handles = [layer.register_forward_hook(self._hook(i)) for i, layer in enumerate(layers)]

    def _hook(self, index: int):
        def record(module, args, output):
            self.inputs[index] = args[0].detach().reshape(-1, args[0].shape[-1])
            self.outputs[index] = output

        return record

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _weight_curvature(layer: nn.Module, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``sum_b s[b, i] * x[b, j]^2`` at the layer's weight positions (dense matrix or sparse values)."""
    x2 = x * x
    if isinstance(layer, SparseLinear):
        values = layer.values.detach().clone().requires_grad_(True)
        out = sparse_linear(x2, values, None, layer.pattern, backend=layer.backend)
        return torch.autograd.grad(out, values, grad_outputs=s.reshape(out.shape))[0]
    return s.t() @ x2


def _transposed_square_product(layer: nn.Module, s: torch.Tensor) -> torch.Tensor:
    """``s @ W^2`` (i.e. ``(W^2)^T s`` per sample): second derivatives sent back through the squared weights."""
    if isinstance(layer, SparseLinear):
        probe = torch.zeros(s.shape[0], layer.in_features, dtype=s.dtype, requires_grad=True)
        out = sparse_linear(probe, layer.values.detach() ** 2, None, layer.pattern, backend=layer.backend)
        return torch.autograd.grad(out, probe, grad_outputs=s)[0]
    return s @ layer.weight.detach() ** 2


def hessian_diagonal(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    method: str = "gauss_newton",
    batch_size: int = 256,
) -> list[torch.Tensor]:
    """Diagonal of the Hessian of the mean cross-entropy on ``(x, y)`` w.r.t. every weight (see module doc).

    ``method="lecun"`` needs a model whose ``net`` is a sequence of weight layers, elementwise activations
    and dropout (SparseMLP, DenseMLP); ``"gauss_newton"`` works for any model. Evaluation mode is used
    (no dropout) and restored afterwards.
    """
    if method not in HESSIANS:
        raise ValueError(f"method must be one of {HESSIANS}, got {method!r}")
    layers = weight_layers(model)
    totals = [torch.zeros_like(weights_of(layer), dtype=torch.float64) for layer in layers]
    was_training = model.training
    model.eval()
    recorder = _Recorder(layers)
    grad_mode = torch.is_grad_enabled()
    torch.set_grad_enabled(True)  # callers may hold no_grad (topology updates do)
    try:
        for xb, _ in _batches(x, y, batch_size):
            logits = model(xb)
            with torch.no_grad():
                p = torch.softmax(logits.detach(), dim=1)
            if method == "gauss_newton":
                second = _gauss_newton_second(logits, p, recorder.outputs)
            else:
                second = _lecun_second(model, layers, recorder, p)
            for total, layer, x_in, s in zip(totals, layers, recorder.inputs, second):
                total += _weight_curvature(layer, x_in, s.reshape(x_in.shape[0], -1)).to(torch.float64)
    finally:
        torch.set_grad_enabled(grad_mode)
        recorder.close()
        model.train(was_training)
    return [(total / x.shape[0]).to(weights_of(layer).dtype) for total, layer in zip(totals, layers)]


def _gauss_newton_second(logits: torch.Tensor, p: torch.Tensor, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
    sum_p_delta2 = [torch.zeros_like(z) for z in outputs]
    sum_p_delta = [torch.zeros_like(z) for z in outputs]
    for c in range(logits.shape[1]):
        deltas = torch.autograd.grad(logits[:, c].sum(), outputs, retain_graph=True, allow_unused=True)
        for a, b, delta in zip(sum_p_delta2, sum_p_delta, deltas):
            if delta is not None:
                weight = p[:, c : c + 1].reshape(-1, *([1] * (delta.dim() - 1)))
                a += weight * delta * delta
                b += weight * delta
    return [a - b * b for a, b in zip(sum_p_delta2, sum_p_delta)]


def _lecun_second(
    model: nn.Module, layers: list[nn.Module], recorder: _Recorder, p: torch.Tensor
) -> list[torch.Tensor]:
    net = getattr(model, "net", None)
    if not isinstance(net, nn.Sequential):
        raise ValueError("method='lecun' needs a SparseMLP / DenseMLP-like model (a .net Sequential)")
    # The activation following each weight layer (None for the output layer).
    activations: list[nn.Module | None] = []
    modules = list(net)
    for index, module in enumerate(modules):
        if module in layers:
            follower = modules[index + 1] if index + 1 < len(modules) else None
            activations.append(follower)
    s = p * (1 - p)  # d2E/dz2 of softmax + cross-entropy, diagonal
    second: list[torch.Tensor] = [s]
    for index in range(len(layers) - 1, 0, -1):
        back = _transposed_square_product(layers[index], s)
        z = recorder.outputs[index - 1].detach().requires_grad_(True)
        activation = activations[index - 1]
        with torch.enable_grad():
            slope = torch.autograd.grad(activation(z).sum(), z)[0]  # f'(z), elementwise activations
        s = slope * slope * back
        second.insert(0, s)
    return second


def obd_saliency(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, method: str = "gauss_newton", batch_size: int = 256
) -> list[torch.Tensor]:
    """OBD saliency ``0.5 * h_kk * w_k^2`` of every weight (see :func:`hessian_diagonal`)."""
    diagonals = hessian_diagonal(model, x, y, method=method, batch_size=batch_size)
    return [0.5 * h * weights_of(layer).detach() ** 2 for h, layer in zip(diagonals, weight_layers(model))]
