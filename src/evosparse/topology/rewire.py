"""Applying a topology change to a SparseLinear layer and to its optimizer state.

Every strategy (SET, RigL, pruning, ...) describes a change as a :class:`Rewiring`: which stored
connections survive and which new positions appear. :func:`apply_rewiring` is the one place that turns
that description into a new pattern, carries surviving weights *and their optimizer state* (SGD
momentum, Adam moments, ...) to their new CSR positions, and starts new connections with the given
weights and zero optimizer state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from evosparse.nn.linear import SparseLinear
from evosparse.sparse.pattern import SparsePattern


@dataclass(frozen=True)
class Rewiring:
    """A topology change of one layer.

    Attributes:
        keep: sorted indices (CSR positions in the old pattern) of the surviving connections.
        new_keys: sorted linear keys ``row * n_cols + col`` of new connections; none of them may be a
            surviving position.
    """

    keep: np.ndarray
    new_keys: np.ndarray


def apply_rewiring(
    layer: SparseLinear,
    rewiring: Rewiring,
    new_values: torch.Tensor,
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Rebuild ``layer``'s pattern from ``rewiring``; ``new_values`` are the weights of ``new_keys``.

    When nnz stays the same (SET, RigL) the ``layer.values`` Parameter object stays the same (its data is
    swapped), so the optimizer keeps tracking it. When nnz changes (pruning) the layer gets a new
    Parameter, which replaces the old one in the optimizer: autograd remembers a leaf's shape for as long
    as any graph that used it is alive, so resizing a Parameter in place could break the next backward.
    Either way every per-element state tensor is remapped like the weights, with zeros for the new
    connections; scalar state (Adam's ``step``) is kept.
    """
    old = layer.pattern
    kept_keys = old.keys()[rewiring.keep]
    all_keys = np.concatenate([kept_keys, rewiring.new_keys])
    order = np.argsort(all_keys, kind="stable")
    sorted_keys = all_keys[order]
    if sorted_keys.shape[0] > 1 and np.any(sorted_keys[1:] == sorted_keys[:-1]):
        raise ValueError("rewiring would create a duplicate connection")
    pattern = SparsePattern.from_sorted_keys(sorted_keys, old.n_rows, old.n_cols)

    device = layer.values.device
    n_old, n_kept = old.nnz, rewiring.keep.shape[0]
    # New CSR position i reads entry gather[i] of concat(old tensor, fresh values): a survivor reads its
    # old position keep[order[i]], a new connection reads old_nnz + its index among the new keys.
    survivor_source = rewiring.keep[np.minimum(order, n_kept - 1)] if n_kept else 0
    gather_np = np.where(order < n_kept, survivor_source, n_old + order - n_kept)
    gather = torch.from_numpy(gather_np.astype(np.int64)).to(device)

    def remap(tensor: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        return torch.cat([tensor, fresh.to(tensor.dtype)])[gather]

    old_param_data = layer.values.data
    if pattern.nnz != old.nnz:
        old_param = layer.values
        layer.values = torch.nn.Parameter(remap(old_param_data.detach(), new_values), old_param.requires_grad)
        layer.set_pattern(pattern)
        fresh = torch.zeros(rewiring.new_keys.shape[0], device=device)
        replace_parameter(optimizer, old_param, layer.values, remap=lambda t: remap(t, fresh))
        return
    layer.set_pattern(pattern, remap(old_param_data.detach(), new_values))
    if optimizer is not None:
        state = optimizer.state.get(layer.values)
        if state:
            for name, value in list(state.items()):
                if torch.is_tensor(value) and value.shape == old_param_data.shape and value.dim() == 1:
                    state[name] = remap(value, torch.zeros(rewiring.new_keys.shape[0], device=device))


def replace_parameter(
    optimizer: torch.optim.Optimizer | None, old: torch.nn.Parameter, new: torch.nn.Parameter, remap=None
) -> None:
    """Let ``optimizer`` optimise ``new`` instead of ``old``; per-element state is passed through ``remap``."""
    if optimizer is None:
        return
    for group in optimizer.param_groups:
        group["params"] = [new if p is old else p for p in group["params"]]
    state = optimizer.state.pop(old, None)
    if state:
        moved = {}
        for key, value in state.items():
            if remap is not None and torch.is_tensor(value) and value.shape == old.shape and value.dim() > 0:
                moved[key] = remap(value)
            else:
                moved[key] = value
        optimizer.state[new] = moved
