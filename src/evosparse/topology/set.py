"""Sparse Evolutionary Training (SET): remove the weakest connections, regrow as many at random.

The whole algorithm, per sparse layer, at each topology update:

1. **Score**: among positive weights, the fraction ``zeta`` closest to zero is weak; among negative
   weights, the fraction ``zeta`` closest to zero is weak (the paper's rule, which treats both signs
   alike). Option ``rule="magnitude"``: the fraction ``zeta`` of all weights with smallest |w|.
2. **Remove** the weak connections (exact zeros and NaNs always go).
3. **Grow** exactly as many connections at positions drawn uniformly at random from the empty ones
   (after removal), so nnz stays constant; no position is drawn twice.

:func:`set_rewiring` is that algorithm as a pure function (no I/O, no layer, no optimizer);
:class:`SET` is the strategy the training loop calls: the drop-and-grow rewiring
(:class:`~evosparse.topology.drop_grow.DropAndGrow`) with the drop criterion ``rule`` and random growth.

Paper: Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
connectivity inspired by network science", Nature Communications 9, 2383 (2018), Algorithm 1.
"""

from __future__ import annotations

import numpy as np

from evosparse.topology.criteria import DROP_CRITERIA, rewiring
from evosparse.topology.drop_grow import NEW_WEIGHTS, DropAndGrow
from evosparse.topology.rewire import Rewiring
from evosparse.topology.schedule import UpdateSchedule

REMOVAL_RULES = tuple(DROP_CRITERIA)  # ("set", "magnitude")
__all__ = ["NEW_WEIGHTS", "REMOVAL_RULES", "SET", "set_rewiring", "weakest_connections"]


def weakest_connections(values: np.ndarray, zeta: float, rule: str = "set") -> np.ndarray:
    """Boolean mask of the connections SET removes. Cost O(nnz log nnz) (two sorts at most)."""
    if rule not in REMOVAL_RULES:
        raise ValueError(f"rule must be one of {REMOVAL_RULES}, got {rule!r}")
    return DROP_CRITERIA[rule](values, zeta)


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
    if rule not in REMOVAL_RULES:
        raise ValueError(f"rule must be one of {REMOVAL_RULES}, got {rule!r}")
    return rewiring(values, keys, n_rows, n_cols, fraction=zeta, drop=rule, grow="random", rng=rng)


class SET(DropAndGrow):
    """Sparse Evolutionary Training as a strategy: every scheduled update, each sparse layer removes the
    fraction ``zeta`` of its weakest weights and regrows as many at random empty positions.

    Args:
        zeta: fraction removed and regrown per update (paper: 0.3; default 0.3 every epoch). Give either
            ``zeta`` or ``schedule``, whose ``zeta`` it then is.
        rule: "set" (sign-wise, paper) or "magnitude".
        schedule: when and how much (:class:`UpdateSchedule`).
        new_weights: "init" (drawn like the layer's initial weights, as in the SET code) or "zero".
        seed: seed of the strategy's random generator.

    Fully dense layers (density 1, e.g. a small output layer where Erdos-Renyi saturates) are left
    alone: they have no empty position to explore.
    """

    name = "set"

    def __init__(
        self,
        zeta: float | None = None,
        *,
        rule: str = "set",
        schedule: UpdateSchedule | None = None,
        new_weights: str = "init",
        seed: int | None = None,
    ) -> None:
        if rule not in REMOVAL_RULES:
            raise ValueError(f"rule must be one of {REMOVAL_RULES}, got {rule!r}")
        super().__init__(zeta, drop=rule, grow="random", new_weights=new_weights, schedule=schedule, seed=seed)
        self.rule = rule

    def __repr__(self) -> str:
        return f"SET(rule={self.rule!r}, new_weights={self.new_weights!r}, {self.schedule})"
