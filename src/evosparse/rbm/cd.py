"""Contrastive divergence (CD-k) and persistent CD: the learning rule of an RBM, on its stored connections only.

One update on a mini-batch v0 (Hinton 2002; the practical recipe of Hinton 2010):

1. **Positive phase**: p0 = p(h | v0); the data statistics <v h>_data at every connection are one SDDMM
   of (p0, v0).
2. **Negative phase**: a Gibbs chain of ``k`` steps h -> v -> h, started from a sample of p0 (CD-k) or from
   the persistent fantasy particles (PCD, Tieleman 2008); the last visible state is E[v | h] and the model
   statistics <v h>_model are one SDDMM of (p(h | v_k), v_k). Both SDDMMs run as *one* kernel call on
   the two phases stacked along the batch (the negative one with a minus sign).
3. **Update** with momentum and L2 weight decay (not on the biases)::

       velocity = momentum * velocity + lr * ((<v h>_data - <v h>_model) / batch - weight_decay * W)
       W += velocity

The SET-RBM reference code calls CD-1 a "Markov chain of length 2" (the data and one reconstruction): its
setting is ``k=1`` here. Its positive statistics use a binary sample of h where we use p(h | v) (Hinton
2010, section 3.3: less sampling noise, same expectation), and it decays W by ``weight_decay`` rather than
``lr * weight_decay`` (identical to 2e-8 at the paper's settings).

The reconstruction error of a batch is mean((v0 - E[v | h0])^2) with h0 sampled from p(h | v0): the
quantity the reference code reports.

Two implementations of the same update: :meth:`ContrastiveDivergence.step` / ``epoch`` run it as one
compiled call per epoch (:func:`evosparse.rbm.fused.cd_epoch`) for a sparse RBM without persistent chains,
bit-identical to the step-by-step numpy path below (``fused=False``), which remains the reference and runs
PCD and the dense (BLAS) RBM.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from evosparse.rbm.fused import cd_epoch
from evosparse.rbm.model import RBM, as_rng


def _check(name: str, value: Any, *, low: float, high: float | None = None, high_open: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value) and value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        interval = f"[{low:g}, {'inf' if high is None else f'{high:g}'}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


class ContrastiveDivergence:
    """CD-k / persistent CD learner of an RBM, with momentum and weight decay.

    Args:
        lr: learning rate (SET-RBM reference: 0.1).
        k: Gibbs steps of the negative phase (reference: 1, its "Markov chain of length 2").
        persistent: keep the negative chains across updates (PCD) instead of restarting them at the data.
        momentum: in [0, 1) (reference: 0).
        weight_decay: L2 coefficient on the weights (reference: 2e-7).
        seed: int, Generator or None: the learner's own random source (Gibbs sampling).
        fused: run sparse, non-persistent updates as one compiled call per epoch (the same results, bit for
            bit; 1.7-1.9x less time per epoch at the SET-RBM setting, BENCHMARKS.md section 9); False: always
            the step-by-step numpy path.

    Attributes:
        velocity: momentum buffers of the weights (nnz,), visible and hidden biases; chains: the persistent
        visible states (n_visible, n_chains) feature-major, or None.
    """

    def __init__(
        self,
        *,
        lr: float = 0.1,
        k: int = 1,
        persistent: bool = False,
        momentum: float = 0.0,
        weight_decay: float = 2e-7,
        seed: int | np.random.Generator | None = None,
        fused: bool = True,
    ) -> None:
        self.lr = _check("lr", lr, low=0)
        if self.lr == 0:
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        if not isinstance(persistent, bool):
            raise ValueError(f"persistent must be true or false, got {persistent!r}")
        if not isinstance(fused, bool):
            raise ValueError(f"fused must be true or false, got {fused!r}")
        self.k, self.persistent, self.fused = int(k), persistent, fused
        self.momentum = _check("momentum", momentum, low=0, high=1, high_open=True)
        self.weight_decay = _check("weight_decay", weight_decay, low=0)
        self.rng = as_rng(seed)
        self.velocity: dict[str, np.ndarray] | None = None
        self.chains: np.ndarray | None = None
        self.n_updates = 0

    # ---- one update ---------------------------------------------------------------------------------------
    def step(self, rbm: RBM, batch: np.ndarray) -> float:
        """One CD update of ``rbm`` on ``batch`` (batch, n_visible); returns the batch's reconstruction error."""
        if self._can_fuse(rbm):
            batch = self._checked_data(rbm, batch, "batch")
            return float(self._fused(rbm, batch, np.arange(batch.shape[0]), batch.shape[0])[0])
        v0 = rbm.to_feature_major(batch, "batch")
        self._ensure_state(rbm, v0.shape[1])
        rng = self.rng
        p0 = rbm.hidden_probabilities_t(v0)
        h0 = rbm.bernoulli_t(p0, rng)
        reconstruction = rbm.visible_mean_t(h0)
        error = float(np.mean((v0 - reconstruction) ** 2))

        h = rbm.bernoulli_t(rbm.hidden_probabilities_t(self.chains), rng) if self.persistent else h0
        for _ in range(self.k - 1):  # all but the last step: sampled states
            h = rbm.bernoulli_t(rbm.hidden_probabilities_t(rbm.sample_visible_t(h, rng)), rng)
        if self.persistent:
            self.chains = rbm.sample_visible_t(h, rng)  # the particles move on by a sample, not a mean
        vk = reconstruction if (self.k == 1 and not self.persistent) else rbm.visible_mean_t(h)
        pk = rbm.hidden_probabilities_t(vk)
        self._apply(rbm, v0, p0, vk, pk)
        self.n_updates += 1
        return error

    # ---- the fused path -------------------------------------------------------------------------------------
    def _can_fuse(self, rbm: RBM) -> bool:
        return self.fused and not self.persistent and not rbm.is_dense

    @staticmethod
    def _checked_data(rbm: RBM, x: np.ndarray, name: str) -> np.ndarray:
        """``x`` (n, n_visible) checked as :meth:`RBM.to_feature_major` checks it, batch-major, float, contiguous."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != rbm.n_visible:
            raise ValueError(f"{name} must have shape (batch, {rbm.n_visible}), got {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"{name} must hold at least one sample, got shape {x.shape}")
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(rbm.dtype)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} holds NaN or infinite values")
        return np.ascontiguousarray(x)

    def _fused(self, rbm: RBM, x: np.ndarray, order: np.ndarray, batch_size: int) -> np.ndarray:
        """The updates on ``x[order]`` in mini-batches, in one compiled call; returns each batch's error."""
        self._ensure_state(rbm, batch_size)
        n_batches = -(-order.shape[0] // batch_size)
        errors = np.empty(n_batches, dtype=np.float64)
        p, velocity, dtype = rbm.pattern, self.velocity, rbm.dtype
        cd_epoch(x, order, batch_size, p.indptr, p.cols, p.csc_indptr, p.csc_rows, p.csc_perm, rbm.weights,
                 rbm.visible_bias, rbm.hidden_bias, velocity["weights"], velocity["visible_bias"],
                 velocity["hidden_bias"], dtype(self.lr), dtype(self.momentum), dtype(self.weight_decay), self.k,
                 rbm.visible == "gaussian", self.rng, errors)  # fmt: skip
        self.n_updates += n_batches
        return errors

    def _apply(self, rbm: RBM, v0: np.ndarray, p0: np.ndarray, vk: np.ndarray, pk: np.ndarray) -> None:
        n_data, n_model = v0.shape[1], vk.shape[1]  # PCD: as many chains as the first batch had samples
        # One SDDMM for both phases: <p0, v0> / n_data - <pk, vk> / n_model is a single dot product along the
        # stacked batch, the hidden side scaled by 1 / n_data and -1 / n_model.
        hidden = np.concatenate([p0 * (1.0 / n_data), pk * (-1.0 / n_model)], axis=1).astype(rbm.dtype, copy=False)
        visible = np.concatenate([v0, vk], axis=1)
        weight_gradient = rbm.connection_statistics(hidden, visible) - self.weight_decay * rbm.weights
        visible_gradient = v0.mean(axis=1) - vk.mean(axis=1)
        hidden_gradient = p0.mean(axis=1) - pk.mean(axis=1)
        velocity, m, lr = self.velocity, self.momentum, self.lr
        for name, gradient in (("weights", weight_gradient), ("visible_bias", visible_gradient),
                               ("hidden_bias", hidden_gradient)):  # fmt: skip
            buffer = velocity[name]
            buffer *= m
            buffer += (lr * gradient).astype(rbm.dtype, copy=False)
        rbm.weights += velocity["weights"]
        rbm.visible_bias += velocity["visible_bias"]
        rbm.hidden_bias += velocity["hidden_bias"]

    def _ensure_state(self, rbm: RBM, batch: int) -> None:
        if self.velocity is None or self.velocity["weights"].shape != rbm.weights.shape:
            if self.velocity is not None:
                raise ValueError(
                    f"the RBM has {rbm.nnz} connections but the learner's momentum has "
                    f"{self.velocity['weights'].shape[0]}: call remap(gather) after rewiring"
                )
            self.velocity = {
                "weights": np.zeros_like(rbm.weights),
                "visible_bias": np.zeros_like(rbm.visible_bias),
                "hidden_bias": np.zeros_like(rbm.hidden_bias),
            }
        if self.persistent and self.chains is None:
            # Fantasy particles start at the first batch, as Tieleman (2008) starts them at data.
            self.chains = np.zeros((rbm.n_visible, batch), dtype=rbm.dtype)
            self.chains[...] = 0.5 if rbm.visible == "bernoulli" else 0.0
            self.chains = rbm.sample_visible_t(rbm.bernoulli_t(rbm.hidden_probabilities_t(self.chains), self.rng),
                                               self.rng)  # fmt: skip

    # ---- an epoch -----------------------------------------------------------------------------------------
    def epoch(self, rbm: RBM, x: np.ndarray, *, batch_size: int, rng: np.random.Generator) -> float:
        """One pass over ``x`` in shuffled mini-batches (``rng`` shuffles); returns the mean batch error."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"x must have shape (n >= 1, {rbm.n_visible}), got {x.shape}")
        order = rng.permutation(x.shape[0])
        if self._can_fuse(rbm):
            return float(np.mean(self._fused(rbm, self._checked_data(rbm, x, "batch"), order, int(batch_size))))
        errors = [self.step(rbm, x[order[s : s + batch_size]]) for s in range(0, x.shape[0], batch_size)]
        return float(np.mean(errors))

    # ---- topology changes and checkpoints -------------------------------------------------------------------
    def remap(self, gather: np.ndarray) -> None:
        """Carry the weights' momentum across :meth:`RBM.rewire` (survivors keep it, new connections start at 0)."""
        if self.velocity is None:
            return
        old = self.velocity["weights"]
        n_new = int(np.count_nonzero(gather >= old.shape[0]))
        self.velocity["weights"] = np.concatenate([old, np.zeros(n_new, dtype=old.dtype)])[gather]

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs: momentum, chains, counter and the random generator's state."""
        state: dict[str, Any] = {"n_updates": self.n_updates, "rng": copy.deepcopy(self.rng.bit_generator.state)}
        if self.velocity is not None:
            state["velocity"] = {name: value.copy() for name, value in self.velocity.items()}
        if self.chains is not None:
            state["chains"] = self.chains.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n_updates = int(state["n_updates"])
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        velocity = state.get("velocity")
        self.velocity = None if velocity is None else {name: np.array(value) for name, value in velocity.items()}
        chains = state.get("chains")
        self.chains = None if chains is None else np.ascontiguousarray(chains)

    def __repr__(self) -> str:
        return (
            f"ContrastiveDivergence(lr={self.lr}, k={self.k}, persistent={self.persistent}, "
            f"momentum={self.momentum}, weight_decay={self.weight_decay}, fused={self.fused})"
        )
