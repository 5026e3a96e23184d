"""Sparse Evolutionary Training (SET): remove the weakest connections, regrow as many at random.

The whole algorithm, per sparse layer, at each topology update:

1. **Score**: among positive weights, the fraction ``zeta`` closest to zero is weak; among negative
   weights, the fraction ``zeta`` closest to zero is weak (the paper's rule, which treats both signs
   alike). Option ``rule="magnitude"``: the fraction ``zeta`` of all weights with smallest |w|.
2. **Remove** the weak connections.
3. **Grow** exactly as many connections at positions drawn uniformly at random from the empty ones
   (after removal), so nnz stays constant; no position is drawn twice.

:func:`set_rewiring` is that algorithm as a pure function (no I/O, no layer, no optimizer);
:class:`SET` is the strategy the training loop calls.

Paper: Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
connectivity inspired by network science", Nature Communications 9, 2383 (2018), Algorithm 1.
"""

from __future__ import annotations

import numpy as np
import torch

from evosparse.nn.linear import SparseLinear
from evosparse.sparse.sampling import sample_free_keys
from evosparse.topology.rewire import Rewiring, apply_rewiring
from evosparse.topology.schedule import UpdateSchedule
from evosparse.topology.select import smallest
from evosparse.topology.strategy import TopologyStrategy

REMOVAL_RULES = ("set", "magnitude")
NEW_WEIGHTS = ("init", "zero")


def weakest_connections(values: np.ndarray, zeta: float, rule: str = "set") -> np.ndarray:
    """Boolean mask of the connections SET removes. Cost O(nnz log nnz) (two sorts at most)."""
    if rule not in REMOVAL_RULES:
        raise ValueError(f"rule must be one of {REMOVAL_RULES}, got {rule!r}")
    remove = np.zeros(values.shape[0], dtype=bool)
    if rule == "magnitude":
        remove[smallest(np.abs(values), int(zeta * values.shape[0]))] = True
        return remove
    positive = np.flatnonzero(values > 0)
    negative = np.flatnonzero(values < 0)
    # Smallest positive ones, and the negative ones closest to zero (largest), zeta of each sign.
    remove[positive[smallest(values[positive], int(zeta * positive.shape[0]))]] = True
    remove[negative[smallest(-values[negative], int(zeta * negative.shape[0]))]] = True
    remove[values == 0] = zeta > 0  # exact zeros carry nothing: always the weakest (as in the SET code)
    return remove


def set_rewiring(
    values: np.ndarray,
    keys: np.ndarray,
    n_rows: int,
    n_cols: int,
    *,
    zeta: float,
    rng: np.random.Generator,
    rule: str = "set",
) -> Rewiring:
    """One SET step on one layer.

    Args:
        values: weights in CSR order, shape (nnz,).
        keys: sorted linear positions ``row * n_cols + col`` of those weights.
        n_rows, n_cols: layer shape (out, in).
        zeta: fraction of the weights to remove and regrow, in [0, 1).
        rng: random source for the new positions.
        rule: "set" (the paper's sign-wise rule) or "magnitude".

    Returns:
        A :class:`Rewiring`: surviving CSR positions and the new keys (as many as were removed).
    """
    if not 0 <= zeta < 1:
        raise ValueError(f"zeta must be in [0, 1), got {zeta}")
    remove = weakest_connections(values, zeta, rule)
    keep = np.flatnonzero(~remove)
    # Regrow among positions empty *after* removal, as in the paper: a removed position may return.
    new_keys = sample_free_keys(n_rows, n_cols, int(remove.sum()), keys[keep], rng)
    return Rewiring(keep=keep, new_keys=new_keys)


class SET(TopologyStrategy):
    """Sparse Evolutionary Training as a strategy: every scheduled update, each sparse layer removes the
    fraction ``zeta`` of its weakest weights and regrows as many at random empty positions.

    Args:
        zeta: fraction removed and regrown per update (paper: 0.3).
        rule: "set" (sign-wise, paper) or "magnitude".
        schedule: when and how much; defaults to every epoch with fraction ``zeta``.
        new_weights: "init" (drawn like the layer's initial weights, as in the SET code) or "zero".
        seed: seed of the strategy's random generator.

    Fully dense layers (density 1, e.g. a small output layer where Erdos-Renyi saturates) are left
    alone: they have no empty position to explore.
    """

    name = "set"

    def __init__(
        self,
        zeta: float = 0.3,
        *,
        rule: str = "set",
        schedule: UpdateSchedule | None = None,
        new_weights: str = "init",
        seed: int | None = None,
    ) -> None:
        if rule not in REMOVAL_RULES:
            raise ValueError(f"rule must be one of {REMOVAL_RULES}, got {rule!r}")
        if new_weights not in NEW_WEIGHTS:
            raise ValueError(f"new_weights must be one of {NEW_WEIGHTS}, got {new_weights!r}")
        super().__init__(schedule or UpdateSchedule(zeta=zeta), seed=seed)
        self.rule = rule
        self.new_weights = new_weights

    def update_layer(self, layer: SparseLinear, optimizer: torch.optim.Optimizer | None, fraction: float) -> None:
        pattern = layer.pattern
        if pattern.nnz >= pattern.n_rows * pattern.n_cols:
            return
        values = layer.values.detach().cpu().numpy()
        rewiring = set_rewiring(
            values, pattern.keys(), pattern.n_rows, pattern.n_cols, zeta=fraction, rng=self.rng, rule=self.rule
        )
        new_rows = rewiring.new_keys // pattern.n_cols
        if self.new_weights == "zero":
            new_values = torch.zeros(new_rows.shape[0], dtype=layer.values.dtype)
        else:
            new_values = layer.sample_weights(new_rows, self.rng)
        apply_rewiring(layer, rewiring, new_values, optimizer)
