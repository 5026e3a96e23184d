"""Dense-to-sparse strategies: budgets met on schedule, the right weights kept, rewinding, L1, OBD, SNIP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evosparse.nn import DenseMLP, SparseLinear
from evosparse.prune import Pruning, obd_saliency
from evosparse.prune.saliency import weight_layers
from evosparse.prune.schedule import PruningSchedule
from evosparse.prune.snip import SNIP

SIZES = (12, 10, 8, 3)
BUDGET = [30, 24, 12]


def setup(seed=0):
    model = DenseMLP(SIZES, seed=seed).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(40, SIZES[0], generator=generator, dtype=torch.float64)
    y = torch.randint(0, SIZES[-1], (40,), generator=generator)
    return model, optimizer, x, y


def train_step(model, optimizer, x, y):
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()


def nnz(model):
    return [layer.nnz if isinstance(layer, SparseLinear) else layer.weight.numel() for layer in weight_layers(model)]


def test_one_shot_magnitude_keeps_the_largest_weights_and_converts():
    model, optimizer, x, y = setup()
    strategy = Pruning(BUDGET, schedule=PruningSchedule("one_shot", start=2))
    strategy.on_train_start(model, optimizer)
    train_step(model, optimizer, x, y)
    assert not strategy.on_epoch_end(model, optimizer, 1) and nnz(model) == [120, 80, 24]
    dense_weights = [layer.weight.detach().clone() for layer in weight_layers(model)]
    before = model(x)
    assert strategy.on_epoch_end(model, optimizer, 2)
    layers = weight_layers(model)
    assert all(isinstance(layer, SparseLinear) for layer in layers) and nnz(model) == BUDGET
    for layer, weight, keep in zip(layers, dense_weights, BUDGET):
        threshold = weight.abs().flatten().sort(descending=True).values[keep - 1]
        assert torch.all(layer.values.detach().abs() >= threshold)
        assert torch.equal(layer.to_dense()[layer.to_dense() != 0], weight[layer.to_dense() != 0])
    # The pruned network is the masked dense one.
    masked = DenseMLP(SIZES, seed=0).double()
    with torch.no_grad():
        for dense_layer, layer in zip(weight_layers(masked), layers):
            dense_layer.weight.copy_(layer.to_dense())
            dense_layer.bias.copy_(layer.bias)
    torch.testing.assert_close(model(x), masked(x))
    assert not torch.allclose(model(x), before)
    train_step(model, optimizer, x, y)  # training continues, truly sparse
    assert not strategy.on_epoch_end(model, optimizer, 3)


def test_gradual_pruning_follows_the_cubic_schedule_exactly():
    model, optimizer, x, y = setup()
    schedule = PruningSchedule("cubic", start=1, end=9, every=2, unit="step")
    strategy = Pruning(BUDGET, schedule=schedule)
    strategy.on_train_start(model, optimizer)
    totals = [120, 80, 24]
    for step in range(1, 12):
        train_step(model, optimizer, x, y)
        strategy.on_step_end(model, optimizer, step)
        if schedule.is_event(step):
            expected = [
                min(total, max(final, round(schedule.density(step, final / total) * total)))
                for total, final in zip(totals, BUDGET)
            ]
            assert nnz(model) == expected, step
            for layer in weight_layers(model):
                keys = layer.pattern.keys()
                assert np.all(np.diff(keys) > 0)  # no duplicates
    assert nnz(model) == BUDGET


def test_iterative_pruning_with_rewinding_to_initialisation():
    model, optimizer, x, y = setup()
    initial = [layer.weight.detach().clone() for layer in weight_layers(model)]
    strategy = Pruning(BUDGET, schedule=PruningSchedule("iterative", start=1, end=3, cycles=3), rewind_epoch=0)
    strategy.on_train_start(model, optimizer)
    for epoch in range(1, 5):
        train_step(model, optimizer, x, y)
        strategy.on_epoch_end(model, optimizer, epoch)
        if epoch <= 3:
            assert len(optimizer.state) == 0  # optimizer state restarts after a rewind
            for layer, weight in zip(weight_layers(model), initial):
                rows = torch.from_numpy(layer.pattern.rows).long()
                cols = torch.from_numpy(layer.pattern.cols).long()
                assert torch.equal(layer.values.detach(), weight[rows, cols])
    assert nnz(model) == BUDGET and strategy.events == 3


def test_global_scope_meets_the_total_budget():
    model, optimizer, x, y = setup()
    strategy = Pruning(BUDGET, scope="global")
    strategy.on_train_start(model, optimizer)
    train_step(model, optimizer, x, y)
    scores = torch.cat([layer.weight.detach().abs().flatten() for layer in weight_layers(model)])
    threshold = scores.sort(descending=True).values[sum(BUDGET) - 1]
    strategy.on_epoch_end(model, optimizer, 1)
    assert sum(nnz(model)) == sum(BUDGET)
    assert all(torch.all(layer.values.detach().abs() >= threshold) for layer in weight_layers(model))


def test_l1_proximal_step_shrinks_towards_exact_zeros_until_pruning():
    model, optimizer, x, y = setup()
    strength = 0.5
    strategy = Pruning(BUDGET, l1=strength, schedule=PruningSchedule("one_shot", start=1, unit="step"))
    strategy.on_train_start(model, optimizer)
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    stepped = [layer.weight.detach().clone() for layer in weight_layers(model)]
    strategy.on_step_end(model, optimizer, 1)  # proximal step, then the one-shot prune
    for layer, w in zip(weight_layers(model), stepped):
        shrunk = torch.sign(w) * torch.clamp(w.abs() - 0.05 * strength, min=0)
        assert torch.equal(layer.to_dense()[layer.to_dense() != 0], shrunk[layer.to_dense() != 0])
    assert any(bool((w.abs() <= 0.05 * strength).any()) for w in stepped)  # some weights hit exact zero
    values = [layer.values.detach().clone() for layer in weight_layers(model)]
    strategy.on_step_end(model, optimizer, 2)  # after the last event: no more L1
    assert all(torch.equal(v, layer.values.detach()) for v, layer in zip(values, weight_layers(model)))


def test_obd_pruning_removes_the_lowest_saliencies():
    model, optimizer, x, y = setup()
    train_step(model, optimizer, x, y)
    saliency = obd_saliency(model, x, y)
    strategy = Pruning(BUDGET, criterion="obd", data=(x, y))
    strategy.on_train_start(model, optimizer)
    strategy.on_epoch_end(model, optimizer, 1)
    for layer, s, keep in zip(weight_layers(model), saliency, BUDGET):
        kept = layer.to_dense() != 0
        assert int(kept.sum()) == keep
        assert s[kept].min() >= s[~kept].max()


def test_snip_prunes_at_start_by_sensitivity_once():
    model, optimizer, x, y = setup()
    from evosparse.prune.saliency import snip_scores

    scores = snip_scores(model, x, y)
    strategy = SNIP(BUDGET, (x, y))
    strategy.on_train_start(model, optimizer)
    assert nnz(model) == BUDGET
    for layer, s in zip(weight_layers(model), scores):
        kept = layer.to_dense() != 0
        assert s[kept].min() >= s[~kept].max()
    strategy.on_train_start(model, optimizer)  # a resumed run does not prune again
    assert nnz(model) == BUDGET


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(criterion="taylor"), "criterion must be one of"),
        (dict(scope="net"), "scope must be one of"),
        (dict(l1=-1.0), "l1 must be >= 0"),
        (dict(rewind_epoch=-1), "rewind_epoch must be None or >= 0"),
        (dict(criterion="obd"), "needs data"),
        (dict(hessian="full"), "hessian must be one of"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Pruning(BUDGET, **kwargs)


def test_budget_must_match_the_layers():
    model, optimizer, _, _ = setup()
    with pytest.raises(ValueError, match="final_nnz has 2 budgets for 3 layers"):
        Pruning([5, 5]).on_train_start(model, optimizer)


def test_a_custom_criterion_ranks_the_weights():
    model, optimizer, x, y = setup()
    # Score = the output-neuron index: layer-wise pruning keeps the last rows of every layer.
    rows_score = [torch.arange(layer.out_features, dtype=torch.float64)[:, None].expand_as(layer.weight).clone()
                  for layer in weight_layers(model)]  # fmt: skip
    strategy = Pruning(BUDGET, criterion=lambda _: rows_score)
    strategy.on_train_start(model, optimizer)
    strategy.on_epoch_end(model, optimizer, 1)
    first = weight_layers(model)[0]
    assert set(first.pattern.rows.tolist()) == {7, 8, 9}  # 30 of 12 inputs x 10 rows: rows 9, 8 and 7 (6 of 12)
