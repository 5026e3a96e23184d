import numpy as np
import pytest
import torch

from evosparse.nn import AllReLU, SReLU, make_activation
from evosparse.nn.dropout import SeededDropout


def test_srelu_piecewise_definition():
    act = SReLU(3)
    with torch.no_grad():
        act.t_left.copy_(torch.tensor([-1.0, 0.0, 0.5]))
        act.a_left.copy_(torch.tensor([0.1, 0.2, 0.3]))
        act.t_width.copy_(torch.tensor([2.0, -1.0, 1.0]))  # t_right = t_left + |width| = [1, 1, 1.5]
        act.a_right.copy_(torch.tensor([2.0, 0.5, 1.0]))
    x = torch.tensor([[-3.0, -2.0, 0.0], [0.5, 0.5, 1.0], [3.0, 3.0, 4.0]])
    expected = torch.tensor(
        [
            [-1 + 0.1 * (-3 + 1), 0 + 0.2 * (-2 - 0), 0.5 + 0.3 * (0 - 0.5)],  # left branch
            [0.5, 0.5, 1.0],  # identity between the thresholds
            [1 + 2.0 * (3 - 1), 1 + 0.5 * (3 - 1), 1.5 + 1.0 * (4 - 1.5)],  # right branch
        ]
    )
    torch.testing.assert_close(act(x), expected)


def test_srelu_gradcheck_in_float64():
    act = SReLU(4, generator=torch.Generator().manual_seed(0)).double()
    x = (torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3).requires_grad_()
    names = ("t_left", "a_left", "t_width", "a_right")
    params = tuple(getattr(act, n).detach().clone().requires_grad_() for n in names)

    def f(x, *p):
        return torch.func.functional_call(act, dict(zip(names, p)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))


def test_srelu_init_is_seeded():
    a = SReLU(10, generator=torch.Generator().manual_seed(1))
    b = SReLU(10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.a_left, b.a_left) and torch.equal(a.t_width, b.t_width)
    assert torch.all((a.t_width >= 0) & (a.t_width <= 5)) and torch.all(a.a_right == 1)


def test_allrelu_alternates_the_negative_slope():
    x = torch.tensor([-2.0, 0.0, 3.0])
    torch.testing.assert_close(AllReLU(1, alpha=0.6)(x), torch.tensor([-1.2, 0.0, 3.0]))
    torch.testing.assert_close(AllReLU(2, alpha=0.6)(x), torch.tensor([1.2, 0.0, 3.0]))
    with pytest.raises(ValueError, match="layer_index must be >= 1"):
        AllReLU(0)


def test_make_activation_rejects_unknown_names():
    with pytest.raises(ValueError, match="activation must be one of"):
        make_activation("gelu2", 3, 1)


def test_seeded_dropout_is_reproducible_and_inverted():
    x = torch.ones(1000, 50)
    a = SeededDropout(0.3, torch.Generator().manual_seed(0))(x)
    b = SeededDropout(0.3, torch.Generator().manual_seed(0))(x)
    assert torch.equal(a, b)
    assert abs(float((a == 0).float().mean()) - 0.3) < 0.01
    assert abs(float(a.mean()) - 1.0) < 0.02
    layer = SeededDropout(0.3, torch.Generator())
    layer.eval()
    assert torch.equal(layer(x), x)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        SeededDropout(1.0, torch.Generator())


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), -0.5])
def test_allrelu_alpha_must_be_finite_and_non_negative(alpha):
    with pytest.raises(ValueError, match=rf"^alpha must be a finite number >= 0, got {alpha!r}$"):
        AllReLU(1, alpha)


def test_allrelu_layer_index_is_a_positive_integer():
    with pytest.raises(ValueError, match=r"^layer_index must be >= 1 \(an integer\), got True$"):
        AllReLU(True)


def test_dropout_masks_are_independent_across_rows_columns_and_keys():
    # The hashed masks, element by element, behave as independent Bernoulli draws: the keep rate, and the
    # correlation of each element with its neighbour in the batch, in the features and under the next key,
    # are within 4 standard errors of a true Bernoulli mask's (deterministic: fixed generator).
    from evosparse.nn.dropout import _dropout_apply

    p, generator = 0.3, torch.Generator().manual_seed(7)
    x = np.ones((256, 512), dtype=np.float32)
    masks = []
    for _ in range(2):
        key = int(torch.randint(0, 2**63 - 1, (1,), generator=generator))
        out = np.empty_like(x)
        _dropout_apply(x, out, key, p, 1.0 / (1.0 - p), False, 0)
        masks.append((out != 0).astype(np.float64))
    m, next_key = masks
    n = m.size
    assert abs(m.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)
    for a, b in ((m[1:], m[:-1]), (m[:, 1:], m[:, :-1]), (m, next_key)):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 4 / np.sqrt(a.size)
    # The same mask in either memory layout, and a shard at row_offset draws the global batch's rows.
    feature_major = np.empty((512, 256), dtype=np.float32).T
    _dropout_apply(np.asfortranarray(x), feature_major, key, p, 1.0 / (1.0 - p), True, 0)
    assert np.array_equal(feature_major != 0, next_key.astype(bool))
    shard = np.empty((56, 512), dtype=np.float32)
    _dropout_apply(x[200:], shard, key, p, 1.0 / (1.0 - p), False, 200)
    assert np.array_equal(shard != 0, next_key[200:].astype(bool))


@pytest.mark.parametrize("p", [0.0, 0.25])
@pytest.mark.parametrize("feature_major", [False, True])
def test_relu_dropout_in_place_equals_relu_then_seeded_dropout(p, feature_major):
    # One compiled pass (the fused hidden block's forward) against torch.relu then the module, special values
    # included: NaN must survive ReLU (the divergence guard looks for it), inf too.
    from evosparse.nn.dropout import relu_dropout_

    x = torch.randn(37, 53)
    x[0, :4] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0])
    out = x.t().contiguous().t() if feature_major else x.clone()
    key = 987654321987654321
    relu_dropout_(out, key if p else None, p)
    module = SeededDropout(p, torch.Generator())
    module.draw_key = lambda: key
    expected = module(torch.relu(x)) if p else torch.relu(x)
    torch.testing.assert_close(out, expected, equal_nan=True, rtol=0, atol=0)
    assert torch.isnan(out[0, 0]) or (p and out[0, 0] == 0)
