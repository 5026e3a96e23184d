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

from evosparse.sparse.sampling import sample_free_keys
from evosparse.topology.gradient import largest_gradient_keys
from evosparse.topology.rewire import Rewiring
from evosparse.topology.select import smallest

Gradients = tuple[torch.Tensor, torch.Tensor]  # (dL/dy of shape (batch, n_out), x of shape (batch, n_in))


# ---- drop: which connections go ----------------------------------------------------------------------------------


def drop_set(values: np.ndarray, fraction: float) -> np.ndarray:
    """The SET paper's sign-wise rule: the fraction closest to zero of the positive weights, and of the negative.

    Exact zeros and NaNs carry nothing: they always go (when ``fraction > 0``), as zeros do in the SET code.
    """
    # The k-th smallest positive (largest negative) weight is found by a partition of a copy of the weights
    # of one sign (no index arrays: 4 bytes per weight, not 16); one pass then marks those below it.
    # Equal weights at the threshold go in CSR order (argpartition would pick any of them).
    positive = values[values > 0]
    negative = -values[values < 0]
    remove = np.zeros(values.shape[0], dtype=bool)
    _mark_below(values, 1.0, _kth_smallest(positive, int(fraction * positive.shape[0])), remove)
    _mark_below(values, -1.0, _kth_smallest(negative, int(fraction * negative.shape[0])), remove)
    remove[(values == 0) | np.isnan(values)] = fraction > 0
    return remove


def _kth_smallest(scores: np.ndarray, k: int) -> tuple[float, int]:
    """(threshold, how many scores equal to it are taken) so that exactly the ``k`` smallest are taken."""
    if k <= 0:
        return -np.inf, 0
    threshold = np.partition(scores, k - 1)[k - 1]
    return float(threshold), k - int(np.count_nonzero(scores < threshold))


@njit(cache=True, nogil=True)
def _mark_below(values, sign, threshold_and_ties, remove):  # pragma: no cover - compiled
    """Mark the weights of ``sign`` whose score ``sign * w`` is below the threshold, and the first ties."""
    threshold, ties = threshold_and_ties
    for i in range(values.shape[0]):
        score = sign * values[i]
        if score > 0:
            if score < threshold:
                remove[i] = True
            elif score == threshold and ties > 0:
                remove[i] = True
                ties -= 1


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


GROW_CRITERIA: dict[str, GrowCriterion] = {
    "random": GrowCriterion(grow_random),
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
    # Grow among positions empty *after* the drop, as both papers do: a dropped position may return.
    new_keys = grow_criterion(grow).propose(n_rows, n_cols, keys[keep], int(remove.sum()), rng=rng, gradients=gradients)
    return Rewiring(keep=keep, new_keys=new_keys)
