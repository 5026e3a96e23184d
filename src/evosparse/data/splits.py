"""Train/test splits and the preprocessing every loader shares.

- :func:`stratified_split`: for data published without a split (scikit-feature .mat files, digits),
  a seeded split that keeps each class's share in both parts.
- :func:`encode_labels`: labels -> 0..K-1 in sorted order of the original labels (-1/1 -> 0/1, 1..K -> 0..K-1).
- :func:`standardise`: tabular features -> zero mean, unit variance, with the *training* set's statistics
  (so the test set stays unseen); constant features get std 1 instead of 0.
- :func:`scale_images`: pixel values -> [0, 1].
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """Raw arrays of a train/test split, before preprocessing."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def stratified_split(y: np.ndarray, *, test_fraction: float = 1 / 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` of a seeded split that keeps the class proportions.

    Each class with ``n_c`` samples sends ``round(n_c * test_fraction)`` of them (drawn at random) to the test
    part, but always keeps at least one in training. Both index arrays are then shuffled, so neither part is
    ordered by class. The same ``y`` and ``seed`` always give the same split.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = min(int(np.floor(members.shape[0] * test_fraction + 0.5)), members.shape[0] - 1)
        test_parts.append(members[:n_test])
        train_parts.append(members[n_test:])
    train = rng.permutation(np.concatenate(train_parts))
    test = rng.permutation(np.concatenate(test_parts))
    return train, test


def split_arrays(x: np.ndarray, y: np.ndarray, *, seed: int, test_fraction: float = 1 / 3) -> Split:
    """``x, y`` cut by :func:`stratified_split` (2/3 train, 1/3 test by default)."""
    train, test = stratified_split(y, test_fraction=test_fraction, seed=seed)
    return Split(x[train], y[train], x[test], y[test])


def encode_labels(y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Both label arrays as int64 indices 0..K-1 (sorted original labels), and K."""
    classes = np.unique(np.concatenate([y_train, y_test]))
    return (
        np.searchsorted(classes, y_train).astype(np.int64),
        np.searchsorted(classes, y_test).astype(np.int64),
        int(classes.shape[0]),
    )


def standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both feature matrices as float32 ``(x - mean) / std``, with mean and std of ``x_train`` (std 0 -> 1)."""
    train = x_train.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = train.mean(axis=0)
        std = train.std(axis=0)
    overflow = ~(np.isfinite(mean) & np.isfinite(std))
    if overflow.any():  # the mean or the variance overflows float64: the column cannot be standardised
        column = int(np.argmax(overflow))
        largest = float(np.abs(train[:, column]).max())
        raise ValueError(f"feature column {column + 1} has values too large to standardise (up to {largest:g})")
    std[std == 0] = 1.0
    return ((train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


def scale_images(x: np.ndarray, pixel_max: float) -> np.ndarray:
    """Pixel values in ``[0, pixel_max]`` as float32 in [0, 1], flattened to (n, features)."""
    return (x.reshape(x.shape[0], -1).astype(np.float32) / np.float32(pixel_max)).astype(np.float32, copy=False)
