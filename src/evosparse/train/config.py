"""``TrainConfig``: every setting of a training run, as one frozen, validated, serialisable dataclass.

Each field carries a one-line doc (shown by ``evosparse train --help``) and, where the SET paper fixes a
value, that value. The defaults are tuned for the bundled ``digits`` data set (a run takes seconds on a
laptop; see ``benchmarks/digits_defaults.md``), not for MNIST: the paper's MNIST recipe is
``hidden=(1000, 1000, 1000), epsilon=20, zeta=0.3, lr=0.01, momentum=0.9, weight_decay=0.0002,
batch_size=100`` with SReLU and one topology update per epoch.

A config round-trips through TOML and JSON; reading one rejects unknown keys and names the valid ones.
TOML has no null: a folder set to None is left out of the file (folders default to None), and a number
set to None (``stop_after``, ``threads``) is written as the string "none".

Paper: Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse
connectivity inspired by network science", Nature Communications 9, 2383 (2018), Methods.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evosparse._config import check_unknown_keys, param
from evosparse._config import is_int as _is_int
from evosparse._config import is_real as _is_real
from evosparse._config import toml_value as _toml_value
from evosparse.nn.activations import ACTIVATIONS
from evosparse.nn.linear import WEIGHT_INITS
from evosparse.sparse.functional import BACKENDS
from evosparse.topology.schedule import DECAYS, UNITS
from evosparse.topology.set import NEW_WEIGHTS, REMOVAL_RULES

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 with the tomli backport
    import tomli as tomllib

MODELS = ("sparse", "dense")
# Sparse from scratch (Erdos-Renyi start) and dense to sparse (dense start, pruned to the same budget).
SPARSE_STRATEGIES = ("set", "rigl", "static", "snip", "neuron")
DENSE_TO_SPARSE = ("magnitude", "imp", "gmp", "obd", "l1")
STRATEGIES = SPARSE_STRATEGIES + DENSE_TO_SPARSE
SCOPES = ("layer", "global")
HESSIANS = ("gauss_newton", "lecun")
# Numbers that may be None (TOML writes "none"); the other None-able fields are folders.
_OPTIONAL_NUMBERS = ("stop_after", "threads", "density", "rewind_epoch")
OPTIMIZERS = ("sgd", "adam")
# The fields that take one of a few names, and those names.
CHOICES = {
    "model": MODELS,
    "activation": ACTIVATIONS,
    "weight_init": WEIGHT_INITS,
    "backend": BACKENDS,
    "rule": REMOVAL_RULES,
    "new_weights": NEW_WEIGHTS,
    "update_unit": UNITS,
    "decay": DECAYS,
    "optimizer": OPTIMIZERS,
    "strategy": STRATEGIES,
    "scope": SCOPES,
    "hessian": HESSIANS,
}


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (data, model, topology evolution, optimisation, bookkeeping)."""

    # ---- data ----------------------------------------------------------------------------------------
    dataset: str = param("digits", "data set name, see evosparse.data.DATASETS ('digits' needs no download)")
    data_dir: str | None = param(None, "folder holding the data set files (None: the loader's default)")
    data_seed: int = param(0, "seed of the train/test split, for data sets that come without one")
    download: bool = param(True, "download missing data files (False: fail unless they are in data_dir or the cache)")
    # ---- model ---------------------------------------------------------------------------------------
    model: str = param("sparse", "'sparse' (SET-MLP, truly sparse layers) or 'dense' (same MLP, nn.Linear)")
    hidden: tuple[int, ...] = param((256, 256), "neurons of each hidden layer (paper, MNIST: 1000,1000,1000)")
    activation: str = param("relu", f"hidden activation, one of {', '.join(ACTIVATIONS)} (paper: srelu)")
    alpha: float = param(0.6, "All-ReLU negative slope (paper: 0.6)")
    dropout: float = param(0.0, "dropout rate after each hidden activation (paper: 0.3 on Fashion-MNIST)")
    epsilon: float = param(20.0, "Erdos-Renyi sparsity: density = epsilon (n_in + n_out) / (n_in n_out) (paper: 20)")
    weight_init: str = param("fan_in", f"sparse weight init, one of {', '.join(WEIGHT_INITS)}")
    backend: str = param("auto", f"sparse kernels, one of {', '.join(BACKENDS)}")
    # ---- topology evolution (SET) ----------------------------------------------------------------------
    zeta: float = param(0.3, "fraction of each layer's connections removed and regrown per update (paper: 0.3)")
    rule: str = param("set", f"removal rule, one of {', '.join(REMOVAL_RULES)} (paper: set, sign-wise)")
    new_weights: str = param("init", f"weights of regrown connections, one of {', '.join(NEW_WEIGHTS)}")
    update_every: int = param(1, "a topology update every this many units (paper: 1 epoch)")
    update_unit: str = param("epoch", f"unit of update_every and stop_after, one of {', '.join(UNITS)}")
    decay: str = param("cosine", f"how zeta shrinks over training, one of {', '.join(DECAYS)} (paper: constant)")
    stop_after: int | None = param(20, "no topology update at or after this unit count (None: never stop)")
    # ---- which topology method (evosparse.topology, evosparse.prune) ------------------------------------
    strategy: str = param(
        "set",
        "connectivity method: set, rigl, static, snip, neuron (sparse from scratch); "
        "magnitude, imp, gmp, obd, l1 (dense start, pruned to the same per-layer budget)",
    )
    density: float | None = param(None, "overall weight density of the final network; sets epsilon (None: use epsilon)")
    prune_start: int = param(5, "dense-to-sparse and neuron: update_unit count of the first pruning event")
    prune_end: int = param(15, "imp, gmp, neuron: update_unit count of the last pruning event")
    prune_cycles: int = param(3, "imp, neuron: number of pruning events from prune_start to prune_end")
    scope: str = param("layer", "pruning budget: 'layer' (Erdos-Renyi nnz per layer) or 'global' (one ranking)")
    rewind_epoch: int | None = param(None, "imp: survivors return to their weights of this epoch (0: init; none: off)")
    l1: float = param(1e-4, "l1: strength of the proximal L1 step applied after every optimizer step")
    hessian: str = param("gauss_newton", "obd: Hessian diagonal, 'gauss_newton' (exact for ReLU) or 'lecun' (paper)")
    saliency_samples: int = param(1000, "obd, snip: training examples the saliency is computed on")
    neuron_fraction: float = param(0.1, "neuron: fraction of each hidden layer's neurons removed per event")
    # ---- optimisation ----------------------------------------------------------------------------------
    optimizer: str = param("sgd", f"one of {', '.join(OPTIMIZERS)} (paper: sgd)")
    lr: float = param(0.05, "learning rate (paper: 0.01)")
    momentum: float = param(0.9, "SGD momentum (paper: 0.9)")
    nesterov: bool = param(False, "Nesterov momentum (SGD only)")
    weight_decay: float = param(0.0002, "L2 weight decay (paper: 0.0002)")
    epochs: int = param(30, "training epochs (paper, MNIST: 1000)")
    batch_size: int = param(32, "minibatch size (paper: 100)")
    # ---- bookkeeping -----------------------------------------------------------------------------------
    seed: int = param(0, "seed of weights, topology, dropout, data order and rewiring")
    threads: int | None = param(
        None, "CPU threads of torch and the sparse kernels (None: 1 for a small model, else all)"
    )
    out_dir: str | None = param(None, "folder of history, checkpoint, config (None: runs/<dataset>-<model>-s<seed>)")

    def __post_init__(self) -> None:
        # Normalise the containers TOML / JSON / argparse produce, then check every field.
        for name in _OPTIONAL_NUMBERS:  # TOML has no null: these fields write None as "none"
            if isinstance(getattr(self, name), str) and getattr(self, name).strip().lower() == "none":
                object.__setattr__(self, name, None)
        if isinstance(self.hidden, list | tuple):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        for name in ("alpha", "dropout", "epsilon", "zeta", "lr", "momentum", "weight_decay", "l1", "neuron_fraction"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
        for check in _CHECKS:
            check(self)

    # ---- dictionaries ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Field name -> value (``hidden`` as a list), in declaration order."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["hidden"] = list(self.hidden)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a mapping; unknown keys raise ValueError naming the valid keys."""
        check_keys(values, source=source)
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated; unknown names rejected)."""
        check_keys(changes, source="replace()")
        return dataclasses.replace(self, **changes)

    # ---- TOML ------------------------------------------------------------------------------------------
    def to_toml(self) -> str:
        """The config as a flat TOML document.

        TOML has no null: a None folder is left out (its default is None), a None number is written "none".
        """
        lines = ["# evosparse training configuration (evosparse train --config FILE.toml)"]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in _OPTIONAL_NUMBERS:
                value = "none"
            if value is not None:
                lines.append(f"{f.name} = {_toml_value(value)}  # {f.metadata['doc']}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, *, source: str = "TOML config") -> TrainConfig:
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{source} is not valid TOML: {error}") from None
        return cls.from_dict(values, source=source)

    # ---- JSON ------------------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "JSON config") -> TrainConfig:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{source} must hold a JSON object, got {type(values).__name__}")
        return cls.from_dict(values, source=source)

    # ---- files -----------------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """Read a ``.toml`` or ``.json`` file (by suffix; anything else is read as TOML)."""
        return cls(**read_values(path))

    def save(self, path: str | Path) -> Path:
        """Write ``.json`` (by suffix) or TOML."""
        path = Path(path)
        path.write_text(self.to_json() if path.suffix.lower() == ".json" else self.to_toml(), encoding="utf-8")
        return path


def read_values(path: str | Path) -> dict[str, Any]:
    """The keys and values a TOML / JSON config file sets (keys checked, values validated), nothing more.

    Unlike :meth:`TrainConfig.from_file`, fields the file leaves out stay out: the command line merges
    these over the defaults and under its flags.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise FileNotFoundError(f"cannot read config file {path}: {error.strerror or error}") from None
    if path.suffix.lower() == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(values).__name__}")
    else:
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path} is not valid TOML: {error}") from None
    TrainConfig.from_dict(values, source=str(path))  # reject unknown keys and bad values now, naming the file
    return values


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def field_docs() -> dict[str, str]:
    return {f.name: f.metadata["doc"] for f in dataclasses.fields(TrainConfig)}


def check_keys(values: Mapping[str, Any], *, source: str = "config") -> None:
    """Raise ValueError if ``values`` has keys that are not TrainConfig fields."""
    check_unknown_keys(values, field_names(), source=source, list_valid=True)


# ---- validation: one small check per rule, each naming the field, the value and what is allowed ----------


def _choice(name: str):
    options = CHOICES[name]

    def check(config: TrainConfig) -> None:
        value = getattr(config, name)
        if value not in options:
            raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")

    return check


def _integer(name: str, minimum: int, *, optional: bool = False):
    def check(config: TrainConfig) -> None:
        value = getattr(config, name)
        if optional and value is None:
            return
        if not _is_int(value) or value < minimum:
            extra = " or None" if optional else ""
            raise ValueError(f"{name} must be an integer >= {minimum}{extra}, got {value!r}")

    return check


def _real(name: str, low: float, high: float, *, low_open: bool, high_open: bool):
    def check(config: TrainConfig) -> None:
        value = getattr(config, name)
        above = _is_real(value) and (value > low if low_open else value >= low)
        below = _is_real(value) and (value < high if high_open else value <= high)
        if not (above and below):
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise ValueError(f"{name} must be in {interval}, got {value!r}")

    return check


def _positive(name: str):
    def check(config: TrainConfig) -> None:
        value = getattr(config, name)
        if not (_is_real(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")

    return check


def _text(name: str, *, optional: bool):
    def check(config: TrainConfig) -> None:
        value = getattr(config, name)
        if optional and value is None:
            return
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string{' or None' if optional else ''}, got {value!r}")

    return check


def _check_hidden(config: TrainConfig) -> None:
    hidden = config.hidden
    if not isinstance(hidden, tuple) or not hidden or not all(_is_int(h) and h >= 1 for h in hidden):
        shown = list(hidden) if isinstance(hidden, tuple) else hidden
        raise ValueError(f"hidden must be one or more positive integers (e.g. 256,256), got {shown!r}")


def _check_alpha(config: TrainConfig) -> None:
    if not (_is_real(config.alpha) and config.alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {config.alpha!r}")


def _boolean(name: str):
    def check(config: TrainConfig) -> None:
        value = getattr(config, name)
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")

    return check


def _check_nesterov(config: TrainConfig) -> None:
    if config.nesterov and (config.optimizer != "sgd" or config.momentum == 0):
        raise ValueError(
            f"nesterov=True needs optimizer='sgd' and momentum > 0, got optimizer={config.optimizer!r}, "
            f"momentum={config.momentum}"
        )


def _check_schedule(config: TrainConfig) -> None:
    if config.decay == "cosine" and config.stop_after is None:
        raise ValueError("decay='cosine' needs stop_after (the unit count where the rewired fraction reaches 0)")


def _check_density(config: TrainConfig) -> None:
    if config.density is not None and not (_is_real(config.density) and 0 < config.density <= 1):
        raise ValueError(f"density must be in (0, 1] or None, got {config.density!r}")


def _check_pruning(config: TrainConfig) -> None:
    if config.prune_end < config.prune_start:
        raise ValueError(f"prune_end ({config.prune_end}) must be >= prune_start ({config.prune_start})")
    uses_end = config.strategy in ("imp", "gmp", "neuron")
    last = config.prune_end if uses_end else config.prune_start
    if config.strategy in DENSE_TO_SPARSE and config.update_unit == "epoch" and last >= config.epochs:
        field = "prune_end" if uses_end else "prune_start"
        raise ValueError(
            f"{field} ({last}) must be < epochs ({config.epochs}): {config.strategy} must finish pruning before the "
            "last epoch (nothing changes topology after it)"
        )
    spacing = config.prune_end - config.prune_start
    if (
        config.strategy in ("imp", "neuron")
        and config.prune_cycles > 1
        and (spacing == 0 or spacing % (config.prune_cycles - 1))
    ):
        raise ValueError(
            f"prune_cycles ({config.prune_cycles}) events must be evenly spaced from prune_start "
            f"({config.prune_start}) to prune_end ({config.prune_end}): prune_end - prune_start must be a positive "
            "multiple of prune_cycles - 1"
        )
    if config.rewind_epoch is not None and config.rewind_epoch > config.prune_start:
        raise ValueError(
            f"rewind_epoch ({config.rewind_epoch}) must be <= prune_start ({config.prune_start}): the weights "
            "survivors return to must exist before the first pruning event"
        )


_CHECKS = (
    _text("dataset", optional=False),
    _text("data_dir", optional=True),
    _integer("data_seed", 0),
    _boolean("download"),
    _choice("model"),
    _check_hidden,
    _choice("activation"),
    _check_alpha,
    _real("dropout", 0, 1, low_open=False, high_open=True),
    _positive("epsilon"),
    _choice("weight_init"),
    _choice("backend"),
    _real("zeta", 0, 1, low_open=False, high_open=True),
    _choice("rule"),
    _choice("new_weights"),
    _integer("update_every", 1),
    _choice("update_unit"),
    _choice("decay"),
    _integer("stop_after", 1, optional=True),
    _check_schedule,
    _choice("strategy"),
    _check_density,
    _integer("prune_start", 1),
    _integer("prune_end", 1),
    _integer("prune_cycles", 1),
    _choice("scope"),
    _integer("rewind_epoch", 0, optional=True),
    _real("l1", 0, math.inf, low_open=False, high_open=True),
    _choice("hessian"),
    _integer("saliency_samples", 1),
    _real("neuron_fraction", 0, 1, low_open=False, high_open=True),
    _choice("optimizer"),
    _positive("lr"),
    _real("momentum", 0, 1, low_open=False, high_open=True),
    _boolean("nesterov"),
    _check_nesterov,
    _real("weight_decay", 0, math.inf, low_open=False, high_open=True),
    _integer("epochs", 1),
    _check_pruning,
    _integer("batch_size", 1),
    _integer("seed", 0),
    _integer("threads", 1, optional=True),
    _text("out_dir", optional=True),
)
