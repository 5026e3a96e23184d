"""SNIP: prune the dense network once, at initialisation, by connection sensitivity (Lee et al. 2019).

Before the first step the dense twin of the network scores every connection by ``|dL/dw * w|`` on a few
training batches (:func:`snip_scores`), keeps the best ``final_nnz`` per layer (or in one global ranking,
as the paper does) and becomes truly sparse; training then runs on that fixed topology.

The dense network exists only for this one scoring pass, so SNIP is limited to layers whose dense
weights fit in memory; Erdos-Renyi + SET/RigL have no such limit.

Paper: Lee, Ajanthan, Torr, "SNIP: Single-shot network pruning based on connection sensitivity", ICLR 2019.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from evosparse.prune.convert import sparsify_linear
from evosparse.prune.pruning import SCOPES
from evosparse.prune.saliency import snip_scores, weight_layers
from evosparse.topology.select import global_budget, keep_strongest
from evosparse.topology.strategy import TopologyStrategy


class SNIP(TopologyStrategy):
    """Args:
    final_nnz: connections each weight layer keeps.
    data: ``(x, y)`` training examples for the sensitivity (the paper uses one batch).
    scope: "layer" (each layer its own budget) or "global" (one ranking over all layers, as the paper).
    backend: kernels of the resulting sparse layers.
    """

    name = "snip"

    def __init__(
        self,
        final_nnz: Sequence[int],
        data: tuple[torch.Tensor, torch.Tensor],
        *,
        scope: str = "layer",
        backend: str = "auto",
        seed: int | None = None,
    ) -> None:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        super().__init__(None, seed=seed)
        self.final_nnz = [int(n) for n in final_nnz]
        self.data, self.scope, self.backend = data, scope, backend
        self.done = False

    def on_train_start(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        if self.done:  # a resumed run: the checkpoint already holds the pruned network
            return
        layers = weight_layers(model)
        if len(layers) != len(self.final_nnz):
            raise ValueError(f"final_nnz has {len(self.final_nnz)} budgets for {len(layers)} layers")
        x, y = self.data
        scores = snip_scores(model, x, y)
        self.extra_flops += 6 * x.shape[0] * sum(layer.in_features * layer.out_features for layer in layers)
        budgets = global_budget(scores, sum(self.final_nnz)) if self.scope == "global" else self.final_nnz
        names = {module: name for name, module in model.named_modules()}
        for layer, score, keep in zip(layers, scores, budgets):
            if not isinstance(layer, nn.Linear):
                raise TypeError("SNIP starts from a dense model (nn.Linear layers)")
            flat = score.flatten().double().numpy()
            mask = np.zeros(flat.shape[0], dtype=bool)
            mask[keep_strongest(flat, keep)] = True
            sparsify_linear(
                model, names[layer], torch.from_numpy(mask).reshape(layer.weight.shape), optimizer, backend=self.backend
            )
        self.done = True
        self.n_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "done": self.done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.done = bool(state["done"])
