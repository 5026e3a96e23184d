"""Neuron importance pruning: SET that also removes hidden neurons whose connections carry little weight.

Liu, Mocanu, Matavalam, Pei, Pechenizkiy, "Sparse evolutionary deep learning with over one million
artificial neurons on commodity hardware", Neural Computing and Applications 33 (2021): during SET
training, neurons whose connections are weak are removed, physically shrinking the layers (fewer
neurons, fewer connections, less time per epoch).

At each pruning event, for every hidden layer:

1. **Score** each neuron by its strength (network-science term): the sum of the absolute weights of its
   incoming and outgoing connections (:func:`neuron_strength`). A neuron with no connection left on one
   side computes nothing useful and has strength from one side only.
2. **Remove** the ``neuron_fraction`` weakest neurons (:func:`remove_neurons`): their row of the layer
   before, their column of the layer after, their bias and per-neuron activation parameters, and the
   optimizer state of all of those. The layer objects stay the same; their sizes and Parameters shrink.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from evosparse.nn.linear import SparseLinear
from evosparse.prune.schedule import PruningSchedule
from evosparse.topology.rewire import replace_parameter
from evosparse.topology.schedule import UpdateSchedule
from evosparse.topology.set import SET
from evosparse.topology.strategy import sparse_layers


def neuron_strength(layer_in: SparseLinear, layer_out: SparseLinear) -> np.ndarray:
    """Per hidden neuron between two sparse layers: sum of |incoming| + |outgoing| weights."""
    incoming = np.bincount(
        layer_in.pattern.rows, weights=np.abs(layer_in.values.detach().cpu().numpy()), minlength=layer_in.out_features
    )
    outgoing = np.bincount(
        layer_out.pattern.cols, weights=np.abs(layer_out.values.detach().cpu().numpy()), minlength=layer_out.in_features
    )
    return incoming + outgoing


def _slice_parameter(
    module: nn.Module, name: str, index: torch.Tensor, optimizer: torch.optim.Optimizer | None
) -> None:
    """Keep entries ``index`` of the 1-D parameter ``module.<name>`` and of its per-element optimizer state.

    The module gets a new Parameter (a leaf's shape must not change while autograd may remember it).
    """
    old = getattr(module, name)
    new = nn.Parameter(old.detach()[index].clone(), requires_grad=old.requires_grad)
    setattr(module, name, new)
    replace_parameter(optimizer, old, new, remap=lambda t: t[index].clone())


def remove_neurons(
    model: nn.Module, hidden: int, keep: np.ndarray, optimizer: torch.optim.Optimizer | None = None
) -> int:
    """Keep only neurons ``keep`` (sorted ids) of hidden layer ``hidden`` (0 = after the first sparse layer).

    Returns the number of connections removed with the neurons.
    """
    layers = sparse_layers(model)
    if not 0 <= hidden < len(layers) - 1:
        raise ValueError(f"hidden must be in [0, {len(layers) - 2}], got {hidden}")
    layer_in, layer_out = layers[hidden], layers[hidden + 1]
    n_old = layer_in.out_features
    keep = np.asarray(keep, dtype=np.int64)
    if keep.shape[0] == 0 or np.any(np.diff(keep) <= 0) or keep[0] < 0 or keep[-1] >= n_old:
        raise ValueError(f"keep must be sorted, distinct neuron ids in [0, {n_old}) and not empty")
    keep_t = torch.from_numpy(keep)
    nnz_before = layer_in.nnz + layer_out.nnz
    # The layer before loses rows (the removed neurons' incoming connections and biases), the layer after
    # loses columns (their outgoing connections); each layer's own resize keeps CSR order.
    with layer_in.csr_order(optimizer), layer_out.csr_order(optimizer):  # resize works in CSR order
        old_values, old_bias = layer_in.values, layer_in.bias
        kept = torch.from_numpy(layer_in.resize(keep_outputs=keep))
        replace_parameter(optimizer, old_values, layer_in.values, remap=lambda t: t[kept].clone())
        if old_bias is not None:
            replace_parameter(optimizer, old_bias, layer_in.bias, remap=lambda t: t[keep_t].clone())
        old_values = layer_out.values
        kept_out = torch.from_numpy(layer_out.resize(keep_inputs=keep))
        replace_parameter(optimizer, old_values, layer_out.values, remap=lambda t: t[kept_out].clone())
    removed = nnz_before - layer_in.nnz - layer_out.nnz
    # Per-neuron parameters between the two layers (SReLU thresholds and slopes).
    modules = list(model.modules())
    start, stop = modules.index(layer_in), modules.index(layer_out)
    for module in modules[start + 1 : stop]:
        if hasattr(module, "num_features") and module.num_features == n_old:
            module.num_features = keep.shape[0]
        for name, parameter in list(module.named_parameters(recurse=False)):
            if parameter.dim() == 1 and parameter.shape[0] == n_old:
                _slice_parameter(module, name, keep_t, optimizer)
    if hasattr(model, "layer_sizes"):
        model.layer_sizes[hidden + 1] = keep.shape[0]
    return removed


class NeuronImportance(SET):
    """SET rewiring every update, plus neuron removal at the events of ``pruning``.

    Args:
        zeta, rule, schedule, new_weights, seed: as :class:`SET`.
        neuron_fraction: fraction of each hidden layer's neurons removed per event, in [0, 1).
        pruning: event times (e.g. ``PruningSchedule("iterative", start=10, end=30, cycles=3)``).
        min_neurons: never shrink a hidden layer below this many neurons.
    """

    name = "neuron"

    def __init__(
        self,
        zeta: float | None = None,
        *,
        neuron_fraction: float = 0.1,
        pruning: PruningSchedule | None = None,
        min_neurons: int = 1,
        rule: str = "set",
        schedule: UpdateSchedule | None = None,
        new_weights: str = "init",
        seed: int | None = None,
    ) -> None:
        if not 0 <= neuron_fraction < 1:
            raise ValueError(f"neuron_fraction must be in [0, 1), got {neuron_fraction}")
        super().__init__(zeta, rule=rule, schedule=schedule, new_weights=new_weights, seed=seed)
        self.neuron_fraction = float(neuron_fraction)
        self.pruning = pruning or PruningSchedule()
        self.min_neurons = int(min_neurons)
        self.neurons_removed = 0

    def on_epoch_end(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, epoch: int) -> bool:
        rewired = super().on_epoch_end(model, optimizer, epoch)
        if self.pruning.unit == "epoch" and self.pruning.is_event(epoch):
            self.prune_neurons(model, optimizer)
            return True
        return rewired

    def prune_neurons(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        with torch.no_grad():
            for hidden in range(len(sparse_layers(model)) - 1):
                layers = sparse_layers(model)
                strength = neuron_strength(layers[hidden], layers[hidden + 1])
                n = strength.shape[0]
                n_remove = min(int(self.neuron_fraction * n), n - self.min_neurons)
                if n_remove <= 0:
                    continue
                # Weakest first; ties (e.g. disconnected neurons, strength 0) broken by id for determinism.
                order = np.argsort(strength, kind="stable")
                remove_neurons(model, hidden, np.sort(order[n_remove:]), optimizer)
                self.neurons_removed += n_remove

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "neurons_removed": self.neurons_removed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.neurons_removed = int(state["neurons_removed"])
