import numpy as np
import pytest
import torch
from helpers import BATCHES, assert_matches_dense, degenerate_layers

from evosparse.nn import SparseLinear


def test_hand_worked_sgd_momentum_step():
    # W = [[1, 0], [0, -2]] stored sparse (2 connections), b = [0.5, 0]; x = [[1, 2]].
    # Forward: y = x W^T + b = [1*1 + 0.5, -2*2 + 0] = [1.5, -4].  Loss L = sum(y) -> dL/dy = [1, 1].
    # dW at stored positions: dW[0,0] = dy0 * x0 = 1, dW[1,1] = dy1 * x1 = 2; db = [1, 1].
    # SGD lr=0.1, momentum=0.9, first step: buffer = grad, w <- w - 0.1 * grad.
    #   w00 = 1 - 0.1*1 = 0.9, w11 = -2 - 0.1*2 = -2.2, b = [0.5 - 0.1, 0 - 0.1] = [0.4, -0.1].
    # Second step with the same input: grads are unchanged (linear), buffer = 0.9*g + g = 1.9 g:
    #   w00 = 0.9 - 0.19 = 0.71, w11 = -2.2 - 0.38 = -2.58, b = [0.4 - 0.19, -0.1 - 0.19] = [0.21, -0.29].
    for backend in ("numba", "torch"):
        layer = SparseLinear.from_dense(
            torch.tensor([[1.0, 0.0], [0.0, -2.0]]), bias=torch.tensor([0.5, 0.0]), backend=backend
        )
        assert layer.nnz == 2
        opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
        x = torch.tensor([[1.0, 2.0]])
        y = layer(x)
        torch.testing.assert_close(y, torch.tensor([[1.5, -4.0]]))
        for expected_w, expected_b in (([0.9, -2.2], [0.4, -0.1]), ([0.71, -2.58], [0.21, -0.29])):
            opt.zero_grad()
            layer(x).sum().backward()
            opt.step()
            torch.testing.assert_close(layer.values.detach(), torch.tensor(expected_w))
            torch.testing.assert_close(layer.bias.detach(), torch.tensor(expected_b))


def test_dense_round_trip_and_reference_output():
    weight = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    mask = torch.rand(7, 5, generator=torch.Generator().manual_seed(1)) < 0.4
    mask[3] = False  # an empty row
    layer = SparseLinear.from_dense(weight, mask, bias=torch.zeros(7))
    torch.testing.assert_close(layer.to_dense(), weight * mask)
    x = torch.randn(4, 5)
    torch.testing.assert_close(layer(x), x @ (weight * mask).T)
    assert layer.nnz == int(mask.sum())


def test_from_dense_errors():
    with pytest.raises(ValueError, match="weight must be 2-D"):
        SparseLinear.from_dense(torch.ones(3))
    with pytest.raises(ValueError, match="selects no connection"):
        SparseLinear.from_dense(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="mask shape"):
        SparseLinear.from_dense(torch.ones(3, 3), torch.ones(2, 3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_features": 0, "out_features": 3}, "in_features must be a positive integer"),
        ({"in_features": 3, "out_features": -1}, "out_features must be a positive integer"),
        ({"in_features": 3, "out_features": 3, "epsilon": 0}, "epsilon must be > 0"),
        ({"in_features": 3, "out_features": 3, "density": 2.0}, "density must be in"),
        ({"in_features": 3, "out_features": 3, "weight_init": "xavier"}, "weight_init must be one of"),
        ({"in_features": 3, "out_features": 3, "backend": "cuda"}, "backend must be one of"),
        ({"in_features": True, "out_features": 3}, "in_features must be a positive integer, got True"),
        ({"in_features": 3, "out_features": 2.5}, "out_features must be a positive integer, got 2.5"),
        ({"in_features": 3, "out_features": 3, "epsilon": -1, "empty": True}, "epsilon must be > 0"),
        ({"in_features": 3, "out_features": 3, "density": 0.0, "empty": True}, "density must be in"),
    ],
)
def test_constructor_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SparseLinear(**kwargs)


def test_wrong_input_width_and_dtype():
    layer = SparseLinear(6, 4, density=0.5, seed=0)
    with pytest.raises(ValueError, match="input has 5 features, the layer expects 6"):
        layer(torch.randn(2, 5))
    with pytest.raises(TypeError, match="dtype"):
        layer(torch.randn(2, 6, dtype=torch.float64))


def test_same_seed_same_layer():
    a, b = SparseLinear(50, 40, epsilon=5, seed=3), SparseLinear(50, 40, epsilon=5, seed=3)
    assert np.array_equal(a.pattern.keys(), b.pattern.keys())
    assert torch.equal(a.values, b.values)


def test_chunked_init_draws_what_one_call_would():
    """reset_parameters initialises ~1M connections at a time: the same numbers as one sample_weights call."""
    layer = SparseLinear(1500, 1000, density=0.9, seed=0)  # 1.35M connections: two chunks
    layer.reset_parameters(np.random.default_rng(5))
    expected = layer.sample_weights(layer.pattern.rows, np.random.default_rng(5))
    assert torch.equal(layer.values.detach(), expected)


@pytest.mark.parametrize("weight_init", ["fan_in", "paper"])
def test_weights_per_row_are_the_weights_of_their_rows(weight_init):
    """sample_weights_csr (SET's new connections, given per row) draws what sample_weights of their rows does."""
    layer = SparseLinear(70, 50, density=0.2, weight_init=weight_init, seed=0)
    indptr = np.concatenate([[0], np.cumsum(np.random.default_rng(1).integers(0, 4, 50))])
    rows = np.repeat(np.arange(50), np.diff(indptr))
    expected = layer.sample_weights(rows, np.random.default_rng(2))
    assert torch.equal(layer.sample_weights_csr(indptr, np.random.default_rng(2)), expected)


def test_wide_layer_keeps_only_csr_indices_at_small_batches():
    """Training at batch <= 4 never builds the CSC view (8 bytes per connection)."""
    layer = SparseLinear(300, 200, epsilon=5, seed=0)
    layer(torch.randn(3, 300, requires_grad=True)).sum().backward()
    assert not layer.pattern.has_csc
    assert layer.memory_bytes()["indices"] == layer.pattern.indptr.nbytes + layer.pattern.cols.nbytes
    layer(torch.randn(20, 300, requires_grad=True)).sum().backward()
    assert layer.pattern.has_csc


def test_init_scales_with_actual_fan_in():
    layer = SparseLinear(1000, 500, epsilon=10, seed=0)
    bounds = np.sqrt(6.0 / layer.pattern.row_degrees())[layer.pattern.rows]
    assert np.all(np.abs(layer.values.detach().numpy()) <= bounds + 1e-6)
    # He-uniform keeps the variance of a pre-activation near 2 * Var(x): check on unit-variance inputs.
    y = layer(torch.randn(2000, 1000, generator=torch.Generator().manual_seed(0)))
    assert 1.6 < float(y.detach().var()) < 2.4
    paper = SparseLinear(1000, 500, epsilon=10, weight_init="paper", seed=0)
    assert float(paper.values.detach().abs().max()) <= np.sqrt(6.0 / 1000)


def test_state_dict_carries_the_topology_with_any_nnz():
    source = SparseLinear(30, 20, density=0.3, seed=0)
    target = SparseLinear(30, 20, density=0.1, seed=1)
    assert source.nnz != target.nnz
    target.load_state_dict(source.state_dict())
    assert np.array_equal(target.pattern.keys(), source.pattern.keys())
    x = torch.randn(3, 30)
    torch.testing.assert_close(target(x), source(x))
    state = source.state_dict()
    state["cols"] = state["cols"].flip(0)
    with pytest.raises(RuntimeError, match="breaks the CSR order"):
        target.load_state_dict(state)


@pytest.mark.parametrize("block_rows", [1, 4])
def test_an_empty_layer_takes_everything_from_the_state_dict_it_loads(block_rows):
    source = SparseLinear(30, 20, epsilon=3, seed=0, block_rows=block_rows)
    empty = SparseLinear(30, 20, epsilon=3, seed=1, empty=True)
    assert empty.nnz == 0 and empty.values.shape == (0,) and empty(torch.ones(2, 30)).abs().sum() == 0
    empty.load_state_dict(source.state_dict())
    assert empty.block_rows == block_rows and np.array_equal(empty.pattern.cols, source.pattern.cols)
    x = torch.randn(3, 30)
    assert torch.equal(empty(x), source(x))


def test_state_dict_shares_the_pattern_arrays():
    """Saving a state dict of a huge layer must not copy its indices (4-8 bytes per connection)."""
    layer = SparseLinear(30, 20, density=0.3, seed=0)
    state = layer.state_dict()
    assert set(state) == {"values", "bias", "indptr", "cols"}
    assert state["cols"].numpy().base is not None and np.shares_memory(state["cols"].numpy(), layer.pattern.cols)
    assert np.shares_memory(state["indptr"].numpy(), layer.pattern.indptr)
    fresh = SparseLinear(30, 20, density=0.1, seed=1)
    fresh.load_state_dict(state)  # the loaded arrays become the pattern: no copy either
    assert np.shares_memory(fresh.pattern.cols, state["cols"].numpy())


def test_state_dicts_of_earlier_versions_still_load():
    """Before 0.13 the pattern was saved as rows + cols (CSR order); those files must keep loading."""
    source = SparseLinear(30, 20, density=0.3, seed=0)
    legacy = {key: value for key, value in source.state_dict().items() if key != "indptr"}
    legacy["rows"] = torch.from_numpy(source.pattern.rows.copy())
    target = SparseLinear(30, 20, density=0.1, seed=1)
    target.load_state_dict(legacy)
    assert np.array_equal(target.pattern.keys(), source.pattern.keys())
    torch.testing.assert_close(target.to_dense(), source.to_dense())
    legacy["cols"], legacy["rows"] = legacy["cols"].flip(0), legacy["rows"].flip(0)
    with pytest.raises(RuntimeError, match=r"rows / cols are not in CSR \(row-major\) order"):
        target.load_state_dict(legacy)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: s.update(indptr=s["indptr"][:-1]), "indptr must hold 21 integer offsets"),
        (lambda s: s["indptr"].__setitem__(-1, 10**6), "indptr must rise from 0 to nnz"),
        (lambda s: s["indptr"].__setitem__(5, 0), "indptr must rise from 0 to nnz"),
        (lambda s: s["cols"].__setitem__(0, 30), r"column indices must be integers in \[0, 30\)"),
        (lambda s: s["cols"].__setitem__(1, s["cols"][0]), "breaks the CSR order"),
        (lambda s: s.update(cols=s["cols"].float()), "column indices must be integers"),
        (lambda s: s.update(row_offsets=torch.zeros_like(s["cols"])), "row_offsets belong to a row-blocked"),
    ],
)
def test_a_damaged_pattern_in_a_state_dict_is_refused_with_its_reason(damage, message):
    source = SparseLinear(30, 20, density=0.3, seed=0)
    state = {key: value.clone() for key, value in source.state_dict().items()}
    damage(state)
    with pytest.raises(RuntimeError, match=message):
        SparseLinear(30, 20, density=0.1, seed=1).load_state_dict(state)


def test_memory_report_and_repr():
    layer = SparseLinear(784, 1000, epsilon=20, seed=0)
    report = layer.memory_bytes()
    assert report["values"] == 4 * layer.nnz
    assert report["dense"] == 4 * 784 * 1000 + 4 * 1000
    assert report["total"] == report["values"] + report["indices"] + report["bias"]
    assert report["values"] < report["dense"] / 10
    assert "nnz=" in repr(layer) and "epsilon=20.0" in repr(layer)


def test_batch_leading_dims_and_feature_major_chaining():
    torch.manual_seed(0)
    a = SparseLinear(8, 6, density=0.5, seed=0)
    b = SparseLinear(6, 3, density=0.5, seed=1)
    x = torch.randn(2, 5, 8)
    y = a(x)
    assert y.shape == (2, 5, 6)
    torch.testing.assert_close(y, x @ a.to_dense().T + a.bias)
    h = torch.relu(a(torch.randn(4, 8)))
    assert h.t().is_contiguous()  # feature-major: the next layer reads it without a copy
    torch.testing.assert_close(b(h), h @ b.to_dense().T + b.bias)


def test_resize_keeps_exactly_the_chosen_neurons():
    layer = SparseLinear(7, 6, density=0.6, seed=3)
    dense, bias = layer.to_dense(), layer.bias.detach().clone()
    keep_outputs, keep_inputs = np.array([0, 2, 5]), np.array([1, 2, 4, 6])
    old_values = layer.values
    kept = layer.resize(keep_outputs=keep_outputs, keep_inputs=keep_inputs)
    expected = dense[keep_outputs][:, keep_inputs]
    torch.testing.assert_close(layer.to_dense(), expected)
    torch.testing.assert_close(layer.bias.detach(), bias[keep_outputs])
    torch.testing.assert_close(layer.values.detach(), old_values.detach()[kept])
    assert layer.values is not old_values  # a new leaf: autograd may still remember the old shape
    assert (layer.out_features, layer.in_features, layer.nnz) == (3, 4, int((expected != 0).sum()))
    assert layer.resized and layer.state_dict()["shape"].tolist() == [3, 4]
    x = torch.randn(5, 4)
    torch.testing.assert_close(layer(x), x @ expected.t() + bias[keep_outputs])


def test_resize_rejects_bad_neuron_ids():
    layer = SparseLinear(4, 4, density=0.5, seed=0)
    assert not layer.resized and "shape" not in layer.state_dict()
    for bad in ([], [2, 1], [0, 4], [1, 1]):
        with pytest.raises(ValueError, match=r"keep_outputs must be sorted, distinct neuron ids in \[0, 4\)"):
            layer.resize(keep_outputs=np.array(bad, dtype=np.int64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_refused_at_construction(dtype):
    message = rf"^dtype must be torch.float32 or torch.float64 \(the sparse kernels' types\), got {dtype}$"
    with pytest.raises(TypeError, match=message):
        SparseLinear(6, 4, density=0.5, dtype=dtype)
    with pytest.raises(TypeError, match=message):
        SparseLinear.from_dense(torch.ones(2, 3, dtype=dtype))
    layer = SparseLinear(6, 4, density=0.5, seed=0).to(dtype)  # converted afterwards: refused when used
    with pytest.raises(TypeError, match=message):
        layer(torch.ones(2, 6, dtype=dtype))


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("shape", list(degenerate_layers()))
def test_layer_matches_its_dense_twin(shape, batch, dtype, backend):
    # Output, input gradient, weight gradient at every stored position and bias gradient, against nn.Linear.
    layer = degenerate_layers(dtype, backend)[shape]
    x = torch.randn(batch, layer.in_features, generator=torch.Generator().manual_seed(1), dtype=dtype)
    assert_matches_dense(layer, x)
