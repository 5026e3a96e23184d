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
