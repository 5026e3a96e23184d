"""Shared test helpers: every sparse computation checked against its dense twin, one way.

As tinygrad's ``helper_test_op``: the same seeded inputs go through the sparse model and a dense reference;
the shapes, the outputs and *every* gradient (input, weights at the stored positions, biases, all other
parameters) must agree within explicit tolerances. The dense twin of a model is a deep copy in which each
:class:`SparseLinear` became an ``nn.Linear`` holding its weights (zeros where it has no connection), so
anything computed on the twin is an independent reference: plain dense torch, no sparse kernel.

:func:`degenerate_layers` gives the shapes kernels get wrong: an output neuron without connections, an
input neuron without connections, a single connection, a fully dense layer; :data:`BATCHES` includes the
batch of zero rows.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from evosparse.nn import SparseLinear

# Explicit tolerances per dtype: float64 checks the algebra, float32 the kernels' rounding.
TOLERANCES = {
    torch.float64: {"atol": 1e-10, "rtol": 1e-9},
    torch.float32: {"atol": 1e-5, "rtol": 1e-4},
}
BATCHES = (0, 1, 5)  # zero rows, one row, several rows


def positions(layer: SparseLinear) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column index (long tensors, CSR order) of each stored connection."""
    return torch.from_numpy(layer.pattern.rows).long(), torch.from_numpy(layer.pattern.cols).long()


def weight_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, SparseLinear | nn.Linear)]


def dense_twin(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose SparseLinear layers are ``nn.Linear`` layers with the same dense weights."""
    twin = copy.deepcopy(model)
    if isinstance(twin, SparseLinear):
        return _as_linear(twin)
    for name, module in list(twin.named_modules()):
        if isinstance(module, SparseLinear):
            parent_name, _, attribute = name.rpartition(".")
            parent = twin.get_submodule(parent_name) if parent_name else twin
            setattr(parent, attribute, _as_linear(module))
    return twin


def _as_linear(layer: SparseLinear) -> nn.Linear:
    weight = layer.to_dense()
    linear = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if layer.bias is not None:
            linear.bias.copy_(layer.bias)
    return linear


def copy_weights(sparse: nn.Module, dense: nn.Module) -> None:
    """Give ``dense`` (a model with ``nn.Linear`` layers in the same order) the weights of ``sparse``."""
    pairs = list(zip(weight_layers(sparse), weight_layers(dense), strict=True))
    with torch.no_grad():
        for s, d in pairs:
            d.weight.copy_(s.to_dense() if isinstance(s, SparseLinear) else s.weight)
            if s.bias is not None:
                d.bias.copy_(s.bias)


def sum_of_squares(output: torch.Tensor) -> torch.Tensor:
    return output.square().sum()


def assert_matches_dense(
    sparse: nn.Module,
    x: torch.Tensor,
    *,
    dense: nn.Module | None = None,
    loss: Callable[[torch.Tensor], torch.Tensor] = sum_of_squares,
    atol: float | None = None,
    rtol: float | None = None,
    grad_atol: float | None = None,
    grad_rtol: float | None = None,
) -> nn.Module:
    """Assert that ``sparse`` and its dense reference agree on ``x``: output and every gradient.

    Args:
        sparse: a SparseLinear or a model holding some.
        x: the input (the same values go to both models; gradients are taken with respect to it too).
        dense: the reference model, given ``sparse``'s weights here (default: :func:`dense_twin`).
        loss: scalar function of the output whose gradients are compared.
        atol, rtol, grad_atol, grad_rtol: tolerances (default: :data:`TOLERANCES` of ``x``'s dtype).

    Returns:
        The dense reference, with its gradients, for further checks.
    """
    default = TOLERANCES[x.dtype]
    atol, rtol = default["atol"] if atol is None else atol, default["rtol"] if rtol is None else rtol
    grad_atol = atol if grad_atol is None else grad_atol
    grad_rtol = rtol if grad_rtol is None else grad_rtol
    if dense is None:
        dense = dense_twin(sparse)
    else:
        copy_weights(sparse, dense)
    x_sparse, x_dense = x.detach().clone().requires_grad_(True), x.detach().clone().requires_grad_(True)
    out_sparse, out_dense = sparse(x_sparse), dense(x_dense)
    assert out_sparse.shape == out_dense.shape, (out_sparse.shape, out_dense.shape)
    torch.testing.assert_close(out_sparse, out_dense, atol=atol, rtol=rtol, msg="outputs differ")
    sparse.zero_grad(set_to_none=True)
    dense.zero_grad(set_to_none=True)
    loss(out_sparse).backward()
    loss(out_dense).backward()

    def close(got: torch.Tensor | None, expected: torch.Tensor | None, what: str) -> None:
        got = torch.zeros_like(expected) if got is None and expected is not None else got
        expected = torch.zeros_like(got) if expected is None and got is not None else expected
        if got is not None:
            torch.testing.assert_close(got, expected, atol=grad_atol, rtol=grad_rtol, msg=f"gradient of {what} differs")

    close(x_sparse.grad, x_dense.grad, "the input")
    sparse_layers, dense_layers = weight_layers(sparse), weight_layers(dense)
    assert len(sparse_layers) == len(dense_layers)
    for index, (s, d) in enumerate(zip(sparse_layers, dense_layers)):
        if isinstance(s, SparseLinear):
            rows, cols = positions(s)
            dense_grad = None if d.weight.grad is None else d.weight.grad[rows, cols]
            close(s.values.grad, dense_grad, f"layer {index}'s weights")
        else:
            close(s.weight.grad, d.weight.grad, f"layer {index}'s weights")
        if s.bias is not None:
            close(s.bias.grad, d.bias.grad, f"layer {index}'s bias")
    # Every other parameter (SReLU thresholds and slopes, ...) in definition order.
    layer_params = {id(p) for layer in sparse_layers for p in layer.parameters()}
    dense_layer_params = {id(p) for layer in dense_layers for p in layer.parameters()}
    others = [(n, p) for n, p in sparse.named_parameters() if id(p) not in layer_params]
    dense_others = [p for p in dense.parameters() if id(p) not in dense_layer_params]
    for (name, s), d in zip(others, dense_others, strict=True):
        close(s.grad, d.grad, name)
    return dense


def largest_empty(scores: torch.Tensor, occupied: np.ndarray, k: int) -> np.ndarray:
    """Sorted keys ``row * n_cols + col`` of the ``k`` largest ``scores`` (a dense matrix) outside ``occupied``."""
    flat = scores.detach().abs().flatten().double().numpy().copy()
    flat[occupied] = -np.inf
    return np.sort(np.argsort(-flat, kind="stable")[:k])


def degenerate_layers(dtype: torch.dtype = torch.float64, backend: str = "auto") -> dict[str, SparseLinear]:
    """Layers of the shapes kernels get wrong, with seeded weights and biases."""
    generator = torch.Generator().manual_seed(0)

    def layer(mask: torch.Tensor) -> SparseLinear:
        weight = torch.randn(mask.shape, generator=generator, dtype=dtype)
        bias = torch.randn(mask.shape[0], generator=generator, dtype=dtype)
        return SparseLinear.from_dense(weight, mask, bias, backend=backend)

    random = torch.rand(6, 7, generator=generator) < 0.5
    empty_row, empty_col = random.clone(), random.clone()
    empty_row[2], empty_col[:, 4] = False, False
    one = torch.zeros(6, 7, dtype=torch.bool)
    one[3, 5] = True
    return {
        "random": layer(random),
        "empty row": layer(empty_row),
        "empty column": layer(empty_col),
        "one connection": layer(one),
        "fully dense": layer(torch.ones(6, 7, dtype=torch.bool)),
        "one by one": layer(torch.ones(1, 1, dtype=torch.bool)),
    }


def assert_same_run(one: dict, two: dict) -> None:
    """Two trainer states of a checkpoint (``load_checkpoint(...)["trainer"]``) hold the same run, bit for bit:
    every model tensor equal and the same history, wall-clock columns (``*_seconds``) aside."""
    for key in one["model"]:
        assert torch.equal(one["model"][key], two["model"][key]), key

    def untimed(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in rows]

    assert untimed(one["history"]) == untimed(two["history"])
