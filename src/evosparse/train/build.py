"""From a :class:`TrainConfig` to the objects of a run: model, optimizer, topology strategy, seeds.

One config seed drives the whole run. Each consumer (model, data order, rewiring) gets its own seed
derived with ``numpy.random.SeedSequence``, so the random streams are independent: changing the batch
size, say, does not change the initial weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from evosparse.nn.mlp import DenseMLP, SparseMLP
from evosparse.topology.schedule import UpdateSchedule
from evosparse.topology.set import SET
from evosparse.train.config import TrainConfig

# One stream per consumer; the numbers only need to be distinct and never change.
STREAMS = {"model": 0, "shuffle": 1, "topology": 2}


def derive_seed(seed: int, stream: str) -> int:
    """An independent 32-bit seed for ``stream`` (one of STREAMS) from the run's ``seed``."""
    return int(np.random.SeedSequence([int(seed), STREAMS[stream]]).generate_state(1)[0])


def layer_sizes(config: TrainConfig, n_features: int, n_classes: int) -> list[int]:
    return [int(n_features), *config.hidden, int(n_classes)]


def build_model(config: TrainConfig, n_features: int, n_classes: int) -> nn.Module:
    """The SET-MLP (``model="sparse"``) or its dense twin, seeded from the config."""
    sizes = layer_sizes(config, n_features, n_classes)
    seed = derive_seed(config.seed, "model")
    if config.model == "dense":
        return DenseMLP(sizes, activation=config.activation, dropout=config.dropout, alpha=config.alpha, seed=seed)
    return SparseMLP(
        sizes,
        activation=config.activation,
        dropout=config.dropout,
        epsilon=config.epsilon,
        alpha=config.alpha,
        weight_init=config.weight_init,
        backend=config.backend,
        seed=seed,
    )


def build_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay (the SET recipe) or Adam, on all of ``model.parameters()``."""
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=config.nesterov,
    )


def build_schedule(config: TrainConfig) -> UpdateSchedule:
    return UpdateSchedule(
        zeta=config.zeta,
        every=config.update_every,
        unit=config.update_unit,
        decay=config.decay,
        stop_after=config.stop_after,
    )


def build_strategy(config: TrainConfig) -> SET | None:
    """The SET strategy of a sparse model (None for a dense one or zeta = 0: nothing to rewire)."""
    if config.model == "dense" or config.zeta == 0:
        return None
    return SET(
        config.zeta,
        rule=config.rule,
        schedule=build_schedule(config),
        new_weights=config.new_weights,
        seed=derive_seed(config.seed, "topology"),
    )
