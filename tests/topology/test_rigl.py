"""RigL: drop by magnitude, grow exactly the empty positions of largest gradient (vs. a dense reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_matches_dense, largest_empty, weight_layers
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.nn import SparseLinear, SparseMLP
from evosparse.topology.gradient import GradientProbe, largest_gradient_keys
from evosparse.topology.rigl import RigL, rigl_rewiring
from evosparse.topology.schedule import UpdateSchedule


def dense_reference_keys(grad_output, inputs, occupied, k):
    scores = (grad_output.t() @ inputs).abs().flatten().double().numpy()
    scores[occupied] = -np.inf
    return np.sort(np.argsort(-scores, kind="stable")[:k])


@settings(max_examples=30, deadline=None)
@given(
    n_out=st.integers(1, 25),
    n_in=st.integers(1, 25),
    batch=st.integers(1, 9),
    fill=st.floats(0.0, 0.8),
    block_rows=st.integers(1, 7),
    seed=st.integers(0, 2**16),
)
def test_largest_gradient_keys_match_the_dense_reference(n_out, n_in, batch, fill, block_rows, seed):
    rng = np.random.default_rng(seed)
    total = n_out * n_in
    occupied = np.sort(rng.choice(total, int(fill * total), replace=False)).astype(np.int64)
    k = int(rng.integers(0, total - occupied.shape[0] + 1))
    grad_output = torch.from_numpy(rng.standard_normal((batch, n_out)))
    inputs = torch.from_numpy(rng.standard_normal((batch, n_in)))
    # Small row blocks exercise the running top-k merge across blocks.
    got = largest_gradient_keys(grad_output, inputs, occupied, k, block_rows=block_rows)
    np.testing.assert_array_equal(got, dense_reference_keys(grad_output, inputs, occupied, k))
    assert not np.isin(got, occupied).any()


def test_cannot_grow_more_than_the_empty_positions():
    with pytest.raises(ValueError, match="only 1 positions are empty"):
        largest_gradient_keys(torch.ones(2, 2), torch.ones(2, 2), np.array([0, 1, 2]), 2)


def test_probe_keeps_the_latest_training_batch_only():
    torch.manual_seed(0)
    layer = SparseLinear(6, 4, density=0.5, seed=0, dtype=torch.float64)
    probe = GradientProbe()
    probe.attach([layer])
    probe.attach([layer])  # attaching twice must not double-record
    assert len(probe._handles) == 1
    x = torch.randn(3, 6, dtype=torch.float64)
    (layer(x) ** 2).sum().backward()
    assert torch.equal(probe.inputs[layer], x)
    np.testing.assert_allclose(probe.grad_outputs[layer], 2 * layer(x).detach())
    with torch.no_grad():  # evaluation passes are ignored
        layer(torch.zeros(5, 6, dtype=torch.float64))
    assert probe.inputs[layer].shape[0] == 3


def test_rigl_update_on_a_layer_equals_the_dense_algorithm():
    torch.manual_seed(1)
    model = SparseMLP((12, 10, 3), density=0.3, seed=4)
    model.double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    strategy = RigL(schedule=UpdateSchedule(zeta=0.25, every=1, unit="step"))
    strategy.on_train_start(model, optimizer)
    x, y = torch.randn(16, 12, dtype=torch.float64), torch.randint(0, 3, (16,))
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    layer = model.sparse_layers()[0]
    before_keys, before_values = layer.pattern.keys().copy(), layer.values.detach().numpy().copy()
    momentum = optimizer.state[layer.values]["momentum_buffer"].numpy().copy()
    grad_output = strategy.probe.grad_outputs[layer].clone()
    inputs = strategy.probe.inputs[layer].clone()

    assert strategy.on_step_end(model, optimizer, 1)

    n_drop = int(0.25 * before_keys.shape[0])
    dropped = np.argsort(np.abs(before_values), kind="stable")[:n_drop]
    survivors = np.setdiff1d(np.arange(before_keys.shape[0]), dropped)
    grown = dense_reference_keys(grad_output, inputs, before_keys[survivors], n_drop)
    expected_keys = np.sort(np.concatenate([before_keys[survivors], grown]))
    keys = layer.pattern.keys()
    np.testing.assert_array_equal(keys, expected_keys)
    assert layer.nnz == before_keys.shape[0] and np.unique(keys).shape[0] == keys.shape[0]
    values = layer.values.detach().numpy()
    new_momentum = optimizer.state[layer.values]["momentum_buffer"].numpy()
    for key, value, m in zip(before_keys[survivors], before_values[survivors], momentum[survivors]):
        index = np.searchsorted(keys, key)
        assert values[index] == value and new_momentum[index] == m
    new_positions = np.searchsorted(keys, np.setdiff1d(grown, before_keys[survivors]))
    assert np.all(values[new_positions] == 0) and np.all(new_momentum[new_positions] == 0)


def test_rigl_pure_function_keeps_nnz_and_grows_only_empty_positions():
    rng = np.random.default_rng(0)
    keys = np.sort(rng.choice(40, 12, replace=False)).astype(np.int64)
    values = rng.standard_normal(12)
    rewiring = rigl_rewiring(values, keys, torch.randn(5, 8), torch.randn(5, 5), 0.5)
    assert rewiring.keep.shape[0] + rewiring.new_keys.shape[0] == 12
    assert not np.isin(rewiring.new_keys, keys[rewiring.keep]).any()


def test_rigl_needs_gradients_first():
    model = SparseMLP((6, 5, 2), density=0.4, seed=0)
    with pytest.raises(RuntimeError, match="call on_train_start first"):
        RigL(0.3).on_epoch_end(model, None, 1)


def test_rigl_drops_nan_weights_first():
    values = np.array([0.5, np.nan, -0.2, 0.9, np.nan, 0.1])
    keys = np.array([0, 3, 5, 8, 10, 14], dtype=np.int64)
    rewiring = rigl_rewiring(
        values, keys, torch.randn(4, 4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64), 0.34
    )
    np.testing.assert_array_equal(rewiring.keep, [0, 2, 3, 5])  # int(0.34 * 6) = 2 dropped: the two NaNs


def test_rigl_grows_where_the_dense_twins_gradient_is_largest():
    # The reference is plain dense autograd on the dense twin, not the block algorithm under test.
    model = SparseMLP((12, 10, 3), density=0.3, seed=4).double()
    strategy = RigL(schedule=UpdateSchedule(zeta=0.25))
    strategy.on_train_start(model, None)
    generator = torch.Generator().manual_seed(3)
    x, y = (
        torch.randn(16, 12, dtype=torch.float64, generator=generator),
        torch.randint(0, 3, (16,), generator=generator),
    )
    before = [(layer.pattern.keys().copy(), layer.values.detach().numpy().copy()) for layer in model.sparse_layers()]
    # The sparse pass of the comparison is also the training step whose gradients RigL records.
    twin = assert_matches_dense(model, x, loss=lambda out: F.cross_entropy(out, y))
    assert strategy.on_epoch_end(model, None, 1)
    for layer, twin_layer, (keys, values) in zip(model.sparse_layers(), weight_layers(twin), before, strict=True):
        n_drop = int(0.25 * keys.shape[0])
        survivors = np.sort(np.argsort(np.abs(values), kind="stable")[n_drop:])
        grown = largest_empty(twin_layer.weight.grad, keys[survivors], n_drop)
        np.testing.assert_array_equal(layer.pattern.keys(), np.sort(np.concatenate([keys[survivors], grown])))
