import pytest
import torch
from helpers import BATCHES, assert_matches_dense

from evosparse.nn import DenseMLP, SparseMLP


@pytest.mark.parametrize("activation", ["relu", "srelu", "allrelu", "tanh", "sigmoid"])
def test_sparse_mlp_equals_its_dense_equivalent(activation):
    sparse = SparseMLP((12, 20, 16, 3), activation=activation, epsilon=2, seed=0).double()
    dense = DenseMLP((12, 20, 16, 3), activation=activation, seed=0).double()
    # Same seed: SReLU parameters are identical in both; the helper copies the sparse weights into the dense
    # layers, then compares outputs and every gradient (weights at the stored positions, biases, SReLU, input).
    x = torch.randn(9, 12, dtype=torch.float64)
    assert_matches_dense(sparse, x, dense=dense)


@pytest.mark.parametrize("batch", BATCHES)
def test_sparse_mlp_matches_its_dense_twin_in_float32(batch):
    sparse = SparseMLP((12, 20, 16, 3), activation="srelu", epsilon=2, seed=1)
    x = torch.randn(batch, 12, generator=torch.Generator().manual_seed(2))
    assert_matches_dense(sparse, x)


def test_paper_architecture_sizes():
    model = SparseMLP((784, 1000, 1000, 1000, 10), epsilon=20, seed=0)
    nnz = [layer.nnz for layer in model.sparse_layers()]
    assert nnz == [round(20 * 1784), 40_000, 40_000, 10_000]
    dense_params = 784 * 1000 + 2 * 1000 * 1000 + 1000 * 10
    assert sum(nnz) / dense_params < 0.05


def test_bad_layer_sizes():
    with pytest.raises(ValueError, match="layer_sizes needs at least two positive sizes"):
        SparseMLP((10,))
    with pytest.raises(ValueError, match="layer_sizes needs at least two positive sizes"):
        DenseMLP((10, 0, 2))


def test_same_seed_same_model_and_dropout_masks():
    def run():
        model = SparseMLP((10, 30, 4), activation="srelu", dropout=0.5, seed=4)
        return model(torch.ones(6, 10))

    torch.testing.assert_close(run(), run())


@pytest.mark.parametrize("model", [SparseMLP, DenseMLP])
@pytest.mark.parametrize("dropout", [-0.1, float("nan"), 1.0, "0.3"])
def test_bad_dropout_names_the_argument_and_range(model, dropout):
    with pytest.raises(ValueError, match=rf"^dropout must be a number in \[0, 1\), got {dropout!r}$"):
        model((4, 3, 2), dropout=dropout)


@pytest.mark.parametrize("model", [SparseMLP, DenseMLP])
@pytest.mark.parametrize("activation", ["allrelu", "srelu", "relu"])
def test_nan_alpha_is_refused_whatever_the_activation(model, activation):
    with pytest.raises(ValueError, match=r"^alpha must be a finite number >= 0, got nan$"):
        model((4, 3, 2), activation=activation, alpha=float("nan"))


@pytest.mark.parametrize("sizes", [(10, 5.5, 3), (10, True, 3), (10, "5", 3)])
def test_fractional_or_boolean_sizes_are_refused(sizes):
    with pytest.raises(ValueError, match=r"layer_sizes needs at least two positive sizes \(input, ..., output\)"):
        SparseMLP(sizes)


def test_per_layer_and_overall_densities_are_named_apart():
    sizes = (784, 1000, 1000, 1000, 10)
    overall = SparseMLP(sizes, target_density=0.05, seed=0)
    total = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert sum(layer.nnz for layer in overall.sparse_layers()) / total == pytest.approx(0.05, abs=1e-4)
    assert overall.sparse_layers()[-1].density == 1.0  # the small output layer saturates: densities differ
    per_layer = SparseMLP((20, 30, 10), density=0.25, seed=0)
    assert [layer.density for layer in per_layer.sparse_layers()] == [0.25, 0.25]
    with pytest.raises(ValueError, match="give density .per layer, got 0.1. or target_density .overall, got 0.05."):
        SparseMLP(sizes, density=0.1, target_density=0.05)


# ---- hidden blocks fused into one op (SparseLinear.forward_relu_dropout) ------------------------------------------
def run_blocks(model, x, *, fused):
    """Output, input gradient and parameter gradients of one pass: fused (model(x)) or module by module."""
    x = x.detach().clone().requires_grad_(True)
    out = model(x) if fused else model.net(x)
    out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape))
    return out.detach(), x.grad, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("batch", [1, 7, 40])
def test_fused_hidden_blocks_are_bit_identical_to_the_modules(dropout, dtype, batch):
    fused = SparseMLP((30, 50, 40, 7), epsilon=5, dropout=dropout, seed=1).to(dtype)
    plain = SparseMLP((30, 50, 40, 7), epsilon=5, dropout=dropout, seed=1).to(dtype)
    x = torch.randn(batch, 30, dtype=dtype, generator=torch.Generator().manual_seed(batch))
    for training in (True, False):
        fused.train(training)
        plain.train(training)
        for _ in range(2):  # a second pass draws new dropout keys from the (shared-seed) generators
            a, b = run_blocks(fused, x, fused=True), run_blocks(plain, x, fused=False)
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
            assert all(torch.equal(g, h) for g, h in zip(a[2], b[2], strict=True))
            for model in (fused, plain):
                model.zero_grad(set_to_none=True)
    assert torch.equal(fused.generator.get_state(), plain.generator.get_state())  # the same keys were drawn


def test_fused_blocks_are_used_and_hooks_turn_them_off(monkeypatch):
    from evosparse.nn import SparseLinear

    calls = []
    original = SparseLinear.forward_relu_dropout
    monkeypatch.setattr(SparseLinear, "forward_relu_dropout", lambda self, *a: calls.append(1) or original(self, *a))
    model = SparseMLP((12, 20, 16, 3), epsilon=2, dropout=0.2, seed=0)
    x = torch.randn(5, 12)
    model(x)
    assert len(calls) == 2  # both hidden blocks, not the output layer
    seen = []
    relu = model.net[1]
    handle = relu.register_forward_hook(lambda module, args, output: seen.append(output))
    model(x)
    assert len(calls) == 3 and len(seen) == 1  # the hooked block ran module by module, the other one fused
    handle.remove()
    model.train(False)
    model(x)
    assert len(calls) == 5  # evaluation: ReLU fused, dropout off
    srelu = SparseMLP((12, 20, 3), activation="srelu", epsilon=2, seed=0)
    srelu(x)
    assert len(calls) == 5  # only plain ReLU is fused
