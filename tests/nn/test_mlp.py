import pytest
import torch

from evosparse.nn import DenseMLP, SparseMLP


@pytest.mark.parametrize("activation", ["relu", "srelu", "allrelu", "tanh", "sigmoid"])
def test_sparse_mlp_equals_its_dense_equivalent(activation):
    sparse = SparseMLP((12, 20, 16, 3), activation=activation, epsilon=2, seed=0).double()
    dense = DenseMLP((12, 20, 16, 3), activation=activation, seed=0).double()
    # Same seed: SReLU parameters are identical in both; copy the sparse weights into the dense layers.
    for s_layer, d_layer in zip(sparse.sparse_layers(), [m for m in dense.net if isinstance(m, torch.nn.Linear)]):
        with torch.no_grad():
            d_layer.weight.copy_(s_layer.to_dense())
            d_layer.bias.copy_(s_layer.bias)
    x = torch.randn(9, 12, dtype=torch.float64)
    torch.testing.assert_close(sparse(x), dense(x))
    sparse(x).square().sum().backward()
    dense(x).square().sum().backward()
    for s_layer, d_layer in zip(sparse.sparse_layers(), [m for m in dense.net if isinstance(m, torch.nn.Linear)]):
        rows, cols = torch.from_numpy(s_layer.pattern.rows).long(), torch.from_numpy(s_layer.pattern.cols).long()
        torch.testing.assert_close(s_layer.values.grad, d_layer.weight.grad[rows, cols])
        torch.testing.assert_close(s_layer.bias.grad, d_layer.bias.grad)


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
