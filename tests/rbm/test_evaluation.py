"""Evaluation: AIS against the exact partition function, PLL and reconstruction error against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evosparse.rbm import RBM, make_pattern
from evosparse.rbm.evaluation import (
    ais_log_partition,
    exact_log_partition,
    log_likelihood,
    pseudo_log_likelihood,
    reconstruction_error,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_rbm(visible: str, dense: bool, seed: int = 1) -> RBM:
    rng = np.random.default_rng(seed)
    pattern = None if dense else make_pattern("fixprob", 12, 9, epsilon=2, rng=seed)
    rbm = RBM(12, 9, pattern=pattern, visible=visible, init_std=0.5 if visible == "bernoulli" else 0.2,
              dtype=np.float64, seed=seed)  # fmt: skip
    rbm.visible_bias[:] = rng.normal(size=12) * 0.5
    rbm.hidden_bias[:] = rng.normal(size=9) * 0.5
    return rbm


def brute_force_log_z(rbm: RBM) -> float:
    """log of the sum of exp(-E(v, h)) over every joint binary state (Bernoulli; tiny models only)."""
    n_v, n_h = rbm.n_visible, rbm.n_hidden
    hs = ((np.arange(1 << n_h)[:, None] >> np.arange(n_h)) & 1).astype(float)
    terms = []
    for state in range(1 << n_v):
        v = ((state >> np.arange(n_v)) & 1).astype(float)
        terms.append(-rbm.energy(np.repeat(v[None], hs.shape[0], axis=0), hs))
    stacked = np.concatenate(terms)
    return float(stacked.max() + np.log(np.exp(stacked - stacked.max()).sum()))


def test_exact_log_partition_by_brute_force_on_a_tiny_model():
    rbm = RBM(5, 3, dtype=np.float64, seed=0, init_std=0.8)
    rbm.visible_bias[:] = [0.1, -0.2, 0.3, 0.0, 0.5]
    rbm.hidden_bias[:] = [-0.4, 0.2, 0.1]
    assert exact_log_partition(rbm) == pytest.approx(brute_force_log_z(rbm), rel=1e-12)
    wide = RBM(3, 5, dtype=np.float64, seed=0, init_std=0.8)  # enumerates the visible layer instead
    assert exact_log_partition(wide) == pytest.approx(brute_force_log_z(wide), rel=1e-12)


@pytest.mark.parametrize(("visible", "dense"), [("bernoulli", True), ("bernoulli", False), ("gaussian", False)])
def test_ais_agrees_with_the_exact_log_partition(visible, dense):
    rbm = tiny_rbm(visible, dense)
    rng = np.random.default_rng(0)
    data = (rng.random((50, 12)) < 0.4) * 1.0 if visible == "bernoulli" else rng.normal(size=(50, 12))
    exact = exact_log_partition(rbm)
    estimate = ais_log_partition(rbm, n_runs=100, n_betas=1000, data=data, rng=0)
    assert estimate.low <= exact <= estimate.high
    assert abs(estimate.log_z - exact) < 0.05
    # The log-likelihood inherits the interval (ends swapped).
    result = log_likelihood(rbm, data, estimate)
    exact_ll = float(-rbm.free_energy(data).mean() - exact)
    assert result.low <= exact_ll <= result.high
    assert log_likelihood(rbm, data, exact).mean == pytest.approx(exact_ll)


def test_gaussian_log_likelihood_integrates_to_one():
    """1-D Gaussian-Bernoulli RBM: p(v) from the exact log Z integrates to 1 numerically."""
    rbm = RBM(1, 2, visible="gaussian", dtype=np.float64, seed=0)
    rbm.weights[:] = [1.5, -0.7]
    rbm.visible_bias[:] = [0.3]
    rbm.hidden_bias[:] = [0.2, -0.1]
    grid = np.linspace(-15, 15, 30001)[:, None]
    density = np.exp(-rbm.free_energy(grid) - exact_log_partition(rbm))
    assert np.trapezoid(density, grid[:, 0]) == pytest.approx(1.0, abs=1e-8)


def test_pseudo_log_likelihood_matches_free_energy_flips():
    rng = np.random.default_rng(0)
    rbm = RBM(20, 6, pattern=make_pattern("fixprob", 20, 6, epsilon=2, rng=0), dtype=np.float64, seed=3, init_std=0.7)
    rbm.visible_bias[:] = rng.normal(size=20)
    x = (rng.random((7, 20)) < 0.5) * 1.0
    expected = np.zeros(7)
    for i in range(20):
        flipped = x.copy()
        flipped[:, i] = 1 - flipped[:, i]
        expected -= np.logaddexp(0, rbm.free_energy(x) - rbm.free_energy(flipped))
    assert pseudo_log_likelihood(rbm, x) == pytest.approx(expected.mean(), rel=1e-10)
    # A random subset of sites, scaled up, is an unbiased estimate: it averages close to the exact value.
    estimates = [pseudo_log_likelihood(rbm, x, sites=5, rng=s) for s in range(200)]
    assert np.mean(estimates) == pytest.approx(expected.mean(), rel=0.05)


def test_reconstruction_error_by_hand():
    """With no weights, E[v | h] = sigmoid(b) whatever h: the error is mean((v - sigmoid(b))^2)."""
    rbm = RBM(3, 2, init_std=0.0, dtype=np.float64, seed=0)
    rbm.visible_bias[:] = [0.0, math.log(3), -math.log(3)]  # sigmoid: 0.5, 0.75, 0.25
    x = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    expected = np.mean([0.25, 0.0625, 0.0625, 0.25, 0.5625, 0.5625])
    assert reconstruction_error(rbm, x, rng=0, batch_size=1) == pytest.approx(expected, rel=1e-12)


def test_evaluation_bad_input():
    gaussian = tiny_rbm("gaussian", True)
    with pytest.raises(ValueError, match="pseudo_log_likelihood needs binary visible units"):
        pseudo_log_likelihood(gaussian, np.zeros((1, 12)))
    rbm = tiny_rbm("bernoulli", True)
    with pytest.raises(ValueError, match="x must be binary"):
        pseudo_log_likelihood(rbm, np.full((1, 12), 0.5))
    with pytest.raises(ValueError, match=r"sites must be an integer in \[1, 12\] or None, got 0"):
        pseudo_log_likelihood(rbm, np.zeros((1, 12)), sites=0)
    with pytest.raises(ValueError, match="n_runs must be an integer >= 2, got 1"):
        ais_log_partition(rbm, n_runs=1)
    with pytest.raises(ValueError, match="n_betas must be an integer >= 10, got 5"):
        ais_log_partition(rbm, n_betas=5)
    with pytest.raises(ValueError, match="exact_log_partition enumerates 2"):
        exact_log_partition(RBM(30, 30, seed=0))
    with pytest.raises(ValueError, match="x must hold at least one sample"):
        reconstruction_error(rbm, np.zeros((0, 12)))
