import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.sparse.pattern import SparsePattern


@st.composite
def coo_patterns(draw):
    n_rows = draw(st.integers(1, 12))
    n_cols = draw(st.integers(1, 12))
    keys = draw(st.sets(st.integers(0, n_rows * n_cols - 1), max_size=n_rows * n_cols))
    keys = np.array(sorted(keys), dtype=np.int64)
    perm = np.random.default_rng(len(keys)).permutation(len(keys))
    return n_rows, n_cols, keys[perm] // n_cols, keys[perm] % n_cols


@settings(max_examples=60, deadline=None)
@given(coo_patterns())
def test_csr_and_csc_views_describe_the_same_positions(case):
    n_rows, n_cols, rows, cols = case
    p = SparsePattern.from_coo(rows, cols, n_rows, n_cols)
    dense = np.zeros((n_rows, n_cols), dtype=bool)
    dense[rows, cols] = True
    # CSR: rows ascending, columns ascending within a row, indptr consistent.
    assert np.array_equal(np.repeat(np.arange(n_rows), np.diff(p.indptr)), p.rows)
    assert np.all(np.diff(p.keys()) > 0)
    rebuilt = np.zeros_like(dense)
    rebuilt[p.rows, p.cols] = True
    assert np.array_equal(rebuilt, dense)
    # CSC view: a permutation of CSR positions, grouped by column, rows ascending within a column.
    assert np.array_equal(np.sort(p.csc_perm), np.arange(p.nnz))
    assert np.array_equal(p.cols[p.csc_perm], np.repeat(np.arange(n_cols), np.diff(p.csc_indptr)))
    assert np.array_equal(p.csc_rows, p.rows[p.csc_perm])
    assert np.array_equal(p.row_degrees(), dense.sum(1))
    assert np.array_equal(p.col_degrees(), dense.sum(0))
    assert p.density == pytest.approx(dense.mean())


def test_duplicates_and_out_of_range_are_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        SparsePattern.from_coo([0, 0], [1, 1], 2, 2)
    with pytest.raises(ValueError, match="row indices must be in"):
        SparsePattern.from_coo([2], [0], 2, 2)
    with pytest.raises(ValueError, match="column indices must be in"):
        SparsePattern.from_coo([0], [-1], 2, 2)
    with pytest.raises(ValueError, match="same length"):
        SparsePattern.from_coo([0, 1], [0], 2, 2)


def test_empty_pattern():
    p = SparsePattern.from_coo([], [], 3, 4)
    assert p.nnz == 0 and p.density == 0
    assert list(p.indptr) == [0, 0, 0, 0] and list(p.csc_indptr) == [0] * 5
