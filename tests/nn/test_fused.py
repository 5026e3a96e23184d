"""FusedSGD: the SGD step inside the backward pass equals backward + torch.optim.SGD, to float rounding."""

import pytest
import torch
import torch.nn.functional as F

from evosparse.nn import FusedSGD, SparseMLP

SGD_SETTINGS = [
    {"momentum": 0.9, "weight_decay": 2e-4},  # the SET recipe
    {"momentum": 0.9, "weight_decay": 1e-2, "nesterov": True},
    {"momentum": 0.5, "dampening": 0.3, "maximize": True},
    {"momentum": 0.0, "weight_decay": 1e-3},
]


def train(fused: bool, *, settings, backend, batch, dtype, steps=5):
    torch.manual_seed(0)
    data = [(torch.randn(batch, 30, dtype=dtype), torch.randint(0, 4, (batch,))) for _ in range(steps)]
    model = SparseMLP((30, 40, 40, 4), epsilon=4, seed=3, backend=backend).to(dtype)
    output = model.sparse_layers()[-1]
    others = [p for p in model.parameters() if all(p is not q for q in output.parameters())]
    # Two groups (the output layer's own rate, as the wide-layer rule makes), and a schedule: read at each step.
    optimizer = torch.optim.SGD(
        [{"params": others}, {"params": list(output.parameters()), "lr": 0.02}], lr=0.1, **settings
    )
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    fusion = FusedSGD(model, optimizer) if fused else None
    for x, y in data:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        if fusion is not None:
            fusion.backward(loss)
            assert all(layer.values.grad is None for layer in model.sparse_layers())  # no gradient array
        else:
            loss.backward()
        optimizer.step()
        schedule.step()
    return model, optimizer


@pytest.mark.parametrize("settings", SGD_SETTINGS, ids=["set-recipe", "nesterov", "dampening-maximize", "no-momentum"])
@pytest.mark.parametrize(("backend", "batch"), [("numba", 2), ("numba", 9), ("torch", 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_fused_equals_unfused(settings, backend, batch, dtype):
    fused_model, fused_opt = train(True, settings=settings, backend=backend, batch=batch, dtype=dtype)
    plain_model, plain_opt = train(False, settings=settings, backend=backend, batch=batch, dtype=dtype)
    tolerance = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-13}
    for (name, a), (_, b) in zip(fused_model.named_parameters(), plain_model.named_parameters(), strict=True):
        torch.testing.assert_close(a, b, **tolerance, msg=name)
        if settings["momentum"]:
            torch.testing.assert_close(
                fused_opt.state[a]["momentum_buffer"], plain_opt.state[b]["momentum_buffer"], **tolerance
            )
    # The fused run really trained (the comparison would pass trivially if neither moved).
    start, _ = train(False, settings=settings, backend=backend, batch=batch, dtype=dtype, steps=0)
    moved = fused_model.sparse_layers()[0].values - start.sparse_layers()[0].values
    assert moved.abs().max() > 1e-4


def test_unarmed_backward_computes_gradients_and_leaves_the_weights():
    model = SparseMLP((10, 20, 3), epsilon=3, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    FusedSGD(model, optimizer)
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(torch.randn(2, 10)).square().sum()
    layer = model.sparse_layers()[0]
    (gradient,) = torch.autograd.grad(loss, [layer.values])  # e.g. a saliency: not a training step
    assert gradient.abs().sum() > 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not optimizer.state


def test_fusion_can_be_removed():
    model = SparseMLP((10, 20, 3), epsilon=3, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    fusion = FusedSGD(model, optimizer)
    fusion.remove()
    fusion.backward(model(torch.randn(2, 10)).sum())
    assert all(layer.values.grad is not None for layer in model.sparse_layers())


def test_errors_name_the_problem():
    model = SparseMLP((10, 20, 3), epsilon=3, seed=0)
    with pytest.raises(TypeError, match="torch.optim.SGD"):
        FusedSGD(model, torch.optim.Adam(model.parameters()))
    with pytest.raises(ValueError, match="no sparse layer"):
        FusedSGD(model, torch.optim.SGD([model.sparse_layers()[0].bias], lr=0.1))
