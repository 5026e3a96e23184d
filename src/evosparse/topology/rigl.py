"""RigL: drop the weakest connections, grow those whose gradient is largest (Evci et al. 2020).

Per sparse layer, at each scheduled update with fraction ``f`` (cosine-decayed in the paper):

1. **Drop** the ``k = f * nnz`` connections of smallest magnitude.
2. **Grow** the ``k`` positions, among those empty after the drop, with the largest ``|dL/dW|`` on the
   latest training batch (:func:`largest_gradient_keys`: the dense gradient is formed in row blocks, never
   as an ``out x in`` matrix). New connections start at zero, so the network's function is unchanged.

:class:`RigL` is the drop-and-grow rewiring (:class:`~evosparse.topology.drop_grow.DropAndGrow`) with
``drop="magnitude", grow="gradient", new_weights="zero"``.

Paper: Evci, Gale, Menick, Castro, Elsen, "Rigging the Lottery: Making All Tickets Winners", ICML 2020,
Algorithm 1 (defaults there: update every 100 steps, f = 0.3 cosine-decayed, no update after 75% of
training).
"""

from __future__ import annotations

import numpy as np
import torch

from evosparse.topology.criteria import rewiring
from evosparse.topology.drop_grow import DropAndGrow
from evosparse.topology.rewire import Rewiring
from evosparse.topology.schedule import UpdateSchedule


def rigl_rewiring(
    values: np.ndarray, keys: np.ndarray, grad_output: torch.Tensor, inputs: torch.Tensor, fraction: float
) -> Rewiring:
    """One RigL step on one layer as a pure function (values/keys in CSR order; x and dL/dy of one batch)."""
    n_rows, n_cols = grad_output.shape[1], inputs.shape[1]
    return rewiring(
        values,
        keys,
        n_rows,
        n_cols,
        fraction=fraction,
        drop="magnitude",
        grow="gradient",
        gradients=(grad_output, inputs),
    )


class RigL(DropAndGrow):
    """RigL as a strategy (see the module docstring).

    Args:
        zeta: drop/grow fraction per update (paper: 0.3; default 0.3 every epoch). Give either ``zeta`` or
            ``schedule``; the paper's schedule is ``UpdateSchedule(0.3, every=100, unit="step",
            decay="cosine", stop_after=int(0.75 * total_steps))``.
        schedule: when and how much (:class:`UpdateSchedule`).
        seed: unused by the algorithm (RigL is deterministic given the gradients); kept for the interface.
    """

    name = "rigl"

    def __init__(
        self, zeta: float | None = None, *, schedule: UpdateSchedule | None = None, seed: int | None = None
    ) -> None:
        super().__init__(zeta, drop="magnitude", grow="gradient", new_weights="zero", schedule=schedule, seed=seed)

    def __repr__(self) -> str:
        return f"RigL({self.schedule})"
