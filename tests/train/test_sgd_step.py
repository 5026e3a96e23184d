"""The direct fused SGD step: the same bits as ``optimizer.step()``, and the full call wherever anything differs."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from evosparse.train import sgd_step


def _model_and_data(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    return model, torch.randn(16, 7), torch.randint(0, 3, (16,))


def _optimizer(model: torch.nn.Module, **options) -> torch.optim.SGD:
    first, second = list(model[0].parameters()), list(model[2].parameters())
    settings = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3, "fused": True, **options}
    return torch.optim.SGD([{"params": first}, {"params": second, "lr": 0.03}], **settings)


def _train(steps: int, direct: bool, **options) -> tuple[list[torch.Tensor], list[bool]]:
    model, x, y = _model_and_data()
    optimizer = _optimizer(model, **options)
    ran_directly = []
    for _ in range(steps):
        if direct:
            sgd_step.zero_grad(optimizer)
        else:
            optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        if direct:
            ran_directly.append(sgd_step.step(optimizer))
        else:
            optimizer.step()
    buffers = [optimizer.state[p]["momentum_buffer"] for p in model.parameters() if p in optimizer.state]
    return [p.detach().clone() for p in model.parameters()] + buffers, ran_directly


@pytest.mark.parametrize(
    "options",
    [{}, {"nesterov": True}, {"momentum": 0.0}, {"maximize": True}, {"dampening": 0.1}],
    ids=["momentum", "nesterov", "no-momentum", "maximize", "dampening"],
)
def test_direct_step_is_bit_identical_to_optimizer_step(options):
    expected, _ = _train(6, direct=False, **options)
    got, ran_directly = _train(6, direct=True, **options)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    # with momentum the first step makes the buffers through optimizer.step(); without, every step is direct
    assert ran_directly == ([True] * 6 if options.get("momentum") == 0.0 else [False] + [True] * 5)


def test_zero_grad_sets_every_gradient_to_none():
    model, x, y = _model_and_data()
    optimizer = _optimizer(model)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    sgd_step.zero_grad(optimizer)
    assert all(p.grad is None for p in model.parameters())
    calls = []
    optimizer.zero_grad = lambda set_to_none=True: calls.append(set_to_none)  # replaced: it must be the one run
    sgd_step.zero_grad(optimizer)
    assert calls == [True]


def _stepped_once(optimizer: torch.optim.Optimizer, model: torch.nn.Module, x, y) -> None:
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()  # the buffers exist from here on
    sgd_step.zero_grad(optimizer)
    torch.nn.functional.cross_entropy(model(x), y).backward()


def test_hooks_unfused_groups_and_missing_gradients_take_the_full_call():
    model, x, y = _model_and_data()
    optimizer = _optimizer(model)
    _stepped_once(optimizer, model, x, y)
    calls = []
    handle = optimizer.register_step_pre_hook(lambda *args: calls.append("pre"))
    assert sgd_step.step(optimizer) is False and calls == ["pre"]
    handle.remove()
    handle = register_optimizer_step_post_hook(lambda *args: calls.append("global"))
    assert sgd_step.step(optimizer) is False and calls == ["pre", "global"]
    handle.remove()
    model[2].bias.grad = None  # a parameter without a gradient: the optimizer skips it, so must we
    assert sgd_step.step(optimizer) is False
    assert sgd_step.step(_unfused(model, x, y)) is False
    adam = torch.optim.Adam(model.parameters())
    torch.nn.functional.cross_entropy(model(x), y).backward()
    assert sgd_step.step(adam) is False and sgd_step.step(adam) is False  # Adam steps, through its own call
    assert adam.state[model[0].weight]["step"] == 2


def _unfused(model, x, y) -> torch.optim.SGD:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _stepped_once(optimizer, model, x, y)
    return optimizer


def test_a_replaced_step_runs_and_a_scheduler_sees_its_steps():
    model, x, y = _model_and_data()
    optimizer = _optimizer(model)
    _stepped_once(optimizer, model, x, y)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    optimizer._opt_called = False
    lr_before = optimizer.param_groups[0]["lr"]
    assert sgd_step.step(optimizer) is True
    assert optimizer._opt_called is True  # so the scheduler does not warn that step() was skipped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(lr_before * 0.5)
    replaced = []
    optimizer.step = lambda *args, **kwargs: replaced.append(1)
    assert sgd_step.step(optimizer) is False and replaced == [1]


def test_the_scheduled_learning_rate_is_the_one_applied():
    # the direct step reads each group's lr at every call: a changed lr moves the weights as optimizer.step() does
    runs = []
    for direct in (False, True):
        model, x, y = _model_and_data()
        optimizer = _optimizer(model)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.3)
        for _ in range(5):
            sgd_step.zero_grad(optimizer)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            sgd_step.step(optimizer) if direct else optimizer.step()
            scheduler.step()
        runs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*runs):
        assert torch.equal(a, b)
