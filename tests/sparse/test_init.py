"""Erdos-Renyi initialisation, its budgets, and the sampler of empty positions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.nn import SparseLinear, SparseMLP
from evosparse.sparse.init import (
    epsilon_for_density,
    erdos_renyi_nnz,
    erdos_renyi_pattern,
    erdos_renyi_probability,
    network_nnz,
    random_pattern,
)
from evosparse.sparse.sampling import sample_csr, sample_free_keys, sample_free_rows


@pytest.mark.parametrize(
    ("n_in", "n_out", "epsilon"), [(784, 1000, 20), (1000, 1000, 20), (100, 37, 3), (5000, 4000, 1)]
)
def test_density_matches_the_set_formula(n_in, n_out, epsilon):
    p = erdos_renyi_pattern(n_in, n_out, epsilon, np.random.default_rng(0))
    expected = epsilon * (n_in + n_out) / (n_in * n_out)
    assert erdos_renyi_probability(n_in, n_out, epsilon) == pytest.approx(expected)
    assert p.nnz == round(expected * n_in * n_out)
    assert (p.n_rows, p.n_cols) == (n_out, n_in)
    assert np.all(np.diff(p.keys()) > 0)  # sorted, no duplicates


def test_saturates_to_a_dense_layer():
    p = erdos_renyi_pattern(1000, 10, 20, np.random.default_rng(0))
    assert erdos_renyi_probability(1000, 10, 20) == 1.0
    assert p.nnz == 10_000


def test_positions_are_uniform():
    # Each of 50 x 40 positions is chosen with probability 0.1; over 400 draws each count ~ Binomial(400, 0.1).
    counts = np.zeros(2000)
    rng = np.random.default_rng(1)
    for _ in range(400):
        counts[random_pattern(50, 40, 0.1, rng).keys()] += 1
    assert abs(counts.mean() - 40) < 1e-9
    # Chi-square-like check: the spread of counts matches the binomial variance (36) within 25%.
    assert 27 < counts.var() < 45


def test_same_seed_same_pattern_and_different_seed_differs():
    a = erdos_renyi_pattern(300, 200, 5, np.random.default_rng(7))
    b = erdos_renyi_pattern(300, 200, 5, np.random.default_rng(7))
    c = erdos_renyi_pattern(300, 200, 5, np.random.default_rng(8))
    assert np.array_equal(a.keys(), b.keys())
    assert not np.array_equal(a.keys(), c.keys())


@pytest.mark.parametrize("epsilon", [0, -1.0])
def test_bad_epsilon(epsilon):
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        erdos_renyi_probability(10, 10, epsilon)


@pytest.mark.parametrize("density", [0, 1.5, -0.1])
def test_bad_density(density):
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\]"):
        random_pattern(10, 10, density, np.random.default_rng(0))


@pytest.mark.parametrize("fill", [0.0, 0.3, 0.7, 0.95])
def test_free_keys_avoid_occupied_positions(fill):
    rng = np.random.default_rng(3)
    total = 40 * 30
    occupied = np.sort(rng.choice(total, int(fill * total), replace=False)).astype(np.int64)
    count = (total - occupied.size) // 2
    drawn = sample_free_keys(40, 30, count, occupied, rng)
    assert drawn.size == count and np.all(np.diff(drawn) > 0)
    assert not np.isin(drawn, occupied).any()
    assert drawn.min() >= 0 and drawn.max() < total


def test_free_keys_refuses_impossible_requests():
    with pytest.raises(ValueError, match="only 1 of 4 are free"):
        sample_free_keys(2, 2, 2, np.array([0, 1, 2]), np.random.default_rng(0))


def test_large_layer_without_dense_memory():
    # 1e6 x 1e6 positions: a dense bool mask would need 1 TB; the sampler only touches nnz-sized arrays.
    p = erdos_renyi_pattern(1_000_000, 1_000_000, 1, np.random.default_rng(0))
    assert p.nnz == 2_000_000


def test_erdos_renyi_budget_is_what_the_initialisation_draws():
    for n_in, n_out, epsilon in ((784, 1000, 20), (1000, 10, 20), (50, 30, 3.3)):
        layer = SparseLinear(n_in, n_out, epsilon=epsilon, seed=0)
        assert layer.nnz == erdos_renyi_nnz(n_in, n_out, epsilon)


@pytest.mark.parametrize("density", [0.01, 0.02, 0.05, 0.1, 0.5])
def test_epsilon_for_density_hits_the_density(density):
    sizes = (784, 1000, 1000, 1000, 10)
    epsilon = epsilon_for_density(sizes, density)
    total = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert abs(sum(network_nnz(sizes, epsilon)) / total - density) < 1e-4
    model = SparseMLP(sizes, epsilon=epsilon, seed=0)
    assert sum(layer.nnz for layer in model.sparse_layers()) == sum(network_nnz(sizes, epsilon))


def test_epsilon_for_density_bad_input():
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\], got 0"):
        epsilon_for_density((4, 4), 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.floats(0, 1), st.integers(0, 2**32 - 1))
def test_sample_csr_gives_distinct_sorted_positions(n_rows, n_cols, fill, seed):
    """Any fill, including the half-full matrices where many draws repeat and are topped up."""
    count = int(fill * n_rows * n_cols)
    indptr, cols = sample_csr(n_rows, n_cols, count, np.random.default_rng(seed))
    assert indptr.dtype == np.int64 and cols.dtype == np.int32
    assert indptr[0] == 0 and indptr[-1] == count == cols.shape[0] and np.all(np.diff(indptr) >= 0)
    keys = np.repeat(np.arange(n_rows), np.diff(indptr)) * n_cols + cols
    assert np.all(np.diff(keys) > 0) and cols.min(initial=0) >= 0 and cols.max(initial=0) < n_cols
    again = sample_csr(n_rows, n_cols, count, np.random.default_rng(seed))
    assert np.array_equal(again[0], indptr) and np.array_equal(again[1], cols)


def test_sample_csr_rows_are_uniform():
    # 30 x 20 at fill 0.4 (many repeats to top up): every position ~ Binomial(600, 0.4) over 600 draws.
    counts = np.zeros((30, 20))
    rng = np.random.default_rng(2)
    for _ in range(600):
        indptr, cols = sample_csr(30, 20, 240, rng)
        counts[np.repeat(np.arange(30), np.diff(indptr)), cols] += 1
    assert abs(counts.mean() - 240) < 1e-9
    assert 0.75 * 144 < counts.var() < 1.25 * 144  # binomial variance 600 * 0.4 * 0.6


def test_sample_csr_refuses_impossible_requests():
    with pytest.raises(ValueError, match="cannot draw 5 positions from a 2 x 2 matrix"):
        sample_csr(2, 2, 5, np.random.default_rng(0))


def _hypergeometric_variance(draws: int, total: int, group: int) -> float:
    """Variance of how many of ``draws`` distinct positions out of ``total`` fall in a group of ``group``."""
    p = group / total
    return draws * p * (1 - p) * (total - draws) / (total - 1)


@pytest.mark.parametrize("fill", [0.02, 0.3])
def test_sample_csr_degrees_follow_the_erdos_renyi_distribution(fill):
    """A uniform M-subset: each row's (column's) degree is hypergeometric, the same for every row (column).

    Checks the per-row counts (one multinomial draw) and the top-up of repeats (many at fill 0.3): a bias
    towards some rows or columns (e.g. top-ups all in the last rows, or low columns) changes the means by
    block or inflates the variances.
    """
    n_rows, n_cols = 2000, 500
    total = n_rows * n_cols
    count = int(fill * total)
    rows, cols = np.zeros(n_rows), np.zeros(n_cols)
    rng = np.random.default_rng(4)
    repeats = 5
    for _ in range(repeats):
        indptr, col_index = sample_csr(n_rows, n_cols, count, rng)
        row_degree = np.diff(indptr)
        col_degree = np.bincount(col_index, minlength=n_cols)
        assert abs(row_degree.var() / _hypergeometric_variance(count, total, n_cols) - 1) < 0.15
        assert abs(col_degree.var() / _hypergeometric_variance(count, total, n_rows) - 1) < 0.3
        rows += row_degree
        cols += col_degree
    # No drift across the matrix: each tenth of the rows (columns) gets a tenth of the positions, within 4 sd.
    for degrees, size in ((rows, n_cols), (cols, n_rows)):
        blocks = degrees.reshape(10, -1).sum(axis=1)
        sd = np.sqrt(repeats * _hypergeometric_variance(count, total, size * degrees.shape[0] // 10))
        assert np.all(np.abs(blocks - repeats * count / 10) < 4 * sd)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 30), st.integers(1, 30), st.floats(0, 1), st.floats(0, 1), st.integers(0, 2**32 - 1)
)  # fmt: skip
def test_sample_free_rows_draws_distinct_empty_positions(n_rows, n_cols, fill, kept, seed):
    """Any fill and survivor fraction: sorted distinct positions, none a survivor, as many as asked."""
    rng = np.random.default_rng(seed)
    pattern = random_pattern(n_rows, n_cols, max(fill, 1e-9), rng)
    keep = rng.random(pattern.nnz) < kept
    survivors = pattern.keys()[keep]
    count = int(rng.integers(0, n_rows * n_cols - survivors.size + 1))
    indptr, cols = sample_free_rows(pattern.indptr, pattern.cols, keep, n_cols, count, np.random.default_rng(seed))
    assert indptr.dtype == np.int64 and cols.dtype == np.int32 and indptr[0] == 0 and indptr[-1] == count
    keys = np.repeat(np.arange(n_rows), np.diff(indptr)) * n_cols + cols
    assert np.all(np.diff(keys) > 0) and cols.min(initial=0) >= 0 and cols.max(initial=0) < n_cols
    assert not np.isin(keys, survivors).any()
    again = sample_free_rows(pattern.indptr, pattern.cols, keep, n_cols, count, np.random.default_rng(seed))
    assert np.array_equal(again[0], indptr) and np.array_equal(again[1], cols)


def test_sample_free_rows_is_uniform_over_the_empty_positions():
    # 30 x 20, 120 survivors, 150 new positions drawn 600 times: each of the 480 empty positions is new with
    # probability 150 / 480, so its count ~ Binomial(600, 0.3125); survivors are never drawn.
    rng = np.random.default_rng(3)
    pattern = random_pattern(30, 20, 0.3, rng)  # 180 connections
    keep = np.zeros(pattern.nnz, dtype=bool)
    keep[rng.choice(pattern.nnz, 120, replace=False)] = True
    counts = np.zeros(600)
    for _ in range(600):
        indptr, cols = sample_free_rows(pattern.indptr, pattern.cols, keep, 20, 150, rng)
        counts[np.repeat(np.arange(30), np.diff(indptr)) * 20 + cols] += 1
    free = np.setdiff1d(np.arange(600), pattern.keys()[keep])
    assert counts[pattern.keys()[keep]].sum() == 0
    p = 150 / 480
    assert abs(counts[free].mean() - 600 * p) < 1e-9
    assert 0.75 < counts[free].var() / (600 * p * (1 - p)) < 1.25


def test_sample_free_rows_refuses_impossible_requests():
    pattern = random_pattern(2, 2, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="cannot draw 3 empty positions: only 2 of 4 are free"):
        sample_free_rows(pattern.indptr, pattern.cols, np.ones(2, dtype=bool), 2, 3, np.random.default_rng(0))
