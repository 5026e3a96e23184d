"""The output layer's learning-rate rule (optimizer.output_lr_fan_in): only wide readouts get a smaller rate."""

from __future__ import annotations

import pytest

from evosparse.train import TrainConfig
from evosparse.train.build import build_model, build_optimizer, output_lr_scale


def optimizer_for(n_features, n_classes, **settings):
    config = TrainConfig.from_dict({"lr": 0.1, **settings})
    model = build_model(config, n_features, n_classes)
    return config, model, build_optimizer(config, model)


@pytest.mark.parametrize("settings", [{}, {"hidden": (1000, 1000, 1000), "epsilon": 20}, {"model": "dense"}])
def test_networks_of_the_papers_sizes_keep_one_learning_rate(settings):
    config, model, optimizer = optimizer_for(784, 10, **settings)
    assert output_lr_scale(config, model.initial_layer_sizes) == 1.0
    assert len(optimizer.param_groups) == 1 and optimizer.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_wide_readout_gets_lr_times_reference_over_fan_in(name):
    # 40-8000-3, epsilon 20: the readout's Erdos-Renyi density 20 * 8003 / 24000 > 1, so it is dense:
    # 8000 connections per output neuron, lr * 1000 / 8000.
    config, model, optimizer = optimizer_for(40, 3, hidden=(8000,), epsilon=20, optimizer=name)
    readout = model.sparse_layers()[-1]
    assert readout.nnz == 3 * 8000
    assert output_lr_scale(config, model.initial_layer_sizes) == pytest.approx(1000 / 8000)
    others, wide = optimizer.param_groups
    assert others["lr"] == 0.1 and wide["lr"] == pytest.approx(0.1 * 1000 / 8000)
    assert {id(p) for p in wide["params"]} == {id(p) for p in readout.parameters()}
    assert len(others["params"]) + len(wide["params"]) == len(list(model.parameters()))


def test_the_fan_in_counts_stored_connections_not_the_layer_width():
    # 40-8000-3 with epsilon 0.1: density 0.1 * 8003 / 24000, about 267 connections per output neuron.
    config, model, optimizer = optimizer_for(40, 3, hidden=(8000,), epsilon=0.1)
    assert output_lr_scale(config, model.initial_layer_sizes) == 1.0 and len(optimizer.param_groups) == 1


@pytest.mark.parametrize("epsilon", [0.5, 2.0, 9.0, 40.0])
def test_the_rule_reads_the_recipe_the_connections_the_readout_draws(epsilon):
    # The scale is computed from the config and sizes (a resumed run's layers are built empty): it must be
    # what the built readout's own connections per output neuron give.
    config, model, _ = optimizer_for(40, 7, hidden=(3000,), epsilon=epsilon, output_lr_fan_in=50)
    readout = model.sparse_layers()[-1]
    expected = min(1.0, 50 / (readout.nnz / readout.out_features))
    assert output_lr_scale(config, model.initial_layer_sizes) == pytest.approx(expected, rel=1e-12)
    empty = build_model(config, 40, 7, empty=True)
    assert sum(layer.nnz for layer in empty.sparse_layers()) == 0
    assert len(build_optimizer(config, empty).param_groups) == (2 if expected < 1 else 1)


def test_the_rule_can_be_turned_off_or_moved():
    _, _, off = optimizer_for(40, 3, hidden=(8000,), epsilon=20, output_lr_fan_in=None)
    assert len(off.param_groups) == 1
    config, model, _ = optimizer_for(40, 3, hidden=(8000,), epsilon=20, output_lr_fan_in=4000)
    assert output_lr_scale(config, model.initial_layer_sizes) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"output_lr_fan_in must be an integer >= 1 or None, got 0"):
        TrainConfig.from_dict({"output_lr_fan_in": 0})


def test_sgd_is_the_fused_implementation_with_the_default_numbers():
    # build_optimizer asks for torch's fused SGD (one call for all tensors): the same parameters and momentum
    # after a few steps as the default implementation, to float rounding (it fuses the update's products).
    import torch

    config, model, optimizer = optimizer_for(20, 4, hidden=(30, 30), epsilon=4, momentum=0.9, weight_decay=1e-3)
    assert optimizer.param_groups[0]["fused"]
    twin = build_model(config, 20, 4)
    twin.load_state_dict(model.state_dict())
    plain = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    start = [p.detach().clone() for p in model.parameters()]
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        x, y = torch.randn(8, 20, generator=generator), torch.randint(0, 4, (8,), generator=generator)
        for net, opt in ((model, optimizer), (twin, plain)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(
            optimizer.state[a]["momentum_buffer"], plain.state[b]["momentum_buffer"], rtol=1e-6, atol=1e-7
        )
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), start, strict=True))  # they did train
