"""RBM model and CD learning against a plain dense numpy reference (the same seeded random numbers).

The reference below is the textbook algorithm written with dense matrices and no kernel; the sparse RBM
must agree with it when it holds every connection, and with the reference on a masked W when it holds some.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from evosparse.rbm import RBM, ContrastiveDivergence, full_pattern, make_pattern
from evosparse.sparse import SparsePattern

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = {np.float64: {"rtol": 1e-10, "atol": 1e-12}, np.float32: {"rtol": 2e-4, "atol": 2e-5}}


def dense_cd_step(W, b, c, v0, *, lr, k, weight_decay, velocity, momentum, rng, mask, gaussian=False):
    """Textbook CD-k on dense arrays (W: n_hidden x n_visible), drawing random numbers like the learner."""
    dtype = W.dtype
    p0 = expit(v0 @ W.T + c)
    h = (rng.random(p0.T.shape, dtype=dtype) < p0.T).astype(dtype).T
    mean = h @ W + b
    recon = mean if gaussian else expit(mean)
    error = np.mean((v0 - recon) ** 2)
    for _ in range(k - 1):
        m = h @ W + b
        if gaussian:
            v = m + rng.standard_normal(m.T.shape, dtype=dtype).T
        else:
            v = (rng.random(m.T.shape, dtype=dtype) < expit(m).T).astype(dtype).T
        ph = expit(v @ W.T + c)
        h = (rng.random(ph.T.shape, dtype=dtype) < ph.T).astype(dtype).T
    vk = recon if k == 1 else (h @ W + b if gaussian else expit(h @ W + b))
    pk = expit(vk @ W.T + c)
    n = v0.shape[0]
    grads = {
        "weights": ((p0.T @ v0 - pk.T @ vk) / n - weight_decay * W) * mask,
        "visible_bias": (v0 - vk).mean(axis=0),
        "hidden_bias": (p0 - pk).mean(axis=0),
    }
    for name, g in grads.items():
        velocity[name] = momentum * velocity[name] + lr * g
    return W + velocity["weights"], b + velocity["visible_bias"], c + velocity["hidden_bias"], error


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_cd_steps_match_dense_reference(dtype, dense, k, visible):
    n_visible, n_hidden, batch = 13, 7, 5
    data_rng = np.random.default_rng(0)
    pattern = None if dense else make_pattern("fixprob", n_visible, n_hidden, epsilon=2, rng=1)
    rbm = RBM(n_visible, n_hidden, pattern=pattern, visible=visible, init_std=0.3, dtype=dtype, seed=2)
    rbm.visible_bias[:] = data_rng.normal(size=n_visible)
    rbm.hidden_bias[:] = data_rng.normal(size=n_hidden)
    mask = (rbm.to_dense() != 0).astype(dtype) if not dense else np.ones((n_hidden, n_visible), dtype)
    if not dense:
        assert 0 < rbm.nnz < n_visible * n_hidden
    W, b, c = rbm.to_dense(), rbm.visible_bias.copy(), rbm.hidden_bias.copy()
    velocity = {"weights": np.zeros_like(W), "visible_bias": np.zeros_like(b), "hidden_bias": np.zeros_like(c)}
    settings = {"lr": 0.05, "k": k, "weight_decay": 1e-3, "momentum": 0.5}
    cd = ContrastiveDivergence(**settings, seed=3)
    reference_rng = np.random.default_rng(3)
    for _ in range(3):  # three steps: momentum carries over
        v0 = data_rng.random((batch, n_visible)).astype(dtype)
        if visible == "gaussian":
            v0 = data_rng.normal(size=(batch, n_visible)).astype(dtype)
        error = cd.step(rbm, v0)
        W, b, c, ref_error = dense_cd_step(
            W, b, c, v0, velocity=velocity, rng=reference_rng, mask=mask, gaussian=visible == "gaussian", **settings
        )
        np.testing.assert_allclose(error, ref_error, **TOL[dtype])
        np.testing.assert_allclose(rbm.to_dense(), W, **TOL[dtype])
        np.testing.assert_allclose(rbm.visible_bias, b, **TOL[dtype])
        np.testing.assert_allclose(rbm.hidden_bias, c, **TOL[dtype])
    assert cd.n_updates == 3


def test_connection_statistics_are_the_sampled_dense_product():
    rng = np.random.default_rng(0)
    pattern = make_pattern("fixprob", 20, 9, epsilon=3, rng=0)
    rbm = RBM(20, 9, pattern=pattern, dtype=np.float64, seed=0)
    ht, vt = rng.random((9, 6)), rng.random((20, 6))
    dense = ht @ vt.T
    np.testing.assert_allclose(rbm.connection_statistics(ht, vt), dense[pattern.rows, pattern.cols], rtol=1e-12)


def test_degenerate_patterns():
    """One connection; a hidden unit and a visible unit with none; a single-sample batch."""
    pattern = SparsePattern.from_coo([1], [2], 3, 4)
    rbm = RBM(4, 3, pattern=pattern, dtype=np.float64, seed=0)
    rbm.weights[:] = 2.0
    v = np.array([[0.0, 1.0, 1.0, 0.0]])
    np.testing.assert_allclose(rbm.hidden_probabilities(v), expit(np.array([[0.0, 2.0, 0.0]])))
    np.testing.assert_allclose(rbm.visible_mean(np.array([[0, 1, 1]])), expit(np.array([[0, 0, 2.0, 0]])))
    cd = ContrastiveDivergence(lr=0.1, seed=0)
    cd.step(rbm, v)
    assert rbm.nnz == 1 and np.isfinite(rbm.weights).all()


def test_free_energy_by_hand():
    """F(v) = -b.v - sum_j log(1 + exp(c_j + W_j v)) for a 2x2 Bernoulli RBM with hand-set numbers."""
    rbm = RBM(2, 2, dtype=np.float64, seed=0)
    rbm.weights[:] = [1.0, -2.0, 0.5, 0.0]  # W = [[1, -2], [0.5, 0]] (rows = hidden)
    rbm.visible_bias[:] = [0.1, -0.3]
    rbm.hidden_bias[:] = [0.2, -1.0]
    v = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    # v = (1, 1): -(0.1 - 0.3) - log(1 + e^(0.2 + 1 - 2)) - log(1 + e^(-1 + 0.5))
    expected = [
        0.2 - np.log1p(np.exp(-0.8)) - np.log1p(np.exp(-0.5)),
        0.3 - np.log1p(np.exp(-1.8)) - np.log1p(np.exp(-1.0)),
        0.0 - np.log1p(np.exp(0.2)) - np.log1p(np.exp(-1.0)),
    ]
    np.testing.assert_allclose(rbm.free_energy(v), expected, rtol=1e-12)
    # F(v) = -log sum_h exp(-E(v, h)): check against the energy over all four hidden states.
    hs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    for row in v:
        energies = rbm.energy(np.repeat(row[None], 4, axis=0), hs)
        np.testing.assert_allclose(rbm.free_energy(row[None])[0], -np.log(np.exp(-energies).sum()), rtol=1e-12)


def test_gaussian_free_energy_by_hand():
    rbm = RBM(2, 1, visible="gaussian", dtype=np.float64, seed=0)
    rbm.weights[:] = [0.5, -1.0]
    rbm.visible_bias[:] = [1.0, 0.0]
    rbm.hidden_bias[:] = [0.3]
    v = np.array([[2.0, 1.0]])
    # ||v - b||^2 / 2 = (1 + 1) / 2 = 1; c + W v = 0.3 + 1 - 1 = 0.3
    np.testing.assert_allclose(rbm.free_energy(v), [1.0 - np.log1p(np.exp(0.3))], rtol=1e-12)


def test_sampling_is_seeded_and_never_global():
    rbm = RBM(10, 5, seed=0)
    np.random.seed(123)  # noqa: NPY002 - the global state must not matter
    a = rbm.sample(4, steps=3, rng=7)
    np.random.seed(999)  # noqa: NPY002
    b = rbm.sample(4, steps=3, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, rbm.sample(4, steps=3, rng=8))
    assert np.array_equal(RBM(10, 5, seed=1).weights, RBM(10, 5, seed=1).weights)


def test_persistent_cd_keeps_chains_and_learns():
    rng = np.random.default_rng(0)
    prototypes = (rng.random((2, 16)) < 0.5).astype(np.float32)
    x = prototypes[rng.integers(0, 2, 200)]
    rbm = RBM(16, 8, seed=0, init_std=0.01)
    cd = ContrastiveDivergence(lr=0.1, k=1, persistent=True, momentum=0.5, seed=1)
    first = cd.epoch(rbm, x, batch_size=10, rng=np.random.default_rng(2))
    for _ in range(20):
        last = cd.epoch(rbm, x, batch_size=10, rng=np.random.default_rng(2))
    assert cd.chains.shape == (16, 10)
    assert last < 0.5 * first


def test_state_dict_round_trip():
    pattern = make_pattern("fixprob", 12, 5, epsilon=2, rng=0)
    rbm = RBM(12, 5, pattern=pattern, visible="gaussian", dtype=np.float64, seed=0)
    rbm.visible_bias[:] = 0.5
    again = RBM.from_state_dict(rbm.state_dict())
    np.testing.assert_array_equal(again.to_dense(), rbm.to_dense())
    np.testing.assert_array_equal(again.visible_bias, rbm.visible_bias)
    assert again.visible == "gaussian" and again.dtype == np.float64


def test_full_pattern_is_dense():
    rbm = RBM(6, 4, pattern=full_pattern(4, 6), seed=0)
    assert rbm.is_dense and rbm.nnz == 24
    np.testing.assert_array_equal(rbm.to_dense().ravel(), rbm.weights)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_visible": 0}, "n_visible must be a positive integer, got 0"),
        ({"n_hidden": 2.5}, "n_hidden must be a positive integer, got 2.5"),
        ({"visible": "poisson"}, "visible must be one of bernoulli, gaussian; got 'poisson'"),
        ({"init_std": -1.0}, "init_std must be a finite number >= 0, got -1.0"),
        ({"pattern": SparsePattern.from_coo([0], [0], 2, 2)}, r"pattern must have shape \(n_hidden, n_visible\)"),
    ],
)
def test_bad_model_arguments(kwargs, message):
    arguments = {"n_visible": 4, "n_hidden": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        RBM(arguments.pop("n_visible"), arguments.pop("n_hidden"), **arguments)


def test_bad_dtype_and_inputs():
    with pytest.raises(TypeError, match="dtype must be numpy.float32 or numpy.float64"):
        RBM(3, 2, dtype=np.float16)
    rbm = RBM(3, 2, seed=0)
    with pytest.raises(ValueError, match=r"v must have shape \(batch, 3\), got \(2, 4\)"):
        rbm.hidden_probabilities(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="at least one sample"):
        rbm.free_energy(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        rbm.free_energy(np.full((1, 3), np.nan))
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        rbm.gibbs(np.zeros((1, 3)), steps=-1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0}, "lr must be a finite number > 0, got 0"),
        ({"k": 0}, "k must be an integer >= 1, got 0"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\), got 1.0"),
        ({"weight_decay": -1e-3}, r"weight_decay must be in \[0, inf\), got -0.001"),
        ({"persistent": "yes"}, "persistent must be true or false"),
    ],
)
def test_bad_learner_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ContrastiveDivergence(**kwargs)


def test_learner_refuses_a_rewired_model_without_remap():
    rbm = RBM(8, 4, pattern=make_pattern("fixprob", 8, 4, epsilon=1, rng=0), seed=0)
    cd = ContrastiveDivergence(seed=0)
    cd.step(rbm, np.zeros((2, 8)))
    rbm.rewire(np.arange(rbm.nnz - 1), np.empty(0, dtype=np.int64), np.empty(0))
    with pytest.raises(ValueError, match="call remap"):
        cd.step(rbm, np.zeros((2, 8)))
