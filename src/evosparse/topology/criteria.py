"""Drop and grow criteria: the two halves of every rewiring, as registries of fixed-signature functions.

A rewiring step on one layer (SET, RigL and their variants) is:

1. **Drop**: a drop criterion marks the connections to remove, given the weights (CSR order) and the
   fraction to change: ``drop(values, fraction) -> bool mask``.
2. **Grow**: a grow criterion proposes as many new positions among those empty *after* the drop:
   ``grow(n_rows, n_cols, occupied, count, *, rng, gradients) -> sorted keys``, where ``occupied`` are the
   sorted keys ``row * n_cols + col`` of the survivors and ``gradients`` is ``(dL/dy, x)`` of the latest
   training batch (None for criteria that do not need it).

:func:`rewiring` composes the two into a :class:`Rewiring` (pure: no layer, no optimizer). SET is
``drop="set", grow="random"``; RigL is ``drop="magnitude", grow="gradient"``; any other pair (or a function
of the same signature) is a new method. Dettmers and Zettlemoyer's sparse_learning library keeps its
prune and growth functions in such registries.

NaN weights are the weakest of all: a NaN weight turns every output it feeds into NaN, so both drop criteria
remove every NaN at every update (beyond the budget if need be), as the SET rule does with exact zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from evosparse.sparse.pattern import SparsePattern
from evosparse.sparse.sampling import sample_free_keys, sample_free_rows
from evosparse.topology.gradient import largest_gradient_keys
from evosparse.topology.rewire import Rewiring
from evosparse.topology.select import smallest

Gradients = tuple[torch.Tensor, torch.Tensor]  # (dL/dy of shape (batch, n_out), x of shape (batch, n_in))


# ---- drop: which connections go ----------------------------------------------------------------------------------


def drop_set(values: np.ndarray, fraction: float) -> np.ndarray:
    """The SET paper's sign-wise rule: the fraction closest to zero of the positive weights, and of the negative.

    Exact zeros and NaNs carry nothing: they always go (when ``fraction > 0``), as zeros do in the SET code.
    """
    # Of each sign, the k-th weight closest to zero is found without copying or sorting the weights: floats of
    # one sign order as their bit patterns do, so one histogram of the top 16 bits (sign, exponent, leading
    # mantissa) finds the bin holding it, and only that bin's weights are sorted. One pass then marks those
    # below it; equal weights at the threshold go in CSR order. Every pass is branch-free on the sign (weights'
    # signs are random: a branch on them mispredicts half the time). The result is exactly a sort's
    # (tests/topology/test_set.py).
    values = np.ascontiguousarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    bits = values.view(np.uint32 if values.dtype == np.float32 else np.uint64)
    shift = 8 * bits.itemsize - 16
    histogram, zeros, nans = _sign_histogram(values, bits, shift)
    if nans:  # NaN bit patterns share bins with infinities: a rare case, taken by partitioning copies
        return _drop_set_with_nans(values, fraction)
    thresholds = []
    for sign, half, n_zeros in ((1.0, histogram[: 1 << 15], zeros[0]), (-1.0, histogram[1 << 15 :], zeros[1])):
        half[0] -= n_zeros  # bin 0 of a sign holds its zeros besides its tiniest weights
        cumulative = np.cumsum(half)
        k = int(fraction * int(cumulative[-1]))
        if k <= 0:
            thresholds.append((-np.inf, 0))
            continue
        top = int(np.searchsorted(cumulative, k))  # the bin of the k-th smallest score
        below = int(cumulative[top - 1]) if top > 0 else 0
        candidates = np.sort(_scores_in_bin(values, bits, sign, shift, top, int(half[top])))
        threshold = candidates[k - below - 1]
        thresholds.append((float(threshold), k - below - int(np.searchsorted(candidates, threshold, side="left"))))
    remove = np.empty(values.shape[0], dtype=bool)
    _mark_weak(values, thresholds[0], thresholds[1], fraction > 0, remove)
    return remove


def _drop_set_with_nans(values: np.ndarray, fraction: float) -> np.ndarray:
    remove = drop_set(np.where(np.isnan(values), 0, values), fraction)  # NaNs go like zeros, and always
    remove[np.isnan(values)] = fraction > 0
    return remove


@njit(cache=True, nogil=True)
def _sign_histogram(values, bits, shift):  # pragma: no cover - compiled
    """Counts of the top 16 bits (bins 0..2^15 - 1: w >= 0, 2^15..: w < 0 by |w|), of +-0, and of NaNs."""
    histogram = np.zeros(1 << 16, dtype=np.int64)
    positive_zeros = negative_zeros = nans = 0
    for i in range(values.shape[0]):
        top = bits[i] >> shift
        histogram[top] += 1
        low = bits[i] & ((1 << shift) - 1)
        positive_zeros += (top == 0) & (low == 0)
        negative_zeros += (top == (1 << 15)) & (low == 0)
        nans += values[i] != values[i]
    return histogram, (positive_zeros, negative_zeros), nans


@njit(cache=True, nogil=True)
def _scores_in_bin(values, bits, sign, shift, top, size):  # pragma: no cover - compiled
    """The nonzero scores ``sign * w > 0`` whose top 16 bits (sign bit dropped) are ``top``."""
    out = np.empty(size, dtype=values.dtype)
    n = 0
    want = top + (1 << 15 if sign < 0 else 0)
    for i in range(values.shape[0]):
        if (bits[i] >> shift) == want and values[i] != 0 and n < size:
            out[n] = sign * values[i]
            n += 1
    return out


@njit(cache=True, nogil=True)
def _mark_weak(values, positive, negative, drop_zeros, remove):  # pragma: no cover - compiled
    """Mark the weights whose score ``|w|`` is below their sign's threshold, the first ties, and (if
    ``drop_zeros``) the zeros."""
    up, up_ties = positive
    down, down_ties = negative
    up_t, down_t = values.dtype.type(up), values.dtype.type(down)
    for i in range(values.shape[0]):
        v = values[i]
        positive, negative = v > 0, v < 0
        remove[i] = (positive & (v < up_t)) | (negative & (-v < down_t)) | ((v == 0) & drop_zeros)
        if (positive & (v == up_t)) | (negative & (-v == down_t)):  # rare: ties at a threshold, first ones go
            if v > 0 and up_ties > 0:
                remove[i] = True
                up_ties -= 1
            elif v < 0 and down_ties > 0:
                remove[i] = True
                down_ties -= 1


def drop_magnitude(values: np.ndarray, fraction: float) -> np.ndarray:
    """The fraction of all weights with the smallest ``|w|``; NaNs first, and all of them."""
    remove = np.zeros(values.shape[0], dtype=bool)
    magnitude = np.abs(values)
    nan = np.isnan(magnitude)
    if nan.any():  # np.argpartition sorts NaN last: make it the smallest instead
        magnitude = np.where(nan, -np.inf, magnitude)
    remove[smallest(magnitude, int(fraction * values.shape[0]))] = True
    remove[nan] |= fraction > 0
    return remove


DropCriterion = Callable[[np.ndarray, float], np.ndarray]
DROP_CRITERIA: dict[str, DropCriterion] = {"set": drop_set, "magnitude": drop_magnitude}


# ---- grow: where new connections appear ---------------------------------------------------------------------------


def grow_random(
    n_rows: int, n_cols: int, occupied: np.ndarray, count: int, *, rng: np.random.Generator, gradients: Gradients | None
) -> np.ndarray:
    """Positions drawn uniformly from the empty ones (SET): a removed position may come back."""
    return sample_free_keys(n_rows, n_cols, count, occupied, rng)


def grow_random_rows(
    indptr: np.ndarray, cols: np.ndarray, keep: np.ndarray, n_cols: int, count: int, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`grow_random` per row: the survivors as a mask over the CSR order, the new positions as CSR arrays.

    This is what SET's random growth draws (the layer-level rewiring and :func:`rewiring` alike): no int64
    keys of nnz length, no global sort (:func:`~evosparse.sparse.sampling.sample_free_rows`).
    """
    return sample_free_rows(indptr, cols, keep, n_cols, count, rng)


def grow_gradient(
    n_rows: int, n_cols: int, occupied: np.ndarray, count: int, *, rng: np.random.Generator, gradients: Gradients | None
) -> np.ndarray:
    """The empty positions of largest ``|dL/dW|`` on the latest batch (RigL), found in row blocks."""
    if gradients is None:
        raise ValueError("grow='gradient' needs the gradients of a training batch")
    grad_output, inputs = gradients
    return largest_gradient_keys(grad_output, inputs, occupied, count)


@dataclass(frozen=True)
class GrowCriterion:
    """A grow function and whether it reads gradients (then its strategy records them every training step)."""

    propose: Callable[..., np.ndarray]
    needs_gradients: bool = False
    # Optional per-row form ``(indptr, cols, keep, n_cols, count, *, rng) -> (new_indptr, new_cols)``: when given,
    # it is what the criterion draws (``propose`` is then not called), and layers rewire without int64 keys.
    propose_rows: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None


GROW_CRITERIA: dict[str, GrowCriterion] = {
    "random": GrowCriterion(grow_random, propose_rows=grow_random_rows),
    "gradient": GrowCriterion(grow_gradient, needs_gradients=True),
}


def drop_criterion(drop: str | DropCriterion) -> DropCriterion:
    """A drop criterion by name (one of DROP_CRITERIA) or a function of the same signature, as is."""
    if callable(drop):
        return drop
    if drop not in DROP_CRITERIA:
        raise ValueError(f"drop must be one of {', '.join(DROP_CRITERIA)} or a function, got {drop!r}")
    return DROP_CRITERIA[drop]


def grow_criterion(grow: str | GrowCriterion) -> GrowCriterion:
    """A grow criterion by name (one of GROW_CRITERIA) or a :class:`GrowCriterion`, as is."""
    if isinstance(grow, GrowCriterion):
        return grow
    if grow not in GROW_CRITERIA:
        raise ValueError(f"grow must be one of {', '.join(GROW_CRITERIA)} or a GrowCriterion, got {grow!r}")
    return GROW_CRITERIA[grow]


# ---- the composition -------------------------------------------------------------------------------------------


def rewiring(
    values: np.ndarray,
    keys: np.ndarray,
    n_rows: int,
    n_cols: int,
    *,
    fraction: float,
    drop: str | DropCriterion,
    grow: str | GrowCriterion,
    rng: np.random.Generator | None = None,
    gradients: Gradients | None = None,
) -> Rewiring:
    """One drop-and-grow step on one layer: as many connections grown as dropped, so nnz stays constant.

    Args:
        values: weights in CSR order, shape (nnz,).
        keys: sorted linear positions ``row * n_cols + col`` of those weights.
        n_rows, n_cols: layer shape (out, in).
        fraction: the fraction the drop criterion removes, in [0, 1).
        drop, grow: criteria (names or functions, see the module docstring).
        rng: random source of the grow criterion (random growth).
        gradients: ``(dL/dy, x)`` of the latest batch, for criteria that read gradients.
    """
    remove = drop_criterion(drop)(values, fraction)
    keep = np.flatnonzero(~remove)
    grower = grow_criterion(grow)
    # Grow among positions empty *after* the drop, as both papers do: a dropped position may return.
    if grower.propose_rows is not None:
        pattern = SparsePattern.from_sorted_keys(keys, n_rows, n_cols)
        count = len(remove) - len(keep)
        new_indptr, new_cols = grower.propose_rows(pattern.indptr, pattern.cols, ~remove, n_cols, count, rng=rng)
        new_rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(new_indptr))
        return Rewiring(keep=keep, new_keys=new_rows * n_cols + new_cols)
    new_keys = grower.propose(n_rows, n_cols, keys[keep], int(remove.sum()), rng=rng, gradients=gradients)
    return Rewiring(keep=keep, new_keys=new_keys)
