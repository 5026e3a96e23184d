"""Drop-and-grow rewiring: SET and RigL are two presets of one strategy, and the criteria are pluggable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evosparse.nn import SparseMLP
from evosparse.topology import SET, DropAndGrow, GrowCriterion, RigL, UpdateSchedule
from evosparse.topology.criteria import DROP_CRITERIA, GROW_CRITERIA


def train_and_rewire(strategy, steps=3, seed=0):
    torch.manual_seed(seed)
    model = SparseMLP((12, 10, 3), density=0.3, seed=seed).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    strategy.on_train_start(model, optimizer)
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        x = torch.randn(16, 12, dtype=torch.float64, generator=generator)
        y = torch.randint(0, 3, (16,), generator=generator)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        strategy.on_step_end(model, optimizer, step)
    return model


def same_model(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize(
    ("preset", "criteria"),
    [
        (lambda schedule: SET(schedule=schedule, seed=5), {"drop": "set", "grow": "random", "new_weights": "init"}),
        (
            lambda schedule: SET(rule="magnitude", new_weights="zero", schedule=schedule, seed=5),
            {"drop": "magnitude", "grow": "random", "new_weights": "zero"},
        ),
        (lambda schedule: RigL(schedule=schedule), {"drop": "magnitude", "grow": "gradient", "new_weights": "zero"}),
    ],
)
def test_set_and_rigl_are_presets_of_drop_and_grow(preset, criteria):
    schedule = UpdateSchedule(zeta=0.3, unit="step")
    expected = train_and_rewire(DropAndGrow(schedule=schedule, seed=5, **criteria))
    got = train_and_rewire(preset(schedule))
    assert same_model(got, expected)
    assert not same_model(got, train_and_rewire(DropAndGrow(schedule=UpdateSchedule(zeta=0.0, unit="step"))))


def test_criteria_are_pluggable_functions():
    calls = []

    def drop_the_first(values, fraction):  # the fixed signature of a drop criterion
        remove = np.zeros(values.shape[0], dtype=bool)
        remove[: int(fraction * values.shape[0])] = True
        return remove

    def grow_at_the_end(n_rows, n_cols, occupied, count, *, rng, gradients):
        calls.append(gradients is not None)
        free = np.setdiff1d(np.arange(n_rows * n_cols), occupied)
        return free[-count:] if count else free[:0]

    strategy = DropAndGrow(drop=drop_the_first, grow=GrowCriterion(grow_at_the_end, needs_gradients=True), zeta=0.5)
    model = train_and_rewire(strategy, steps=1)
    strategy.on_epoch_end(model, None, 1)
    layer = model.sparse_layers()[0]
    total = layer.in_features * layer.out_features
    assert calls == [True, True]  # one call per sparse layer, with the gradients it asked for
    assert layer.pattern.keys()[-1] == total - 1  # grown at the end of the matrix
    assert "drop_the_first" in repr(strategy) and "drop='drop_the_first'" in repr(strategy)


def test_unknown_criteria_name_the_known_ones():
    with pytest.raises(ValueError, match="drop must be one of set, magnitude or a function, got 'largest'"):
        DropAndGrow(drop="largest")
    with pytest.raises(ValueError, match="grow must be one of random, gradient or a GrowCriterion, got 'momentum'"):
        DropAndGrow(grow="momentum")
    assert set(DROP_CRITERIA) == {"set", "magnitude"} and set(GROW_CRITERIA) == {"random", "gradient"}
