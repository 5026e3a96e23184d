"""CrossEntropyPass: the gradients of F.cross_entropy(model(x), y) without autograd, the same bits as autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.nn import DenseMLP, FusedSGD, SparseMLP
from evosparse.nn.backprop import CrossEntropyPass


def autograd_step(model, x, y):
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return logits.detach(), loss.detach()


def manual_step(model, x, y):
    manual = CrossEntropyPass.run(model, x, y)
    assert manual is not None, "the model should be covered"
    logits, loss = manual.logits, manual.loss
    manual.backward()
    return logits, loss


def twins(sizes, dropout, dtype, seed=1):
    return [SparseMLP(sizes, epsilon=5, dropout=dropout, seed=seed).to(dtype) for _ in range(2)]


def assert_same(a, b):
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            assert torch.equal(p.grad, q.grad), f"grad of {name}"
    assert torch.equal(a.generator.get_state(), b.generator.get_state())  # the same dropout keys drawn


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_training_steps_are_bit_identical_to_autograd(dtype, dropout):
    by_autograd, by_hand = twins((30, 50, 40, 7), dropout, dtype)
    optimizers = [
        torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=2e-4) for m in (by_autograd, by_hand)
    ]
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        x = torch.randn(40, 30, dtype=dtype, generator=generator)
        y = torch.randint(0, 7, (40,), generator=generator)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        logits_a, loss_a = autograd_step(by_autograd, x, y)
        logits_b, loss_b = manual_step(by_hand, x, y)
        assert torch.equal(logits_a, logits_b) and torch.equal(loss_a, loss_b)
        assert logits_b.shape == (40, 7) and not logits_b.requires_grad
        assert_same(by_autograd, by_hand)
        for optimizer in optimizers:
            optimizer.step()
    assert_same(by_autograd, by_hand)


def test_gradients_accumulate_into_existing_grad_as_autograd_does():
    by_autograd, by_hand = twins((12, 20, 16, 3), 0.3, torch.float32)
    x, y = torch.randn(9, 12), torch.randint(0, 3, (9,))
    for _ in range(2):  # no zero_grad between: the second pass adds to .grad
        autograd_step(by_autograd, x, y)
        manual_step(by_hand, x, y)
    assert_same(by_autograd, by_hand)


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(2, 40), min_size=2, max_size=5),
    batch=st.integers(5, 70),
    dropout=st.sampled_from([0.0, 0.1, 0.5]),
    seed=st.integers(0, 2**16),
)
def test_any_plain_relu_sparse_mlp_matches_autograd(sizes, batch, dropout, seed):
    by_autograd, by_hand = twins(sizes, dropout, torch.float32, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, sizes[0], generator=generator)
    y = torch.randint(0, sizes[-1], (batch,), generator=generator)
    a, b = autograd_step(by_autograd, x, y), manual_step(by_hand, x, y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert_same(by_autograd, by_hand)


def test_flattens_image_batches_as_the_model_does():
    by_autograd, by_hand = twins((16, 20, 4), 0.0, torch.float32)
    x, y = torch.randn(6, 1, 4, 4), torch.randint(0, 4, (6,))
    assert torch.equal(autograd_step(by_autograd, x, y)[1], manual_step(by_hand, x, y)[1])
    assert_same(by_autograd, by_hand)


@given(seed=st.integers(0, 2**16), ties=st.booleans(), nan=st.booleans())
@settings(max_examples=30, deadline=None)
def test_hits_count_as_torch_argmax_does(seed, ties, nan):
    """hits(y) equals torch's count: the first of equal maxima wins, a NaN logit counts as the largest."""
    generator = torch.Generator().manual_seed(seed)
    model = SparseMLP((12, 20, 5), epsilon=3, seed=seed)
    x, y = torch.randn(9, 12, generator=generator), torch.randint(0, 5, (9,), generator=generator)
    manual = CrossEntropyPass.run(model, x, y)
    if ties:  # whole rows of equal logits, and pairs of equal maxima
        manual.logits[:3] = 1.0
        manual.logits[3, 1:3] = manual.logits[3].abs().max() + 1
    if nan:
        manual.logits[5, 2] = float("nan")
    assert manual.hits(y) == int((manual.logits.argmax(dim=1) == y).sum())


def uncovered_cases():
    x = torch.randn(8, 12)

    def plain():
        return SparseMLP((12, 20, 3), epsilon=3, dropout=0.2, seed=0)

    def with_layer_hook():
        model = plain()
        model.net[0].register_forward_hook(lambda *args: None)
        return model, x

    def with_relu_hook():
        model = plain()
        model.net[1].register_forward_pre_hook(lambda *args: None)
        return model, x

    def with_tensor_hook():
        model = plain()
        model.net[0].values.register_hook(lambda grad: grad)
        return model, x

    def frozen():
        model = plain()
        model.net[-1].bias.requires_grad_(False)
        return model, x

    def fused():
        model = plain()
        FusedSGD(model, torch.optim.SGD(model.parameters(), lr=0.1))
        return model, x

    def torch_backend():
        return SparseMLP((12, 20, 3), epsilon=3, backend="torch", seed=0), x

    return {
        "dense model": lambda: (DenseMLP((12, 20, 3), seed=0), x),
        "srelu": lambda: (SparseMLP((12, 20, 3), activation="srelu", epsilon=3, seed=0), x),
        "tiny batch": lambda: (plain(), torch.randn(4, 12)),
        "input needs grad": lambda: (plain(), x.clone().requires_grad_(True)),
        "float16 input": lambda: (plain(), x.half()),
        "layer hook": with_layer_hook,
        "relu hook": with_relu_hook,
        "tensor hook": with_tensor_hook,
        "frozen bias": frozen,
        "FusedSGD": fused,
        "torch backend": torch_backend,
    }


@pytest.mark.parametrize("case", list(uncovered_cases()))
def test_what_it_does_not_cover_is_left_to_autograd_untouched(case):
    model, x = uncovered_cases()[case]()
    before = model.generator.get_state()
    assert CrossEntropyPass.run(model, x, torch.zeros(x.shape[0], dtype=torch.long)) is None
    assert torch.equal(model.generator.get_state(), before)  # no dropout key drawn


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
def test_not_covered_without_grad_mode_with_anomaly_detection_or_a_global_hook():
    model, x, y = SparseMLP((12, 20, 3), epsilon=3, seed=0), torch.randn(8, 12), torch.zeros(8, dtype=torch.long)
    with torch.no_grad():
        assert CrossEntropyPass.run(model, x, y) is None
    with torch.autograd.detect_anomaly():
        assert CrossEntropyPass.run(model, x, y) is None
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *args: None)
    try:
        assert CrossEntropyPass.run(model, x, y) is None
    finally:
        handle.remove()
    assert CrossEntropyPass.run(model, x, y) is not None


def test_backward_runs_once_per_forward_pass():
    model = SparseMLP((12, 20, 3), epsilon=3, seed=0)
    manual = CrossEntropyPass.run(model, torch.randn(8, 12), torch.zeros(8, dtype=torch.long))
    manual.backward()
    with pytest.raises(RuntimeError, match="once per forward pass"):
        manual.backward()


def test_wrong_input_width_gets_the_layers_error():
    model = SparseMLP((12, 20, 3), epsilon=3, seed=0)
    with pytest.raises(ValueError, match="input has 11 features, the layer expects 12"):
        CrossEntropyPass.run(model, torch.randn(8, 11), torch.zeros(8, dtype=torch.long))
