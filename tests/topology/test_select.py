"""The shared selector: keep the strongest, one global ranking, prune a layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evosparse.nn import SparseLinear
from evosparse.topology.select import global_budget, keep_strongest, prune_layer


def test_keep_strongest_is_sorted_and_deterministic_on_ties():
    scores = np.array([0.5, 0.1, 0.5, 0.9, 0.5])
    np.testing.assert_array_equal(keep_strongest(scores, 3), [0, 2, 3])
    np.testing.assert_array_equal(keep_strongest(scores, 10), np.arange(5))


def test_prune_layer_keeps_the_best_connections_and_their_optimizer_state():
    layer = SparseLinear(10, 8, density=0.5, seed=0)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.01)
    layer(torch.randn(4, 10)).sum().backward()
    optimizer.step()
    keys, values = layer.pattern.keys().copy(), layer.values.detach().clone()
    moments = optimizer.state[layer.values]["exp_avg"].clone()
    scores = np.random.default_rng(0).random(layer.nnz)
    removed = prune_layer(layer, scores, 15, optimizer)
    kept = np.sort(np.argsort(-scores)[:15])
    assert removed == keys.shape[0] - 15 and layer.nnz == 15
    np.testing.assert_array_equal(layer.pattern.keys(), keys[kept])
    assert torch.equal(layer.values.detach(), values[kept])
    assert torch.equal(optimizer.state[layer.values]["exp_avg"], moments[kept])
    assert optimizer.param_groups[0]["params"][0] is layer.values  # the optimizer follows the new Parameter
    layer(torch.randn(4, 10)).sum().backward()  # and training goes on
    optimizer.step()


def test_prune_layer_bad_input():
    layer = SparseLinear(4, 4, density=0.5, seed=0)
    with pytest.raises(ValueError, match="scores must have shape"):
        prune_layer(layer, np.ones(3), 2)
    with pytest.raises(ValueError, match="keep must be >= 1"):
        prune_layer(layer, np.ones(layer.nnz), 0)


def test_global_budget_ranks_all_layers_together():
    scores = [torch.tensor([0.9, 0.1, 0.8]), torch.tensor([0.2, 0.7])]
    assert global_budget(scores, 3) == [2, 1]
    assert global_budget([torch.tensor([1.0]), torch.tensor([0.0])], 1) == [1, 1]  # never an empty layer
