"""``Dataset``: a loaded, preprocessed train/test split, ready for an MLP."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A classification dataset as flat float32 features and int64 class indices.

    Example::

        >>> ds = load_dataset("digits")
        >>> ds.x_train.shape, ds.n_classes, ds.feature_shape
        ((1198, 64), 10, (8, 8))
    """

    name: str
    """Registry name, e.g. ``"mnist"``."""
    x_train: np.ndarray
    """Training features, float32, shape (n_train, n_features)."""
    y_train: np.ndarray
    """Training labels, int64 in 0..n_classes-1, shape (n_train,)."""
    x_test: np.ndarray
    """Test features, float32, shape (n_test, n_features)."""
    y_test: np.ndarray
    """Test labels, int64 in 0..n_classes-1, shape (n_test,)."""
    n_classes: int
    """Number of classes K."""
    feature_shape: tuple[int, ...]
    """Shape of one sample before flattening: (28, 28) for MNIST, (3, 32, 32) for CIFAR-10, (d,) for tables."""

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != math.prod(self.feature_shape):
                raise ValueError(
                    f"x_{part} must be float32 of shape (n, {math.prod(self.feature_shape)}), got {x.dtype} {x.shape}"
                )
            if y.dtype != np.int64 or y.shape != (x.shape[0],):
                raise ValueError(f"y_{part} must be int64 of shape ({x.shape[0]},), got {y.dtype} {y.shape}")
            if y.size and not 0 <= y.min() <= y.max() < self.n_classes:
                raise ValueError(f"y_{part} must hold class indices in [0, {self.n_classes}), got {y.min()}..{y.max()}")

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    @property
    def n_test(self) -> int:
        return self.x_test.shape[0]

    def describe(self) -> str:
        """One line: sizes, features, classes."""
        shape = "x".join(str(d) for d in self.feature_shape)
        features = f"{self.n_features} features" + (f" ({shape})" if len(self.feature_shape) > 1 else "")
        return f"{self.name}: {self.n_train} train / {self.n_test} test samples, {features}, {self.n_classes} classes"

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        return f"Dataset({self.describe()})"
