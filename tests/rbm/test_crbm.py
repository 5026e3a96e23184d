"""CRBM and FCRBM: conditionals and CD gradients against an independent energy function, sparse = dense when
every connection exists, a hand-worked CRBM, SET on the weight matrices, determinism and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from evosparse.rbm.connections import Connections
from evosparse.rbm.crbm import CRBM, FCRBM, ConditionalRBMConfig, build_conditional_rbm, fit_epoch
from evosparse.sparse import SparsePattern

pytestmark = pytest.mark.usefixtures("one_thread")

N_V, N_U, N_Y, N_H, N_F = 3, 4, 2, 5, 3


def full_pattern(n_rows: int, n_cols: int) -> SparsePattern:
    rows, cols = np.divmod(np.arange(n_rows * n_cols), n_cols)
    return SparsePattern.from_coo(rows, cols, n_rows, n_cols)


def as_all_connections_sparse(model):
    """A copy of a dense model whose every matrix is sparse with all positions stored (same values)."""
    import copy

    twin = copy.deepcopy(model)
    for name, w in model.weights.items():
        twin.weights[name] = Connections.from_arrays(w.values.ravel().copy(), full_pattern(w.n_rows, w.n_cols))
    return twin


def make_model(kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if kind == "crbm":
        model = CRBM(N_V, N_U, N_Y, N_H, init_scale=0.5, rng=rng, dtype=np.float64)
    else:
        model = FCRBM(N_V, N_U, N_Y, N_H, n_factors=N_F, init_scale=0.5, rng=rng, dtype=np.float64)
    model.visible_bias[:] = rng.standard_normal(N_V)
    model.hidden_bias[:] = rng.standard_normal(N_H)
    return model


def batch(seed: int = 1, n: int = 4):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n, N_U))
    y = np.eye(N_Y)[rng.integers(0, N_Y, n)]
    v = rng.standard_normal((n, N_V))
    h = (rng.random((n, N_H)) < 0.5).astype(np.float64)
    return v, h, u, y


# ---- an independent reference: the energy written out with dense arrays and an explicit 3-way tensor ----------
def energy(model, v, h, u, y):
    """E(v, h | u, y) per batch row, from the papers' formulas (no code shared with the model)."""
    w = {name: c.to_dense() for name, c in model.weights.items()}
    if isinstance(model, FCRBM):
        a_hat = model.visible_bias + np.einsum("fi,bf->bi", w["Av"], (u @ w["Au"].T) * (y @ w["Ay"].T))
        b_hat = model.hidden_bias + np.einsum("fj,bf->bj", w["Bh"], (u @ w["Bu"].T) * (y @ w["By"].T))
        tensor = np.einsum("fi,fj,fk->ijk", w["Wv"], w["Wh"], w["Wy"])  # W_ijk = sum_f Wv_if Wh_jf Wy_kf
        interaction = np.einsum("bi,bj,bk,ijk->b", v, h, y, tensor)
    else:
        c = np.concatenate([u, y], axis=1)
        a_hat = model.visible_bias + c @ w["A"].T
        b_hat = model.hidden_bias + c @ w["B"].T
        interaction = np.einsum("bi,ji,bj->b", v, w["W"], h)
    return 0.5 * np.sum((v - a_hat) ** 2, axis=1) - np.sum(b_hat * h, axis=1) - interaction


@pytest.mark.parametrize("kind", ["crbm", "fcrbm"])
def test_hidden_conditional_is_the_energy_difference(kind):
    model = make_model(kind)
    v, h, u, y = batch()
    expected = np.empty_like(h)
    for j in range(N_H):  # p(h_j = 1 | rest) = sigmoid(E(h_j = 0) - E(h_j = 1)), the other h_j irrelevant
        on, off = h.copy(), h.copy()
        on[:, j], off[:, j] = 1.0, 0.0
        expected[:, j] = 1.0 / (1.0 + np.exp(energy(model, v, on, u, y) - energy(model, v, off, u, y)))
    np.testing.assert_allclose(model.hidden_probabilities(v, u, y), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["crbm", "fcrbm"])
def test_visible_mean_minimises_the_energy(kind):
    # E is (v - m)^2 / 2 + const in v with m the conditional mean, so dE/dv = v - m at any v: m = v - dE/dv.
    model = make_model(kind)
    v, h, u, y = batch()
    step, gradient = 1e-6, np.empty_like(v)
    for i in range(N_V):
        plus, minus = v.copy(), v.copy()
        plus[:, i] += step
        minus[:, i] -= step
        gradient[:, i] = (energy(model, plus, h, u, y) - energy(model, minus, h, u, y)) / (2 * step)
    np.testing.assert_allclose(model.visible_mean(h, u, y), v - gradient, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["crbm", "fcrbm"])
def test_cd_gradients_are_the_derivative_of_the_energy_difference(kind):
    """phase_gradients = d/dtheta mean_b [(-E(v+, h+)) - (-E(v-, h-))], by central differences in float64."""
    model = make_model(kind)
    v_data, h_data, u, y = batch(1)
    v_model, h_model, _, _ = batch(2)
    h_data, h_model = h_data * 0.7 + 0.1, h_model * 0.4 + 0.3  # probabilities, as CD uses them

    def objective():
        return np.mean(energy(model, v_model, h_model, u, y) - energy(model, v_data, h_data, u, y))

    gradients = model.phase_gradients(v_data, h_data, v_model, h_model, u, y)
    step = 1e-6
    targets = {name: c.values for name, c in model.weights.items()}
    targets |= {"visible_bias": model.visible_bias, "hidden_bias": model.hidden_bias}
    assert set(gradients) == set(targets)
    for name, array in targets.items():
        numeric = np.empty(array.shape)
        for index in np.ndindex(array.shape):
            keep = array[index]
            array[index] = keep + step
            up = objective()
            array[index] = keep - step
            down = objective()
            array[index] = keep
            numeric[index] = (up - down) / (2 * step)
        np.testing.assert_allclose(gradients[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("kind", ["crbm", "fcrbm"])
def test_sparse_with_every_connection_equals_dense(kind):
    dense = make_model(kind)
    sparse = as_all_connections_sparse(dense)
    assert all(w.is_sparse for w in sparse.weights.values())
    v, h, u, y = batch()
    np.testing.assert_allclose(sparse.hidden_probabilities(v, u, y), dense.hidden_probabilities(v, u, y), rtol=1e-12)
    np.testing.assert_allclose(sparse.visible_mean(h, u, y), dense.visible_mean(h, u, y), rtol=1e-12)
    np.testing.assert_allclose(sparse.predict(u, y, steps=5), dense.predict(u, y, steps=5), rtol=1e-11)
    g_sparse = sparse.cd_gradients(v, u, y, k=2, rng=np.random.default_rng(3))
    g_dense = dense.cd_gradients(v, u, y, k=2, rng=np.random.default_rng(3))
    for name in g_dense:
        np.testing.assert_allclose(g_sparse[name].ravel(), g_dense[name].ravel(), rtol=1e-10, atol=1e-13, err_msg=name)
    assert sparse.n_parameters() == dense.n_parameters()


def test_hand_worked_crbm():
    # One visible, one hidden, one past value, no context. W = 2, A = 0.5, B = -1, a = 0.1, b = 0.3.
    model = CRBM(1, 1, 0, 1, rng=np.random.default_rng(0), dtype=np.float64)
    for name, value in (("W", 2.0), ("A", 0.5), ("B", -1.0)):
        model.weights[name].values[:] = value
    model.visible_bias[:], model.hidden_bias[:] = 0.1, 0.3
    u, y = np.array([[2.0]]), np.zeros((1, 0))
    # a^ = 0.1 + 0.5 * 2 = 1.1;  b^ = 0.3 - 1 * 2 = -1.7
    # p(h = 1 | v = 1) = sigmoid(-1.7 + 2 * 1) = sigmoid(0.3) = 0.574442516811659
    assert model.hidden_probabilities(np.array([[1.0]]), u, y)[0, 0] == pytest.approx(0.574442516811659, rel=1e-12)
    # E[v | h = 1] = 1.1 + 2 * 1 = 3.1
    assert model.visible_mean(np.array([[1.0]]), u, y)[0, 0] == pytest.approx(3.1, rel=1e-12)
    # CD statistics with data (v = 1, h = 0.5) and model (v = 3, h = 0.25):
    # dW = 1 * 0.5 - 3 * 0.25 = -0.25; dA = (1 - 3) * u = -4; dB = (0.5 - 0.25) * u = 0.5; da = -2; db = 0.25
    g = model.phase_gradients(np.array([[1.0]]), np.array([[0.5]]), np.array([[3.0]]), np.array([[0.25]]), u, y)
    expected = {"W": -0.25, "A": -4.0, "B": 0.5, "visible_bias": -2.0, "hidden_bias": 0.25}
    for name, value in expected.items():
        assert g[name].item() == pytest.approx(value), name
    # one step, lr 0.1, momentum 0.9 (from zero velocity), weight decay 0.01 on weights only:
    # W += 0.1 * (-0.25 - 0.01 * 2) = -0.027 -> 1.973; visible bias += 0.1 * -2 -> -0.1
    model.update(g, lr=0.1, momentum=0.9, weight_decay=0.01)
    assert model.weights["W"].values.item() == pytest.approx(1.973)
    assert model.visible_bias.item() == pytest.approx(-0.1)
    # second step, same gradient: velocity = 0.9 * -0.027 + 0.1 * (-0.25 - 0.01 * 1.973)
    #                                    = -0.0243 - 0.026973 = -0.051273
    model.update(g, lr=0.1, momentum=0.9, weight_decay=0.01)
    assert model.weights["W"].values.item() == pytest.approx(1.973 - 0.051273)


def test_connections_products_and_statistics_match_dense():
    rng = np.random.default_rng(4)
    sparse = Connections(7, 9, epsilon=2.0, init_scale=1.0, rng=rng, dtype=np.float64)
    dense = sparse.to_dense()
    assert 0 < sparse.n_weights < 63 and np.count_nonzero(dense) == sparse.n_weights
    x, yy = rng.standard_normal((5, 9)), rng.standard_normal((5, 7))
    np.testing.assert_allclose(sparse.forward(x), x @ dense.T, rtol=1e-12)
    np.testing.assert_allclose(sparse.backward(yy), yy @ dense, rtol=1e-12)
    full = yy.T @ x
    np.testing.assert_allclose(sparse.statistics(yy, x), full[sparse.pattern.rows, sparse.pattern.cols], rtol=1e-12)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 9\)"):
        sparse.forward(np.ones((5, 8)))


def test_set_evolution_keeps_nnz_and_survivors_momentum():
    rng = np.random.default_rng(5)
    c = Connections(20, 30, epsilon=3.0, init_scale=1.0, rng=rng, dtype=np.float64)
    c.velocity[:] = np.arange(c.n_weights, dtype=np.float64) + 1.0
    before = dict(zip(c.pattern.keys().tolist(), zip(c.values.tolist(), c.velocity.tolist())))
    nnz = c.n_weights
    changed = c.evolve(0.3, np.random.default_rng(6))
    assert changed > 0 and c.n_weights == nnz and c.pattern.nnz == nnz
    keys = c.pattern.keys()
    assert np.all(np.diff(keys) > 0)  # sorted, no duplicates
    # every old velocity was >= 1: a zero velocity marks a new connection (possibly at a just-removed position)
    new = c.velocity == 0.0
    assert int(new.sum()) == changed
    for position in np.flatnonzero(~new):
        assert (c.values[position], c.velocity[position]) == before[int(keys[position])]
    dense = Connections(4, 4, epsilon=None, init_scale=1.0, rng=rng)
    assert dense.evolve(0.3, rng) == 0


def test_training_is_seeded_and_set_rewires():
    rng = np.random.default_rng(0)
    u = rng.standard_normal((64, N_U))
    y = np.eye(N_Y)[rng.integers(0, N_Y, 64)]
    v = u[:, :N_V] * 0.5
    config = ConditionalRBMConfig(n_hidden=8, n_factors=4, epsilon=2.0, batch_size=16, epochs=2)
    runs = []
    for _ in range(2):
        model = build_conditional_rbm("fcrbm", "set", config, N_V, N_U, N_Y, seed=7)
        train_rng = np.random.default_rng(8)
        patterns = model.weights["Wv"].pattern.keys().copy()
        fit_epoch(model, v, u, y, config, train_rng)
        assert model.evolve(config.zeta, train_rng) > 0
        runs.append((model.predict(u, y), patterns, model.weights["Wv"].pattern.keys()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])


def test_bad_input_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_context must be >= 1 for an FCRBM"):
        FCRBM(2, 2, 0, 2, n_factors=2, rng=rng)
    with pytest.raises(ValueError, match="n_hidden must be a positive integer, got 0"):
        CRBM(2, 2, 1, 0, rng=rng)
    model = CRBM(2, 3, 1, 2, rng=rng)
    with pytest.raises(ValueError, match=r"history must have shape \(batch, 3\), got \(4, 2\)"):
        model.predict(np.zeros((4, 2)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"context must have shape \(4, 1\)"):
        model.predict(np.zeros((4, 3)), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="history holds non-finite values"):
        model.predict(np.full((1, 3), np.nan), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        model.predict(np.zeros((1, 3)), np.zeros((1, 1)), steps=0)
    with pytest.raises(ValueError, match="model must be one of crbm, fcrbm|model must be one of"):
        build_conditional_rbm("rbm", "dense", ConditionalRBMConfig(), 2, 2, 1, seed=0)
    with pytest.raises(ValueError, match="topology must be one of"):
        build_conditional_rbm("crbm", "xbm", ConditionalRBMConfig(), 2, 2, 1, seed=0)
    with pytest.raises(ValueError, match=r"zeta must be in \[0, 1\), got 1.2"):
        ConditionalRBMConfig(zeta=1.2)
    with pytest.raises(ValueError, match="cd_steps must be an integer >= 1, got 0"):
        ConditionalRBMConfig(cd_steps=0)
