"""``sparse_linear`` (both backends) against a dense torch reference, through one shared helper.

``helper_test_op`` (after tinygrad's): seeded inputs, our op and ``x @ W_dense.T + b`` in float64 on
copies of the same leaves, the same random upstream gradient into both, then outputs and every
gradient compared with explicit tolerances: dX, db, and dW at the stored positions == the dense
gradient gathered at those positions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evosparse.sparse import kernels
from evosparse.sparse.functional import sparse_linear
from evosparse.sparse.pattern import SparsePattern

BACKENDS = ("numba", "torch")
DTYPES = (torch.float32, torch.float64)
TOLERANCE = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.float64: {"rtol": 1e-12, "atol": 1e-12}}


@pytest.fixture(scope="module", autouse=True)
def compiled():
    kernels.warm_up()


def random_pattern(n_out: int, n_in: int, density: float, seed: int = 0) -> SparsePattern:
    mask = np.random.default_rng(seed).random((n_out, n_in)) < density
    return pattern_from_mask(mask)


def pattern_from_mask(mask: np.ndarray) -> SparsePattern:
    rows, cols = np.nonzero(mask)
    return SparsePattern.from_coo(rows, cols, mask.shape[0], mask.shape[1])


def helper_test_op(
    pattern: SparsePattern,
    lead_shape: tuple[int, ...],
    *,
    dtype: torch.dtype,
    backend: str,
    bias: bool = True,
    seed: int = 0,
) -> None:
    """Compare ``sparse_linear`` with the dense product on the same inputs: output, dX, dW, db."""
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    x64, values64 = draw(*lead_shape, pattern.n_cols), draw(pattern.nnz)
    bias64 = draw(pattern.n_rows) if bias else None
    upstream64 = draw(*lead_shape, pattern.n_rows)  # random, not ones: a transposed gradient would show

    # Ours, in the tested dtype.
    x = x64.to(dtype).requires_grad_()
    values = values64.to(dtype).requires_grad_()
    b = bias64.to(dtype).requires_grad_() if bias else None
    y = sparse_linear(x, values, b, pattern, backend=backend)
    y.backward(upstream64.to(dtype))

    # Dense reference in float64, from the rounded inputs ours saw.
    rows = torch.from_numpy(pattern.rows).long()
    cols = torch.from_numpy(pattern.cols).long()
    weight = torch.zeros(pattern.n_rows, pattern.n_cols, dtype=torch.float64)
    weight[rows, cols] = values.detach().double()
    weight.requires_grad_()
    x_ref = x.detach().double().requires_grad_()
    b_ref = b.detach().double().requires_grad_() if bias else None
    y_ref = x_ref @ weight.T + (b_ref if bias else 0)
    y_ref.backward(upstream64.to(dtype).double())

    def check(name, actual, expected):
        assert actual is not None, f"{name}: no gradient"
        assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
        assert actual.dtype == dtype, f"{name}: dtype {actual.dtype} != {dtype}"
        scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
        tol = TOLERANCE[dtype]
        torch.testing.assert_close(actual.double(), expected, rtol=tol["rtol"], atol=tol["atol"] * scale, msg=name)

    check("output", y.detach(), y_ref.detach())
    check("dX", x.grad, x_ref.grad)
    check("dW at stored positions", values.grad, weight.grad[rows, cols])
    if bias:
        check("db", b.grad, b_ref.grad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (17, 5), (257, 129)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("batch", [1, 2, 33])
def test_odd_shapes(shape, batch, dtype, backend):
    n_out, n_in = shape
    helper_test_op(random_pattern(n_out, n_in, 0.3, seed=n_out), (batch,), dtype=dtype, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    "mask",
    [
        np.eye(6, 9, k=2, dtype=bool),  # one connection per row; empty rows and empty columns
        np.pad(np.ones((1, 1), dtype=bool), ((1, 2), (3, 0))),  # a single connection
        np.ones((5, 4), dtype=bool),  # fully dense
        np.zeros((3, 2), dtype=bool),  # no connection: y = b, dX = 0
    ],
    ids=["empty-rows-and-columns", "one-connection", "dense", "no-connection"],
)
def test_degenerate_patterns(mask, dtype, backend):
    pattern = pattern_from_mask(mask)
    helper_test_op(pattern, (7,), dtype=dtype, backend=backend)
    helper_test_op(pattern, (7,), dtype=dtype, backend=backend, bias=False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_empty_batch(dtype, backend):
    helper_test_op(random_pattern(4, 6, 0.5), (0,), dtype=dtype, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lead_shape", [(2, 3), (2, 1, 5)], ids=["3d", "4d"])
def test_inputs_with_more_than_two_dims(lead_shape, backend):
    helper_test_op(random_pattern(8, 6, 0.4), lead_shape, dtype=torch.float32, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_float64(backend):
    pattern = random_pattern(5, 4, 0.5, seed=3)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    values = torch.randn(pattern.nnz, dtype=torch.float64, generator=generator, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, generator=generator, requires_grad=True)
    op = lambda x, values, bias: sparse_linear(x, values, bias, pattern, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(op, (x, values, bias))


@pytest.mark.parametrize("backend", BACKENDS)
def test_stacked_layers_and_non_contiguous_input(backend):
    """The forward returns a feature-major view; a second layer and the backward must handle it."""
    first, second = random_pattern(9, 6, 0.5, seed=1), random_pattern(4, 9, 0.5, seed=2)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, dtype=torch.float64, generator=generator).t().requires_grad_()  # not contiguous
    v1 = torch.randn(first.nnz, dtype=torch.float64, generator=generator, requires_grad=True)
    v2 = torch.randn(second.nnz, dtype=torch.float64, generator=generator, requires_grad=True)
    y = sparse_linear(torch.tanh(sparse_linear(x, v1, None, first, backend=backend)), v2, None, second, backend=backend)
    y.square().sum().backward()

    def dense(pattern, values):
        weight = torch.zeros(pattern.n_rows, pattern.n_cols, dtype=torch.float64)
        weight[torch.from_numpy(pattern.rows).long(), torch.from_numpy(pattern.cols).long()] = values
        return weight

    x_ref, v1_ref, v2_ref = (t.detach().clone().requires_grad_() for t in (x, v1, v2))
    y_ref = torch.tanh(x_ref @ dense(first, v1_ref).T) @ dense(second, v2_ref).T
    y_ref.square().sum().backward()
    torch.testing.assert_close(y, y_ref)
    for ours, ref in ((x, x_ref), (v1, v1_ref), (v2, v2_ref)):
        torch.testing.assert_close(ours.grad, ref.grad)


def test_backends_agree_on_a_larger_layer():
    pattern = random_pattern(300, 200, 0.05, seed=5)
    x = torch.randn(64, 200, generator=torch.Generator().manual_seed(0))
    values = torch.randn(pattern.nnz, generator=torch.Generator().manual_seed(1))
    outputs = [sparse_linear(x, values, None, pattern, backend=backend) for backend in BACKENDS]
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)


# ---- documented errors -------------------------------------------------------------------------------
def test_wrong_number_of_input_features():
    pattern = random_pattern(3, 4, 1.0)
    with pytest.raises(ValueError, match="input has 5 features, the layer expects 4"):
        sparse_linear(torch.zeros(2, 5), torch.zeros(pattern.nnz), None, pattern)


def test_wrong_values_shape():
    pattern = random_pattern(3, 4, 1.0)
    with pytest.raises(ValueError, match=r"values must have shape \(12,\)"):
        sparse_linear(torch.zeros(2, 4), torch.zeros(11), None, pattern)


def test_dtype_mismatch():
    pattern = random_pattern(3, 4, 1.0)
    with pytest.raises(TypeError, match="differs from weight dtype"):
        sparse_linear(torch.zeros(2, 4, dtype=torch.float64), torch.zeros(12), None, pattern)


def test_unknown_backend():
    pattern = random_pattern(3, 4, 1.0)
    with pytest.raises(ValueError, match="backend must be one of"):
        sparse_linear(torch.zeros(2, 4), torch.zeros(12), None, pattern, backend="cuda")


def test_numba_backend_rejects_unsupported_dtype():
    pattern = random_pattern(3, 4, 1.0)
    with pytest.raises(ValueError, match="needs float32/float64 CPU tensors"):
        sparse_linear(
            torch.zeros(2, 4, dtype=torch.float16), torch.zeros(12, dtype=torch.float16), None, pattern, backend="numba"
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64])
def test_host_tensor_is_a_cpu_tensor_of_the_dtype_zeroed_on_request(dtype):
    from evosparse.sparse.functional import host_tensor

    empty, zeros = host_tensor(5, dtype), host_tensor(7, dtype, zeros=True)
    assert empty.shape == (5,) and empty.dtype == dtype and empty.device.type == "cpu"
    assert zeros.dtype == dtype and torch.equal(zeros, torch.zeros(7, dtype=dtype))


@pytest.mark.parametrize("batch", [1, 2, 3, 5])
def test_bias_gradient_is_torch_sum_to_the_bit(batch):
    """The batch-1/2 shortcut of the bias gradient gives torch's sum exactly (a sum of two is one rounding)."""
    from evosparse.sparse.functional import _sum_over_batch

    dyt = torch.randn(1000, batch, generator=torch.Generator().manual_seed(batch)) * 1e3
    assert torch.equal(_sum_over_batch(dyt), dyt.sum(dim=1))
    assert _sum_over_batch(dyt).data_ptr() != dyt.data_ptr()  # a new tensor, never a view of the gradient
