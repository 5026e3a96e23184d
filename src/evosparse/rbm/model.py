"""``RBM``: a restricted Boltzmann machine whose weights are a :class:`SparsePattern` + values.

The model, for visible units v (n_visible) and binary hidden units h (n_hidden), weights W (n_hidden x
n_visible, stored only at the pattern's positions), visible bias b and hidden bias c:

* Bernoulli-Bernoulli (binary or [0, 1] visible units):  E(v, h) = -b.v - c.h - h.W v
* Gaussian-Bernoulli (real visible units, unit variance, data standardised):
  E(v, h) = ||v - b||^2 / 2 - c.h - h.W v

so that p(h_j = 1 | v) = sigmoid(c_j + W_j v) in both cases and p(v | h) is sigmoid(b + W^T h)
(Bernoulli) or N(b + W^T h, 1) (Gaussian). The three products an RBM needs map onto the sparse core's
kernels (:mod:`evosparse.sparse.kernels`), each O(nnz x batch), with activations feature-major
(units x batch):

1. v -> h: ``spmm`` over the CSR view (rows = hidden units),
2. h -> v: ``spmm_transposed`` over the CSC view,
3. the statistics <v_i h_j> at the stored connections: ``sddmm`` -- exactly the sampled dense-dense
   product, never an n_hidden x n_visible array.

A pattern holding every position (the dense RBM) takes the same code with the weights viewed as the
dense row-major matrix they then are, so its products run in BLAS.

Paper: Hinton, "A Practical Guide to Training Restricted Boltzmann Machines", UTML TR 2010-003;
Mocanu et al., "A topological insight into restricted Boltzmann machines", Machine Learning 104 (2016).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from evosparse.sparse import kernels
from evosparse.sparse.pattern import SparsePattern

VISIBLE_TYPES = ("bernoulli", "gaussian")
DTYPES = (np.float32, np.float64)


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from a seed or a Generator (returned as is); never the global state."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function (scipy's expit: no overflow for large |x|, keeps float32)."""
    return expit(x)


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), stable for large |x|."""
    return np.logaddexp(0.0, x)


def full_pattern(n_hidden: int, n_visible: int) -> SparsePattern:
    """The pattern holding every position: the dense RBM in the sparse format."""
    return SparsePattern.from_sorted_keys(np.arange(n_hidden * n_visible, dtype=np.int64), n_hidden, n_visible)


class RBM:
    r"""A restricted Boltzmann machine with truly sparse weights.

    Args:
        n_visible: visible units (features).
        n_hidden: hidden units.
        pattern: the connectivity, shape ``n_hidden x n_visible`` (rows = hidden units, the layout of
            ``torch.nn.Linear.weight`` for v -> h); None: every connection (a dense RBM). Build one with
            :func:`evosparse.rbm.make_pattern` ("fixprob", "xbm", ...).
        visible: "bernoulli" (binary / [0, 1] data) or "gaussian" (standardised real data, unit variance).
        init_std: initial weights are N(0, init_std^2) (0.05: the SET-RBM reference code's randn / 20).
        dtype: np.float32 (default) or np.float64: the compiled kernels' types.
        seed: int, Generator or None: the initial weights.

    Attributes:
        pattern: the connectivity; weights: values in its CSR order, shape (nnz,);
        visible_bias (n_visible,), hidden_bias (n_hidden,).

    Shape: every method takes and returns batch-major arrays, (batch, units).

    Example::

        >>> rbm = RBM(784, 500, pattern=make_pattern("fixprob", 784, 500, epsilon=10, rng=0), seed=0)
        >>> rng = np.random.default_rng(0)
        >>> h = rbm.sample_hidden(x[:10], rng)                 # (10, 500) binary
        >>> v = rbm.gibbs(x[:10], steps=5, rng=rng)            # (10, 784) visible states after 5 Gibbs steps
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        pattern: SparsePattern | None = None,
        visible: str = "bernoulli",
        init_std: float = 0.05,
        dtype: type = np.float32,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        for name, value in (("n_visible", n_visible), ("n_hidden", n_hidden)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if visible not in VISIBLE_TYPES:
            raise ValueError(f"visible must be one of {', '.join(VISIBLE_TYPES)}; got {visible!r}")
        if not (isinstance(init_std, int | float) and np.isfinite(init_std) and init_std >= 0):
            raise ValueError(f"init_std must be a finite number >= 0, got {init_std!r}")
        dtype = np.dtype(dtype).type
        if dtype not in DTYPES:
            raise TypeError(f"dtype must be numpy.float32 or numpy.float64 (the kernels' types), got {dtype}")
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.visible, self.init_std, self.dtype = visible, float(init_std), dtype
        pattern = full_pattern(self.n_hidden, self.n_visible) if pattern is None else pattern
        self._check_pattern(pattern)
        self.visible_bias = np.zeros(self.n_visible, dtype=dtype)
        self.hidden_bias = np.zeros(self.n_hidden, dtype=dtype)
        self.set_pattern(pattern, self.sample_weights(pattern.nnz, as_rng(seed)))

    # ---- topology -------------------------------------------------------------------------------------
    def _check_pattern(self, pattern: SparsePattern) -> None:
        if not isinstance(pattern, SparsePattern):
            raise TypeError(f"pattern must be a SparsePattern, got {type(pattern).__name__}")
        if (pattern.n_rows, pattern.n_cols) != (self.n_hidden, self.n_visible):
            raise ValueError(
                f"pattern must have shape (n_hidden, n_visible) = {(self.n_hidden, self.n_visible)}, "
                f"got {(pattern.n_rows, pattern.n_cols)}"
            )

    def set_pattern(self, pattern: SparsePattern, weights: np.ndarray) -> None:
        """Replace the connectivity and the weights (in the new pattern's CSR order)."""
        self._check_pattern(pattern)
        weights = np.ascontiguousarray(weights, dtype=self.dtype)
        if weights.shape != (pattern.nnz,):
            raise ValueError(f"weights must have shape ({pattern.nnz},), got {weights.shape}")
        self.pattern, self.weights = pattern, weights

    @property
    def nnz(self) -> int:
        return self.pattern.nnz

    @property
    def density(self) -> float:
        return self.pattern.density

    @property
    def is_dense(self) -> bool:
        """True when every connection exists (the products then run as dense BLAS products)."""
        return self.pattern.nnz == self.n_hidden * self.n_visible

    def sample_weights(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` fresh weights N(0, init_std^2): the initial weights, and those of regrown connections."""
        return (rng.standard_normal(count) * self.init_std).astype(self.dtype)

    def rewire(self, keep: np.ndarray, new_keys: np.ndarray, new_weights: np.ndarray) -> np.ndarray:
        """Keep the connections at CSR positions ``keep``, add ``new_keys`` (``hidden * n_visible + visible``).

        Returns ``gather``: new position i takes entry ``gather[i]`` of ``concat(old, fresh)``, so a
        learner carries its per-connection state (momentum) across: ``concat([state, zeros])[gather]``.
        """
        old = self.pattern
        keys = np.concatenate([old.keys()[keep], np.asarray(new_keys, dtype=np.int64)])
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        if sorted_keys.shape[0] > 1 and np.any(sorted_keys[1:] == sorted_keys[:-1]):
            raise ValueError("rewiring would create a duplicate connection")
        n_kept = keep.shape[0]
        gather = np.where(
            order < n_kept, np.asarray(keep)[np.minimum(order, max(n_kept - 1, 0))], old.nnz + order - n_kept
        )
        pattern = SparsePattern.from_sorted_keys(sorted_keys, self.n_hidden, self.n_visible)
        source = np.concatenate([self.weights, np.asarray(new_weights, dtype=self.dtype)])
        self.set_pattern(pattern, source[gather])
        return gather.astype(np.int64)

    # ---- the three products ---------------------------------------------------------------------------
    def hidden_input(self, vt: np.ndarray) -> np.ndarray:
        """c + W v for feature-major ``vt`` (n_visible, batch): (n_hidden, batch)."""
        if self.is_dense:
            return self.weights.reshape(self.n_hidden, self.n_visible) @ vt + self.hidden_bias[:, None]
        out = np.empty((self.n_hidden, vt.shape[1]), dtype=self.dtype)
        kernels.spmm(self.pattern.indptr, self.pattern.cols, self.weights, vt, self.hidden_bias, out)
        return out

    def visible_input(self, ht: np.ndarray) -> np.ndarray:
        """b + W^T h for feature-major ``ht`` (n_hidden, batch): (n_visible, batch)."""
        if self.is_dense:
            return self.weights.reshape(self.n_hidden, self.n_visible).T @ ht + self.visible_bias[:, None]
        p = self.pattern
        out = np.empty((self.n_visible, ht.shape[1]), dtype=self.dtype)
        kernels.spmm_transposed(p.csc_indptr, p.csc_rows, p.csc_perm, self.weights, ht, out)
        out += self.visible_bias[:, None]
        return out

    def connection_statistics(self, ht: np.ndarray, vt: np.ndarray) -> np.ndarray:
        """sum over the batch of h_j v_i at every stored connection (j, i), in CSR order: (nnz,)."""
        if self.is_dense:
            return (ht @ vt.T).ravel().astype(self.dtype, copy=False)
        out = np.empty(self.pattern.nnz, dtype=self.dtype)
        kernels.sddmm(self.pattern.indptr, self.pattern.cols, ht, vt, out)
        return out

    # ---- conditionals, feature-major (units x batch): what the learners use ----------------------------
    def hidden_probabilities_t(self, vt: np.ndarray) -> np.ndarray:
        return sigmoid(self.hidden_input(vt))

    def visible_mean_t(self, ht: np.ndarray) -> np.ndarray:
        """E[v | h]: sigmoid(b + W^T h) (Bernoulli) or b + W^T h (Gaussian)."""
        pre = self.visible_input(ht)
        return sigmoid(pre) if self.visible == "bernoulli" else pre

    def sample_visible_t(self, ht: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mean = self.visible_mean_t(ht)
        if self.visible == "bernoulli":
            return (rng.random(mean.shape, dtype=self.dtype) < mean).astype(self.dtype)
        return mean + rng.standard_normal(mean.shape, dtype=self.dtype)

    def bernoulli_t(self, probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return (rng.random(probabilities.shape, dtype=self.dtype) < probabilities).astype(self.dtype)

    def to_feature_major(self, v: np.ndarray, name: str = "v") -> np.ndarray:
        """(batch, n_visible) input as a contiguous (n_visible, batch) array of the model's dtype."""
        v = np.asarray(v)
        if v.ndim != 2 or v.shape[1] != self.n_visible:
            raise ValueError(f"{name} must have shape (batch, {self.n_visible}), got {v.shape}")
        if v.shape[0] == 0:
            raise ValueError(f"{name} must hold at least one sample, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} holds NaN or infinite values")
        return np.ascontiguousarray(v.T, dtype=self.dtype)

    def _hidden_t(self, h: np.ndarray) -> np.ndarray:
        h = np.asarray(h)
        if h.ndim != 2 or h.shape[1] != self.n_hidden or h.shape[0] == 0:
            raise ValueError(f"h must have shape (batch >= 1, {self.n_hidden}), got {h.shape}")
        return np.ascontiguousarray(h.T, dtype=self.dtype)

    # ---- public, batch-major --------------------------------------------------------------------------
    def hidden_probabilities(self, v: np.ndarray) -> np.ndarray:
        """p(h = 1 | v), shape (batch, n_hidden)."""
        return self.hidden_probabilities_t(self.to_feature_major(v)).T

    def sample_hidden(self, v: np.ndarray, rng: int | np.random.Generator | None) -> np.ndarray:
        """A binary sample of h ~ p(h | v), shape (batch, n_hidden)."""
        return self.bernoulli_t(self.hidden_probabilities_t(self.to_feature_major(v)), as_rng(rng)).T

    def visible_mean(self, h: np.ndarray) -> np.ndarray:
        """E[v | h], shape (batch, n_visible)."""
        return self.visible_mean_t(self._hidden_t(h)).T

    def sample_visible(self, h: np.ndarray, rng: int | np.random.Generator | None) -> np.ndarray:
        """A sample of v ~ p(v | h), shape (batch, n_visible)."""
        return self.sample_visible_t(self._hidden_t(h), as_rng(rng)).T

    def gibbs(self, v: np.ndarray, *, steps: int = 1, rng: int | np.random.Generator | None = None) -> np.ndarray:
        """Visible states after ``steps`` full Gibbs steps v -> h -> v from ``v`` (sampled, not means)."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        rng = as_rng(rng)
        vt = self.to_feature_major(v)
        for _ in range(steps):
            vt = self.sample_visible_t(self.bernoulli_t(self.hidden_probabilities_t(vt), rng), rng)
        return vt.T

    def sample(
        self,
        n_samples: int,
        *,
        steps: int = 1000,
        rng: int | np.random.Generator | None = None,
        start: np.ndarray | None = None,
        mean: bool = True,
    ) -> np.ndarray:
        """``n_samples`` visible vectors from the model: Gibbs chains run ``steps`` steps.

        Chains start from ``start`` (n_samples, n_visible) or, if None, from random states (uniform bits,
        or N(b, 1) for Gaussian units). With ``mean`` the last half step returns E[v | h] (smooth pictures,
        and the replay data of online learning), else a sample.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        rng = as_rng(rng)
        if start is None:
            if self.visible == "bernoulli":
                vt = (rng.random((self.n_visible, n_samples)) < 0.5).astype(self.dtype)
            else:
                vt = (self.visible_bias[:, None] + rng.standard_normal((self.n_visible, n_samples))).astype(self.dtype)
        else:
            if np.shape(start)[0] != n_samples:
                raise ValueError(f"start must have {n_samples} rows (n_samples), got {np.shape(start)[0]}")
            vt = self.to_feature_major(start, "start")
        for _ in range(steps - 1):
            vt = self.sample_visible_t(self.bernoulli_t(self.hidden_probabilities_t(vt), rng), rng)
        ht = self.bernoulli_t(self.hidden_probabilities_t(vt), rng)
        return (self.visible_mean_t(ht) if mean else self.sample_visible_t(ht, rng)).T

    def free_energy(self, v: np.ndarray) -> np.ndarray:
        """F(v) = -log sum_h exp(-E(v, h)), per sample, shape (batch,), in float64.

        Bernoulli: F(v) = -b.v - sum_j softplus(c_j + W_j v); Gaussian: ||v - b||^2 / 2 - sum_j softplus(...).
        """
        vt = self.to_feature_major(v)
        hidden = softplus(self.hidden_input(vt).astype(np.float64)).sum(axis=0)
        v64, b64 = vt.astype(np.float64), self.visible_bias.astype(np.float64)
        if self.visible == "bernoulli":
            return -(b64 @ v64) - hidden
        return 0.5 * ((v64 - b64[:, None]) ** 2).sum(axis=0) - hidden

    def energy(self, v: np.ndarray, h: np.ndarray) -> np.ndarray:
        """E(v, h) per sample, shape (batch,), in float64."""
        vt, ht = self.to_feature_major(v), self._hidden_t(h)
        if vt.shape[1] != ht.shape[1]:
            raise ValueError(f"v and h must have the same batch size, got {vt.shape[1]} and {ht.shape[1]}")
        v64, h64 = vt.astype(np.float64), ht.astype(np.float64)
        interaction = (h64 * (self.hidden_input(vt).astype(np.float64) - self.hidden_bias[:, None])).sum(axis=0)
        hidden = self.hidden_bias.astype(np.float64) @ h64
        b64 = self.visible_bias.astype(np.float64)
        visible = -(b64 @ v64) if self.visible == "bernoulli" else 0.5 * ((v64 - b64[:, None]) ** 2).sum(axis=0)
        return visible - hidden - interaction

    def to_dense(self) -> np.ndarray:
        """W as a dense (n_hidden, n_visible) array (for inspection, pictures and tests: O(n_h n_v) memory)."""
        dense = np.zeros((self.n_hidden, self.n_visible), dtype=self.dtype)
        dense[self.pattern.rows, self.pattern.cols] = self.weights
        return dense

    # ---- state: arrays only (saved with evosparse.io.save_arrays, never pickled) ------------------------
    def state_dict(self) -> dict:
        return {
            "n_visible": self.n_visible,
            "n_hidden": self.n_hidden,
            "visible": self.visible,
            "init_std": self.init_std,
            "dtype": np.dtype(self.dtype).name,
            "keys": self.pattern.keys(),
            "weights": self.weights.copy(),
            "visible_bias": self.visible_bias.copy(),
            "hidden_bias": self.hidden_bias.copy(),
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> RBM:
        """The RBM a :meth:`state_dict` describes (its pattern checked: sorted, in range, no duplicate)."""
        n_visible, n_hidden = int(state["n_visible"]), int(state["n_hidden"])
        keys = np.asarray(state["keys"], dtype=np.int64)
        pattern = SparsePattern.from_coo(keys // n_visible, keys % n_visible, n_hidden, n_visible)
        if not np.array_equal(pattern.keys(), keys):
            raise ValueError("the saved connection keys are not sorted (not a state_dict of an RBM)")
        rbm = cls(n_visible, n_hidden, pattern=pattern, visible=str(state["visible"]),
                  init_std=float(state["init_std"]), dtype=np.dtype(str(state["dtype"])).type, seed=0)  # fmt: skip
        rbm.set_pattern(pattern, state["weights"])
        for name in ("visible_bias", "hidden_bias"):
            value = np.asarray(state[name], dtype=rbm.dtype)
            if value.shape != getattr(rbm, name).shape:
                raise ValueError(f"{name} must have shape {getattr(rbm, name).shape}, got {value.shape}")
            setattr(rbm, name, value.copy())
        return rbm

    def __repr__(self) -> str:
        return (
            f"RBM(n_visible={self.n_visible}, n_hidden={self.n_hidden}, visible={self.visible!r}, "
            f"nnz={self.nnz}, density={self.density:.4f})"
        )
