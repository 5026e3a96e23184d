"""One weight matrix of a conditional RBM, dense or truly sparse, with what contrastive divergence needs.

A :class:`Connections` is an ``n_rows x n_cols`` matrix ``W`` held either as a dense array or as a
:class:`~evosparse.sparse.SparsePattern` + values (CSR order). Every (F)CRBM weight (visible-hidden,
autoregressive, factor matrices) is one, so a model is sparse or dense by a single switch and the
training code does not know which. The three products, each O(nnz x batch) when sparse:

* :meth:`forward`: ``x W^T`` (batch, n_cols) -> (batch, n_rows), the compiled ``spmm`` kernel;
* :meth:`backward`: ``y W`` (batch, n_rows) -> (batch, n_cols), ``spmm`` over the CSC view;
* :meth:`statistics`: ``sum_b y[b, r] x[b, c]`` at the stored positions only -- the sampled dense-dense
  product (SDDMM) that is exactly a CD statistic such as ``<v h>`` restricted to the connections.

:meth:`evolve` is one SET step (remove the fraction ``zeta`` of the weakest weights by the paper's
sign-wise rule, regrow as many at random empty positions; :func:`evosparse.topology.set_rewiring`),
carrying each survivor's momentum and starting new weights with zero momentum.
"""

from __future__ import annotations

import numpy as np

from evosparse.sparse import kernels
from evosparse.sparse.init import erdos_renyi_probability, random_pattern
from evosparse.sparse.pattern import SparsePattern
from evosparse.topology.set import set_rewiring

__all__ = ["Connections"]


class Connections:
    """An ``n_rows x n_cols`` weight matrix: dense (``pattern is None``) or sparse, with its SGD momentum.

    Args:
        n_rows, n_cols: shape (rows = units the product :meth:`forward` produces).
        epsilon: None for a dense matrix; otherwise the Erdos-Renyi sparsity parameter (each position
            exists with probability ``epsilon (n_rows + n_cols) / (n_rows n_cols)``, capped at 1).
        init_scale: standard deviation of the initial (and regrown) weights, drawn N(0, init_scale^2).
        rng: random source of the pattern and the weights.
        dtype: float32 or float64 (the compiled kernels' types).
    """

    def __init__(
        self,
        n_rows: int,
        n_cols: int,
        *,
        epsilon: float | None,
        init_scale: float,
        rng: np.random.Generator,
        dtype: type = np.float32,
    ) -> None:
        for name, value in (("n_rows", n_rows), ("n_cols", n_cols)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not init_scale > 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale}")
        self.n_rows, self.n_cols = int(n_rows), int(n_cols)
        self.init_scale = float(init_scale)
        self.dtype = np.dtype(dtype)
        if epsilon is None:
            self.pattern: SparsePattern | None = None
            shape: tuple[int, ...] = (self.n_rows, self.n_cols)
        else:
            density = erdos_renyi_probability(self.n_cols, self.n_rows, epsilon)
            self.pattern = random_pattern(self.n_rows, self.n_cols, density, rng)
            shape = (self.pattern.nnz,)
        self.values = (rng.standard_normal(shape) * self.init_scale).astype(self.dtype)
        self.velocity = np.zeros_like(self.values)

    @classmethod
    def from_arrays(cls, values: np.ndarray, pattern: SparsePattern | None = None, *, init_scale: float = 0.01):
        """A matrix with given weights: dense ``values`` (n_rows, n_cols), or CSR ``values`` of ``pattern``."""
        values = np.asarray(values)
        if values.dtype not in (np.float32, np.float64):
            raise TypeError(f"values must be float32 or float64, got {values.dtype}")
        if pattern is None:
            if values.ndim != 2:
                raise ValueError(f"dense values must be a matrix, got shape {values.shape}")
            n_rows, n_cols = values.shape
        else:
            if values.shape != (pattern.nnz,):
                raise ValueError(f"values must have shape ({pattern.nnz},) to fit the pattern, got {values.shape}")
            n_rows, n_cols = pattern.n_rows, pattern.n_cols
        self = cls.__new__(cls)
        self.n_rows, self.n_cols, self.init_scale, self.dtype = int(n_rows), int(n_cols), init_scale, values.dtype
        self.pattern = pattern
        self.values = np.ascontiguousarray(values).copy()
        self.velocity = np.zeros_like(self.values)
        return self

    # ---- inspection --------------------------------------------------------------------------------------
    @property
    def is_sparse(self) -> bool:
        return self.pattern is not None

    @property
    def n_weights(self) -> int:
        """Stored weights (nnz when sparse, n_rows * n_cols when dense)."""
        return int(self.values.size)

    def to_dense(self) -> np.ndarray:
        """The matrix as a dense array (for tests and pictures; never used in training)."""
        if self.pattern is None:
            return self.values.copy()
        dense = np.zeros((self.n_rows, self.n_cols), dtype=self.dtype)
        dense[self.pattern.rows, self.pattern.cols] = self.values
        return dense

    def memory_bytes(self) -> int:
        """Bytes of the weights and, when sparse, of the index arrays the kernels use (momentum excluded)."""
        return int(self.values.nbytes + (self.pattern.index_bytes() if self.pattern is not None else 0))

    # ---- products ----------------------------------------------------------------------------------------
    def _feature_major(self, x: np.ndarray, n_features: int, name: str) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != n_features:
            raise ValueError(f"{name} must have shape (batch, {n_features}), got {x.shape}")
        return np.ascontiguousarray(x.T, dtype=self.dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x W^T``: (batch, n_cols) -> (batch, n_rows)."""
        if self.pattern is None:
            return np.asarray(x, dtype=self.dtype) @ self.values.T
        xt = self._feature_major(x, self.n_cols, "x")
        out = np.empty((self.n_rows, xt.shape[1]), dtype=self.dtype)
        kernels.spmm(self.pattern.indptr, self.pattern.cols, self.values, xt, np.empty(0, self.dtype), out)
        return out.T

    def backward(self, y: np.ndarray) -> np.ndarray:
        """``y W``: (batch, n_rows) -> (batch, n_cols)."""
        if self.pattern is None:
            return np.asarray(y, dtype=self.dtype) @ self.values
        yt = self._feature_major(y, self.n_rows, "y")
        out = np.empty((self.n_cols, yt.shape[1]), dtype=self.dtype)
        p = self.pattern
        kernels.spmm_transposed(p.csc_indptr, p.csc_rows, p.csc_perm, self.values, yt, out)
        return out.T

    def statistics(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``sum_b y[b, r] x[b, c]`` for each stored (r, c): ``y^T x`` (dense) or its SDDMM (sparse)."""
        if self.pattern is None:
            return (np.asarray(y, dtype=self.dtype).T @ np.asarray(x, dtype=self.dtype)).astype(self.dtype)
        yt = self._feature_major(y, self.n_rows, "y")
        xt = self._feature_major(x, self.n_cols, "x")
        out = np.empty(self.pattern.nnz, dtype=self.dtype)
        kernels.sddmm(self.pattern.indptr, self.pattern.cols, yt, xt, out)
        return out

    # ---- learning ----------------------------------------------------------------------------------------
    def step(self, gradient: np.ndarray, *, lr: float, momentum: float, weight_decay: float) -> None:
        """Gradient *ascent* with momentum and L2 weight decay (the CD update of Hinton's practical guide)."""
        self.velocity *= momentum
        self.velocity += lr * (gradient - weight_decay * self.values)
        self.values += self.velocity

    def evolve(self, zeta: float, rng: np.random.Generator, *, rule: str = "set") -> int:
        """One SET step; returns the number of connections rewired (0 for a dense or a full matrix).

        Removed connections lose their weight and momentum; new ones start at N(0, init_scale^2) with zero
        momentum (SET draws new weights like the initial ones); survivors keep both.
        """
        p = self.pattern
        if p is None or p.nnz == p.n_rows * p.n_cols or zeta == 0:
            return 0
        keys = p.keys()
        change = set_rewiring(self.values, keys, p.n_rows, p.n_cols, zeta=zeta, rng=rng, rule=rule)
        n_new = change.new_keys.shape[0]
        all_keys = np.concatenate([keys[change.keep], change.new_keys])
        order = np.argsort(all_keys, kind="stable")
        fresh = (rng.standard_normal(n_new) * self.init_scale).astype(self.dtype)
        self.values = np.concatenate([self.values[change.keep], fresh])[order]
        self.velocity = np.concatenate([self.velocity[change.keep], np.zeros(n_new, self.dtype)])[order]
        self.pattern = SparsePattern.from_sorted_keys(all_keys[order], p.n_rows, p.n_cols)
        return int(n_new)

    def __repr__(self) -> str:
        kind = f"sparse, nnz={self.n_weights}" if self.is_sparse else "dense"
        return f"Connections({self.n_rows}x{self.n_cols}, {kind}, {self.dtype})"
