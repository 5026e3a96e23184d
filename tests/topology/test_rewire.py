"""merge_rewiring / gather_survivors against the slow, obvious way (concatenate the keys, sort them)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.sparse.pattern import SparsePattern
from evosparse.topology import rewire
from evosparse.topology.rewire import gather_survivors, merge_rewiring, merge_rows


@st.composite
def rewirings(draw):
    n_rows, n_cols = draw(st.integers(1, 15)), draw(st.integers(1, 15))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    total = n_rows * n_cols
    old_keys = np.sort(rng.choice(total, size=draw(st.integers(0, total)), replace=False)).astype(np.int64)
    keep = np.sort(rng.choice(old_keys.size, size=draw(st.integers(0, old_keys.size)), replace=False))
    free = np.setdiff1d(np.arange(total), old_keys[keep])
    new_keys = np.sort(rng.choice(free, size=draw(st.integers(0, free.size)), replace=False)).astype(np.int64)
    return SparsePattern.from_sorted_keys(old_keys, n_rows, n_cols), keep, new_keys


@settings(max_examples=80, deadline=None)
@given(rewirings())
def test_merge_equals_sorting_the_keys(case):
    pattern, keep, new_keys = case
    indptr, cols, source = merge_rewiring(pattern.indptr, pattern.cols, keep, new_keys, pattern.n_cols)
    all_keys = np.concatenate([pattern.keys()[keep], new_keys])
    order = np.argsort(all_keys, kind="stable")
    expected = SparsePattern.from_sorted_keys(all_keys[order], pattern.n_rows, pattern.n_cols)
    assert np.array_equal(indptr, expected.indptr) and np.array_equal(cols, expected.cols)
    # source: a survivor reads its old position, a new connection old_nnz + its index among the new keys.
    expected_source = np.concatenate([keep, pattern.nnz + np.arange(new_keys.size)])[order]
    assert np.array_equal(source, expected_source)
    old, fresh = torch.randn(pattern.nnz, dtype=torch.float64), torch.randn(new_keys.size, dtype=torch.float64)
    assert torch.equal(gather_survivors(source, old, fresh), torch.cat([old, fresh])[torch.from_numpy(expected_source)])


def test_merge_rejects_duplicates_and_keys_outside():
    pattern = SparsePattern.from_coo([0, 1], [1, 0], 2, 2)
    with pytest.raises(ValueError, match="duplicate"):
        merge_rewiring(pattern.indptr, pattern.cols, np.array([0, 1]), np.array([1]), 2)  # key 1 = (0, 1) survives
    with pytest.raises(ValueError, match="duplicate"):
        merge_rewiring(pattern.indptr, pattern.cols, np.array([1]), np.array([0, 0]), 2)
    with pytest.raises(ValueError, match="inside the matrix"):
        merge_rewiring(pattern.indptr, pattern.cols, np.array([0]), np.array([7]), 2)


def _as_rows(pattern: SparsePattern, keep: np.ndarray, new_keys: np.ndarray):
    """The same change per row: survivors as a mask over the CSR order, new positions as CSR arrays."""
    mask = np.zeros(pattern.nnz, dtype=bool)
    mask[keep] = True
    new = SparsePattern.from_sorted_keys(new_keys, pattern.n_rows, pattern.n_cols)
    return mask, new.indptr, new.cols


NO_OFFSETS = np.empty(0, dtype=np.uint16)


def _csr(pattern: SparsePattern) -> tuple:
    return pattern.indptr, pattern.cols, NO_OFFSETS


@settings(max_examples=80, deadline=None)
@given(rewirings())
def test_merge_rows_equals_the_merge_of_keys(case):
    pattern, keep, new_keys = case
    expected = merge_rewiring(pattern.indptr, pattern.cols, keep, new_keys, pattern.n_cols)
    old_values = torch.randn(pattern.nnz, dtype=torch.float64)
    fresh = torch.randn(new_keys.shape[0], dtype=torch.float64)
    mask, new_indptr, new_cols = _as_rows(pattern, keep, new_keys)
    index, source, merged = merge_rows(
        _csr(pattern), mask, (new_indptr, new_cols, NO_OFFSETS), sources=True, values=(old_values, fresh)
    )
    for a, b in zip((*index[:2], source), expected):  # indptr, cols and where each entry comes from
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert index[2].shape == (0,)  # CSR: no row offsets
    assert np.array_equal(index[3], source >= pattern.nnz)  # is_new: the new connections' places
    assert np.array_equal(merged, gather_survivors(expected[2], old_values, fresh).numpy())


@settings(max_examples=80, deadline=None)
@given(rewirings(), st.integers(2, 6))
def test_merge_rows_of_a_row_blocked_pattern_is_the_csr_merge_in_blocked_order(case, block_rows):
    """Merging in row-blocked order gives what merging in CSR order and converting gives, weights included."""
    _check_blocked_merge(*case, block_rows)


@pytest.mark.parametrize(("n_rows", "n_cols", "block_rows"), [(3, 9000, 1), (3, 9000, 2), (70, 400, 64)])
def test_merges_of_rows_longer_than_a_chunk(n_rows, n_cols, block_rows):
    """Rows (blocks) of several thousand connections: the merges go through them a chunk at a time."""
    rng = np.random.default_rng(n_rows)
    total = n_rows * n_cols
    old_keys = np.sort(rng.choice(total, size=total // 2, replace=False)).astype(np.int64)
    keep = np.sort(rng.choice(old_keys.size, size=old_keys.size * 7 // 10, replace=False))
    free = np.setdiff1d(np.arange(total), old_keys[keep])
    new_keys = np.sort(rng.choice(free, size=old_keys.size - keep.size, replace=False)).astype(np.int64)
    pattern = SparsePattern.from_sorted_keys(old_keys, n_rows, n_cols)
    assert np.diff(pattern.indptr).max() * min(block_rows, n_rows) > 2 * rewire._CHUNK
    if block_rows == 1:
        test_merge_rows_equals_the_merge_of_keys.hypothesis.inner_test((pattern, keep, new_keys))
    else:
        _check_blocked_merge(pattern, keep, new_keys, block_rows)


def _check_blocked_merge(pattern, keep, new_keys, block_rows):
    mask, new_indptr, new_cols = _as_rows(pattern, keep, new_keys)
    old_values = torch.randn(pattern.nnz, dtype=torch.float64)
    fresh = torch.randn(new_keys.shape[0], dtype=torch.float64)
    csr_index, csr_values = merge_rows(
        _csr(pattern), mask, (new_indptr, new_cols, NO_OFFSETS), values=(old_values, fresh)
    )
    expected, expected_perm = SparsePattern.from_csr(*csr_index[:2], pattern.n_rows, pattern.n_cols).to_blocked(
        block_rows
    )

    blocked, perm = pattern.to_blocked(block_rows)
    new_blocked, new_perm = SparsePattern.from_csr(new_indptr, new_cols, pattern.n_rows, pattern.n_cols).to_blocked(
        block_rows
    )
    index, merged = merge_rows(
        (blocked.indptr, blocked.cols, blocked.row_offsets),
        mask[perm],
        (new_blocked.indptr, new_blocked.cols, new_blocked.row_offsets),
        block_rows,
        values=(old_values[torch.from_numpy(perm).long()], fresh[torch.from_numpy(new_perm).long()]),
    )
    assert np.array_equal(index[0], expected.indptr)
    assert np.array_equal(index[1], expected.cols) and np.array_equal(index[2], expected.row_offsets)
    assert np.array_equal(merged, csr_values[expected_perm])


def test_merge_rows_rejects_duplicates():
    pattern = SparsePattern.from_coo([0, 1], [1, 0], 2, 2)
    both = np.ones(2, dtype=bool)
    with pytest.raises(ValueError, match="duplicate"):  # (0, 1) survives and is new again
        merge_rows(_csr(pattern), both, (np.array([0, 1, 1]), np.array([1], dtype=np.int32), NO_OFFSETS))
    with pytest.raises(ValueError, match="duplicate"):  # a new position twice
        merge_rows(_csr(pattern), ~both, (np.array([0, 2, 2]), np.array([0, 0], dtype=np.int32), NO_OFFSETS))
    blocked, _ = SparsePattern.from_coo([0, 1], [1, 1], 2, 2).to_blocked(2)  # (column 1: rows 0, 1) in one block
    with pytest.raises(ValueError, match="duplicate"):  # (1, 1) survives and is new again
        merge_rows(
            (blocked.indptr, blocked.cols, blocked.row_offsets),
            both,
            (np.array([0, 1]), np.array([1], dtype=np.int32), np.array([1], dtype=np.uint16)),
            2,
        )
