"""``TrainConfig``: every setting of a training run, one frozen, validated section per component.

    TrainConfig
      data       DataConfig       which data set, where, how it is split
      model      ModelConfig      the SET-MLP (or its dense twin): sizes, activation, Erdos-Renyi sparsity
      topology   TopologyConfig   which connectivity method, and SET/RigL's rewiring schedule
      pruning    PruningConfig    the dense-to-sparse methods' pruning schedule and criteria
      optimizer  OptimizerConfig  how the weights are fitted: SGD / Adam, learning rate, batch size
      run        RunConfig        epochs, seed, threads, output folder

Each field carries a one-line doc (shown by ``evosparse train --help``) and, where the SET paper fixes a
value, that value. Every setting also has a *flat name*, unique across sections: the command-line flag
(``lr`` -> ``--lr``), the name in error messages, and a key that flat config files (written before the
sections existed) and ``replace(lr=0.1)`` still accept. Two fields are named after their section's
meaning: ``model.kind`` is ``--model`` and ``optimizer.name`` is ``--optimizer``.

The defaults are tuned for the bundled ``digits`` data set (a run takes seconds on a laptop; see
``benchmarks/digits_defaults.md``), not for MNIST: the paper's MNIST recipe is ``hidden=(1000, 1000, 1000),
epsilon=20, zeta=0.3, lr=0.01, momentum=0.9, weight_decay=0.0002, batch_size=100`` with SReLU and one
topology update per epoch.

Paper: Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
connectivity inspired by network science", Nature Communications 9, 2383 (2018), Methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evosparse._config import (
    Config,
    at_least,
    between,
    non_negative,
    one_of,
    param,
    positive,
    section,
    sizes,
)
from evosparse.nn.activations import ACTIVATIONS
from evosparse.nn.linear import WEIGHT_INITS
from evosparse.prune.pruning import SCOPES
from evosparse.prune.saliency import HESSIANS
from evosparse.prune.schedule import check_spacing
from evosparse.sparse.functional import BACKENDS, SMALL_BATCH
from evosparse.sparse.pattern import check_block_rows_or_auto
from evosparse.topology.schedule import DECAYS, UNITS, check_decay, check_zeta
from evosparse.topology.set import NEW_WEIGHTS, REMOVAL_RULES
from evosparse.train.strategies import DENSE_TO_SPARSE, SPARSE_STRATEGIES, STRATEGIES  # the one table


def check_config_block_rows(block_rows: object) -> None:
    """0 (automatic) or a block size :func:`~evosparse.sparse.pattern.check_block_rows` accepts."""
    check_block_rows_or_auto(block_rows)


def effective_block_rows(config: TrainConfig) -> int:
    """The ``block_rows`` the model is built with (:class:`~evosparse.nn.SparseMLP`): the config's, or for 0 the
    automatic choice: at the tiny batches where wide layers gain most from it (3.1x per epoch on the Liu shape,
    BENCHMARKS.md 3) 0 again, which lets each wide layer take its own size
    (:func:`~evosparse.sparse.pattern.auto_block_rows`), else 1 (CSR order)."""
    if config.model.block_rows:
        return config.model.block_rows
    return 0 if config.optimizer.batch_size <= SMALL_BATCH else 1


MODELS = ("sparse", "dense")
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class DataConfig(Config):
    """Which data set, where its files are, how it is split."""

    dataset: str = param("digits", "data set name, see evosparse.data.DATASETS ('digits' needs no download)")
    data_dir: str | None = param(None, "folder holding the data set files (None: the loader's default)")
    file: str | None = param(
        None,
        "your own data file instead of --dataset: .npz, .csv, .tsv, .parquet or .mat (see evosparse.data.files)",
        flag="data",
    )
    label_column: str | None = param(
        None, "--data tables: the label column's name or number from 1 (None: label / y / target / class, else last)"
    )
    data_seed: int = param(0, "seed of the train/test split, for data sets that come without one", rule=at_least(0))
    download: bool = param(True, "download missing data files (False: fail unless they are in data_dir or the cache)")

    def validate(self) -> None:
        if self.label_column is not None and self.file is None:
            raise ValueError(f"label_column ({self.label_column!r}) applies to a --data table; give data=FILE")
        if self.file is not None:
            from evosparse.data.files import file_format

            file_format(self.file)  # the suffix, checked before anything runs


@dataclass(frozen=True)
class ModelConfig(Config):
    """The network: a SET-MLP with truly sparse layers, or its dense twin."""

    kind: str = param(
        "sparse",
        "'sparse' (SET-MLP, truly sparse layers) or 'dense' (same MLP, nn.Linear)",
        rule=one_of(MODELS),
        flag="model",
    )
    hidden: tuple[int, ...] = param(
        (256, 256), "neurons of each hidden layer (paper, MNIST: 1000,1000,1000)", rule=sizes
    )
    activation: str = param(
        "relu", f"hidden activation, one of {', '.join(ACTIVATIONS)} (paper: srelu)", rule=one_of(ACTIVATIONS)
    )
    alpha: float = param(0.6, "All-ReLU negative slope (paper: 0.6)", rule=non_negative)
    dropout: float = param(
        0.0,
        "dropout rate after each hidden activation (paper: 0.3 on Fashion-MNIST)",
        rule=between(0, 1, high_open=True),
    )
    epsilon: float = param(
        20.0, "Erdos-Renyi sparsity: density = epsilon (n_in + n_out) / (n_in n_out) (paper: 20)", rule=positive
    )
    density: float | None = param(
        None,
        "overall weight density of the final network; sets epsilon (None: use epsilon)",
        rule=between(0, 1, low_open=True),
    )
    weight_init: str = param(
        "fan_in", f"sparse weight init, one of {', '.join(WEIGHT_INITS)}", rule=one_of(WEIGHT_INITS)
    )
    backend: str = param("auto", f"sparse kernels, one of {', '.join(BACKENDS)}", rule=one_of(BACKENDS))
    block_rows: int = param(
        0,
        "store the weights of sparse layers with 32768+ inputs in blocks of this many output neurons, sorted by "
        f"input neuron (1: CSR order; 0: at batch sizes up to {SMALL_BATCH}, a size per layer giving ~1 "
        "connection per input in a block, 4096-65536; else 1)",
        rule=check_config_block_rows,
    )


@dataclass(frozen=True)
class TopologyConfig(Config):
    """Which connectivity method, and the rewiring schedule of SET, RigL and neuron importance."""

    strategy: str = param(
        "set",
        f"connectivity method: {', '.join(SPARSE_STRATEGIES)} (sparse from scratch); "
        f"{', '.join(DENSE_TO_SPARSE)} (dense start, pruned to the same per-layer budget)",
        rule=one_of(STRATEGIES),
    )
    zeta: float = param(
        0.3, "fraction of each layer's connections removed and regrown per update (paper: 0.3)", rule=check_zeta
    )
    rule: str = param(
        "set", f"removal rule, one of {', '.join(REMOVAL_RULES)} (paper: set, sign-wise)", rule=one_of(REMOVAL_RULES)
    )
    new_weights: str = param(
        "init", f"weights of regrown connections, one of {', '.join(NEW_WEIGHTS)}", rule=one_of(NEW_WEIGHTS)
    )
    update_every: int = param(1, "a topology update every this many units (paper: 1 epoch)", rule=at_least(1))
    update_unit: str = param(
        "epoch", f"unit of update_every and stop_after, one of {', '.join(UNITS)}", rule=one_of(UNITS)
    )
    decay: str = param(
        "cosine", f"how zeta shrinks over training, one of {', '.join(DECAYS)} (paper: constant)", rule=one_of(DECAYS)
    )
    stop_after: int | None = param(
        20, "no topology update at or after this unit count (None: never stop)", rule=at_least(1)
    )

    def validate(self) -> None:
        check_decay(self.decay, self.stop_after)  # the schedule owns the rule


@dataclass(frozen=True)
class PruningConfig(Config):
    """The pruning events and criteria of the dense-to-sparse methods (and of neuron importance)."""

    prune_start: int = param(
        5, "dense-to-sparse and neuron: update_unit count of the first pruning event", rule=at_least(1)
    )
    prune_end: int = param(15, "imp, gmp, neuron: update_unit count of the last pruning event", rule=at_least(1))
    prune_cycles: int = param(
        3, "imp, neuron: number of pruning events from prune_start to prune_end", rule=at_least(1)
    )
    scope: str = param(
        "layer", "pruning budget: 'layer' (Erdos-Renyi nnz per layer) or 'global' (one ranking)", rule=one_of(SCOPES)
    )
    rewind_epoch: int | None = param(
        None, "imp: survivors return to their weights of this epoch (0: init; none: off)", rule=at_least(0)
    )
    l1: float = param(
        1e-4,
        "l1: strength of the proximal L1 step applied after every optimizer step",
        rule=between(0, math.inf, high_open=True),
    )
    hessian: str = param(
        "gauss_newton",
        "obd: Hessian diagonal, 'gauss_newton' (exact for ReLU) or 'lecun' (paper)",
        rule=one_of(HESSIANS),
    )
    saliency_samples: int = param(1000, "obd, snip: training examples the saliency is computed on", rule=at_least(1))
    neuron_fraction: float = param(
        0.1, "neuron: fraction of each hidden layer's neurons removed per event", rule=between(0, 1, high_open=True)
    )

    def validate(self) -> None:
        if self.prune_end < self.prune_start:
            raise ValueError(f"prune_end ({self.prune_end}) must be >= prune_start ({self.prune_start})")
        if self.rewind_epoch is not None and self.rewind_epoch > self.prune_start:
            raise ValueError(
                f"rewind_epoch ({self.rewind_epoch}) must be <= prune_start ({self.prune_start}): the weights "
                "survivors return to must exist before the first pruning event"
            )


@dataclass(frozen=True)
class OptimizerConfig(Config):
    """How the weights are fitted."""

    name: str = param("sgd", f"one of {', '.join(OPTIMIZERS)} (paper: sgd)", rule=one_of(OPTIMIZERS), flag="optimizer")
    lr: float = param(0.05, "learning rate (paper: 0.01)", rule=positive)
    momentum: float = param(0.9, "SGD momentum (paper: 0.9)", rule=between(0, 1, high_open=True))
    nesterov: bool = param(False, "Nesterov momentum (SGD only)")
    fused_step: bool = param(
        False,
        "SGD only: the sparse layers' step inside their backward pass (no stored gradients; same results to float"
        " rounding)",
    )
    weight_decay: float = param(0.0002, "L2 weight decay (paper: 0.0002)", rule=between(0, math.inf, high_open=True))
    batch_size: int = param(32, "minibatch size (paper: 100)", rule=at_least(1))
    output_lr_fan_in: int | None = param(
        1000,
        "the output layer's lr is scaled by min(1, this / its connections per output neuron) (None: off)",
        rule=at_least(1),
    )

    def validate(self) -> None:
        if self.fused_step and self.name != "sgd":
            raise ValueError(f"fused_step=True needs optimizer='sgd', got optimizer={self.name!r}")
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError(
                f"nesterov=True needs optimizer='sgd' and momentum > 0, got optimizer={self.name!r}, "
                f"momentum={self.momentum}"
            )


@dataclass(frozen=True)
class RunConfig(Config):
    """How long, with which seed, on how many threads, into which folder."""

    epochs: int = param(30, "training epochs (paper, MNIST: 1000)", rule=at_least(1))
    seed: int = param(0, "seed of weights, topology, dropout, data order and rewiring", rule=at_least(0))
    threads: int | None = param(
        None,
        "CPU threads of torch and the sparse kernels (None: $EVOSPARSE_THREADS, else 1 for a small model, else all, "
        "and for a sparse model the kernels' count then follows a measurement of 1 vs all on the run's steps, "
        "torch on 1)",
        rule=at_least(1),
    )
    out_dir: str | None = param(None, "folder of history, checkpoint, config (None: runs/<dataset>-<model>-s<seed>)")


@dataclass(frozen=True)
class TrainConfig(Config):
    """Settings of one training run: data, model, topology, pruning, optimizer, run."""

    data: DataConfig = section(DataConfig, "which data set, where, how it is split")
    model: ModelConfig = section(ModelConfig, "the network")
    topology: TopologyConfig = section(TopologyConfig, "connectivity method and rewiring schedule")
    pruning: PruningConfig = section(PruningConfig, "pruning schedule and criteria of the dense-to-sparse methods")
    optimizer: OptimizerConfig = section(OptimizerConfig, "how the weights are fitted")
    run: RunConfig = section(RunConfig, "epochs, seed, threads, output folder")

    def validate(self) -> None:
        """The pruning rules that need the strategy (topology) and the length of the run."""
        strategy, pruning, epochs = self.topology.strategy, self.pruning, self.run.epochs
        uses_end = strategy in ("imp", "gmp", "neuron")
        last = pruning.prune_end if uses_end else pruning.prune_start
        if strategy in DENSE_TO_SPARSE and self.topology.update_unit == "epoch" and last >= epochs:
            name = "prune_end" if uses_end else "prune_start"
            raise ValueError(
                f"{name} ({last}) must be < epochs ({epochs}): {strategy} must finish pruning before the "
                "last epoch (nothing changes topology after it)"
            )
        if strategy in ("imp", "neuron"):
            check_spacing(
                pruning.prune_start,
                pruning.prune_end,
                pruning.prune_cycles,
                names=("prune_start", "prune_end", "prune_cycles"),
            )


def read_values(path: str | Path) -> dict[str, Any]:
    """The keys and values a TOML / JSON config file sets (keys checked, values validated), nothing more.

    Unlike :meth:`TrainConfig.from_file`, fields the file leaves out stay out: the command line merges
    these over the defaults and under its flags (see :meth:`TrainConfig.flatten`).
    """
    return TrainConfig.values_from_file(path)


def field_names() -> list[str]:
    """Flat names of every setting (the ``evosparse train`` flags without their dashes)."""
    return TrainConfig.flat_names()


def field_docs() -> dict[str, str]:
    return TrainConfig.field_docs()
