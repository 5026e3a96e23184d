"""Row-blocked patterns: the conversions, the kernels against dense references, and layers that train the same."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.nn import FusedSGD, SparseLinear, SparseMLP
from evosparse.sparse import kernels
from evosparse.sparse import pattern as pattern_module
from evosparse.sparse.pattern import MAX_BLOCK_ROWS, SparsePattern
from evosparse.topology import SET, Rewiring, UpdateSchedule, apply_rewiring
from evosparse.topology.criteria import drop_set, settle_set_ties


def random_pattern(n_rows: int, n_cols: int, nnz: int, seed: int) -> SparsePattern:
    rng = np.random.default_rng(seed)
    nnz = min(nnz, n_rows * n_cols)
    rows, cols = np.unravel_index(rng.choice(n_rows * n_cols, nnz, replace=False), (n_rows, n_cols))
    return SparsePattern.from_coo(rows, cols, n_rows, n_cols)


@settings(max_examples=60, deadline=None)
@given(
    n_rows=st.integers(1, 40),
    n_cols=st.integers(1, 40),
    fill=st.floats(0.0, 1.0),
    block_rows=st.integers(2, 50),
    seed=st.integers(0, 2**16),
)
def test_blocked_order_is_blocks_then_columns_then_rows_and_converts_back(n_rows, n_cols, fill, block_rows, seed):
    csr = random_pattern(n_rows, n_cols, max(1, int(fill * n_rows * n_cols)), seed)
    values = np.random.default_rng(seed).standard_normal(csr.nnz)
    blocked, perm = csr.to_blocked(block_rows)
    assert blocked.is_blocked and blocked.block_rows == block_rows
    assert blocked.n_blocks == -(-n_rows // block_rows)
    assert np.array_equal(blocked.rows, csr.rows[perm]) and np.array_equal(blocked.cols, csr.cols[perm])
    order = np.lexsort((blocked.rows, blocked.cols, blocked.rows // block_rows))
    assert np.array_equal(order, np.arange(csr.nnz))  # already sorted by (block, column, row)
    assert np.array_equal(blocked.row_degrees(), csr.row_degrees())
    assert np.array_equal(blocked.col_degrees(), csr.col_degrees())
    back, perm_back = blocked.to_csr()
    assert np.array_equal(back.indptr, csr.indptr) and np.array_equal(back.cols, csr.cols)
    assert np.array_equal(values[perm][perm_back], values)


@pytest.mark.parametrize(
    ("n_rows", "n_cols", "nnz", "block_rows"),
    [
        (300, 5000, 20000, 64),  # two digits of the two-level sort: 13 bits = 2 high + 11 low
        (70, 300_000, 30000, 16),  # 19 bits, many connections per high-digit bucket
        (50, (1 << 22) + 3, 4000, 8),  # past the two-level sort's limit: to_blocked takes the two-pass radix sort
        (9, 1 << 23, 500, 4),
    ],
)
def test_both_column_sorts_of_to_blocked_give_the_block_column_row_order(n_rows, n_cols, nnz, block_rows):
    rng = np.random.default_rng(n_cols)
    keys = np.unique(rng.integers(0, n_rows * n_cols, nnz, dtype=np.int64))
    csr = SparsePattern.from_sorted_keys(keys, n_rows, n_cols)
    expected = np.lexsort((csr.rows, csr.cols, csr.rows // block_rows))  # (block, column, row): the reference
    for sort in (pattern_module._csr_to_blocked, pattern_module._csr_to_blocked_msd):
        cols = np.empty(csr.nnz, csr.cols.dtype)
        offsets = np.empty(csr.nnz, pattern_module.ROW_OFFSET_DTYPE)
        perm = np.empty(csr.nnz, np.int64)
        sort(csr.indptr, csr.cols, block_rows, n_cols, cols, offsets, perm)
        assert np.array_equal(perm, expected), sort
        assert np.array_equal(cols, csr.cols[expected]) and np.array_equal(offsets, csr.rows[expected] % block_rows)
    blocked, perm = csr.to_blocked(block_rows)
    assert np.array_equal(perm, expected) and np.array_equal(blocked.cols, csr.cols[expected])


def test_csr_only_operations_refuse_a_blocked_pattern_and_bad_block_sizes_are_named():
    blocked, _ = random_pattern(10, 10, 30, 0).to_blocked(4)
    for call, what in (
        (blocked.keys, "keys"),
        (lambda: blocked.csc_perm, "CSC view"),
        (lambda: blocked.to_blocked(2), "to_blocked"),
    ):
        with pytest.raises(ValueError, match=f"{what}.* needs a CSR pattern"):
            call()
    for bad in (0, -3, MAX_BLOCK_ROWS + 1, 2.5, True, "16"):
        with pytest.raises(ValueError, match=r"block_rows must be an integer in \[1, 65536\]"):
            SparseLinear(8, 8, block_rows=bad)


def dense_of(pattern: SparsePattern, values: np.ndarray) -> np.ndarray:
    dense = np.zeros((pattern.n_rows, pattern.n_cols), dtype=values.dtype)
    dense[pattern.rows, pattern.cols] = values
    return dense


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 2, 3, 17])
@pytest.mark.parametrize("block_rows", [2, 5, 64])
def test_blocked_kernels_match_dense_products(dtype, batch, block_rows):
    rng = np.random.default_rng(batch * 100 + block_rows)
    pattern, _ = random_pattern(37, 29, 300, batch).to_blocked(block_rows)
    values = rng.standard_normal(pattern.nnz).astype(dtype)
    xt = rng.standard_normal((29, batch)).astype(dtype)
    dyt = rng.standard_normal((37, batch)).astype(dtype)
    bias = rng.standard_normal(37).astype(dtype)
    w = dense_of(pattern, values).astype(np.float64)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    out = np.full((37, batch), np.nan, dtype=dtype)
    args = (pattern.indptr, pattern.cols, pattern.row_offsets, pattern.block_rows)
    kernels.spmm_blocked(*args, values, xt, bias, out)
    np.testing.assert_allclose(out, w @ xt + bias[:, None], **tol)
    kernels.spmm_blocked(*args, values, xt, bias[:0], out)
    np.testing.assert_allclose(out, w @ xt, **tol)
    grad_values = np.full(pattern.nnz, np.nan, dtype=dtype)
    grad_xt = np.full((29, batch), np.nan, dtype=dtype)
    kernels.backward_blocked(*args, values, dyt, xt, grad_values, grad_xt, 2)
    np.testing.assert_allclose(grad_xt, w.T @ dyt, **tol)
    np.testing.assert_allclose(grad_values, (dyt @ xt.T)[pattern.rows, pattern.cols], **tol)
    first_layer = np.full(pattern.nnz, np.nan, dtype=dtype)
    kernels.backward_blocked(*args, values, dyt, xt, first_layer, grad_xt[:0], 3)  # no input gradient
    np.testing.assert_array_equal(first_layer, grad_values)


SGD_CASES = {
    "weight-decay": dict(batch=3, weight_decay=0.01, nesterov=False, dampening=0.0, maximize=False),
    "nesterov": dict(batch=3, weight_decay=0.01, nesterov=True, dampening=0.0, maximize=False),
    "batch-2-momentum": dict(batch=2, weight_decay=0.0, nesterov=False, dampening=0.0, maximize=False),  # fast loop
    "batch-2-dampened-maximize": dict(batch=2, weight_decay=0.0, nesterov=False, dampening=0.2, maximize=True),
    "batch-2-weight-decay": dict(batch=2, weight_decay=0.01, nesterov=False, dampening=0.0, maximize=False),
    "batch-2-nesterov-maximize": dict(batch=2, weight_decay=0.01, nesterov=True, dampening=0.0, maximize=True),
}


@pytest.mark.parametrize("case", SGD_CASES.values(), ids=SGD_CASES.keys())
def test_blocked_sgd_sweep_is_torch_sgd_with_the_weights_before_the_step_for_dx(case):
    rng = np.random.default_rng(7)
    batch = case.pop("batch")
    pattern, _ = random_pattern(50, 40, 600, 1).to_blocked(8)
    values = rng.standard_normal(pattern.nnz).astype(np.float32)
    xt, dyt = rng.standard_normal((40, batch)).astype(np.float32), rng.standard_normal((50, batch)).astype(np.float32)
    args = (pattern.indptr, pattern.cols, pattern.row_offsets, pattern.block_rows)
    grad = np.empty_like(values)
    grad_xt_ref = np.empty((40, batch), np.float32)
    kernels.backward_blocked(*args, values, dyt, xt, grad, grad_xt_ref, 2)
    param = torch.nn.Parameter(torch.from_numpy(values.copy()))
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.9, **case)
    fused, buffer = values.copy(), np.empty_like(values)
    grad_xt = np.empty((40, batch), np.float32)
    for step in range(3):
        param.grad = torch.from_numpy(grad.copy())
        optimizer.step()
        kernels.backward_blocked_sgd(
            *args, fused, buffer, dyt, xt, grad_xt, 2, lr=0.1, momentum=0.9, first_step=step == 0, **case
        )
        if step == 0:
            np.testing.assert_allclose(grad_xt, grad_xt_ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(fused, param.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(buffer, optimizer.state[param]["momentum_buffer"].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fused", [False, True], ids=["gradients", "batch-2-sgd"])
def test_blocked_results_do_not_depend_on_threads_task_takers_or_chunks(fused):
    """Blocks and column chunks are handed out from a shared counter, so which thread computes what varies
    from call to call; every output must still be summed in one fixed order: the same bits every time."""
    rng = np.random.default_rng(3)
    pattern, _ = random_pattern(300, 400, 6000, 2).to_blocked(32)
    values = rng.standard_normal(pattern.nnz).astype(np.float32)
    buffer = rng.standard_normal(pattern.nnz).astype(np.float32)
    xt, dyt = rng.standard_normal((400, 2)).astype(np.float32), rng.standard_normal((300, 2)).astype(np.float32)
    args = (pattern.indptr, pattern.cols, pattern.row_offsets, pattern.block_rows)
    sgd = kernels._sgd_parameters(values, buffer, 0.1, 2e-4, 0.9, 0.0, False, False, False)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            for takers in (1, 2, 5):  # more takers than threads: each thread runs several
                for chunks in (1, 2, kernels.BLOCKED_CHUNKS, 13):
                    out = np.empty((300, 2), np.float32)
                    w, b = values.copy(), buffer.copy()
                    grad, grad_xt = np.empty_like(values), np.empty((400, 2), np.float32)
                    kernels._spmm_blocked(*args, values, xt, values[:0], out, takers)
                    if fused:
                        kernels._blocked_sweep(*args, w, dyt, xt, values[:0], grad_xt, chunks, sgd, b, takers)
                    else:
                        kernels._blocked_sweep(
                            *args, values, dyt, xt, grad, grad_xt, chunks, kernels._NO_SGD, b, takers
                        )
                    results.append((out, grad_xt, w, b) if fused else (out, grad_xt, grad))
    finally:
        numba.set_num_threads(before)
    assert len(results) == len({1, numba.config.NUMBA_NUM_THREADS}) * 12
    for result in results[1:]:
        for a, b in zip(results[0], result, strict=True):
            np.testing.assert_array_equal(a, b)


def test_first_layer_sgd_sweep_does_not_depend_on_threads_or_task_takers():
    """Without dX (a first layer) row ranges go to whichever thread is free; each weight's step is its own."""
    rng = np.random.default_rng(4)
    pattern = random_pattern(500, 60, 4000, 5)
    values = rng.standard_normal(pattern.nnz).astype(np.float32)
    buffer = rng.standard_normal(pattern.nnz).astype(np.float32)
    xt, dyt = rng.standard_normal((60, 2)).astype(np.float32), rng.standard_normal((500, 2)).astype(np.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            for takers in (1, 3):
                for dampening in (0.0, 0.25):  # undamped 1 takes the specialised loop
                    sgd = kernels._sgd_parameters(values, buffer, 0.1, 2e-4, 0.9, dampening, False, False, False)
                    w, b = values.copy(), buffer.copy()
                    scratch = np.empty((0, 4), np.float32)
                    no_dx = np.empty((0, 2), np.float32)
                    kernels._backward_sweep(
                        pattern.indptr, pattern.cols, w, dyt, xt, values[:0], no_dx, 2, sgd, b, scratch, takers
                    )
                    results.append((dampening, w, b))
    finally:
        numba.set_num_threads(before)
    for dampening in (0.0, 0.25):
        same = [r for r in results if r[0] == dampening]
        for _, w, b in same[1:]:
            np.testing.assert_array_equal(w, same[0][1])
            np.testing.assert_array_equal(b, same[0][2])


def test_a_blocked_layer_computes_what_the_csr_layer_does():
    csr = SparseLinear(300, 200, epsilon=5, seed=1)
    blocked = SparseLinear(300, 200, epsilon=5, seed=1, block_rows=16)
    assert blocked.pattern.is_blocked and torch.equal(blocked.to_dense(), csr.to_dense())  # the same init draws
    x = torch.randn(3, 300, requires_grad=True)
    x_blocked = x.detach().clone().requires_grad_()
    y, y_blocked = csr(x), blocked(x_blocked)
    assert torch.equal(y, y_blocked)  # the same sums in the same order
    grad = torch.randn_like(y)
    y.backward(grad)
    y_blocked.backward(grad)
    torch.testing.assert_close(x_blocked.grad, x.grad, rtol=1e-6, atol=1e-6)
    _, to_csr = blocked.pattern.to_csr()
    assert torch.equal(blocked.values.grad[torch.from_numpy(to_csr).long()], csr.values.grad)
    assert torch.equal(blocked.bias.grad, csr.bias.grad)
    with pytest.raises(ValueError, match="runs on the numba backend only"):
        SparseLinear(30, 20, block_rows=4, backend="torch")(torch.randn(2, 30))


def test_state_dict_keeps_the_layout_and_the_loader_checks_it():
    blocked = SparseLinear(60, 50, epsilon=4, seed=5, block_rows=8)
    state = blocked.state_dict()
    assert int(state["block_rows"]) == 8
    fresh = SparseLinear(60, 50, epsilon=4, seed=9)  # CSR, another topology
    fresh.load_state_dict(state)
    assert fresh.pattern.block_rows == 8 and fresh.block_rows == 8
    assert torch.equal(fresh.to_dense(), blocked.to_dense())
    assert np.shares_memory(state["row_offsets"].numpy(), blocked.pattern.row_offsets)
    shuffled = dict(state)
    shuffled["cols"] = state["cols"].flip(0)
    with pytest.raises(RuntimeError, match="breaks the row-blocked order"):
        fresh.load_state_dict(shuffled)
    offsets = state["row_offsets"].numpy()  # torch.uint16 has few operations: change it in numpy
    for damage, message in [
        ({"row_offsets": torch.from_numpy(offsets[::-1].copy())}, "breaks the row-blocked order"),
        ({"row_offsets": torch.from_numpy(np.full_like(offsets, 8))}, r"row_offsets must be in \[0, 8\)"),
        ({"row_offsets": state["row_offsets"][1:]}, "row_offsets must hold one integer per connection"),
        ({"block_rows": torch.tensor(4)}, "indptr must hold 14 integer offsets"),
    ]:
        with pytest.raises(RuntimeError, match=message):
            fresh.load_state_dict({**state, **damage})
    missing = {key: value for key, value in state.items() if key != "row_offsets"}
    with pytest.raises(RuntimeError, match="needs row_offsets"):
        fresh.load_state_dict(missing)
    # A state dict of the previous format (rows + cols in storage order) still loads, and its order is checked.
    legacy = {key: value for key, value in state.items() if key not in ("indptr", "row_offsets")}
    legacy["rows"] = torch.from_numpy(blocked.pattern.rows)
    again = SparseLinear(60, 50, epsilon=4, seed=9)
    again.load_state_dict(legacy)
    assert again.pattern.block_rows == 8 and torch.equal(again.to_dense(), blocked.to_dense())
    legacy["rows"], legacy["cols"] = legacy["rows"].flip(0), legacy["cols"].flip(0)
    with pytest.raises(RuntimeError, match=r"not in row-blocked \(block_rows=8\) order"):
        again.load_state_dict(legacy)


def test_the_last_block_of_a_state_dict_stays_inside_the_matrix():
    """50 rows in blocks of 8: the last block has 2 rows, so a row offset of 2..7 there is out of the matrix."""
    blocked = SparseLinear(60, 50, epsilon=4, seed=5, block_rows=8)
    state = {key: value.clone() for key, value in blocked.state_dict().items()}
    last = int(state["indptr"][-2])
    assert last < blocked.nnz
    state["row_offsets"].numpy()[last:] = 7  # keep (column, row) ascending only if columns differ: find the order error
    with pytest.raises(RuntimeError, match="breaks the row-blocked order"):
        SparseLinear(60, 50, epsilon=4, seed=9).load_state_dict(state)


def test_relayout_carries_the_optimizer_state_and_rewiring_needs_csr_order():
    layer = SparseLinear(40, 30, epsilon=4, seed=2)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    layer(torch.randn(5, 40)).square().sum().backward()
    optimizer.step()
    dense_momentum = torch.zeros(30, 40)
    rows, cols = (torch.from_numpy(a).long() for a in (layer.pattern.rows, layer.pattern.cols))
    dense_momentum[rows, cols] = optimizer.state[layer.values]["momentum_buffer"]
    weights = layer.to_dense()
    layer.set_block_rows(4, optimizer)
    rows, cols = (torch.from_numpy(a).long() for a in (layer.pattern.rows, layer.pattern.cols))
    assert torch.equal(optimizer.state[layer.values]["momentum_buffer"], dense_momentum[rows, cols])
    assert torch.equal(layer.to_dense(), weights)
    with pytest.raises(ValueError, match="inside `with layer.csr_order"):
        apply_rewiring(layer, Rewiring(np.arange(layer.nnz), np.empty(0, np.int64)), torch.empty(0), optimizer)
    with layer.csr_order(optimizer):
        assert not layer.pattern.is_blocked
    assert layer.pattern.block_rows == 4


def test_fused_training_with_set_rewiring_is_the_same_run_in_either_layout():
    """Six fused SGD steps at batch 2 with a SET update after every second one: the same topology and weights."""
    runs = []
    for block_rows in (1, 7):
        torch.manual_seed(0)
        model = SparseMLP((30, 64, 64, 4), epsilon=4, seed=11)
        for layer in model.sparse_layers():
            layer.set_block_rows(block_rows)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        fused = FusedSGD(model, optimizer)
        strategy = SET(schedule=UpdateSchedule(zeta=0.3), seed=4)
        data = torch.Generator().manual_seed(1)
        for step in range(1, 7):
            x, y = torch.randn(2, 30, generator=data), torch.randint(0, 4, (2,), generator=data)
            optimizer.zero_grad()
            fused.backward(torch.nn.functional.cross_entropy(model(x), y))
            optimizer.step()
            if step % 2 == 0:
                strategy.on_epoch_end(model, optimizer, step // 2)
        for layer in model.sparse_layers():
            assert layer.pattern.block_rows == block_rows
            layer.set_block_rows(1, optimizer)
        runs.append((model, optimizer))
    (csr, csr_opt), (blocked, blocked_opt) = runs
    for a, b in zip(csr.sparse_layers(), blocked.sparse_layers(), strict=True):
        assert np.array_equal(a.pattern.indptr, b.pattern.indptr) and np.array_equal(a.pattern.cols, b.pattern.cols)
        torch.testing.assert_close(b.values, a.values, rtol=1e-5, atol=1e-6)
        momentum = (opt.state[layer.values]["momentum_buffer"] for opt, layer in ((csr_opt, a), (blocked_opt, b)))
        torch.testing.assert_close(*reversed(tuple(momentum)), rtol=1e-5, atol=1e-6)


def test_sparse_mlp_blocks_the_layers_with_wide_inputs_only(monkeypatch):
    from evosparse.nn import mlp

    monkeypatch.setattr(mlp, "WIDE_INPUTS", 50)
    model = SparseMLP((30, 64, 64, 4), epsilon=4, seed=11, block_rows=16)
    assert [layer.pattern.block_rows for layer in model.sparse_layers()] == [1, 16, 16]
    plain = SparseMLP((30, 64, 64, 4), epsilon=4, seed=11)
    x = torch.randn(2, 30)
    assert torch.equal(model(x), plain(x))


def test_pruning_and_neuron_removal_on_blocked_layers_equal_csr_ones():
    from evosparse.prune.neuron_importance import remove_neurons
    from evosparse.topology.select import prune_layer

    models = []
    for block_rows in (1, 8):
        model = SparseMLP((20, 40, 30, 3), epsilon=4, seed=6)
        for layer in model.sparse_layers():
            layer.set_block_rows(block_rows)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        layer = model.sparse_layers()[1]
        scores = layer.values.detach().abs().numpy().round(1)  # ties: broken in CSR order in both layouts
        prune_layer(layer, scores, layer.nnz // 2, optimizer)
        remove_neurons(model, 0, np.arange(0, 40, 2), optimizer)
        assert [layer.pattern.block_rows for layer in model.sparse_layers()] == [block_rows] * 3
        models.append(model)
    for a, b in zip(*(m.sparse_layers() for m in models), strict=True):
        assert torch.equal(a.to_dense(), b.to_dense())


def test_automatic_block_size_gives_each_wide_layer_about_one_connection_per_input():
    from evosparse.sparse.pattern import auto_block_rows

    assert auto_block_rows(600_000, 600_000, 20_400_000) == 16384  # the Liu shape's hidden layers (measured best)
    assert auto_block_rows(3_300_000, 3_300_000, 13_200_000) == 65536  # ten million neurons: the cap
    assert auto_block_rows(5, 600_000, 3_000_000) == 4096  # a dense output layer: the floor
    model = SparseMLP((10, 40_000, 40_000, 3), epsilon=2, seed=0, block_rows=0)
    first, hidden, output = model.sparse_layers()
    assert first.pattern.block_rows == 1  # 10 inputs: CSR order
    assert hidden.pattern.block_rows == 8192  # 40,000^2 / 160,000 = 10,000 rows -> 2^13
    assert output.pattern.block_rows == 4096
    same = SparseMLP((10, 40_000, 40_000, 3), epsilon=2, seed=0)  # CSR: the same network, another order
    x = torch.randn(3, 10, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model(x), same(x))
    for bad in (-1, 70_000, True, 2.5):
        with pytest.raises(ValueError, match=r"block_rows must be 0 \(a size per wide layer\) or an integer"):
            SparseMLP((10, 5, 3), block_rows=bad)


def test_a_dense_row_blocked_layer_is_left_alone_without_a_conversion():
    layer = SparseLinear(40000, 3, density=1.0, seed=0, block_rows=4096)
    before = layer.pattern
    SET(0.3, seed=0).update_stored_layer(layer, None, 0.3)
    assert layer.pattern is before  # not even converted to CSR and back
    sparse = SparseLinear(40000, 3, density=0.5, seed=0, block_rows=4096)
    before = sparse.pattern
    SET(0.3, seed=0).update_stored_layer(sparse, None, 0.3)
    assert sparse.pattern is not before and sparse.pattern.block_rows == 4096 and sparse.nnz == before.nnz


def _layer_with_momentum(n_in: int, n_out: int, epsilon: float, block_rows: int, seed: int):
    layer = SparseLinear(n_in, n_out, epsilon=epsilon, seed=seed)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    layer(torch.randn(3, n_in, generator=torch.Generator().manual_seed(seed))).square().sum().backward()
    optimizer.step()
    layer.set_block_rows(block_rows, optimizer)
    return layer, optimizer


def _rewired_both_ways(strategy_factory, n_in, n_out, epsilon, block_rows, seed, values=None):
    """The strategy's update of a row-blocked layer as the strategy does it, and in CSR order (converted around
    it, the way every strategy could): both layers back in CSR order, with their momentum and generators."""
    results = []
    for in_place in (True, False):
        layer, optimizer = _layer_with_momentum(n_in, n_out, epsilon, block_rows, seed)
        if values is not None:
            layer.values.data = values.clone()
        strategy = strategy_factory()
        with torch.no_grad():
            if in_place:
                with pytest.MonkeyPatch.context() as patch:  # SET rewires a blocked layer without converting it
                    if strategy.drop == "set":
                        patch.setattr(SparsePattern, "to_csr", lambda self: pytest.fail("converted to CSR order"))
                    strategy.update_stored_layer(layer, optimizer, 0.3)
            else:
                with layer.csr_order(optimizer):
                    strategy.update_layer(layer, optimizer, 0.3)
        assert layer.pattern.block_rows == block_rows
        layer.set_block_rows(1, optimizer)
        results.append((layer, optimizer.state[layer.values]["momentum_buffer"], strategy.rng.random()))
    return results


@settings(max_examples=40, deadline=None)
@given(
    n_in=st.integers(2, 60),
    n_out=st.integers(2, 80),
    epsilon=st.sampled_from([1.0, 3.0, 8.0]),
    block_rows=st.integers(2, 20),
    rule=st.sampled_from(["set", "magnitude"]),
    new_weights=st.sampled_from(["init", "zero"]),
    seed=st.integers(0, 10_000),
)
def test_set_rewires_a_blocked_layer_in_its_order_as_it_would_in_csr_order(
    n_in, n_out, epsilon, block_rows, rule, new_weights, seed
):
    """SET on a row-blocked layer, rewired in blocks (no conversion of its weights), is bit for bit the rewiring
    in CSR order: the same connections, weights, momentum and random draws."""
    (fast, fast_momentum, fast_next), (slow, slow_momentum, slow_next) = _rewired_both_ways(
        lambda: SET(0.3, rule=rule, new_weights=new_weights, seed=seed), n_in, n_out, epsilon, block_rows, seed
    )
    assert np.array_equal(fast.pattern.indptr, slow.pattern.indptr)
    assert np.array_equal(fast.pattern.cols, slow.pattern.cols)
    assert torch.equal(fast.values, slow.values) and torch.equal(fast_momentum, slow_momentum)
    assert fast_next == slow_next  # the generator drew the same numbers


def test_equal_weights_at_the_threshold_go_in_csr_order_in_a_blocked_layer_too():
    """Weights of equal score on both sides of SET's threshold: which go follows CSR order, in a blocked layer too."""
    layer, _ = _layer_with_momentum(30, 40, 3.0, 8, 0)
    values = torch.full((layer.nnz,), 0.5)
    values[: layer.nnz // 2] = -0.25  # two scores only: every drop splits a tie
    remove = drop_set(values.numpy(), 0.3)
    settled = remove.copy()
    settle_set_ties(values.numpy(), settled, layer.pattern.csr_keys)
    assert settled.sum() == remove.sum() and not np.array_equal(settled, remove)  # the same count, other weights
    (fast, fast_momentum, _), (slow, slow_momentum, _) = _rewired_both_ways(
        lambda: SET(0.3, seed=1), 30, 40, 3.0, 8, 0, values=values
    )
    assert np.array_equal(fast.pattern.cols, slow.pattern.cols) and torch.equal(fast.values, slow.values)
    assert torch.equal(fast_momentum, slow_momentum)


def test_csr_keys_of_stored_positions():
    csr = random_pattern(23, 17, 120, 3)
    blocked, perm = csr.to_blocked(4)
    positions = np.array([0, 5, 77, 119])
    assert np.array_equal(blocked.csr_keys(positions), csr.keys()[perm[positions]])
    assert np.array_equal(csr.csr_keys(positions), csr.keys()[positions])


@settings(max_examples=40, deadline=None)
@given(n_rows=st.integers(1, 40), n_cols=st.integers(1, 30), block_rows=st.integers(1, 9), seed=st.integers(0, 999))
def test_csr_where_lists_the_kept_connections_per_row(n_rows, n_cols, block_rows, seed):
    rng = np.random.default_rng(seed)
    csr = random_pattern(n_rows, n_cols, int(rng.integers(0, n_rows * n_cols + 1)), seed)
    keep = rng.random(csr.nnz) < 0.6
    stored, perm = csr.to_blocked(block_rows)
    indptr, cols = stored.csr_where(keep[perm])
    expected = SparsePattern.from_coo(csr.rows[keep], csr.cols[keep], n_rows, n_cols)
    assert np.array_equal(indptr, expected.indptr) and np.array_equal(cols, expected.cols)
    with pytest.raises(ValueError, match="keep must be a boolean mask"):
        stored.csr_where(keep[:-1] if keep.size else np.ones(1, bool))
