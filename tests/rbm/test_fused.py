"""The fused CD pass (:mod:`evosparse.rbm.fused`) against the step-by-step numpy path it replaces.

The claim is bit identity: the same weights, biases, momentum, errors and generator state after whole epochs,
for every setting the fused path takes (float32 / float64, CD-1 / CD-k, Bernoulli / Gaussian visible units,
each tile width of the kernels, an uneven last batch). One hand-worked update pins the arithmetic itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from evosparse.rbm import RBM, ContrastiveDivergence, make_pattern
from evosparse.rbm.fused import _pairwise_sum
from evosparse.sparse import SparsePattern, set_num_threads

pytestmark = pytest.mark.usefixtures("one_thread")


def _train(fused: bool, *, dtype=np.float32, k=1, visible="bernoulli", batch_size=7, momentum=0.5, epochs=2):
    n_visible, n_hidden = 30, 13  # an odd row count: the two-row product tiles end on a single row
    data_rng = np.random.default_rng(0)
    x = data_rng.random((45, n_visible))  # float64 data: the cast to float32 is part of the path
    if visible == "gaussian":
        x = data_rng.standard_normal((45, n_visible))
    pattern = make_pattern("fixprob", n_visible, n_hidden, epsilon=3, rng=1)
    rbm = RBM(n_visible, n_hidden, pattern=pattern, visible=visible, init_std=0.3, dtype=dtype, seed=2)
    rbm.visible_bias[:] = data_rng.normal(size=n_visible) * 0.1
    learner = ContrastiveDivergence(lr=0.05, k=k, momentum=momentum, weight_decay=1e-3, seed=3, fused=fused)
    shuffle = np.random.default_rng(4)
    errors = [learner.epoch(rbm, x, batch_size=batch_size, rng=shuffle) for _ in range(epochs)]
    errors.append(learner.step(rbm, x[:5]))
    return rbm, learner, errors


def _assert_identical(a, b):
    (rbm_a, learner_a, errors_a), (rbm_b, learner_b, errors_b) = a, b
    assert errors_a == errors_b
    for name in ("weights", "visible_bias", "hidden_bias"):
        np.testing.assert_array_equal(getattr(rbm_a, name), getattr(rbm_b, name), err_msg=name)
        np.testing.assert_array_equal(learner_a.velocity[name], learner_b.velocity[name], err_msg=f"{name} momentum")
    assert learner_a.rng.bit_generator.state == learner_b.rng.bit_generator.state
    assert learner_a.n_updates == learner_b.n_updates


@pytest.mark.parametrize(
    "settings",
    [
        {},  # CD-1, float32, batch 7 (the last of 45 samples: 3), one masked register per tile
        {"dtype": np.float64, "k": 3},
        {"visible": "gaussian", "k": 2},
        {"visible": "gaussian", "dtype": np.float64, "momentum": 0.0},
        {"batch_size": 2},  # stacked phases of 4 samples: the scalar statistics of the SDDMM kernel
        {"batch_size": 20},  # 40 stacked: one-register statistics tiles (AVX-512: 2.5 registers), two-register products
        {"batch_size": 45, "dtype": np.float32},  # 90 stacked: four-register statistics tiles
        {"batch_size": 1, "k": 2},
    ],
)
def test_fused_epochs_are_bit_identical_to_the_numpy_path(settings):
    _assert_identical(_train(True, **settings), _train(False, **settings))


def test_fused_results_do_not_depend_on_threads(small_calls_parallel):
    two = None
    try:
        set_num_threads(2)
        two = _train(True, batch_size=9)
    finally:
        set_num_threads(1)
    _assert_identical(two, _train(True, batch_size=9))


@pytest.mark.parametrize("fused", [True, False])
def test_one_update_by_hand(fused):
    """2 visible units, 1 hidden unit, one connection w = 0.5 between hidden 0 and visible 0; v0 = (1, 0).

    With c = 30, p(h = 1 | v) = sigmoid(30 + ...) rounds to 1 in float32, so h0 = 1 whatever the draw (one
    uniform draw is made). Then E[v | h0] = (sigmoid(0.5), sigmoid(0)) = (s, 0.5), p_k = 1, and with lr 0.1,
    no momentum, weight decay 0.01:
      error = ((1 - s)^2 + 0.5^2) / 2;  dw = 0.1 (1 * 1 - 1 * s - 0.01 * 0.5);  db = 0.1 (1 - s, 0 - 0.5);  dc = 0.
    """
    pattern = SparsePattern.from_coo([0], [0], 1, 2)
    rbm = RBM(2, 1, pattern=pattern, dtype=np.float32, seed=0)
    rbm.weights[:] = 0.5
    rbm.hidden_bias[:] = 30.0
    learner = ContrastiveDivergence(lr=0.1, weight_decay=0.01, seed=7, fused=fused)
    error = learner.step(rbm, np.array([[1.0, 0.0]]))
    s = expit(0.5)
    assert error == pytest.approx(((1 - s) ** 2 + 0.25) / 2, rel=1e-6)
    np.testing.assert_allclose(rbm.weights, [0.5 + 0.1 * (1 - s - 0.005)], rtol=1e-6)
    np.testing.assert_allclose(rbm.visible_bias, [0.1 * (1 - s), -0.05], rtol=1e-6)
    np.testing.assert_array_equal(rbm.hidden_bias, [30.0])
    one_draw = np.random.default_rng(7)
    one_draw.random(1, dtype=np.float32)
    assert learner.rng.bit_generator.state == one_draw.bit_generator.state


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 16, 127, 128, 129, 300, 1000, 10_240, 100_003])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pairwise_sum_is_numpys(n, dtype):
    a = np.random.default_rng(n).random(n + 3).astype(dtype)
    assert _pairwise_sum(a, 3, n) == a[3:].sum()
    if n:
        assert _pairwise_sum(a, 3, n) / dtype(n) == a[3:].mean()


def test_fused_bad_input_and_fallbacks():
    rbm = RBM(4, 3, pattern=make_pattern("fixprob", 4, 3, epsilon=1, rng=0), seed=0)
    learner = ContrastiveDivergence(seed=0)
    with pytest.raises(ValueError, match="batch holds NaN"):
        learner.step(rbm, np.array([[0.0, np.nan, 0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"batch must have shape \(batch, 4\)"):
        learner.epoch(rbm, np.zeros((5, 3)), batch_size=2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="fused must be true or false"):
        ContrastiveDivergence(fused=1)
    # Integer data is cast to the model's dtype first, as the numpy path does.
    bits = np.random.default_rng(1).integers(0, 2, (6, 4))
    fused, reference = RBM(4, 3, pattern=rbm.pattern, seed=0), RBM(4, 3, pattern=rbm.pattern, seed=0)
    ContrastiveDivergence(seed=1).epoch(fused, bits, batch_size=4, rng=np.random.default_rng(2))
    ContrastiveDivergence(seed=1, fused=False).epoch(reference, bits, batch_size=4, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(fused.weights, reference.weights)
