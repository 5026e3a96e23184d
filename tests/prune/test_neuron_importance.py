"""Neuron importance pruning: shrinking a layer removes exactly those neurons and keeps everything else."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evosparse.nn import SparseMLP
from evosparse.prune.neuron_importance import NeuronImportance, neuron_strength, remove_neurons
from evosparse.prune.schedule import PruningSchedule
from evosparse.topology.schedule import UpdateSchedule


def make_model(activation="relu"):
    model = SparseMLP((9, 12, 7, 3), density=0.5, activation=activation, seed=2)
    return model.double()


def test_strength_is_the_sum_of_absolute_incoming_and_outgoing_weights():
    model = make_model()
    first, second = model.sparse_layers()[:2]
    expected = first.to_dense().abs().sum(dim=1) + second.to_dense().abs().sum(dim=0)
    np.testing.assert_allclose(neuron_strength(first, second), expected.numpy())


def test_removing_neurons_equals_silencing_them_in_the_dense_network():
    torch.manual_seed(0)
    model = make_model()
    x = torch.randn(5, 9, dtype=torch.float64)
    first, second, third = model.sparse_layers()
    keep = np.array([0, 2, 3, 5, 8, 11])
    removed = np.setdiff1d(np.arange(12), keep)
    # Reference: the dense network with the removed neurons' rows, columns and biases zeroed (ReLU(0) = 0).
    w1, w2, w3 = first.to_dense(), second.to_dense(), third.to_dense()
    b1 = first.bias.detach().clone()
    w1[removed], b1[removed], w2[:, removed] = 0, 0, 0
    hidden = F.relu(F.relu(x @ w1.t() + b1) @ w2.t() + second.bias)
    expected = hidden @ w3.t() + third.bias
    nnz_before = first.nnz + second.nnz
    n_removed = remove_neurons(model, 0, keep)
    assert (first.out_features, second.in_features) == (6, 6) and model.layer_sizes[1] == 6
    assert first.nnz + second.nnz == nnz_before - n_removed
    torch.testing.assert_close(model(x), expected)


def test_srelu_parameters_and_optimizer_state_shrink_with_the_layer():
    model = make_model("srelu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    F.cross_entropy(model(torch.randn(4, 9, dtype=torch.float64)), torch.tensor([0, 1, 2, 0])).backward()
    optimizer.step()
    srelu = model.net[1]
    keep = np.array([1, 4, 6, 7])
    t_left = srelu.t_left.detach()[keep].clone()
    momentum = optimizer.state[model.sparse_layers()[0].bias]["momentum_buffer"][keep].clone()
    remove_neurons(model, 0, keep, optimizer)
    assert srelu.num_features == 4 and torch.equal(srelu.t_left.detach(), t_left)
    assert torch.equal(optimizer.state[model.sparse_layers()[0].bias]["momentum_buffer"], momentum)
    params = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert params == {id(p) for p in model.parameters()}  # the optimizer follows every new Parameter
    F.cross_entropy(model(torch.randn(4, 9, dtype=torch.float64)), torch.tensor([0, 1, 2, 0])).backward()
    optimizer.step()


def test_remove_neurons_bad_input():
    model = make_model()
    with pytest.raises(ValueError, match=r"hidden must be in \[0, 1\]"):
        remove_neurons(model, 2, np.array([0]))
    with pytest.raises(ValueError, match="keep must be sorted"):
        remove_neurons(model, 0, np.array([3, 1]))


def test_strategy_removes_the_weakest_fraction_at_its_events():
    model = make_model()
    strategy = NeuronImportance(
        0.2, neuron_fraction=0.25, pruning=PruningSchedule("iterative", start=1, end=2, cycles=2),
        schedule=UpdateSchedule(zeta=0.2), seed=0,
    )  # fmt: skip
    first, second = model.sparse_layers()[:2]
    strength = neuron_strength(first, second)
    strategy.prune_neurons(model, None)
    assert first.out_features == 9  # 12 - int(0.25 * 12)
    survivors = np.sort(np.argsort(strength, kind="stable")[3:])
    assert np.all(np.isin(np.argsort(strength)[:3], np.setdiff1d(np.arange(12), survivors)))
    assert strategy.neurons_removed == 3 + 1  # and 1 of the 7 of the second hidden layer
