"""The one table of topology strategies a run can use: name -> how it starts, which settings it reads, its builder.

The config takes its allowed ``strategy`` names from here, the trainer builder (:mod:`evosparse.train.build`)
looks the builder up here, and the CLI and the docs list the table. Adding a strategy touches its own
module (the method) and one entry of ``REGISTRY`` below (with a small builder if it has settings).

Each builder receives the run's config and a :class:`StrategyInputs` (the topology seed, the per-layer
budget of the methods that start dense, the saliency sample) and returns the strategy, or None when the
run changes no connection (SET with ``zeta = 0``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from evosparse.prune.neuron_importance import NeuronImportance
from evosparse.prune.pruning import Pruning
from evosparse.prune.schedule import PruningSchedule
from evosparse.prune.snip import SNIP
from evosparse.topology.rigl import RigL
from evosparse.topology.schedule import UpdateSchedule
from evosparse.topology.set import SET
from evosparse.topology.static import StaticSparse
from evosparse.topology.strategy import TopologyStrategy

if TYPE_CHECKING:  # the config reads this table for its choices; builders only read the config's fields
    from evosparse.train.config import TrainConfig

FAMILIES = ("sparse", "dense_to_sparse")


@dataclass(frozen=True)
class StrategyInputs:
    """What a builder may use besides the config.

    Attributes:
        seed: the run's topology seed (derived from the config seed).
        budget: connections each weight layer ends with (the Erdos-Renyi count at the run's epsilon or target
            density); None for the strategies that start sparse (their initialisation sets it).
        sample: ``(x, y)`` training examples the saliency methods score on (None without data).
    """

    seed: int
    budget: list[int] | None = None
    sample: tuple[torch.Tensor, torch.Tensor] | None = None


@dataclass(frozen=True)
class StrategySpec:
    """One row of the table.

    Attributes:
        build: ``(config, inputs) -> strategy or None``.
        family: "sparse" (sparse training from the first step) or "dense_to_sparse" (dense training pruned on
            events from ``prune_start``).
        starts_dense: the model is built dense (the pruning methods, and SNIP, which prunes before step one).
        settings: the (flat) names of the config fields the strategy reads besides the model's.
        summary: one line for ``--help`` and the docs.
    """

    build: Callable[[TrainConfig, StrategyInputs], TopologyStrategy | None]
    family: str
    starts_dense: bool
    settings: tuple[str, ...]
    summary: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")


# ---- builders ------------------------------------------------------------------------------------------------


def update_schedule(config: TrainConfig) -> UpdateSchedule:
    """When the sparse-from-scratch methods rewire, and how much (zeta, its decay, its unit)."""
    topology = config.topology
    return UpdateSchedule(
        zeta=topology.zeta,
        every=topology.update_every,
        unit=topology.update_unit,
        decay=topology.decay,
        stop_after=topology.stop_after,
    )


def pruning_schedule(config: TrainConfig, kind: str = "one_shot") -> PruningSchedule:
    """Events of a dense-to-sparse method: one shot, iterative cycles (imp) or the cubic ramp (gmp)."""
    pruning, unit = config.pruning, config.topology.update_unit
    if kind == "iterative":
        return PruningSchedule(
            "iterative", start=pruning.prune_start, end=pruning.prune_end, cycles=pruning.prune_cycles, unit=unit
        )
    if kind == "cubic":
        every = config.topology.update_every
        return PruningSchedule("cubic", start=pruning.prune_start, end=pruning.prune_end, every=every, unit=unit)
    return PruningSchedule("one_shot", start=pruning.prune_start, unit=unit)


def _set(config: TrainConfig, inputs: StrategyInputs) -> SET | None:
    topology = config.topology
    if topology.zeta == 0:
        return None  # nothing would ever change: the run is static sparse training, without the bookkeeping
    return SET(rule=topology.rule, schedule=update_schedule(config), new_weights=topology.new_weights, seed=inputs.seed)


def _rigl(config: TrainConfig, inputs: StrategyInputs) -> RigL:
    return RigL(schedule=update_schedule(config), seed=inputs.seed)


def _static(config: TrainConfig, inputs: StrategyInputs) -> StaticSparse:
    return StaticSparse(seed=inputs.seed)


def _neuron(config: TrainConfig, inputs: StrategyInputs) -> NeuronImportance:
    pruning = config.pruning
    events = PruningSchedule("iterative", start=pruning.prune_start, end=pruning.prune_end, cycles=pruning.prune_cycles)
    return NeuronImportance(
        neuron_fraction=pruning.neuron_fraction,
        pruning=events,
        rule=config.topology.rule,
        schedule=update_schedule(config),
        new_weights=config.topology.new_weights,
        seed=inputs.seed,
    )


def _snip(config: TrainConfig, inputs: StrategyInputs) -> SNIP:
    if inputs.sample is None:
        raise ValueError("strategy 'snip' needs training data")
    return SNIP(
        inputs.budget, inputs.sample, scope=config.pruning.scope, backend=config.model.backend, seed=inputs.seed
    )


def _pruning(
    criterion: str = "magnitude", *, events: str = "one_shot", l1: bool = False, rewind: bool = False
) -> Callable[[TrainConfig, StrategyInputs], Pruning]:
    """A builder of the dense-to-sparse strategy: its criterion, its events, and whether L1 / rewinding apply."""

    def build(config: TrainConfig, inputs: StrategyInputs) -> Pruning:
        pruning = config.pruning
        return Pruning(
            inputs.budget,
            criterion=criterion,
            schedule=pruning_schedule(config, events),
            scope=pruning.scope,
            l1=pruning.l1 if l1 else 0.0,
            rewind_epoch=pruning.rewind_epoch if rewind else None,
            data=inputs.sample,
            hessian=pruning.hessian,
            backend=config.model.backend,
            seed=inputs.seed,
        )

    return build


# ---- the table -------------------------------------------------------------------------------------------------

_REWIRE = ("zeta", "update_every", "update_unit", "decay", "stop_after")
_EVENTS = ("prune_start", "prune_end", "prune_cycles")
_PRUNE = ("prune_start", "update_unit", "scope")  # every dense-to-sparse method

REGISTRY: dict[str, StrategySpec] = {
    "set": StrategySpec(
        _set, family="sparse", starts_dense=False, settings=(*_REWIRE, "rule", "new_weights"),
        summary="SET: remove the weakest fraction zeta, regrow as many at random (Mocanu et al. 2018)",
    ),
    "rigl": StrategySpec(
        _rigl, family="sparse", starts_dense=False, settings=_REWIRE,
        summary="RigL: drop by magnitude, grow where the gradient is largest (Evci et al. 2020)",
    ),
    "static": StrategySpec(
        _static, family="sparse", starts_dense=False, settings=(),
        summary="the Erdos-Renyi topology of initialisation, never changed (the baseline)",
    ),
    "snip": StrategySpec(
        _snip, family="sparse", starts_dense=True, settings=("scope", "saliency_samples"),
        summary="SNIP: prune the dense network once, before training, by sensitivity (Lee et al. 2019)",
    ),
    "neuron": StrategySpec(
        _neuron, family="sparse", starts_dense=False,
        settings=(*_REWIRE, "rule", "new_weights", *_EVENTS, "neuron_fraction"),
        summary="SET that also removes weak hidden neurons, shrinking the layers (Liu et al. 2021)",
    ),
    "magnitude": StrategySpec(
        _pruning(), family="dense_to_sparse", starts_dense=True, settings=_PRUNE,
        summary="one-shot magnitude pruning of the dense network",
    ),
    "imp": StrategySpec(
        _pruning(events="iterative", rewind=True), family="dense_to_sparse", starts_dense=True,
        settings=(*_PRUNE, "prune_end", "prune_cycles", "rewind_epoch"),
        summary="iterative magnitude pruning: prune-retrain cycles (Han et al. 2015), lottery-ticket rewinding",
    ),
    "gmp": StrategySpec(
        _pruning(events="cubic"), family="dense_to_sparse", starts_dense=True,
        settings=(*_PRUNE, "prune_end", "update_every"),
        summary="gradual magnitude pruning on a cubic ramp (Zhu and Gupta 2017)",
    ),
    "obd": StrategySpec(
        _pruning("obd"), family="dense_to_sparse", starts_dense=True,
        settings=(*_PRUNE, "hessian", "saliency_samples"),
        summary="Optimal Brain Damage: prune by the saliency 0.5 h_kk w^2 (LeCun et al. 1990)",
    ),
    "l1": StrategySpec(
        _pruning(l1=True), family="dense_to_sparse", starts_dense=True, settings=(*_PRUNE, "l1"),
        summary="proximal L1 penalty during training, then magnitude thresholding",
    ),
}  # fmt: skip

STRATEGIES = tuple(REGISTRY)
SPARSE_STRATEGIES = tuple(name for name, spec in REGISTRY.items() if spec.family == "sparse")
DENSE_TO_SPARSE = tuple(name for name, spec in REGISTRY.items() if spec.family == "dense_to_sparse")


def strategy_spec(name: str) -> StrategySpec:
    """The row of ``name``; a ValueError naming the known strategies otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"strategy must be one of {', '.join(REGISTRY)}; got {name!r}")
    return REGISTRY[name]


def markdown_table() -> str:
    """The table as the README shows it (a test keeps the README's copy equal to this)."""
    rows = ["| strategy | what | starts | settings it reads |", "|---|---|---|---|"]
    for name, spec in REGISTRY.items():
        start = "dense" if spec.starts_dense else "sparse"
        rows.append(f"| `{name}` | {spec.summary} | {start} | {', '.join(spec.settings) or '-'} |")
    return "\n".join(rows)
