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
from evosparse.prune.neuron_importance import NeuronImportance
from evosparse.prune.pruning import Pruning
from evosparse.prune.schedule import PruningSchedule
from evosparse.prune.snip import SNIP
from evosparse.sparse.init import epsilon_for_density, network_nnz
from evosparse.topology.rigl import RigL
from evosparse.topology.schedule import UpdateSchedule
from evosparse.topology.set import SET
from evosparse.topology.static import StaticSparse
from evosparse.topology.strategy import TopologyStrategy
from evosparse.train.config import DENSE_TO_SPARSE, TrainConfig

# One stream per consumer; the numbers only need to be distinct and never change.
STREAMS = {"model": 0, "shuffle": 1, "topology": 2}


def derive_seed(seed: int, stream: str) -> int:
    """An independent 32-bit seed for ``stream`` (one of STREAMS) from the run's ``seed``."""
    return int(np.random.SeedSequence([int(seed), STREAMS[stream]]).generate_state(1)[0])


def layer_sizes(config: TrainConfig, n_features: int, n_classes: int) -> list[int]:
    return [int(n_features), *config.model.hidden, int(n_classes)]


def starts_dense(config: TrainConfig) -> bool:
    """Whether the run's model starts as the dense twin (the dense baseline, pruning methods and SNIP)."""
    return (
        config.model.kind == "dense"
        or config.topology.strategy in DENSE_TO_SPARSE
        or config.topology.strategy == "snip"
    )


def effective_epsilon(config: TrainConfig, sizes: list[int]) -> float:
    """``epsilon``, or the one that gives the network the overall ``density`` if that is set."""
    return config.model.epsilon if config.model.density is None else epsilon_for_density(sizes, config.model.density)


def build_model(config: TrainConfig, n_features: int, n_classes: int) -> nn.Module:
    """The SET-MLP, or its dense twin for the dense baseline and the dense-to-sparse methods, seeded from the config."""
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
        seed=seed,
    )


def build_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay (the SET recipe) or Adam, on all of ``model.parameters()``."""
    if config.optimizer.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.optimizer.lr, weight_decay=config.optimizer.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=config.optimizer.lr,
        momentum=config.optimizer.momentum,
        weight_decay=config.optimizer.weight_decay,
        nesterov=config.optimizer.nesterov,
    )


def build_schedule(config: TrainConfig) -> UpdateSchedule:
    return UpdateSchedule(
        zeta=config.topology.zeta,
        every=config.topology.update_every,
        unit=config.topology.update_unit,
        decay=config.topology.decay,
        stop_after=config.topology.stop_after,
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
    seed = derive_seed(config.run.seed, "topology")
    name = config.topology.strategy
    if name == "static":
        return StaticSparse(seed=seed)
    if name == "set":
        if config.topology.zeta == 0:
            return None
        return SET(
            config.topology.zeta,
            rule=config.topology.rule,
            schedule=build_schedule(config),
            new_weights=config.topology.new_weights,
            seed=seed,
        )
    if name == "rigl":
        return RigL(config.topology.zeta, schedule=build_schedule(config), seed=seed)
    if name == "neuron":
        return NeuronImportance(
            config.topology.zeta,
            neuron_fraction=config.pruning.neuron_fraction,
            pruning=PruningSchedule(
                "iterative",
                start=config.pruning.prune_start,
                end=config.pruning.prune_end,
                cycles=config.pruning.prune_cycles,
            ),
            rule=config.topology.rule,
            schedule=build_schedule(config),
            new_weights=config.topology.new_weights,
            seed=seed,
        )
    if sizes is None:
        raise ValueError(f"strategy {name!r} starts dense and needs the layer sizes (its per-layer budget)")
    budget = network_nnz(sizes, effective_epsilon(config, sizes))
    sample = saliency_data(config, *data) if data is not None else None
    if name == "snip":
        if sample is None:
            raise ValueError("strategy 'snip' needs training data")
        return SNIP(budget, sample, scope=config.pruning.scope, backend=config.model.backend, seed=seed)
    return Pruning(
        budget,
        criterion="obd" if name == "obd" else "magnitude",
        schedule=pruning_schedule(config),
        scope=config.pruning.scope,
        l1=config.pruning.l1 if name == "l1" else 0.0,
        rewind_epoch=config.pruning.rewind_epoch if name == "imp" else None,
        data=sample,
        hessian=config.pruning.hessian,
        backend=config.model.backend,
        seed=seed,
    )


def pruning_schedule(config: TrainConfig) -> PruningSchedule:
    """Events of the dense-to-sparse methods: imp cycles, the gmp cubic ramp, one shot for the others."""
    unit = config.topology.update_unit
    if config.topology.strategy == "imp":
        return PruningSchedule(
            "iterative",
            start=config.pruning.prune_start,
            end=config.pruning.prune_end,
            cycles=config.pruning.prune_cycles,
            unit=unit,
        )
    if config.topology.strategy == "gmp":
        return PruningSchedule(
            "cubic",
            start=config.pruning.prune_start,
            end=config.pruning.prune_end,
            every=config.topology.update_every,
            unit=unit,
        )
    return PruningSchedule("one_shot", start=config.pruning.prune_start, unit=unit)
