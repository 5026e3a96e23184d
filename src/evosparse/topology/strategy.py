"""The interface every connectivity-changing method implements, and the loop that drives it.

The training loop calls three hooks; a strategy decides, through its schedule, whether anything happens:

* ``on_train_start(model, optimizer)`` once before training (and again after a resume): strategies that
  prune at initialisation (SNIP) or watch gradients (RigL) set themselves up here,
* ``on_step_end(model, optimizer, step)`` after every optimizer step (step counts from 1),
* ``on_epoch_end(model, optimizer, epoch)`` after every epoch (epoch counts from 1).

At an update the strategy visits each :class:`SparseLinear` of the model and calls ``update_layer``,
which computes a :class:`Rewiring` and applies it (weights and optimizer state stay consistent).
Strategies own their random generator; ``state_dict`` / ``load_state_dict`` carry it through
checkpoints so that a resumed run rewires exactly as an uninterrupted one.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from evosparse.nn.linear import SparseLinear
from evosparse.topology.schedule import UpdateSchedule


class TopologyStrategy:
    """Base class: subclasses implement :meth:`update_layer`."""

    name = "static"

    def __init__(self, schedule: UpdateSchedule | None = None, *, seed: int | None = None) -> None:
        self.schedule = schedule or UpdateSchedule(zeta=0.0)
        self.rng = np.random.default_rng(seed)
        self.n_updates = 0
        self.last_fraction = 0.0  # fraction of connections the latest update changed (for the history)
        self.extra_flops = 0  # arithmetic the strategy itself spent (RigL's dense gradients, OBD's passes, ...)

    # ---- hooks called by the training loop ---------------------------------------------------------
    def on_train_start(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        """Called before the first step of a run (and of a resumed run)."""

    def on_step_end(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, step: int) -> bool:
        return self.schedule.unit == "step" and self._maybe_update(model, optimizer, step)

    def on_epoch_end(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, epoch: int) -> bool:
        return self.schedule.unit == "epoch" and self._maybe_update(model, optimizer, epoch)

    def _maybe_update(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, t: int) -> bool:
        fraction = self.schedule.fraction(t)
        if fraction <= 0:
            return False
        with torch.no_grad():
            for layer in sparse_layers(model):
                self.update_stored_layer(layer, optimizer, fraction)
        self.n_updates += 1
        self.last_fraction = fraction
        return True

    def update_layer(self, layer: SparseLinear, optimizer: torch.optim.Optimizer | None, fraction: float) -> None:
        """Change one layer's connectivity (the layer in CSR order); the static baseline changes nothing."""

    def update_stored_layer(
        self, layer: SparseLinear, optimizer: torch.optim.Optimizer | None, fraction: float
    ) -> None:
        """:meth:`update_layer` for a layer in whatever order it stores its weights: a row-blocked layer is put in
        CSR order around it (with its optimizer state) and converted back. A strategy that knows it will leave a
        layer unchanged overrides this to skip the two conversions."""
        with layer.csr_order(optimizer):
            self.update_layer(layer, optimizer, fraction)

    # ---- checkpointing -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "n_updates": self.n_updates,
            "extra_flops": self.extra_flops,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.n_updates = int(state["n_updates"])
        self.extra_flops = int(state.get("extra_flops", 0))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.schedule})"


def sparse_layers(model: nn.Module) -> list[SparseLinear]:
    """The model's SparseLinear layers, in definition order."""
    return [m for m in model.modules() if isinstance(m, SparseLinear)]
