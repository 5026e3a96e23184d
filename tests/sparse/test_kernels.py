"""The compiled kernels against slow, obvious numpy loops (one connection at a time, in CSR order).

The references never use the CSC view: dX is a scatter over the CSR connections, so a wrong
``csc_perm`` / ``csc_rows`` cannot cancel out. Batch sizes cover every register tile the kernels use
(float32: 16 lanes per register, tiles of 128 / 64 / 32 / 16 and a masked tail; float64: half that).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.sparse import kernels
from evosparse.sparse.pattern import SparsePattern

DTYPES = (np.float32, np.float64)
TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}  # relative to the largest |reference| entry
BATCHES = (0, 1, 7, 16, 17, 24, 33, 40, 50, 64, 90, 100, 120, 128, 129, 250, 300)


# ---- slow references ---------------------------------------------------------------------------------
def reference_spmm(pattern, values, xt, bias):
    out = np.zeros((pattern.n_rows, xt.shape[1]), dtype=np.float64)
    for r in range(pattern.n_rows):
        out[r] = bias[r] if bias.size else 0.0
        for k in range(pattern.indptr[r], pattern.indptr[r + 1]):
            out[r] += float(values[k]) * xt[pattern.cols[k]].astype(np.float64)
    return out


def reference_spmm_transposed(pattern, values, dyt):
    out = np.zeros((pattern.n_cols, dyt.shape[1]), dtype=np.float64)
    for r in range(pattern.n_rows):
        for k in range(pattern.indptr[r], pattern.indptr[r + 1]):
            out[pattern.cols[k]] += float(values[k]) * dyt[r].astype(np.float64)
    return out


def reference_sddmm(pattern, dyt, xt):
    out = np.zeros(pattern.nnz, dtype=np.float64)
    for r in range(pattern.n_rows):
        for k in range(pattern.indptr[r], pattern.indptr[r + 1]):
            out[k] = np.dot(dyt[r].astype(np.float64), xt[pattern.cols[k]].astype(np.float64))
    return out


# ---- helpers -----------------------------------------------------------------------------------------
def make_pattern(mask: np.ndarray) -> SparsePattern:
    rows, cols = np.nonzero(mask)
    return SparsePattern.from_coo(rows, cols, mask.shape[0], mask.shape[1])


def random_mask(n_rows, n_cols, density, rng):
    return rng.random((n_rows, n_cols)) < density


def run_kernels(pattern, dtype, batch, rng, *, bias=True):
    """All three kernels on seeded inputs; outputs pre-filled with NaN to prove they are overwritten."""
    values = rng.standard_normal(pattern.nnz).astype(dtype)
    xt = rng.standard_normal((pattern.n_cols, batch)).astype(dtype)
    dyt = rng.standard_normal((pattern.n_rows, batch)).astype(dtype)
    bias_array = rng.standard_normal(pattern.n_rows).astype(dtype) if bias else np.empty(0, dtype=dtype)
    out = np.full((pattern.n_rows, batch), np.nan, dtype=dtype)
    kernels.spmm(pattern.indptr, pattern.cols, values, xt, bias_array, out)
    grad_x = np.full((pattern.n_cols, batch), np.nan, dtype=dtype)
    kernels.spmm_transposed(pattern.csc_indptr, pattern.csc_rows, pattern.csc_perm, values, dyt, grad_x)
    grad_values = np.full(pattern.nnz, np.nan, dtype=dtype)
    kernels.sddmm(pattern.indptr, pattern.cols, dyt, xt, grad_values)
    return (values, xt, dyt, bias_array), (out, grad_x, grad_values)


def assert_close(actual, expected, dtype):
    assert actual.shape == expected.shape and actual.dtype == dtype
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE[dtype] * scale)


def check_against_references(pattern, dtype, batch, rng, *, bias=True):
    (values, xt, dyt, bias_array), (out, grad_x, grad_values) = run_kernels(pattern, dtype, batch, rng, bias=bias)
    assert_close(out, reference_spmm(pattern, values, xt, bias_array), dtype)
    assert_close(grad_x, reference_spmm_transposed(pattern, values, dyt), dtype)
    assert_close(grad_values, reference_sddmm(pattern, dyt, xt), dtype)


# ---- tests -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def compiled():
    kernels.warm_up()  # first run: compiles (seconds); later runs load the on-disk cache


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("batch", BATCHES)
def test_random_pattern_every_batch_tile(dtype, batch):
    rng = np.random.default_rng(batch)
    check_against_references(make_pattern(random_mask(23, 19, 0.3, rng)), dtype, batch, rng)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    "mask",
    [
        np.ones((1, 1), dtype=bool),  # 1 x 1
        np.ones((3, 7), dtype=bool),  # fully dense
        np.eye(5, 17, k=3, dtype=bool),  # one connection per row, empty rows and columns
        np.zeros((4, 6), dtype=bool),  # no connection at all
        np.pad(np.ones((1, 1), dtype=bool), ((2, 3), (1, 4))),  # a single connection
    ],
    ids=["1x1", "dense", "diagonal", "empty", "one-connection"],
)
def test_degenerate_patterns(mask, dtype):
    rng = np.random.default_rng(0)
    pattern = make_pattern(mask)
    for batch in (1, 17, 128):
        check_against_references(pattern, dtype, batch, rng)
        check_against_references(pattern, dtype, batch, rng, bias=False)


@pytest.mark.parametrize("shape", [(257, 129), (17, 5), (3, 7)])
def test_odd_shapes_with_empty_rows_and_columns(shape):
    rng = np.random.default_rng(1)
    mask = random_mask(*shape, 0.2, rng)
    mask[::3] = False  # every third output neuron has no input
    mask[:, 1::4] = False  # some input neurons feed nothing
    for dtype in DTYPES:
        check_against_references(make_pattern(mask), dtype, 33, rng)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_wide_layer(dtype):
    """A few connections per neuron between 40 and 20,000 neurons, both ways (forward and transposed)."""
    rng = np.random.default_rng(2)
    n_wide = 20_000
    rows = np.repeat(np.arange(40), 30)
    cols = rng.choice(n_wide, size=rows.size, replace=False)  # distinct columns: no duplicate positions
    for pattern in (SparsePattern.from_coo(rows, cols, 40, n_wide), SparsePattern.from_coo(cols, rows, n_wide, 40)):
        check_against_references(pattern, dtype, 64, rng)


@st.composite
def kernel_cases(draw):
    n_rows = draw(st.integers(1, 30))
    n_cols = draw(st.integers(1, 30))
    density = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    batch = draw(st.integers(0, 70))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    return n_rows, n_cols, density, batch, dtype, seed


@settings(max_examples=40, deadline=None)
@given(kernel_cases())
def test_kernels_equal_the_reference_on_random_patterns(case):
    n_rows, n_cols, density, batch, dtype, seed = case
    rng = np.random.default_rng(seed)
    check_against_references(make_pattern(random_mask(n_rows, n_cols, density, rng)), dtype, batch, rng)


def test_results_do_not_depend_on_the_thread_count(small_calls_parallel):
    """Each output element is summed by one thread in a fixed order: bit-identical for any thread count."""
    rng = np.random.default_rng(3)
    pattern = make_pattern(random_mask(300, 200, 0.1, rng))
    before = numba.get_num_threads()
    try:
        kernels.set_num_threads(1)
        assert numba.get_num_threads() == 1
        _, one = run_kernels(pattern, np.float32, 100, np.random.default_rng(4))
        kernels.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        _, many = run_kernels(pattern, np.float32, 100, np.random.default_rng(4))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch", [1, 2, 9])
def test_spmm_of_a_large_layer_hands_out_row_tasks_with_the_same_numbers(monkeypatch, batch, small_calls_parallel):
    """Above _TASK_MIN_NNZ connections spmm's rows go out as tasks from a shared counter (lowered here so that
    a small layer takes that path, with tasks of 7 connections): the same bits as the row-parallel loop, and
    the reference's numbers, for every thread count."""
    rng = np.random.default_rng(batch)
    pattern = make_pattern(random_mask(300, 120, 0.1, rng))
    values = rng.standard_normal(pattern.nnz).astype(np.float32)
    xt = rng.standard_normal((120, batch)).astype(np.float32)
    bias = rng.standard_normal(300).astype(np.float32)
    expected = np.empty((300, batch), np.float32)
    kernels._spmm(pattern.indptr, pattern.cols, values, xt, bias, expected)
    assert_close(expected, reference_spmm(pattern, values, xt, bias), np.float32)
    monkeypatch.setattr(kernels, "_TASK_MIN_NNZ", 1)
    monkeypatch.setattr(kernels, "_TASK_NNZ", 7)
    assert kernels._row_tasks(pattern.indptr, pattern.nnz).shape[0] - 1 == min(1024, pattern.nnz // 7)
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, 2, numba.config.NUMBA_NUM_THREADS}):
            kernels.set_num_threads(threads)
            out = np.full((300, batch), np.nan, np.float32)
            kernels.spmm(pattern.indptr, pattern.cols, values, xt, bias, out)
            np.testing.assert_array_equal(out, expected)
            assert numba.get_num_threads() == threads  # the task threads are given back
    finally:
        kernels.set_num_threads(before)


def test_row_tasks_cover_every_row_once_in_order(monkeypatch):
    indptr = np.array([0, 0, 5, 5, 5, 100, 101, 101, 300], dtype=np.int64)  # empty rows, one heavy row
    for nnz_per_task in (1, 7, 50, 1000):
        monkeypatch.setattr(kernels, "_TASK_NNZ", nnz_per_task)
        bounds = kernels._row_tasks(indptr, 300)
        assert bounds.shape[0] - 1 == min(1024, max(1, 300 // nnz_per_task))
        assert bounds[0] == 0 and bounds[-1] == 8 and np.all(np.diff(bounds) >= 0)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs a pool of 2 or more threads")
def test_small_calls_run_on_one_thread_and_give_the_threads_back(monkeypatch):
    """A call estimated shorter than SERIAL_WAKE_FACTOR wake-ups of the pool runs on one thread; a long one (or
    any, with the factor 0) on the threads asked for; the count is restored even if the kernel raises."""
    before = numba.get_num_threads()
    try:
        kernels.set_num_threads(2)
        wake = kernels._wake_cost.get(2) or kernels._wake_seconds(2)
        assert 0 < wake < 0.1
        assert kernels.call_sized(0.0, numba.get_num_threads) == 1
        assert numba.get_num_threads() == 2
        assert kernels.call_sized(1.0, numba.get_num_threads) == 2
        monkeypatch.setattr(kernels, "SERIAL_WAKE_FACTOR", 0.0)
        assert kernels.call_sized(0.0, numba.get_num_threads) == 2

        def failing():
            raise RuntimeError("inside the kernel")

        monkeypatch.setattr(kernels, "SERIAL_WAKE_FACTOR", 3.0)
        with pytest.raises(RuntimeError, match="inside the kernel"):
            kernels.call_sized(0.0, failing)
        assert numba.get_num_threads() == 2
    finally:
        numba.set_num_threads(before)


def test_set_num_threads_clamps_to_the_pool():
    before = numba.get_num_threads()
    try:
        kernels.set_num_threads(0)
        assert numba.get_num_threads() == 1
        kernels.set_num_threads(10_000)
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    finally:
        numba.set_num_threads(before)


def test_numba_num_threads_environment_variable_is_honoured():
    code = (
        "import numba, numpy as np; from evosparse.sparse import kernels; "
        "kernels.set_num_threads(8); assert numba.get_num_threads() == 1, numba.get_num_threads(); "
        "out = np.empty((1, 3), np.float32); "
        "kernels.spmm(np.array([0, 1]), np.array([0], np.int32), np.ones(1, np.float32), "
        "np.full((1, 3), 2, np.float32), np.ones(1, np.float32), out); "
        "assert (out == 3).all(); print('ok')"
    )
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_column_major_operand_is_rejected():
    """The kernels read rows of the dense operands as contiguous vectors; other layouts do not type-check."""
    pattern = make_pattern(np.ones((2, 3), dtype=bool))
    xt = np.asfortranarray(np.ones((3, 4), dtype=np.float32))
    out = np.empty((2, 4), dtype=np.float32)
    with pytest.raises(numba.core.errors.TypingError):
        kernels.spmm(pattern.indptr, pattern.cols, np.ones(6, np.float32), xt, np.empty(0, np.float32), out)


# ---- backward_csr: both gradients in one sweep over the CSR order (small batches) ------------------------
def run_backward_csr(pattern, dtype, batch, rng, n_chunks, *, input_gradient=True):
    values = rng.standard_normal(pattern.nnz).astype(dtype)
    xt = rng.standard_normal((pattern.n_cols, batch)).astype(dtype)
    dyt = rng.standard_normal((pattern.n_rows, batch)).astype(dtype)
    grad_x = np.full((pattern.n_cols if input_gradient else 0, batch), np.nan, dtype=dtype)
    grad_values = np.full(pattern.nnz, np.nan, dtype=dtype)
    kernels.backward_csr(pattern.indptr, pattern.cols, values, dyt, xt, grad_values, grad_x, n_chunks)
    return (values, xt, dyt), (grad_x, grad_values)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_chunks", [1, 2, 3])
@pytest.mark.parametrize("batch", [0, 1, 2, 4, 5])
def test_backward_csr_equals_the_references(dtype, n_chunks, batch):
    rng = np.random.default_rng(batch + 10 * n_chunks)
    pattern = make_pattern(random_mask(37, 29, 0.2, rng))
    (values, xt, dyt), (grad_x, grad_values) = run_backward_csr(pattern, dtype, batch, rng, n_chunks)
    assert_close(grad_x, reference_spmm_transposed(pattern, values, dyt), dtype)
    assert_close(grad_values, reference_sddmm(pattern, dyt, xt), dtype)
    (values, xt, dyt), (no_grad_x, only_values) = run_backward_csr(
        pattern, dtype, batch, rng, n_chunks, input_gradient=False
    )
    assert no_grad_x.shape == (0, batch)
    assert_close(only_values, reference_sddmm(pattern, dyt, xt), dtype)


@settings(max_examples=40, deadline=None)
@given(kernel_cases(), st.integers(1, 4))
def test_backward_csr_equals_the_references_on_random_patterns(case, n_chunks):
    """Degenerate shapes included: empty rows or columns, one connection, fully dense, more chunks than rows."""
    n_rows, n_cols, density, batch, dtype, seed = case
    rng = np.random.default_rng(seed)
    pattern = make_pattern(random_mask(n_rows, n_cols, density, rng))
    (values, xt, dyt), (grad_x, grad_values) = run_backward_csr(pattern, dtype, batch % 6, rng, n_chunks)
    assert_close(grad_x, reference_spmm_transposed(pattern, values, dyt), dtype)
    assert_close(grad_values, reference_sddmm(pattern, dyt, xt), dtype)


@pytest.mark.parametrize("n_chunks", [kernels.BACKWARD_CHUNKS, 7])  # 7: more chunks than threads, as tasks
def test_backward_csr_does_not_depend_on_the_thread_count(n_chunks, small_calls_parallel):
    rng = np.random.default_rng(5)
    pattern = make_pattern(random_mask(300, 200, 0.1, rng))
    before = numba.get_num_threads()
    try:
        kernels.set_num_threads(1)
        _, one = run_backward_csr(pattern, np.float32, 3, np.random.default_rng(6), n_chunks)
        kernels.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        _, many = run_backward_csr(pattern, np.float32, 3, np.random.default_rng(6), n_chunks)
    finally:
        kernels.set_num_threads(before)
    for a, b in zip(one, many):
        assert np.array_equal(a, b)


# ---- backward_csr_sgd: the same sweep, with torch.optim.SGD's step instead of writing dW ------------------
def reference_sgd(values, grad, buffer, *, lr, weight_decay, momentum, dampening, nesterov, maximize, first_step):
    """torch.optim.SGD's update written out in float64 (torch/optim/sgd.py, _single_tensor_sgd)."""
    grad = -grad if maximize else grad
    grad = grad + weight_decay * values
    if momentum != 0:
        buffer = grad.copy() if first_step else momentum * buffer + (1 - dampening) * grad
        grad = grad + momentum * buffer if nesterov else buffer
    return values - lr * grad, buffer


SGD_CASES = [
    {"lr": 0.1, "weight_decay": 0.0, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "maximize": False},
    {"lr": 0.05, "weight_decay": 0.01, "momentum": 0.9, "dampening": 0.0, "nesterov": False, "maximize": False},
    {"lr": 0.05, "weight_decay": 0.01, "momentum": 0.9, "dampening": 0.0, "nesterov": True, "maximize": False},
    {"lr": 0.2, "weight_decay": 0.0, "momentum": 0.5, "dampening": 0.3, "nesterov": False, "maximize": True},
]


def sgd_problem(dtype, case: int, first_step: bool, batch: int, seed: int):
    """A random layer, momentum buffer and batch, with the float64 reference's weights and buffer after one step."""
    hyper = SGD_CASES[case]
    rng = np.random.default_rng(seed)
    pattern = make_pattern(random_mask(41, 33, 0.25, rng))
    values = rng.standard_normal(pattern.nnz).astype(dtype)
    buffer = rng.standard_normal(pattern.nnz).astype(dtype)
    xt = rng.standard_normal((pattern.n_cols, batch)).astype(dtype)
    dyt = rng.standard_normal((pattern.n_rows, batch)).astype(dtype)
    expected_w, expected_b = reference_sgd(
        values.astype(np.float64),
        reference_sddmm(pattern, dyt, xt),
        buffer.astype(np.float64),
        first_step=first_step,
        **hyper,
    )
    return hyper, pattern, values, buffer, xt, dyt, expected_w, expected_b


def assert_sgd_step(w, b, buffer, expected_w, expected_b, hyper, dtype):
    assert_close(w, expected_w, dtype)
    if hyper["momentum"] != 0:
        assert_close(b, expected_b, dtype)
    else:
        assert np.array_equal(b, buffer)  # without momentum the buffer is not touched


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", range(len(SGD_CASES)))
@pytest.mark.parametrize("first_step", [True, False])
@pytest.mark.parametrize("batch", [1, 2, 5])
def test_backward_csr_sgd_equals_gradient_then_sgd(dtype, case, first_step, batch):
    hyper, pattern, values, buffer, xt, dyt, expected_w, expected_b = sgd_problem(
        dtype, case, first_step, batch, seed=case + 7 * batch
    )
    expected_dx = reference_spmm_transposed(pattern, values, dyt)  # with the weights before the step
    for input_gradient in (True, False):
        w, b = values.copy(), buffer.copy()
        grad_x = np.full((pattern.n_cols if input_gradient else 0, batch), np.nan, dtype=dtype)
        kernels.backward_csr_sgd(
            pattern.indptr, pattern.cols, w, b, dyt, xt, grad_x, kernels.BACKWARD_CHUNKS, first_step=first_step, **hyper
        )
        assert_sgd_step(w, b, buffer, expected_w, expected_b, hyper, dtype)
        if input_gradient:
            assert_close(grad_x, expected_dx, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", range(len(SGD_CASES)))
@pytest.mark.parametrize("first_step", [True, False])
@pytest.mark.parametrize("batch", [5, 40])
def test_sddmm_sgd_equals_gradient_then_sgd(dtype, case, first_step, batch):
    hyper, pattern, values, buffer, xt, dyt, expected_w, expected_b = sgd_problem(
        dtype, case, first_step, batch, seed=case + 11 * batch
    )
    w, b = values.copy(), buffer.copy()
    kernels.sddmm_sgd(pattern.indptr, pattern.cols, dyt, xt, w, b, first_step=first_step, **hyper)
    assert_sgd_step(w, b, buffer, expected_w, expected_b, hyper, dtype)


def test_backward_csr_sgd_rejects_a_buffer_of_the_wrong_size():
    pattern = make_pattern(np.ones((2, 3), dtype=bool))
    xt = np.ones((3, 2), np.float32)
    with pytest.raises(ValueError, match="momentum_buffer must have shape"):
        kernels.backward_csr_sgd(
            pattern.indptr,
            pattern.cols,
            np.ones(6, np.float32),
            np.ones(5, np.float32),
            np.ones((2, 2), np.float32),
            xt,
            np.empty((3, 2), np.float32),
            2,
            lr=0.1,
            momentum=0.9,
        )


def test_backward_chunks_depend_on_the_scratch_size_only():
    assert kernels.backward_chunks(1000, 2, 4) == kernels.BACKWARD_CHUNKS  # small layers: as before
    assert kernels.backward_chunks(600_000, 2, 4) == 8  # 9.6 MB of scratch in 1.2 MB ranges
    assert kernels.backward_chunks(600_000, 2, 8) == 15  # float64: twice the bytes


@pytest.mark.parametrize("n_chunks", [8, 50])  # more ranges than columns: some are empty
def test_backward_csr_with_many_column_ranges(n_chunks):
    rng = np.random.default_rng(n_chunks)
    pattern = make_pattern(random_mask(37, 29, 0.2, rng))
    (values, xt, dyt), (grad_x, grad_values) = run_backward_csr(pattern, np.float64, 2, rng, n_chunks)
    assert_close(grad_x, reference_spmm_transposed(pattern, values, dyt), np.float64)
    assert_close(grad_values, reference_sddmm(pattern, dyt, xt), np.float64)


def test_register_width_follows_the_compile_target(monkeypatch):
    host = kernels._vector_bytes()
    assert host in (16, 32, 64)
    monkeypatch.setattr(numba.config, "CPU_NAME", "host")  # "host": the host's features, as with no setting
    assert kernels._vector_bytes() == host
    monkeypatch.setattr(numba.config, "CPU_NAME", "generic")
    for features, width in (("+avx512f,+avx2", 64), ("+avx2,+fma", 32), ("+sse4.2", 16), (None, 16)):
        monkeypatch.setattr(numba.config, "CPU_FEATURES", features)
        assert kernels._vector_bytes() == width
