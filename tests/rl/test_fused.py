"""The fused MLP pass (rl.fused) against the modules' own forward and autograd: outputs and every gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from evosparse.nn import DenseMLP, SparseLinear, SparseMLP
from evosparse.rl import fused
from evosparse.rl.networks import build_mlp, weight_layers


def _mlp(kind: str, sizes, seed: int, activation: str = "relu") -> nn.Module:
    rng = np.random.default_rng(seed)
    if kind == "dense":
        return build_mlp(sizes, activation=activation, rng=rng)
    density = {"sparse": 0.1, "scatter": 1.0}[kind]  # kernels at 0.1; every layer on the dense path at 1
    return build_mlp(sizes, density=density, sparse=True, activation=activation, rng=rng)


def _reference(mlps, x):
    return torch.cat([mlp(x).t() for mlp in mlps])


def _check(mlps, *, input_grad: bool, dtype=torch.float64, batch: int = 7, exact: bool = False):
    for mlp in mlps:
        mlp.to(dtype)
    x = torch.randn(batch, mlps[0].layer_sizes[0], dtype=dtype, generator=torch.Generator().manual_seed(0))
    params = [p for mlp in mlps for p in mlp.parameters() if p.requires_grad]
    results = []
    for run in (_reference, fused.run_mlps):
        xi = x.clone().requires_grad_(input_grad)
        out = run(mlps, xi)
        weights = torch.arange(out.numel(), dtype=dtype).reshape(out.shape).sin()  # a loss with distinct weights
        grads = torch.autograd.grad((out * weights).sum(), ([xi] if input_grad else []) + params)
        results.append((out.detach(), grads))
    (ref_out, ref_grads), (out, grads) = results
    tolerance = {"rtol": 0.0, "atol": 0.0} if exact else {"rtol": 1e-10, "atol": 1e-10}
    torch.testing.assert_close(out, ref_out, **tolerance)
    assert len(grads) == len(ref_grads)
    for grad, ref in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref, **tolerance)


@pytest.mark.parametrize("kind", ["dense", "sparse", "scatter"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fused_pass_equals_the_modules_for_every_layer_kind(kind, activation):
    _check([_mlp(kind, [5, 16, 12, 3], 0, activation)], input_grad=True)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_dense_and_kernel_layers_compute_bit_for_bit_what_the_modules_compute(kind, monkeypatch):
    """Same ops in the same memory layouts: a dense agent's training is unchanged by the fast path."""
    monkeypatch.setattr(fused, "DENSE_PATH_DENSITY", 2.0)  # every sparse layer on the kernels
    _check([_mlp(kind, [5, 64, 64, 3], 0)], input_grad=True, dtype=torch.float32, batch=32, exact=True)
    twins = [_mlp(kind, [6, 64, 64, 1], 1), _mlp(kind, [6, 64, 64, 1], 2)]
    _check(twins, input_grad=True, dtype=torch.float32, batch=32, exact=True)


def test_twin_networks_in_one_call_give_both_outputs_and_the_summed_input_gradient():
    _check([_mlp("sparse", [6, 32, 32, 1], 1), _mlp("dense", [6, 32, 32, 1], 2)], input_grad=True)


def test_frozen_weights_and_data_input_get_no_gradient_work():
    mlp = _mlp("sparse", [4, 24, 2], 3)
    mlp.net[0].requires_grad_(False)  # e.g. the critic's first layer
    _check([mlp], input_grad=False)
    mlp.requires_grad_(False)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(fused.run_mlps([mlp], x).sum(), [x])
    (ref,) = torch.autograd.grad(mlp(x).sum(), [x])
    torch.testing.assert_close(grad, ref, rtol=1e-10, atol=1e-10)


def test_layer_paths_follow_density_and_a_new_pattern_is_picked_up():
    mlp = build_mlp([3, 256, 256, 1], density=0.1, sparse=True, rng=np.random.default_rng(0))
    plan = fused._plan(mlp)
    densities = [layer.density for layer in weight_layers(mlp)]
    expected = [fused._SCATTER if d >= fused.DENSE_PATH_DENSITY else fused._SPARSE for d in densities]
    assert [layer.kind for layer in plan.layers] == expected and fused._SPARSE in expected
    denser = SparseLinear(256, 256, density=0.6, seed=1)  # a topology update that makes the hidden layer denser
    mlp.net[2].set_pattern(denser.pattern, denser.values.detach().clone())
    assert fused._plan(mlp) is not plan and fused._plan(mlp).layers[1].kind == fused._SCATTER
    _check([mlp], input_grad=True, batch=5)


def test_unsupported_networks_fall_back_to_the_module_forward():
    srelu = SparseMLP([4, 8, 2], activation="srelu", seed=0)
    with_dropout = DenseMLP([4, 8, 2], dropout=0.2, seed=0).eval()
    for mlp in (srelu, with_dropout):
        assert fused._plan(mlp) is None
        x = torch.randn(3, 4)
        torch.testing.assert_close(fused.run_mlp(mlp, x), mlp(x))


def test_layers_with_forward_hooks_run_the_modules_when_gradients_flow():
    mlp = _mlp("sparse", [4, 8, 2], 0)
    calls = []
    mlp.net[0].register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(3, 4)
    with torch.no_grad():
        fused.run_mlp(mlp, x)
    assert calls == []
    fused.run_mlp(mlp, x)
    assert calls == [1]
