"""From a :class:`TrainConfig` to the objects of a run: model, optimizer, topology strategy, seeds.

One config seed drives the whole run. Each consumer (model, data order, rewiring) gets its own seed
derived with ``numpy.random.SeedSequence``, so the random streams are independent: changing the batch
size, say, does not change the initial weights. Which strategy a name means, and whether its model starts
dense, is read from the one table of strategies (:mod:`evosparse.train.strategies`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from evosparse.nn.linear import SparseLinear
from evosparse.nn.mlp import DenseMLP, SparseMLP
from evosparse.sparse.init import epsilon_for_density, erdos_renyi_nnz, network_nnz
from evosparse.topology.strategy import TopologyStrategy
from evosparse.train.config import TrainConfig, effective_block_rows
from evosparse.train.strategies import StrategyInputs, strategy_spec

# One stream per consumer; the numbers only need to be distinct and never change.
STREAMS = {"model": 0, "shuffle": 1, "topology": 2}


def derive_seed(seed: int, stream: str) -> int:
    """An independent 32-bit seed for ``stream`` (one of STREAMS) from the run's ``seed``."""
    return int(np.random.SeedSequence([int(seed), STREAMS[stream]]).generate_state(1)[0])


def layer_sizes(config: TrainConfig, n_features: int, n_classes: int) -> list[int]:
    return [int(n_features), *config.model.hidden, int(n_classes)]


def starts_dense(config: TrainConfig) -> bool:
    """Whether the run's model starts as the dense twin (the dense baseline, pruning methods and SNIP)."""
    return config.model.kind == "dense" or strategy_spec(config.topology.strategy).starts_dense


def effective_epsilon(config: TrainConfig, sizes: list[int]) -> float:
    """``epsilon``, or the one that gives the network the overall (target) ``density`` if that is set."""
    return config.model.epsilon if config.model.density is None else epsilon_for_density(sizes, config.model.density)


def build_model(config: TrainConfig, n_features: int, n_classes: int, *, empty: bool = False) -> nn.Module:
    """The SET-MLP, or its dense twin for the dense baseline and the dense-to-sparse methods, seeded from the config.

    ``empty``: the SET-MLP's layers start with no connections, for a model whose state dict is loaded next (a
    resumed run: its checkpoint holds the connections; the dense twin is built as usual).
    """
    sizes = layer_sizes(config, n_features, n_classes)
    seed = derive_seed(config.run.seed, "model")
    if starts_dense(config):
        return DenseMLP(
            sizes, activation=config.model.activation, dropout=config.model.dropout, alpha=config.model.alpha, seed=seed
        )
    return SparseMLP(
        sizes,
        activation=config.model.activation,
        dropout=config.model.dropout,
        epsilon=effective_epsilon(config, sizes),
        alpha=config.model.alpha,
        weight_init=config.model.weight_init,
        backend=config.model.backend,
        block_rows=effective_block_rows(config),
        seed=seed,
        empty=empty,
    )


def output_layer(model: nn.Module) -> nn.Module:
    """The last weight layer (``SparseLinear`` or ``nn.Linear``) of ``model``: the readout."""
    layers = [m for m in model.modules() if isinstance(m, SparseLinear | nn.Linear)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no SparseLinear or nn.Linear layer")
    return layers[-1]


def output_lr_scale(config: TrainConfig, sizes: Sequence[int]) -> float:
    """Factor of the output layer's learning rate: ``min(1, output_lr_fan_in / fan-in)`` (1 if the rule is off).

    Why: each logit sums ``fan-in`` hidden activations (fan-in = the output layer's connections per output
    neuron, nnz / n_out: an Erdos-Renyi readout of a wide layer is dense or nearly so), and one SGD step
    moves a logit by about ``lr * fan-in * E[h^2]``. With one rate for every layer, a 600,000-neuron last
    hidden layer moves the logits 600x more per step than the 1000-neuron layers the SET recipe was tuned
    on, and training diverges in its first steps (BENCHMARKS.md, section 3). Scaling the readout's rate
    by 1 / fan-in is the width rule of muP (Yang et al. 2021, "Tensor Programs V", the output layer's
    row of their Table 3); the reference fan-in 1000 keeps every network of the papers' sizes (hidden
    layers up to 1000 neurons) exactly as before, so the rule only acts where it is needed.

    The fan-in is that of the network of ``sizes`` as :func:`build_model` builds it (the connections its
    Erdos-Renyi readout draws, or the whole width for the dense twin): a function of the recipe, so a resumed
    run, whose layers are built empty, gets the optimizer it was saved with.
    """
    reference = config.optimizer.output_lr_fan_in
    if reference is None:
        return 1.0
    n_in, n_out = int(sizes[-2]), int(sizes[-1])
    nnz = n_in * n_out if starts_dense(config) else erdos_renyi_nnz(n_in, n_out, effective_epsilon(config, sizes))
    return min(1.0, reference / (nnz / n_out))


def build_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay (the SET recipe) or Adam, on all of ``model.parameters()``.

    The output layer gets its own parameter group with ``lr * output_lr_scale(...)`` when that factor is
    below 1 (one group otherwise, so runs of the papers' sizes have the optimizer they always had).
    """
    scale = output_lr_scale(config, list(model.initial_layer_sizes))
    parameters: list | Iterator[nn.Parameter] = model.parameters()
    if scale < 1.0:
        readout = list(output_layer(model).parameters())
        others = [p for p in model.parameters() if all(p is not q for q in readout)]
        parameters = [{"params": others}, {"params": readout, "lr": config.optimizer.lr * scale}]
    if config.optimizer.name == "adam":
        return torch.optim.Adam(parameters, lr=config.optimizer.lr, weight_decay=config.optimizer.weight_decay)
    # fused: one compiled call for all tensors (the default implementation's numbers to float rounding), 2.2x
    # faster for a SET-MLP's eight tensors (132 vs 289 us per step): at batch 40 the step is a tenth of the time.
    fusable = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in model.parameters())
    return torch.optim.SGD(
        parameters,
        lr=config.optimizer.lr,
        momentum=config.optimizer.momentum,
        weight_decay=config.optimizer.weight_decay,
        nesterov=config.optimizer.nesterov,
        fused=fusable or None,
    )


def saliency_data(
    config: TrainConfig, x_train: torch.Tensor, y_train: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random sample of ``saliency_samples`` training examples (for OBD and SNIP)."""
    n = min(config.pruning.saliency_samples, x_train.shape[0])
    generator = torch.Generator().manual_seed(derive_seed(config.run.seed, "topology"))
    index = torch.randperm(x_train.shape[0], generator=generator)[:n]
    return x_train[index], y_train[index]


def build_strategy(
    config: TrainConfig, sizes: list[int] | None = None, data: tuple[torch.Tensor, torch.Tensor] | None = None
) -> TopologyStrategy | None:
    """The topology strategy of a run (None: the dense baseline, or SET with zeta = 0).

    Args:
        config: the run's settings.
        sizes: layer sizes (input, hidden..., output): the budget of the methods that start dense.
        data: ``(x_train, y_train)``: OBD and SNIP sample their saliency examples from it.
    """
    if config.model.kind == "dense":
        return None
    spec = strategy_spec(config.topology.strategy)
    seed = derive_seed(config.run.seed, "topology")
    if not spec.starts_dense:
        return spec.build(config, StrategyInputs(seed=seed))
    if sizes is None:
        raise ValueError(
            f"strategy {config.topology.strategy!r} starts dense and needs the layer sizes (its per-layer budget)"
        )
    budget = network_nnz(sizes, effective_epsilon(config, sizes))
    sample = saliency_data(config, *data) if data is not None else None
    return spec.build(config, StrategyInputs(seed=seed, budget=budget, sample=sample))
