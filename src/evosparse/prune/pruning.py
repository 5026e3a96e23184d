"""Dense-to-sparse training: start from the dense network, prune it to a budget, end truly sparse.

One strategy covers the classic path, as a composition of a criterion, a schedule and two options:

1. **Score** every remaining weight: ``"magnitude"`` ``|w|`` or ``"obd"`` (Optimal Brain Damage
   saliency, :mod:`evosparse.prune.saliency`).
2. **Select** at each event of the :class:`PruningSchedule` the highest-scoring weights, so each layer
   has the schedule's density of its final budget (``scope="layer"``), or one threshold for the whole
   network (``scope="global"``, as LeCun et al. rank all saliencies together).
3. **Convert**: at the first event each ``nn.Linear`` becomes a :class:`SparseLinear`
   (:func:`sparsify_linear`); later events shrink its nnz. Training after the first event runs sparse.
4. Options: ``l1`` -- a proximal L1 step after every optimizer step until the last event
   (``w <- sign(w) max(|w| - lr * l1, 0)``: the L1 penalty drives weights to exact zeros, the events
   threshold the rest); ``rewind_epoch`` -- after each event the surviving weights go back to their values
   at the end of that epoch (0: initialisation) and optimizer state is cleared (lottery tickets,
   Frankle and Carbin 2019; Frankle et al. 2020 for late rewinding).

Presets (:func:`pruning_preset`): one-shot magnitude pruning, iterative prune-retrain (Han et al. 2015),
gradual magnitude pruning with the cubic ramp (Zhu and Gupta 2017), OBD, L1 + thresholding.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from evosparse.nn.linear import SparseLinear
from evosparse.prune.convert import sparsify_linear
from evosparse.prune.saliency import HESSIANS, magnitude_scores, obd_saliency, weight_layers, weights_of
from evosparse.prune.schedule import PruningSchedule
from evosparse.topology.select import global_budget, keep_strongest, prune_layer
from evosparse.topology.strategy import TopologyStrategy

CRITERIA = ("magnitude", "obd")
SCOPES = ("layer", "global")


class Pruning(TopologyStrategy):
    """Prune a dense model to ``final_nnz`` connections per weight layer on ``schedule``.

    Args:
        final_nnz: connections each weight layer keeps at the end (in layer order).
        criterion: "magnitude", "obd", or a function model -> one score tensor per weight layer (shaped
            like its weights; higher is kept).
        schedule: the pruning events (default: one shot after epoch 1).
        scope: "layer" (each layer meets its own budget) or "global" (one ranking over all layers).
        l1: strength of the proximal L1 step (0: none).
        rewind_epoch: None (keep trained weights: prune-retrain) or the epoch whose weights survivors
            return to after each event (0 = the initial weights).
        data: ``(x, y)`` the OBD saliency is computed on (needed for ``criterion="obd"``).
        hessian: "gauss_newton" or "lecun" (OBD only).
        backend: kernels of the SparseLinear layers that replace dense ones.
    """

    name = "pruning"

    def __init__(
        self,
        final_nnz: Sequence[int],
        *,
        criterion: str | Callable[[nn.Module], list[torch.Tensor]] = "magnitude",
        schedule: PruningSchedule | None = None,
        scope: str = "layer",
        l1: float = 0.0,
        rewind_epoch: int | None = None,
        data: tuple[torch.Tensor, torch.Tensor] | None = None,
        hessian: str = "gauss_newton",
        backend: str = "auto",
        seed: int | None = None,
    ) -> None:
        if not callable(criterion) and criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        if hessian not in HESSIANS:
            raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
        if not l1 >= 0:
            raise ValueError(f"l1 must be >= 0, got {l1}")
        if rewind_epoch is not None and rewind_epoch < 0:
            raise ValueError(f"rewind_epoch must be None or >= 0, got {rewind_epoch}")
        if criterion == "obd" and data is None:
            raise ValueError("criterion='obd' needs data=(x, y) to compute saliencies on")
        if any(int(n) < 1 for n in final_nnz):
            raise ValueError(f"final_nnz must be >= 1 for every layer, got {list(final_nnz)}")
        super().__init__(None, seed=seed)
        self.final_nnz = [int(n) for n in final_nnz]
        self.criterion, self.scope, self.l1, self.hessian = criterion, scope, float(l1), hessian
        self.pruning = schedule or PruningSchedule()
        self.rewind_epoch = rewind_epoch
        self.data = data
        self.backend = backend
        self.snapshot: dict[str, torch.Tensor] | None = None
        self.events = 0
        self.last_fraction = 0.0

    # ---- hooks ---------------------------------------------------------------------------------------
    def on_train_start(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        if len(weight_layers(model)) != len(self.final_nnz):
            raise ValueError(f"final_nnz has {len(self.final_nnz)} budgets for {len(weight_layers(model))} layers")
        if self.rewind_epoch == 0 and self.snapshot is None:
            self.snapshot = _weights_snapshot(model)

    def on_step_end(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, step: int) -> bool:
        if self.l1 > 0 and self.events < self.pruning.n_events:
            _proximal_l1(model, optimizer, self.l1)
        return self.pruning.unit == "step" and self._maybe_prune(model, optimizer, step)

    def on_epoch_end(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, epoch: int) -> bool:
        if self.rewind_epoch is not None and self.rewind_epoch == epoch and self.snapshot is None:
            self.snapshot = _weights_snapshot(model)
        return self.pruning.unit == "epoch" and self._maybe_prune(model, optimizer, epoch)

    # ---- one pruning event -----------------------------------------------------------------------------
    def _maybe_prune(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, t: int) -> bool:
        layers = weight_layers(model)
        totals = [_dense_size(layer) for layer in layers]
        targets = []
        for layer, total, final in zip(layers, totals, self.final_nnz):
            density = self.pruning.density(t, final / total)
            if density is None:
                return False
            current = _nnz(layer)
            targets.append(min(current, max(final, int(round(density * total)))))
        scores = self._scores(model)
        if self.scope == "global":
            targets = global_budget(scores, sum(targets))
        before = sum(_nnz(layer) for layer in layers)
        names = {module: name for name, module in model.named_modules()}
        for layer, score, keep in zip(layers, scores, targets):
            if isinstance(layer, nn.Linear):
                flat = score.flatten().double().numpy()
                mask = np.zeros(flat.shape[0], dtype=bool)
                mask[keep_strongest(flat, keep)] = True
                mask_t = torch.from_numpy(mask).reshape(layer.weight.shape)
                sparsify_linear(model, names[layer], mask_t, optimizer, backend=self.backend)
            else:
                prune_layer(layer, score.double().numpy(), keep, optimizer)
        if self.snapshot is not None:
            _rewind(model, self.snapshot, optimizer)
        self.events += 1
        self.n_updates += 1
        self.last_fraction = 1.0 - sum(targets) / max(before, 1)
        return True

    def _scores(self, model: nn.Module) -> list[torch.Tensor]:
        if callable(self.criterion):
            return self.criterion(model)
        if self.criterion == "obd":
            x, y = self.data
            return obd_saliency(model, x, y, method=self.hessian)
        return magnitude_scores(model)

    # ---- checkpointing ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(events=self.events, snapshot=copy.deepcopy(self.snapshot))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.events = int(state["events"])
        self.snapshot = copy.deepcopy(state["snapshot"])

    def __repr__(self) -> str:
        return (
            f"Pruning(criterion={self.criterion!r}, {self.pruning}, scope={self.scope!r}, l1={self.l1}, "
            f"rewind_epoch={self.rewind_epoch})"
        )


# ---- helpers -----------------------------------------------------------------------------------------------
def _dense_size(layer: nn.Module) -> int:
    return layer.in_features * layer.out_features


def _nnz(layer: nn.Module) -> int:
    return layer.nnz if isinstance(layer, SparseLinear) else layer.weight.numel()


def _proximal_l1(model: nn.Module, optimizer: torch.optim.Optimizer | None, strength: float) -> None:
    """Soft-thresholding, the proximal step of the L1 penalty: exact zeros, unlike a subgradient step."""
    lr_of = {}
    if optimizer is not None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                lr_of[p] = group["lr"]
    with torch.no_grad():
        for layer in weight_layers(model):
            w = weights_of(layer)
            shrink = lr_of.get(w, 0.0) * strength
            w.copy_(torch.sign(w) * torch.clamp(w.abs() - shrink, min=0.0))


def _weights_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Dense copies of every weight matrix and bias (rewinding happens on the dense-born network)."""
    snapshot = {}
    for name, layer in model.named_modules():
        if isinstance(layer, nn.Linear | SparseLinear):
            weight = layer.to_dense() if isinstance(layer, SparseLinear) else layer.weight.detach()
            snapshot[name + ".weight"] = weight.clone()
            if layer.bias is not None:
                snapshot[name + ".bias"] = layer.bias.detach().clone()
    return snapshot


def _rewind(model: nn.Module, snapshot: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer | None) -> None:
    """Surviving weights (and biases) back to the snapshot; optimizer state restarts from zero."""
    with torch.no_grad():
        for name, layer in model.named_modules():
            if isinstance(layer, SparseLinear):
                rows = torch.from_numpy(layer.pattern.rows).long()
                cols = torch.from_numpy(layer.pattern.cols).long()
                layer.values.copy_(snapshot[name + ".weight"][rows, cols])
            elif isinstance(layer, nn.Linear):
                layer.weight.copy_(snapshot[name + ".weight"])
            else:
                continue
            if layer.bias is not None:
                layer.bias.copy_(snapshot[name + ".bias"])
    if optimizer is not None:
        optimizer.state.clear()
