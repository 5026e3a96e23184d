"""Applying a topology change to a SparseLinear layer and to its optimizer state.

Every strategy (SET, RigL, pruning, ...) describes a change as a :class:`Rewiring`: which stored
connections survive and which new positions appear. :func:`apply_rewiring` is the one place that turns
that description into a new pattern, carries surviving weights *and their optimizer state* (SGD
momentum, Adam moments, ...) to their new CSR positions, and starts new connections with the given
weights and zero optimizer state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from evosparse.sparse.pattern import SparsePattern

if TYPE_CHECKING:  # the layer module imports topology for its initialisation
    from evosparse.nn.linear import SparseLinear


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

    The ``layer.values`` Parameter object stays the same (its data is swapped), so the optimizer keeps
    tracking it; every per-element state tensor of that parameter is remapped the same way as the
    weights, with zeros for the new connections. Scalar state (Adam's ``step``) is kept.
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
    layer.set_pattern(pattern, remap(old_param_data.detach(), new_values))
    if optimizer is not None:
        state = optimizer.state.get(layer.values)
        if state:
            for name, value in list(state.items()):
                if torch.is_tensor(value) and value.shape == old_param_data.shape and value.dim() == 1:
                    state[name] = remap(value, torch.zeros(rewiring.new_keys.shape[0], device=device))
