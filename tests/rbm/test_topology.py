"""RBM topologies: the registry, SET for RBMs (invariants, last-epoch removal) and XBM (degrees, locality)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.rbm import RBM, RBM_TOPOLOGIES, ContrastiveDivergence, evolve, make_pattern, power_law_degrees
from evosparse.rbm.xbm import grid_coordinates, xbm_pattern
from evosparse.sparse import erdos_renyi_nnz

pytestmark = pytest.mark.usefixtures("one_thread")


def test_registry_names_and_budgets():
    assert tuple(RBM_TOPOLOGIES) == ("dense", "fixprob", "set", "xbm")
    assert [name for name, entry in RBM_TOPOLOGIES.items() if entry.evolves] == ["set"]
    budget = erdos_renyi_nnz(1024, 200, 10)
    assert budget == 12240  # the reference's epsilon (n_visible + n_hidden)
    for name in ("fixprob", "set", "xbm"):
        assert make_pattern(name, 1024, 200, epsilon=10, visible_shape=(32, 32), rng=0).nnz == budget
    assert make_pattern("dense", 30, 20).nnz == 600
    with pytest.raises(ValueError, match="topology must be one of dense, fixprob, set, xbm; got 'ring'"):
        make_pattern("ring", 4, 4)
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0, got 0"):
        make_pattern("set", 4, 4, epsilon=0)


@settings(max_examples=25, deadline=None)
@given(
    n_visible=st.integers(2, 30),
    n_hidden=st.integers(1, 12),
    epsilon=st.floats(0.3, 3),
    zeta=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**16),
)
def test_set_keeps_nnz_without_duplicates_and_survivors_keep_weights(n_visible, n_hidden, epsilon, zeta, seed):
    rng = np.random.default_rng(seed)
    rbm = RBM(n_visible, n_hidden, pattern=make_pattern("set", n_visible, n_hidden, epsilon=epsilon, rng=rng), seed=rng)
    old_keys, old_weights, nnz = rbm.pattern.keys(), rbm.weights.copy(), rbm.nnz
    gather = evolve(rbm, zeta=zeta, rng=rng)
    keys = rbm.pattern.keys()
    assert rbm.nnz == nnz
    assert np.all(np.diff(keys) > 0)  # sorted and unique
    assert keys.min() >= 0 and keys.max() < n_visible * n_hidden
    survivor = gather < nnz  # survivors keep their position and weight; new ones were empty after removal
    np.testing.assert_array_equal(keys[survivor], old_keys[gather[survivor]])
    np.testing.assert_array_equal(rbm.weights[survivor], old_weights[gather[survivor]])
    assert not np.isin(keys[~survivor], keys[survivor]).any()


def test_set_removes_weakest_of_each_sign_and_last_epoch_only_removes():
    rng = np.random.default_rng(0)
    rbm = RBM(50, 20, pattern=make_pattern("set", 50, 20, epsilon=3, rng=0), seed=0)
    positive, negative = (rbm.weights > 0).sum(), (rbm.weights < 0).sum()
    weak = np.concatenate([np.sort(rbm.weights[rbm.weights > 0])[: int(0.3 * positive)],
                           np.sort(rbm.weights[rbm.weights < 0])[::-1][: int(0.3 * negative)]])  # fmt: skip
    nnz = rbm.nnz
    evolve(rbm, zeta=0.3, rng=rng, regrow=False)
    assert rbm.nnz == nnz - weak.shape[0]
    assert not np.isin(weak, rbm.weights).any()


def test_momentum_follows_rewiring():
    rbm = RBM(30, 10, pattern=make_pattern("set", 30, 10, epsilon=2, rng=0), seed=0)
    cd = ContrastiveDivergence(momentum=0.9, seed=0)
    cd.step(rbm, np.random.default_rng(0).random((4, 30)))
    velocity = dict(zip(rbm.pattern.keys().tolist(), cd.velocity["weights"].tolist()))
    gather = evolve(rbm, zeta=0.5, rng=np.random.default_rng(1))
    cd.remap(gather)
    survivor = gather < len(velocity)
    keys = rbm.pattern.keys()
    expected = [velocity[k] for k in keys[survivor].tolist()]
    np.testing.assert_array_equal(cd.velocity["weights"][survivor], np.array(expected, dtype=np.float32))
    assert (~survivor).any() and np.all(cd.velocity["weights"][~survivor] == 0)


def test_power_law_degrees_exponent_and_budget():
    rng = np.random.default_rng(0)
    degrees = power_law_degrees(20000, phi=2.5, total=20000 * 8, max_degree=10**6, rng=rng)
    assert degrees.sum() == 20000 * 8 and degrees.min() >= 1
    # Discrete power-law MLE (Clauset, Shalizi and Newman 2009, eq. 3.7) above the smallest degree.
    d_min = int(np.quantile(degrees, 0.5))
    tail = degrees[degrees >= d_min]
    estimate = 1 + tail.shape[0] / np.log(tail / (d_min - 0.5)).sum()
    assert abs(estimate - 2.5) < 0.2
    # Heavy tail, unlike Erdos-Renyi degrees (Poisson): the largest degree is many times the median.
    assert degrees.max() > 20 * np.median(degrees)


def test_xbm_locality_without_rewiring_and_shortcuts_with():
    shape, n_hidden = (16, 16), 40
    coordinates = grid_coordinates(256, shape)

    def spread(pattern):  # mean distance of a hidden unit's visible units to their centroid
        out = []
        for j in range(n_hidden):
            cols = pattern.cols[pattern.indptr[j] : pattern.indptr[j + 1]]
            points = coordinates[cols]
            out.append(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1)).mean())
        return np.array(out)

    local = xbm_pattern(256, n_hidden, nnz=800, visible_shape=shape, rewire=0.0, rng=np.random.default_rng(0))
    rewired = xbm_pattern(256, n_hidden, nnz=800, visible_shape=shape, rewire=0.5, rng=np.random.default_rng(0))
    random = make_pattern("fixprob", 256, n_hidden, epsilon=800 / 296, rng=0)
    assert local.nnz == rewired.nnz == 800
    # Without rewiring every hidden unit sees a disc: at most the radius of a disc of its degree (+1 cell).
    degrees = local.row_degrees()
    assert np.all(spread(local) <= np.sqrt(degrees / np.pi) + 1.0)
    assert spread(local).mean() < 0.5 * spread(random).mean()
    assert spread(local).mean() < spread(rewired).mean()
    assert degrees.max() > 3 * np.median(degrees)


def test_xbm_bad_arguments():
    with pytest.raises(ValueError, match="visible_shape must have 256 units in all"):
        xbm_pattern(256, 4, nnz=20, visible_shape=(10, 10), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"rewire must be in \[0, 1\], got 1.5"):
        xbm_pattern(16, 4, nnz=20, rewire=1.5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="phi must be > 1"):
        power_law_degrees(5, phi=1.0, total=10, max_degree=5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"zeta must be in \[0, 1\), got 1"):
        evolve(RBM(3, 2, seed=0), zeta=1, rng=np.random.default_rng(0))
