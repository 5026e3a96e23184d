import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.nn import SparseLinear, SparseMLP
from evosparse.topology import SET, UpdateSchedule, set_rewiring, weakest_connections
from evosparse.topology.rewire import apply_rewiring


def test_paper_rule_removes_zeta_of_each_sign_closest_to_zero():
    values = np.array([0.9, -0.8, 0.1, -0.05, 0.5, -0.6, 0.2, -0.3, 0.05, -0.7])
    remove = weakest_connections(values, zeta=0.4, rule="set")
    # 5 positives -> int(0.4*5)=2 smallest: 0.05, 0.1 ; 5 negatives -> 2 closest to zero: -0.05, -0.3
    assert sorted(values[remove]) == [-0.3, -0.05, 0.05, 0.1]


def test_magnitude_rule_removes_smallest_absolute_values():
    values = np.array([0.9, -0.8, 0.1, -0.05, 0.5, -0.6, 0.2, -0.3, 0.05, -0.7])
    remove = weakest_connections(values, zeta=0.3, rule="magnitude")
    assert sorted(np.abs(values[remove])) == [0.05, 0.05, 0.1]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"zeta must be in \[0, 1\), got 1.2"):
        set_rewiring(np.ones(3), np.arange(3), 2, 2, zeta=1.2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="rule must be one of"):
        weakest_connections(np.ones(3), 0.3, rule="biggest")
    with pytest.raises(ValueError, match="new_weights must be one of"):
        SET(0.3, new_weights="ones")
    with pytest.raises(ValueError, match=r"zeta must be in \[0, 1\)"):
        SET(-0.1)


@settings(max_examples=40, deadline=None)
@given(
    n_rows=st.integers(2, 30),
    n_cols=st.integers(2, 30),
    density=st.floats(0.05, 0.9),
    zeta=st.floats(0.0, 0.95),
    rule=st.sampled_from(["set", "magnitude"]),
    seed=st.integers(0, 2**16),
)
def test_rewiring_invariants(n_rows, n_cols, density, zeta, rule, seed):
    rng = np.random.default_rng(seed)
    total = n_rows * n_cols
    nnz = max(1, int(density * total))
    keys = np.sort(rng.choice(total, nnz, replace=False)).astype(np.int64)
    values = rng.standard_normal(nnz)
    r = set_rewiring(values, keys, n_rows, n_cols, zeta=zeta, rng=rng, rule=rule)
    new_all = np.concatenate([keys[r.keep], r.new_keys])
    assert new_all.size == nnz  # nnz preserved
    assert np.unique(new_all).size == nnz  # no duplicates
    assert new_all.min() >= 0 and new_all.max() < total  # in range
    assert not np.isin(r.new_keys, keys[r.keep]).any()  # grown only on positions empty after removal
    assert np.all(np.diff(r.keep) > 0) and np.all(np.diff(r.new_keys) > 0)


def _train_steps(model, optimizer, steps=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, model.layer_sizes[0], generator=g)
        y = torch.randint(0, model.layer_sizes[-1], (8,), generator=g)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_survivors_keep_weights_and_optimizer_state_new_ones_start_at_zero(optimizer_name):
    model = SparseMLP((30, 40, 20, 5), epsilon=3, seed=0)
    params = model.parameters()
    opt = (
        torch.optim.SGD(params, lr=0.1, momentum=0.9) if optimizer_name == "sgd" else torch.optim.Adam(params, lr=0.01)
    )
    _train_steps(model, opt)
    layers = model.sparse_layers()
    before = []
    for layer in layers:
        state = {k: v.clone() for k, v in opt.state[layer.values].items() if torch.is_tensor(v) and v.dim() == 1}
        before.append((layer.pattern.keys().copy(), layer.values.detach().clone(), state, layer.values))
    strategy = SET(0.3, seed=1)
    assert strategy.on_epoch_end(model, opt, 1)
    for layer, (old_keys, old_values, old_state, param) in zip(layers, before):
        assert layer.values is param  # the optimizer still tracks the same Parameter
        new_keys = layer.pattern.keys()
        assert new_keys.size == old_keys.size and np.unique(new_keys).size == new_keys.size
        if layer.density == 1.0:
            assert np.array_equal(new_keys, old_keys)
            continue
        # Survivors: old connections SET did not remove (a removed position may be regrown as a new one).
        removed = weakest_connections(old_values.numpy(), 0.3)
        survived = np.isin(new_keys, old_keys[~removed])
        assert survived.sum() == (~removed).sum() and (~survived).sum() > 0
        old_pos = np.searchsorted(old_keys, new_keys[survived])
        survived_t = torch.from_numpy(survived)
        torch.testing.assert_close(layer.values.detach()[survived_t], old_values[old_pos])
        for name, tensor in old_state.items():
            now = opt.state[layer.values][name]
            assert now.shape == layer.values.shape
            torch.testing.assert_close(now[survived_t], tensor[old_pos])
            assert torch.all(now[~survived_t] == 0), name
    _train_steps(model, opt, steps=2)  # training continues with the remapped state


def test_dense_layers_are_left_alone_and_nnz_is_constant_over_many_updates():
    model = SparseMLP((200, 50, 10), epsilon=9, seed=0)  # 50 -> 10 saturates: dense
    nnz = [layer.nnz for layer in model.sparse_layers()]
    output_keys = model.sparse_layers()[-1].pattern.keys().copy()
    strategy = SET(0.5, seed=0)
    for epoch in range(1, 6):
        strategy.on_epoch_end(model, None, epoch)
    assert [layer.nnz for layer in model.sparse_layers()] == nnz
    assert np.array_equal(model.sparse_layers()[-1].pattern.keys(), output_keys)


def test_new_weights_follow_the_init_option():
    layer = SparseLinear(100, 100, density=0.1, seed=0)
    model = torch.nn.Sequential(layer)
    with torch.no_grad():
        layer.values.mul_(100)  # survivors are now far larger than any fresh init
    old_keys = layer.pattern.keys().copy()
    SET(0.3, new_weights="zero", seed=0).on_epoch_end(model, None, 1)
    fresh = ~np.isin(layer.pattern.keys(), old_keys)
    assert fresh.sum() > 0 and torch.all(layer.values.detach()[torch.from_numpy(fresh)] == 0)
    old_keys = layer.pattern.keys().copy()
    SET(0.3, new_weights="init", seed=0).on_epoch_end(model, None, 1)
    fresh = torch.from_numpy(~np.isin(layer.pattern.keys(), old_keys))
    bound = float(np.sqrt(6.0 / layer.pattern.row_degrees().min()))
    assert torch.all(layer.values.detach()[fresh].abs() <= bound) and torch.any(layer.values.detach()[fresh] != 0)


def test_schedule_decides_when_and_how_much():
    constant = UpdateSchedule(zeta=0.3, every=2, stop_after=7)
    assert [constant.fraction(t) for t in range(1, 9)] == [0, 0.3, 0, 0.3, 0, 0.3, 0, 0]
    cosine = UpdateSchedule(zeta=0.4, decay="cosine", stop_after=4)
    assert cosine.fraction(2) == pytest.approx(0.2) and cosine.fraction(4) == 0
    with pytest.raises(ValueError, match="needs stop_after"):
        UpdateSchedule(decay="cosine")
    with pytest.raises(ValueError, match="unit must be one of"):
        UpdateSchedule(unit="batch")
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        UpdateSchedule(every=0)
    strategy = SET(schedule=UpdateSchedule(zeta=0.2, every=3, unit="step"), seed=0)
    model = SparseMLP((10, 30, 4), epsilon=2, seed=0)
    assert [strategy.on_step_end(model, None, s) for s in range(1, 7)] == [False, False, True, False, False, True]
    assert not strategy.on_epoch_end(model, None, 1)


def test_same_seed_same_evolution_and_state_round_trip():
    def run(strategy):
        model = SparseMLP((30, 60, 60, 5), epsilon=4, seed=3)
        for epoch in range(1, 4):
            strategy.on_epoch_end(model, None, epoch)
        return [layer.pattern.keys().copy() for layer in model.sparse_layers()]

    a, b = run(SET(0.3, seed=11)), run(SET(0.3, seed=11))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    s1 = SET(0.3, seed=5)
    s1.rng.random(10)
    s2 = SET(0.3, seed=99)
    s2.load_state_dict(s1.state_dict())
    assert s1.rng.random() == s2.rng.random() and s2.n_updates == s1.n_updates


def test_all_zero_layer_is_rewired_entirely():
    # Zeros are always removed (as in the SET code); with nothing surviving every connection is new.
    layer = SparseLinear(20, 10, density=0.2, seed=0)
    with torch.no_grad():
        layer.values.zero_()
    nnz = layer.nnz
    SET(0.3, seed=0).on_epoch_end(torch.nn.Sequential(layer), None, 1)
    assert layer.nnz == nnz and torch.all(layer.values != 0)


def test_zeta_of_the_wrong_type_is_a_clear_error():
    with pytest.raises(ValueError, match=r"^zeta must be in \[0, 1\), got '0.3'$"):
        SET(zeta="0.3")


def test_zeta_and_a_schedule_that_disagree_are_refused():
    # One source of truth: the schedule's zeta is the fraction; a different zeta beside it is an error.
    with pytest.raises(ValueError, match=r"zeta \(0.5\) differs from the schedule's zeta \(0.3\)"):
        SET(0.5, schedule=UpdateSchedule(zeta=0.3))
    assert SET(schedule=UpdateSchedule(zeta=0.2, every=2)).zeta == 0.2
    assert SET().zeta == 0.3


@pytest.mark.parametrize("rule", ["set", "magnitude"])
def test_nan_weights_are_the_weakest_and_go_first(rule):
    values = np.array([0.9, np.nan, -0.8, 0.1, -0.05, 0.5, np.nan, -0.6, 0.2, -0.3])
    remove = weakest_connections(values, zeta=0.2, rule=rule)
    assert remove[[1, 6]].all()  # both NaNs, whatever the budget of each sign
    layer = SparseLinear(10, 10, density=0.3, seed=0)
    with torch.no_grad():
        layer.values[:5] = float("nan")
    SET(0.1, rule=rule, seed=0).on_epoch_end(torch.nn.Sequential(layer), None, 1)
    assert not torch.isnan(layer.values).any() and layer.nnz == 30


def slow_sort_rule(values: np.ndarray, zeta: float) -> np.ndarray:
    """Reference: sort each sign by closeness to zero (stable, so equal weights go in CSR order), take zeta of it."""
    expected = np.zeros(values.size, dtype=bool)
    for sign in (1, -1):
        positions = np.flatnonzero(sign * values > 0)
        closest = positions[np.argsort(sign * values[positions], kind="stable")]
        expected[closest[: int(zeta * positions.size)]] = True
    expected[values == 0] = zeta > 0
    return expected


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-4, 4), min_size=0, max_size=60),
    st.floats(0, 0.99),
)
def test_paper_rule_equals_a_slow_sort_even_with_ties(levels, zeta):
    values = np.array(levels, dtype=np.float32) / 4
    assert np.array_equal(weakest_connections(values, zeta, "set"), slow_sort_rule(values, zeta))


@pytest.mark.parametrize("new_weights", ["init", "zero"])
def test_the_layer_update_is_the_pure_function_applied(new_weights):
    """SET rewires a layer per row (no int64 keys), drawing exactly what set_rewiring + apply_rewiring would:
    the same positions, the same new weights, the survivors' momentum carried and zero for new connections."""
    model = SparseMLP((40, 300, 200, 3), epsilon=6, seed=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _train_steps(model, opt)
    twin = copy.deepcopy(model)
    twin_opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    twin_opt.load_state_dict(opt.state_dict())
    strategy = SET(0.3, new_weights=new_weights, seed=7)
    assert strategy.on_epoch_end(model, opt, 1)
    rng = np.random.default_rng(7)
    for layer, twin_layer in zip(model.sparse_layers(), twin.sparse_layers()):
        pattern = twin_layer.pattern
        if pattern.nnz == pattern.n_rows * pattern.n_cols:
            continue
        values = twin_layer.values.detach().numpy()
        change = set_rewiring(values, pattern.keys(), pattern.n_rows, pattern.n_cols, zeta=0.3, rng=rng)
        count = change.new_keys.shape[0]
        fresh = (
            torch.zeros(count)
            if new_weights == "zero"
            else twin_layer.sample_weights(change.new_keys // pattern.n_cols, rng)
        )
        apply_rewiring(twin_layer, change, fresh, twin_opt)
        assert np.array_equal(layer.pattern.indptr, twin_layer.pattern.indptr)
        assert np.array_equal(layer.pattern.cols, twin_layer.pattern.cols)
        assert torch.equal(layer.values, twin_layer.values)
        momentum, twin_momentum = (
            o.state[p.values]["momentum_buffer"] for o, p in ((opt, layer), (twin_opt, twin_layer))
        )
        assert torch.equal(momentum, twin_momentum)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_paper_rule_on_a_large_layer_with_ties_equals_a_slow_sort(dtype):
    """Above 2^16 weights the histogram and the marking run in parts (in parallel): still exactly a stable sort,
    the ties at a threshold going in CSR order across the parts."""
    rng = np.random.default_rng(5)
    values = (rng.integers(-40, 41, 300_000) / 8).astype(dtype)  # many ties at every level
    values[rng.integers(0, values.size, 2_000)] = rng.standard_normal(2_000)
    for zeta in (0.0, 0.03, 0.3, 0.97):
        assert np.array_equal(weakest_connections(values, zeta, "set"), slow_sort_rule(values, zeta)), zeta
