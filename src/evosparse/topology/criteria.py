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
from numba import njit, prange

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
    # Per sign: k, the bin of the k-th smallest score, the count below that bin (bin -1: nothing to drop).
    plans = []
    for half, n_zeros in ((histogram[: 1 << 15], zeros[0]), (histogram[1 << 15 :], zeros[1])):
        half[0] -= n_zeros  # bin 0 of a sign holds its zeros besides its tiniest weights
        cumulative = np.cumsum(half)
        k = int(fraction * int(cumulative[-1]))
        top = int(np.searchsorted(cumulative, k)) if k > 0 else -1
        below = int(cumulative[top - 1]) if top > 0 else 0
        plans.append((k, top, below, int(half[top]) if k > 0 else 0))
    # Both signs' candidate bins in one pass over the weights.
    positive, negative = _scores_in_bins(values, bits, shift, plans[0][1], plans[0][3], plans[1][1], plans[1][3])
    thresholds = []
    for (k, _, below, _), candidates in zip(plans, (positive, negative)):
        if k <= 0:
            thresholds.append((-np.inf, 0))
            continue
        candidates = np.sort(candidates)
        threshold = candidates[k - below - 1]
        thresholds.append((float(threshold), k - below - int(np.searchsorted(candidates, threshold, side="left"))))
    remove = np.empty(values.shape[0], dtype=bool)
    _mark_weak(values, thresholds[0], thresholds[1], fraction > 0, remove, _DROP_PARTS)
    return remove


def _drop_set_with_nans(values: np.ndarray, fraction: float) -> np.ndarray:
    remove = drop_set(np.where(np.isnan(values), 0, values), fraction)  # NaNs go like zeros, and always
    remove[np.isnan(values)] = fraction > 0
    return remove


# The weights are split into this many consecutive parts for the parallel passes (a constant, so that which
# of several tied weights goes never depends on the thread count).
_DROP_PARTS = 64
_HISTOGRAM_PARTS = 8  # each part counts into its own 65,536 bins (512 KB)


@njit(cache=True, nogil=True, parallel=True)
def _sign_histogram(values, bits, shift):  # pragma: no cover - compiled
    """Counts of the top 16 bits (bins 0..2^15 - 1: w >= 0, 2^15..: w < 0 by |w|), of +-0, and of NaNs."""
    n = values.shape[0]
    n_parts = max(1, min(_HISTOGRAM_PARTS, n >> 16))  # integer counts: the same whatever the split
    histograms = np.zeros((n_parts, 1 << 16), dtype=np.int64)
    counts = np.zeros((n_parts, 3), dtype=np.int64)  # +0, -0, NaN
    for t in prange(n_parts):
        positive_zeros = negative_zeros = nans = 0
        for i in range(n * t // n_parts, n * (t + 1) // n_parts):
            top = bits[i] >> shift
            histograms[t, top] += 1
            low = bits[i] & ((1 << shift) - 1)
            positive_zeros += (top == 0) & (low == 0)
            negative_zeros += (top == (1 << 15)) & (low == 0)
            nans += values[i] != values[i]
        counts[t, 0], counts[t, 1], counts[t, 2] = positive_zeros, negative_zeros, nans
    histogram = histograms.sum(axis=0)
    total = counts.sum(axis=0)
    return histogram, (total[0], total[1]), total[2]


@njit(cache=True, nogil=True)
def _scores_in_bins(values, bits, shift, top_positive, size_positive, top_negative, size_negative):  # pragma: no cover
    """The nonzero scores ``|w|`` of the positive weights whose top 16 bits are ``top_positive``, and of the
    negative ones whose top 16 bits (sign dropped) are ``top_negative`` (a bin of -1: none wanted)."""
    positive = np.empty(size_positive, dtype=values.dtype)
    negative = np.empty(size_negative, dtype=values.dtype)
    want_positive = top_positive
    want_negative = top_negative + (1 << 15) if top_negative >= 0 else -1
    n_positive = n_negative = 0
    for i in range(values.shape[0]):
        top = np.int64(bits[i] >> shift)
        if top == want_positive and values[i] != 0 and n_positive < size_positive:
            positive[n_positive] = values[i]
            n_positive += 1
        elif top == want_negative and values[i] != 0 and n_negative < size_negative:
            negative[n_negative] = -values[i]
            n_negative += 1
    return positive, negative


@njit(cache=True, nogil=True, parallel=True)
def _mark_weak(values, positive, negative, drop_zeros, remove, n_parts):  # pragma: no cover - compiled
    """Mark the weights whose score ``|w|`` is below their sign's threshold, the first ties (in order), and
    (if ``drop_zeros``) the zeros. Parts in parallel, then the rare ties part by part in order."""
    up, up_ties = positive
    down, down_ties = negative
    up_t, down_t = values.dtype.type(up), values.dtype.type(down)
    n = values.shape[0]
    n_parts = max(1, min(n_parts, n))
    ties = np.zeros((n_parts, 2), dtype=np.int64)  # per part: weights at the positive / negative threshold
    for t in prange(n_parts):
        at_up = at_down = 0
        for i in range(n * t // n_parts, n * (t + 1) // n_parts):
            v = values[i]
            is_positive, is_negative = v > 0, v < 0
            remove[i] = (is_positive & (v < up_t)) | (is_negative & (-v < down_t)) | ((v == 0) & drop_zeros)
            at_up += is_positive & (v == up_t)
            at_down += is_negative & (-v == down_t)
        ties[t, 0], ties[t, 1] = at_up, at_down
    for t in range(n_parts):  # the first up_ties / down_ties weights at the thresholds go, in CSR order
        if (up_ties > 0 and ties[t, 0] > 0) or (down_ties > 0 and ties[t, 1] > 0):
            for i in range(n * t // n_parts, n * (t + 1) // n_parts):
                v = values[i]
                if v > 0 and v == up_t and up_ties > 0:
                    remove[i] = True
                    up_ties -= 1
                elif v < 0 and -v == down_t and down_ties > 0:
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


def settle_set_ties(values: np.ndarray, remove: np.ndarray, csr_keys: Callable[[np.ndarray], np.ndarray]) -> None:
    """Make ``remove`` (:func:`drop_set` of ``values`` stored in another order than CSR, e.g. row-blocked) drop what
    :func:`drop_set` drops in CSR order: of equal scores on both sides of a sign's threshold, the ones first in
    CSR order go (drop_set takes them in the order given). ``csr_keys(positions)``: the CSR keys ``row * n_cols +
    col`` of stored positions. In place; one pass over the weights, then a sort of the tied few (float32 weights
    tie at the threshold in most updates of a 20M-connection layer)."""
    for group, score in enumerate(_straddling_scores(values, remove, _DROP_PARTS)):
        if np.isnan(score):
            continue
        tied = _positions_scoring(values, group, values.dtype.type(score))
        n_dropped = int(np.count_nonzero(remove[tied]))
        remove[tied] = False
        remove[tied[np.argsort(csr_keys(tied), kind="stable")[:n_dropped]]] = True


@njit(cache=True, nogil=True, parallel=True)
def _straddling_scores(values, remove, n_parts):  # pragma: no cover - compiled
    """Per sign (positive, negative weights), the score ``|w|`` that both a dropped and a kept weight have (the
    sign's threshold when it splits a tie), or NaN. NaNs and zeros (always dropped) are no score."""
    n = values.shape[0]
    n_parts = max(1, min(n_parts, n))
    dropped_max = np.full((n_parts, 2), -np.inf)
    kept_min = np.full((n_parts, 2), np.inf)
    for t in prange(n_parts):
        for i in range(n * t // n_parts, n * (t + 1) // n_parts):
            v = values[i]
            if v != v or v == 0:
                continue
            group = 1 if v < 0 else 0
            if remove[i]:
                dropped_max[t, group] = max(dropped_max[t, group], abs(v))
            else:
                kept_min[t, group] = min(kept_min[t, group], abs(v))
    scores = np.full(2, np.nan)
    for group in range(2):
        top, bottom = dropped_max[:, group].max(), kept_min[:, group].min()
        if top == bottom:
            scores[group] = top
    return scores


@njit(cache=True, nogil=True)
def _positions_scoring(values, group, score):  # pragma: no cover - compiled
    """Positions of the weights of sign ``group`` (0: positive, 1: negative) whose ``|w|`` is ``score``."""
    target = -score if group == 1 else score
    count = 0
    for i in range(values.shape[0]):
        count += values[i] == target
    out = np.empty(count, dtype=np.int64)
    count = 0
    for i in range(values.shape[0]):
        if values[i] == target:
            out[count] = i
            count += 1
    return out


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
