"""Stratified split, label encoding, standardisation, image scaling and the Dataset container."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.data import Dataset
from evosparse.data.splits import encode_labels, scale_images, split_arrays, standardise, stratified_split


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(st.integers(-2, 4), min_size=1, max_size=80), seed=st.integers(0, 2**32 - 1))
def test_stratified_split_partitions_each_class(labels, seed):
    y = np.array(labels)
    train, test = stratified_split(y, seed=seed)
    # A partition of all indices.
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(y.shape[0]))
    for label in np.unique(y):
        n_class = int((y == label).sum())
        n_test = int((y[test] == label).sum())
        # round(n_c / 3) to the test set, at least one kept for training.
        assert n_test == min(int(np.floor(n_class / 3 + 0.5)), n_class - 1)
    again_train, again_test = stratified_split(y, seed=seed)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(test, again_test)


def test_stratified_split_depends_on_the_seed_and_mixes_classes():
    y = np.repeat(np.arange(3), 30)  # sorted by class, as many .mat files are
    first_train, first_test = stratified_split(y, seed=0)
    other_train, _ = stratified_split(y, seed=1)
    assert not np.array_equal(first_train, other_train)
    assert np.bincount(y[first_test]).tolist() == [10, 10, 10]
    assert not np.all(np.diff(y[first_train]) >= 0)  # not left ordered by class


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_stratified_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\)"):
        stratified_split(np.zeros(6), test_fraction=fraction)


def test_split_arrays_keeps_rows_with_their_labels():
    x = np.arange(30).reshape(15, 2)
    y = x[:, 0] % 3
    split = split_arrays(x, y, seed=7)
    np.testing.assert_array_equal(split.x_train[:, 0] % 3, split.y_train)
    np.testing.assert_array_equal(split.x_test[:, 0] % 3, split.y_test)


def test_encode_labels_sorted_order():
    y_train, y_test, n_classes = encode_labels(np.array([1, -1, 1]), np.array([-1, -1]))
    assert (y_train.tolist(), y_test.tolist(), n_classes) == ([1, 0, 1], [0, 0], 2)
    # 1..K -> 0..K-1, and a label seen only in the test part still gets its own index.
    y_train, y_test, n_classes = encode_labels(np.array([3, 1, 3]), np.array([2, 1]))
    assert (y_train.tolist(), y_test.tolist(), n_classes) == ([2, 0, 2], [1, 0], 3)
    assert y_train.dtype == np.int64


def test_standardise_by_hand():
    # Column 0: train [1, 3] -> mean 2, std 1 -> [-1, 1]; test 5 -> 3. Column 1 constant 7 -> std set to 1 -> 0.
    x_train = np.array([[1, 7], [3, 7]])
    x_test = np.array([[5, 8]])
    train, test = standardise(x_train, x_test)
    np.testing.assert_array_equal(train, [[-1, 0], [1, 0]])
    np.testing.assert_array_equal(test, [[3, 1]])
    assert train.dtype == test.dtype == np.float32


def test_scale_images_flattens_into_unit_range():
    images = np.array([[[0, 255], [51, 102]]], np.uint8)
    scaled = scale_images(images, 255.0)
    assert scaled.dtype == np.float32 and scaled.shape == (1, 4)
    np.testing.assert_allclose(scaled, [[0.0, 1.0, 0.2, 0.4]], rtol=1e-6)


# ---- Dataset invariants --------------------------------------------------------------------------------
def make_dataset(**changes) -> Dataset:
    fields = {
        "name": "toy",
        "x_train": np.zeros((4, 6), np.float32),
        "y_train": np.array([0, 1, 2, 0]),
        "x_test": np.zeros((2, 6), np.float32),
        "y_test": np.array([1, 2]),
        "n_classes": 3,
        "feature_shape": (2, 3),
    }
    return Dataset(**{**fields, **changes})


def test_dataset_properties_and_summary():
    ds = make_dataset()
    assert (ds.n_features, ds.n_train, ds.n_test) == (6, 4, 2)
    assert ds.describe() == "toy: 4 train / 2 test samples, 6 features (2x3), 3 classes"
    assert make_dataset(feature_shape=(6,)).describe() == "toy: 4 train / 2 test samples, 6 features, 3 classes"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"x_train": np.zeros((4, 6), np.float64)}, r"x_train must be float32 of shape \(n, 6\), got float64"),
        ({"x_test": np.zeros((2, 5), np.float32)}, r"x_test must be float32 of shape \(n, 6\)"),
        ({"feature_shape": (28, 28)}, r"x_train must be float32 of shape \(n, 784\)"),
        ({"y_train": np.array([0, 1, 2, 0], np.int32)}, r"y_train must be int64 of shape \(4,\), got int32"),
        ({"y_test": np.array([1, 2, 0])}, r"y_test must be int64 of shape \(2,\)"),
        ({"y_test": np.array([1, 3])}, r"y_test must hold class indices in \[0, 3\), got 1..3"),
        ({"y_train": np.array([0, -1, 2, 0])}, r"y_train must hold class indices in \[0, 3\), got -1..2"),
    ],
)
def test_dataset_rejects_inconsistent_arrays(changes, message):
    with pytest.raises(ValueError, match=message):
        make_dataset(**changes)
