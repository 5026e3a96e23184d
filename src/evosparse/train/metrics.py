"""What a run measures: loss and accuracy of a classifier on a data set, and its connection counts."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evosparse.nn.linear import SparseLinear

# The activations of one evaluation batch in the widest layer stay below this (but batches keep at least
# EVAL_MIN_BATCH rows): a batch of 61 rows of a 600,000-neuron layer held ~0.27 GiB of activations (more than
# the training loop's peak), and smaller batches were as fast there (2.6-3.0 s for 61 rows in batches of 8-16,
# 3.3 s in one); layers of 1,000 neurons keep batches of 1,024. The floor: a forward pass of the ten-million-neuron
# network costs ~0.7 s whatever the batch, so batches of one row made its evaluation 48 s.
EVAL_ACTIVATION_BYTES = 32 * 2**20
EVAL_BATCH = 1024
EVAL_MIN_BATCH = 4


def eval_batch_size(model: nn.Module, element_size: int = 4) -> int:
    """Evaluation batch of ``model``: :data:`EVAL_BATCH` rows, fewer (down to :data:`EVAL_MIN_BATCH`) when the
    widest layer would make one batch's activations exceed :data:`EVAL_ACTIVATION_BYTES`."""
    widest = max(
        (max(m.in_features, m.out_features) for m in model.modules() if isinstance(m, SparseLinear | nn.Linear)),
        default=1,
    )
    return max(EVAL_MIN_BATCH, min(EVAL_BATCH, EVAL_ACTIVATION_BYTES // (widest * element_size)))


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int | None = None
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``, in evaluation mode and in batches.

    ``batch_size`` None: :func:`eval_batch_size` (1,024 rows, fewer for layers of 10^5 neurons and more). The
    model's training / evaluation mode is restored afterwards; no gradient is recorded, and no random generator
    is touched (dropout is off), so evaluating never changes the course of a run.
    """
    if x.shape[0] == 0:
        return float("nan"), float("nan")
    if batch_size is None:
        batch_size = eval_batch_size(model, x.element_size())
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    try:
        with torch.no_grad():
            for begin in range(0, x.shape[0], batch_size):
                logits = model(x[begin : begin + batch_size])
                target = y[begin : begin + batch_size]
                loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
                correct += int((logits.argmax(dim=1) == target).sum())
    finally:
        model.train(was_training)
    return loss_sum / x.shape[0], correct / x.shape[0]


def layer_connections(model: nn.Module) -> list[tuple[int, int]]:
    """(stored connections, connections of the dense equivalent) of each weight layer, in order.

    Sparse layers report their nnz; ``nn.Linear`` layers are dense (nnz = in x out).
    """
    counts = []
    for module in model.modules():
        if isinstance(module, SparseLinear):
            counts.append((module.nnz, module.in_features * module.out_features))
        elif isinstance(module, nn.Linear):
            counts.append((module.weight.numel(), module.weight.numel()))
    return counts


def connection_metrics(model: nn.Module) -> dict[str, float | int]:
    """History columns ``nnz``, ``density`` and ``nnz_layer<i>``, ``density_layer<i>`` (1-based)."""
    counts = layer_connections(model)
    metrics: dict[str, float | int] = {
        "nnz": sum(nnz for nnz, _ in counts),
        "density": sum(nnz for nnz, _ in counts) / max(1, sum(total for _, total in counts)),
    }
    for index, (nnz, total) in enumerate(counts, start=1):
        metrics[f"nnz_layer{index}"] = nnz
        metrics[f"density_layer{index}"] = nnz / total
    return metrics


def inference_flops(model: nn.Module) -> int:
    """Arithmetic of one example's forward pass through the weight layers: 2 x connections."""
    return 2 * sum(nnz for nnz, _ in layer_connections(model))


def training_flops_per_example(model: nn.Module) -> int:
    """Forward, weight gradient and input gradient (all but the first layer, whose input needs none): 2 x nnz each."""
    counts = [nnz for nnz, _ in layer_connections(model)]
    return sum(2 * nnz * (2 if index == 0 else 3) for index, nnz in enumerate(counts))
