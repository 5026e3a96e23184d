"""XBM initialisation: an RBM wired as a scale-free, small-world bipartite graph on the data's geometry.

Mocanu et al. (Machine Learning 2016) observe that trained RBMs are small-world graphs and propose the
XBM ("compleX Boltzmann Machine"): fix the topology *before* training so that it is scale-free (few hidden
units with many connections, many with few), local (a hidden unit sees a neighbourhood of the input,
like a receptive field) and small-world (some long-range shortcuts). The construction here, per hidden
unit j:

1. **Degree**: d_j from a power law P(d) ~ d^(-phi) (``phi``, the paper's power-law coefficient), the
   degrees then scaled so that they sum to the weight budget (by default the Erdos-Renyi budget of
   ``epsilon``, so XBM, FixProb and SET-RBM compare at equal weights) and clipped to [1, n_visible].
2. **Locality**: a centre chosen uniformly among the visible units, which sit on the data's geometry
   (``visible_shape``: the image grid, e.g. (32, 32) for COIL20; a line for plain vectors); j connects
   to the d_j visible units nearest to it (Euclidean distance on the grid, ties broken at random).
3. **Small world**: each of those connections is rewired, with probability ``rewire`` (Watts-Strogatz),
   to a visible unit drawn uniformly among those j is not yet connected to.

Cost: O(n_hidden x n_visible) time for the distances, one hidden unit at a time (O(n_visible) memory);
never an n_hidden x n_visible array. Defaults (``phi=2.5``, ``rewire=0.1``) are this library's choice
within the ranges the paper studies (power-law coefficients between 2 and 3 are the scale-free regime;
a small rewiring probability gives the small world); they are arguments, not constants.

Paper: Mocanu, Mocanu, Nguyen, Gibescu and Liotta, "A topological insight into restricted Boltzmann
machines", Machine Learning 104(2), 243-270 (2016).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from evosparse.sparse.pattern import SparsePattern


def power_law_degrees(n: int, *, phi: float, total: int, max_degree: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` integer degrees drawn from P(d) ~ d^(-phi) (d >= 1), scaled to sum to about ``total``.

    The draws are continuous Pareto samples d = (1 - u)^(-1 / (phi - 1)); multiplying them by one factor
    keeps the power-law exponent (only the minimum degree moves). After rounding and clipping to
    [1, max_degree] the sum is adjusted one unit at a time (largest degrees first) to hit ``total``
    exactly when the bounds allow it.
    """
    if not phi > 1:
        raise ValueError(f"phi must be > 1 (a normalisable power law), got {phi}")
    if not 1 <= max_degree:
        raise ValueError(f"max_degree must be >= 1, got {max_degree}")
    total = int(min(max(total, n), n * max_degree))
    raw = (1.0 - rng.random(n)) ** (-1.0 / (phi - 1.0))
    degrees = np.clip(np.round(raw * total / raw.sum()), 1, max_degree).astype(np.int64)
    # Rounding and clipping moved the sum: hand the difference out (or take it back) one unit per hidden
    # unit and round, largest draws first, until the budget is met or no unit has room left.
    order = np.argsort(-raw, kind="stable")
    while (gap := total - int(degrees[order].sum())) != 0:
        room = order[degrees[order] < max_degree] if gap > 0 else order[degrees[order] > 1]
        if room.shape[0] == 0:
            break
        degrees[room[: abs(gap)]] += 1 if gap > 0 else -1
    return degrees


def grid_coordinates(n_visible: int, visible_shape: Sequence[int] | None) -> np.ndarray:
    """Coordinates (n_visible, dims) of the visible units on their geometry (a line if no shape)."""
    shape = (n_visible,) if visible_shape is None else tuple(int(s) for s in visible_shape)
    if math.prod(shape) != n_visible or any(s < 1 for s in shape):
        raise ValueError(f"visible_shape must have {n_visible} units in all (n_visible), got {list(shape)}")
    return np.stack(np.unravel_index(np.arange(n_visible), shape), axis=1).astype(np.float64)


def xbm_pattern(
    n_visible: int,
    n_hidden: int,
    *,
    nnz: int,
    visible_shape: Sequence[int] | None = None,
    phi: float = 2.5,
    rewire: float = 0.1,
    rng: np.random.Generator,
) -> SparsePattern:
    """The XBM connectivity (n_hidden x n_visible) with about ``nnz`` connections (see the module doc)."""
    if not 0 <= rewire <= 1:
        raise ValueError(f"rewire must be in [0, 1], got {rewire}")
    coordinates = grid_coordinates(n_visible, visible_shape)
    degrees = power_law_degrees(n_hidden, phi=phi, total=nnz, max_degree=n_visible, rng=rng)
    keys = []
    for j in range(n_hidden):
        centre = coordinates[rng.integers(n_visible)]
        distance = np.sqrt(((coordinates - centre) ** 2).sum(axis=1))
        # Random tie-breaking: among equally distant units none is preferred (a lexsort on a random key).
        nearest = np.lexsort((rng.random(n_visible), distance))[: degrees[j]]
        shortcuts = rng.random(degrees[j]) < rewire
        if shortcuts.any():
            taken = np.zeros(n_visible, dtype=bool)
            taken[nearest] = True
            free = np.flatnonzero(~taken)
            count = min(int(shortcuts.sum()), free.shape[0])
            nearest = np.concatenate([nearest[~shortcuts], rng.choice(free, size=count, replace=False),
                                      nearest[shortcuts][count:]])  # fmt: skip
        keys.append(j * n_visible + np.sort(nearest).astype(np.int64))
    return SparsePattern.from_sorted_keys(np.concatenate(keys), n_hidden, n_visible)
