"""Gradients of connections that do not exist, without a dense ``out x in`` matrix in memory.

RigL grows the missing connections whose loss gradient is largest. For a layer ``y = x W^T + b`` the
gradient of weight (i, j) is ``sum_b dL/dy[b, i] * x[b, j]``: the full matrix is ``dY^T X``. We form it
in blocks of output rows (``block_rows x in`` at a time), mask the existing connections and keep a
running top-k, so memory is O(block x in + k) however large the layer. The arithmetic is the dense
product's (2 * batch * in * out), which RigL pays once per topology update, not per step.

:class:`GradientProbe` records, for each sparse layer, the input and output gradient of the latest
training step through forward hooks (references only, no copies).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from evosparse.nn.linear import SparseLinear

_BLOCK_ELEMENTS = 1 << 22  # scores held at once: 4M floats = 16 MB


def largest_gradient_keys(
    grad_output: torch.Tensor,
    inputs: torch.Tensor,
    occupied: np.ndarray,
    k: int,
    *,
    block_rows: int | None = None,
) -> np.ndarray:
    """Sorted keys ``row * n_in + col`` of the ``k`` empty positions with the largest ``|dY^T X|``.

    Args:
        grad_output: dL/dy, shape (batch, n_out).
        inputs: x, shape (batch, n_in).
        occupied: sorted keys that must not be chosen (the connections that stay).
        k: how many positions to return.
        block_rows: output rows per block (default: as many as fit in 4M scores).
    """
    n_out, n_in = grad_output.shape[1], inputs.shape[1]
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k > n_out * n_in - occupied.shape[0]:
        raise ValueError(f"cannot grow {k} connections: only {n_out * n_in - occupied.shape[0]} positions are empty")
    block_rows = block_rows or max(1, _BLOCK_ELEMENTS // max(n_in, 1))
    grad_t = grad_output.detach().t()
    x = inputs.detach().to(grad_t.dtype)
    occupied_t = torch.from_numpy(np.asarray(occupied, dtype=np.int64))
    best_scores = torch.empty(0, dtype=grad_t.dtype)
    best_keys = torch.empty(0, dtype=torch.int64)
    for row_start in range(0, n_out, block_rows):
        row_stop = min(n_out, row_start + block_rows)
        scores = (grad_t[row_start:row_stop] @ x).abs().flatten()
        # Existing connections of this block can never be chosen: score -1 (all real scores are >= 0).
        low, high = row_start * n_in, row_stop * n_in
        lo, hi = np.searchsorted(occupied, [low, high])
        scores[occupied_t[lo:hi] - low] = -1.0
        take = min(k, scores.shape[0])
        top_scores, top_index = torch.topk(scores, take, sorted=False)
        best_scores = torch.cat([best_scores, top_scores])
        best_keys = torch.cat([best_keys, top_index + low])
        if best_scores.shape[0] > k:  # merge: keep the running top-k
            best_scores, keep = torch.topk(best_scores, k, sorted=False)
            best_keys = best_keys[keep]
    if best_scores.shape[0] < k or bool((best_scores < 0).any()):
        raise ValueError(f"cannot grow {k} connections: not enough empty positions")
    return np.sort(best_keys.numpy())


class GradientProbe:
    """Keeps the latest training step's input and output gradient of every watched layer.

    Call :meth:`attach` once; afterwards ``probe.inputs[layer]`` / ``probe.grad_outputs[layer]`` hold the
    last training batch's x and dL/dy (evaluation passes, with gradients off, are ignored);
    :meth:`batch` gives them as 2-D ``(grad_output, inputs)``.

    Attributes:
        gather: None, or (data-parallel training) a function that concatenates every worker's rows of a
            tensor in global-batch order (:mod:`evosparse.train.distributed`): :meth:`batch` then returns the
            whole global batch's x and dL/dy, so every worker scores the growth on the same numbers.
    """

    def __init__(self) -> None:
        self.inputs: dict[nn.Module, torch.Tensor] = {}
        self.grad_outputs: dict[nn.Module, torch.Tensor] = {}
        self.gather: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._handles: list = []
        self._watched: set[int] = set()

    def attach(self, layers: list[SparseLinear]) -> None:
        for layer in layers:
            if id(layer) not in self._watched:
                self._watched.add(id(layer))
                self._handles.append(layer.register_forward_hook(self._record))

    def _record(self, layer: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if not (layer.training and torch.is_grad_enabled() and output.requires_grad):
            return
        self.inputs[layer] = args[0].detach()

        def keep_gradient(grad: torch.Tensor) -> None:
            self.grad_outputs[layer] = grad.detach()

        output.register_hook(keep_gradient)

    def ready(self, layer: nn.Module) -> bool:
        return layer in self.inputs and layer in self.grad_outputs

    def batch(self, layer: SparseLinear) -> tuple[torch.Tensor, torch.Tensor]:
        """``(dL/dy, x)`` of ``layer``'s latest training batch, shapes (batch, out) and (batch, in)."""
        grad_output = self.grad_outputs[layer].reshape(-1, layer.out_features)
        inputs = self.inputs[layer].reshape(-1, layer.in_features)
        if self.gather is not None:
            grad_output, inputs = self.gather(grad_output), self.gather(inputs)
        return grad_output, inputs

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._watched.clear()
