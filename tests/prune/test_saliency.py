"""OBD's Hessian diagonal against finite differences; SNIP sensitivity against autograd; in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TOLERANCES, assert_matches_dense, positions

from evosparse.nn import DenseMLP, SparseMLP
from evosparse.prune.saliency import hessian_diagonal, obd_saliency, snip_scores, weight_layers, weights_of


def small_data(n_in=6, n=20, classes=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=generator, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=generator)
    return x, y


def finite_difference_diagonal(model, x, y, h=1e-4):
    """d2L/dw2 of the mean cross-entropy by central differences, one weight at a time."""
    model.eval()
    result = []
    for layer in weight_layers(model):
        w = weights_of(layer)
        flat = w.data.view(-1)
        diagonal = torch.empty_like(flat)
        with torch.no_grad():
            base = F.cross_entropy(model(x), y).item()
            for k in range(flat.shape[0]):
                old = flat[k].item()
                flat[k] = old + h
                up = F.cross_entropy(model(x), y).item()
                flat[k] = old - h
                down = F.cross_entropy(model(x), y).item()
                flat[k] = old
                diagonal[k] = (up - 2 * base + down) / h**2
        result.append(diagonal.view_as(w))
    return result


MODELS = {
    "dense-relu": lambda: DenseMLP((6, 5, 4, 3), seed=1).double(),
    "sparse-relu": lambda: SparseMLP((6, 5, 4, 3), density=0.6, seed=1).double(),
    "sparse-allrelu": lambda: SparseMLP((6, 5, 4, 3), density=0.6, activation="allrelu", seed=1).double(),
}


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_gauss_newton_diagonal_equals_the_finite_difference_hessian(make):
    # Piecewise-linear activations: the Hessian diagonal *is* the Gauss-Newton diagonal (a.e.).
    model = make()
    x, y = small_data()
    exact = finite_difference_diagonal(model, x, y)
    got = hessian_diagonal(model, x, y, method="gauss_newton", batch_size=7)  # batches must add up
    for g, e in zip(got, exact):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_lecun_diagonal_is_exact_on_the_output_layer(make):
    model = make()
    x, y = small_data()
    lecun = hessian_diagonal(model, x, y, method="lecun")
    exact = finite_difference_diagonal(model, x, y)
    torch.testing.assert_close(lecun[-1], exact[-1], rtol=1e-4, atol=1e-6)
    assert all(torch.all(h >= 0) for h in lecun)  # the approximation is positive semi-definite


def test_lecun_recursion_against_a_loop_reference():
    """Hidden layer: s_j = f'(z_j)^2 sum_i w_ij^2 s_i, h_jk = mean_b s_j x_k^2 (LeCun et al. 1990, Eq. 7-8)."""
    model = DenseMLP((4, 3, 2), seed=0).double()
    x, y = small_data(n_in=4, n=5, classes=2)
    first, second = weight_layers(model)
    got = hessian_diagonal(model, x, y, method="lecun")[0]
    expected = torch.zeros(3, 4, dtype=torch.float64)
    for b in range(5):
        z1 = first.weight @ x[b] + first.bias
        h1 = torch.relu(z1)
        p = torch.softmax(second.weight @ h1 + second.bias, dim=0)
        s_out = p * (1 - p)
        for j in range(3):
            slope = 1.0 if z1[j] > 0 else 0.0
            s_j = slope**2 * sum(second.weight[i, j] ** 2 * s_out[i] for i in range(2))
            for k in range(4):
                expected[j, k] += s_j * x[b, k] ** 2 / 5
    torch.testing.assert_close(got, expected.detach())


def test_obd_saliency_is_half_h_w_squared():
    model = MODELS["sparse-relu"]()
    x, y = small_data()
    h = hessian_diagonal(model, x, y)
    for s, hk, layer in zip(obd_saliency(model, x, y), h, weight_layers(model)):
        torch.testing.assert_close(s, 0.5 * hk * weights_of(layer).detach() ** 2)


def test_hessian_restores_mode_and_grad_state():
    model = MODELS["dense-relu"]()
    model.train()
    x, y = small_data()
    with torch.no_grad():
        hessian_diagonal(model, x, y)
        assert not torch.is_grad_enabled()
    assert model.training
    with pytest.raises(ValueError, match="method must be one of"):
        hessian_diagonal(model, x, y, method="exact")


def test_snip_scores_are_gradient_times_weight():
    model = MODELS["dense-relu"]()
    x, y = small_data()
    scores = snip_scores(model, x, y, batch_size=6)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    for s, layer in zip(scores, weight_layers(model)):
        torch.testing.assert_close(s, (layer.weight.grad * layer.weight).abs().detach())
    assert np.isfinite(torch.cat([s.flatten() for s in scores]).numpy()).all()


@pytest.mark.parametrize("method", ["gauss_newton", "lecun"])
def test_sparse_saliencies_equal_the_dense_twins_at_the_stored_positions(method):
    model = MODELS["sparse-allrelu"]()
    x, y = small_data()
    twin = assert_matches_dense(model, x, loss=lambda out: F.cross_entropy(out, y))  # same function and gradients
    pairs = list(zip(weight_layers(model), weight_layers(twin), strict=True))
    sparse_h, dense_h = hessian_diagonal(model, x, y, method=method), hessian_diagonal(twin, x, y, method=method)
    sparse_snip, dense_snip = snip_scores(model, x, y), snip_scores(twin, x, y)
    for (layer, _), h, h_dense, snip, snip_dense in zip(pairs, sparse_h, dense_h, sparse_snip, dense_snip):
        rows, cols = positions(layer)
        torch.testing.assert_close(h, h_dense[rows, cols], **TOLERANCES[torch.float64])
        torch.testing.assert_close(snip, snip_dense[rows, cols], **TOLERANCES[torch.float64])
