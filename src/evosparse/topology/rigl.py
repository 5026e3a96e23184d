"""RigL: drop the weakest connections, grow those whose gradient is largest (Evci et al. 2020).

Per sparse layer, at each scheduled update with fraction ``f`` (cosine-decayed in the paper):

1. **Drop** the ``k = f * nnz`` connections of smallest magnitude.
2. **Grow** the ``k`` positions, among those empty after the drop, with the largest ``|dL/dW|`` on the
   latest training batch (:func:`largest_gradient_keys`: the dense gradient is formed in row blocks, never
   as an ``out x in`` matrix). New connections start at zero, so the network's function is unchanged.

Paper: Evci, Gale, Menick, Castro, Elsen, "Rigging the Lottery: Making All Tickets Winners", ICML 2020,
Algorithm 1 (defaults there: update every 100 steps, f = 0.3 cosine-decayed, no update after 75% of
training).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from evosparse.nn.linear import SparseLinear
from evosparse.topology.gradient import GradientProbe, largest_gradient_keys
from evosparse.topology.rewire import Rewiring, apply_rewiring
from evosparse.topology.schedule import UpdateSchedule
from evosparse.topology.select import smallest
from evosparse.topology.strategy import TopologyStrategy, sparse_layers


def rigl_rewiring(
    values: np.ndarray, keys: np.ndarray, grad_output: torch.Tensor, inputs: torch.Tensor, fraction: float
) -> Rewiring:
    """One RigL step on one layer as a pure function (values/keys in CSR order; x and dL/dy of one batch)."""
    n_drop = int(fraction * values.shape[0])
    keep = np.ones(values.shape[0], dtype=bool)
    keep[smallest(np.abs(values), n_drop)] = False
    kept = np.flatnonzero(keep)
    new_keys = largest_gradient_keys(grad_output, inputs, keys[kept], n_drop)
    return Rewiring(keep=kept, new_keys=new_keys)


class RigL(TopologyStrategy):
    """RigL as a strategy (see the module docstring).

    Args:
        zeta: drop/grow fraction per update (paper: 0.3).
        schedule: when and how much; the paper's is ``UpdateSchedule(0.3, every=100, unit="step",
            decay="cosine", stop_after=int(0.75 * total_steps))``. Default: every epoch, constant ``zeta``.
        seed: unused by the algorithm (RigL is deterministic given the gradients); kept for the interface.
    """

    name = "rigl"

    def __init__(self, zeta: float = 0.3, *, schedule: UpdateSchedule | None = None, seed: int | None = None) -> None:
        super().__init__(schedule or UpdateSchedule(zeta=zeta), seed=seed)
        self.probe = GradientProbe()

    def on_train_start(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        self.probe.attach(sparse_layers(model))

    def update_layer(self, layer: SparseLinear, optimizer: torch.optim.Optimizer | None, fraction: float) -> None:
        pattern = layer.pattern
        if pattern.nnz >= pattern.n_rows * pattern.n_cols:
            return
        if not self.probe.ready(layer):
            raise RuntimeError(
                "RigL needs the gradients of a training step before an update: call on_train_start first"
            )
        grad_output = self.probe.grad_outputs[layer].reshape(-1, pattern.n_rows)
        inputs = self.probe.inputs[layer].reshape(-1, pattern.n_cols)
        values = layer.values.detach().cpu().numpy()
        rewiring = rigl_rewiring(values, pattern.keys(), grad_output, inputs, fraction)
        self.extra_flops += 2 * inputs.shape[0] * pattern.n_rows * pattern.n_cols
        new_values = torch.zeros(rewiring.new_keys.shape[0], dtype=layer.values.dtype)
        apply_rewiring(layer, rewiring, new_values, optimizer)
