"""Drop-and-grow rewiring as a strategy: the one class behind SET, RigL and any pair of criteria.

At every update of its schedule, for each sparse layer that is not fully dense:

1. drop the connections the drop criterion marks (the schedule's fraction of them),
2. grow as many at the positions the grow criterion proposes (:mod:`evosparse.topology.criteria`),
3. give the new connections their first weights (``new_weights``: drawn like the layer's initial weights,
   or zero so that the network's function is unchanged), and carry the survivors' weights and optimizer
   state to their new places (:func:`~evosparse.topology.rewire.apply_rewiring`).

:class:`~evosparse.topology.SET` and :class:`~evosparse.topology.RigL` are this class with their papers'
criteria; ``DropAndGrow(drop="magnitude", grow="random")`` is SET with magnitude removal, and
``DropAndGrow(drop="set", grow="gradient")`` a method of its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from evosparse.nn.linear import SparseLinear
from evosparse.topology.criteria import (
    GROW_CRITERIA,
    DropCriterion,
    GrowCriterion,
    drop_criterion,
    grow_criterion,
    rewiring,
    settle_set_ties,
)
from evosparse.topology.gradient import GradientProbe
from evosparse.topology.rewire import apply_rewiring, apply_rows
from evosparse.topology.schedule import UpdateSchedule
from evosparse.topology.strategy import TopologyStrategy, sparse_layers

NEW_WEIGHTS = ("init", "zero")
DEFAULT_ZETA = 0.3  # both papers' fraction (SET: Mocanu et al. 2018; RigL: Evci et al. 2020)


def one_schedule(zeta: Any, schedule: UpdateSchedule | None) -> UpdateSchedule:
    """The schedule of a rewiring strategy from ``zeta`` or ``schedule``: the schedule's zeta is the one fraction.

    Giving both is allowed only if they agree (a zeta that a schedule would silently override is an error).
    """
    if schedule is None:
        return UpdateSchedule(zeta=DEFAULT_ZETA if zeta is None else zeta)
    if not isinstance(schedule, UpdateSchedule):
        raise TypeError(f"schedule must be an UpdateSchedule, got {type(schedule).__name__}")
    if zeta is not None and zeta != schedule.zeta:
        raise ValueError(
            f"zeta ({zeta!r}) differs from the schedule's zeta ({schedule.zeta}): give one of them "
            "(the schedule's zeta is the fraction rewired)"
        )
    return schedule


class DropAndGrow(TopologyStrategy):
    """Rewire every sparse layer on a schedule: drop by one criterion, grow as many by another.

    Args:
        zeta: fraction dropped and regrown per update, in [0, 1) (default 0.3, every epoch); give either
            this or ``schedule``.
        drop: "set" (sign-wise, SET paper), "magnitude" (smallest ``|w|``) or a function
            ``(values, fraction) -> bool mask``.
        grow: "random" (SET), "gradient" (RigL) or a :class:`~evosparse.topology.criteria.GrowCriterion`.
        new_weights: "init" (drawn like the layer's initial weights) or "zero".
        schedule: when and how much (:class:`UpdateSchedule`); its ``zeta`` is the fraction.
        seed: seed of the strategy's random generator (random growth, initial weights of new connections).

    Fully dense layers (density 1, e.g. a small output layer where Erdos-Renyi saturates) are left alone:
    they have no empty position to grow into.
    """

    name = "drop_grow"

    def __init__(
        self,
        zeta: float | None = None,
        *,
        drop: str | DropCriterion = "set",
        grow: str | GrowCriterion = "random",
        new_weights: str = "init",
        schedule: UpdateSchedule | None = None,
        seed: int | None = None,
    ) -> None:
        if new_weights not in NEW_WEIGHTS:
            raise ValueError(f"new_weights must be one of {NEW_WEIGHTS}, got {new_weights!r}")
        self.drop = drop
        self.grow = grow
        self._drop, self._grow = drop_criterion(drop), grow_criterion(grow)
        super().__init__(one_schedule(zeta, schedule), seed=seed)
        self.new_weights = new_weights
        self.probe = GradientProbe() if self._grow.needs_gradients else None

    @property
    def zeta(self) -> float:
        """The base fraction rewired per update (the schedule's)."""
        return self.schedule.zeta

    def on_train_start(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        if self.probe is not None:
            self.probe.attach(sparse_layers(model))

    def update_layer(self, layer: SparseLinear, optimizer: torch.optim.Optimizer | None, fraction: float) -> None:
        pattern = layer.pattern
        if pattern.nnz >= pattern.n_rows * pattern.n_cols:
            return
        gradients = None
        if self.probe is not None:
            if not self.probe.ready(layer):
                raise RuntimeError(
                    f"{type(self).__name__} needs the gradients of a training step before an update: "
                    "call on_train_start first"
                )
            gradients = self.probe.batch(layer)
        if self._grow.propose_rows is not None:  # random growth: per row, no int64 keys (wide layers' memory peak)
            self._update_rows(layer, optimizer, fraction)
            return
        values = layer.values.detach().cpu().numpy()
        change = rewiring(
            values,
            pattern.keys(),
            pattern.n_rows,
            pattern.n_cols,
            fraction=fraction,
            drop=self._drop,
            grow=self._grow,
            rng=self.rng,
            gradients=gradients,
        )
        if gradients is not None:  # the dense gradient of the missing connections, once per update
            self.extra_flops += 2 * gradients[1].shape[0] * pattern.n_rows * pattern.n_cols
        if self.new_weights == "zero":
            new_values = torch.zeros(change.new_keys.shape[0], dtype=layer.values.dtype)
        else:
            new_values = layer.sample_weights(change.new_keys // pattern.n_cols, self.rng)
        apply_rewiring(layer, change, new_values, optimizer)

    def update_stored_layer(
        self, layer: SparseLinear, optimizer: torch.optim.Optimizer | None, fraction: float
    ) -> None:
        # No local reference to the pattern here: it would keep the old indices alive through the conversion.
        if layer.nnz >= layer.out_features * layer.in_features:  # dense: nowhere to grow; no conversion either
            return  # (the dense 600,000 -> 5 readout of the Liu shape: 0.24 s per update in two conversions)
        # A row-blocked layer rewires in its own order when nothing but the order of ties depends on CSR order:
        # SET's drop rule and random growth (see _update_rows); others convert the layer to CSR order and back.
        if layer.pattern.is_blocked and self.drop == "set" and self._grow is GROW_CRITERIA["random"]:
            self._update_rows(layer, optimizer, fraction)
            return
        super().update_stored_layer(layer, optimizer, fraction)

    def _update_rows(self, layer: SparseLinear, optimizer: torch.optim.Optimizer | None, fraction: float) -> None:
        """:func:`~evosparse.topology.criteria.rewiring` and :func:`apply_rewiring` with the change kept per row:
        the same connections and weights (the same random draws), without int64 keys. Nothing here holds the
        old weights or indices once they are replaced (their memory is free for the next tensor's copy).

        A row-blocked layer stays in its order (SET's drop rule only): its survivors' indices are listed per row
        for the sampler, equal weights at the drop threshold go in CSR order as they would in a CSR layer, and
        :func:`apply_rows` merges in blocks. The same result as in CSR order, without converting the weights and
        their optimizer state there and back (tests/sparse/test_blocked.py).
        """
        values = layer.values.detach().cpu().numpy()
        remove = np.asarray(self._drop(values, fraction), dtype=bool)
        pattern = layer.pattern
        if pattern.is_blocked:
            settle_set_ties(values, remove, pattern.csr_keys)
        del values
        keep = ~remove
        del remove
        count = layer.nnz - int(np.count_nonzero(keep))
        if pattern.is_blocked:  # the survivors per row (indices only), all of them kept
            indptr, cols = pattern.csr_where(keep)
            row_keep = np.ones(cols.shape[0], dtype=bool)
        else:
            indptr, cols, row_keep = pattern.indptr, pattern.cols, keep
        new_indptr, new_cols = self._grow.propose_rows(indptr, cols, row_keep, pattern.n_cols, count, rng=self.rng)
        del pattern, indptr, cols, row_keep
        if self.new_weights == "zero":
            new_values = torch.zeros(count, dtype=layer.values.dtype)
        else:
            new_values = layer.sample_weights_csr(new_indptr, self.rng)
        apply_rows(layer, keep, new_indptr, new_cols, new_values, optimizer)

    def __repr__(self) -> str:
        def label(criterion: Any) -> str:
            return criterion if isinstance(criterion, str) else getattr(criterion, "__name__", type(criterion).__name__)

        return (
            f"{type(self).__name__}(drop={label(self.drop)!r}, grow={label(self.grow)!r}, "
            f"new_weights={self.new_weights!r}, {self.schedule})"
        )
