"""``NeatConfig``: every setting of a NEAT run, one frozen, validated dataclass that round-trips to TOML.

The defaults are the parameters of the NEAT paper's experiments (Section 4 of Stanley & Miikkulainen
2002): population 150, c1 = c2 = 1.0, c3 = 0.4, delta_t = 3.0, add-node 0.03, add-connection 0.05,
80% of genomes get their weights mutated (each weight perturbed, or with 10% chance replaced), 75% of
genes disabled in either parent stay disabled, 25% of offspring from mutation alone, interspecies mating
0.001, stagnation after 15 generations, the champion of every species with more than five members
copied unchanged, and the steepened sigmoid 1 / (1 + exp(-4.9 x)).

Paper: Stanley & Miikkulainen, "Evolving Neural Networks through Augmenting Topologies",
Evolutionary Computation 10(2), 2002, Section 4 (parameter settings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evosparse._config import check_unknown_keys, param
from evosparse._config import is_int as _is_int
from evosparse._config import is_real as _is_real
from evosparse._config import toml_value as _toml_value

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 with the tomli backport
    import tomli as tomllib

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity", "sin", "gauss", "abs", "clamped")
FITNESS_CRITERIA = ("max", "mean", "min")
INITIAL_CONNECTIONS = ("full", "none")
WEIGHT_PERTURBATIONS = ("uniform", "gaussian")


@dataclass(frozen=True)
class NeatConfig:
    """Settings of one NEAT run: network shape, population, speciation, reproduction, mutation."""

    # ---- network -----------------------------------------------------------------------------------------
    n_inputs: int = param(2, "input nodes (ids -1 .. -n_inputs)")
    n_outputs: int = param(1, "output nodes (ids 0 .. n_outputs-1)")
    feed_forward: bool = param(True, "True: no cycles are ever added; False: recurrent connections allowed")
    initial_connection: str = param("full", "'full': every input to every output (paper); 'none': no connections")
    activation: str = param("sigmoid", "activation of new nodes; sigmoid is the paper's 1/(1+exp(-4.9x))")
    activation_options: tuple[str, ...] = param(("sigmoid",), "activations a node may change to")
    activation_mutate_rate: float = param(0.0, "per node, chance of a new activation from activation_options")
    # ---- population --------------------------------------------------------------------------------------
    population_size: int = param(150, "genomes per generation (paper: 150; 1000 for DPNV)")
    fitness_criterion: str = param("max", "statistic of the fitnesses compared with fitness_threshold")
    fitness_threshold: float | None = param(None, "stop once the criterion reaches this (None: only n_generations)")
    # ---- speciation (paper eq. 1: delta = c1 E / N + c2 D / N + c3 W) ---------------------------------------
    excess_coefficient: float = param(1.0, "c1, weight of excess genes (paper: 1.0)")
    disjoint_coefficient: float = param(1.0, "c2, weight of disjoint genes (paper: 1.0)")
    weight_coefficient: float = param(0.4, "c3, weight of the mean weight difference (paper: 0.4; 3.0 for DPNV)")
    compatibility_threshold: float = param(3.0, "delta_t, largest distance to a species' representative (paper 3.0)")
    small_genome_size: int = param(20, "N = 1 when both genomes have fewer genes than this (paper: 20)")
    target_species: int = param(0, "adapt delta_t each generation toward this many species (0: fixed delta_t)")
    threshold_step: float = param(0.3, "change of delta_t per generation when target_species > 0")
    threshold_min: float = param(0.3, "delta_t never drops below this")
    # ---- reproduction ------------------------------------------------------------------------------------
    survival_threshold: float = param(0.2, "fraction of each species (best first) allowed to be parents")
    elitism: int = param(1, "champions of each large-enough species copied unchanged (paper: 1)")
    elitism_min_species_size: int = param(6, "elitism applies to species with at least this many members (paper: 6)")
    crossover_rate: float = param(0.75, "fraction of offspring made by crossover (paper: 0.75)")
    interspecies_mating_rate: float = param(0.001, "chance a crossover takes its second parent from another species")
    max_stagnation: int = param(15, "species whose best fitness has not improved this many generations die")
    species_elitism: int = param(2, "the best this many species are never removed for stagnation (paper: 0)")
    population_stagnation: int = param(0, "no improvement this long: only the best 2 species breed (paper 20; 0: off)")
    # ---- mutation ----------------------------------------------------------------------------------------
    add_node_rate: float = param(0.03, "per offspring, chance to split a connection with a new node (paper 0.03)")
    add_connection_rate: float = param(0.05, "per offspring, chance to add a connection (paper 0.05; 0.3 DPNV)")
    add_connection_tries: int = param(20, "random node pairs tried to find a place for a new connection")
    weight_mutate_rate: float = param(0.8, "per offspring, chance its weights and biases are mutated (paper 0.8)")
    weight_replace_rate: float = param(0.1, "per gene of a mutated genome, chance of a new random value (paper 0.1)")
    weight_perturbation: str = param("uniform", "perturbation noise: 'uniform' in [-power, power] (paper) or gaussian")
    weight_perturb_power: float = param(1.0, "size of a weight or bias perturbation")
    weight_init_stdev: float = param(1.0, "new weights and biases ~ N(0, stdev^2)")
    weight_max: float = param(8.0, "weights and biases are clipped to [-weight_max, weight_max]")
    bias_mutate_rate: float = param(0.8, "per offspring, chance its node biases are mutated like the weights")
    enable_toggle_rate: float = param(0.0, "per offspring, chance to flip one connection's enabled flag")
    disable_inherited_rate: float = param(0.75, "a gene disabled in either parent stays disabled (paper: 0.75)")

    def __post_init__(self) -> None:
        if isinstance(self.activation_options, list | tuple):
            object.__setattr__(self, "activation_options", tuple(self.activation_options))
        if isinstance(self.fitness_threshold, str) and self.fitness_threshold.strip().lower() == "none":
            object.__setattr__(self, "fitness_threshold", None)
        for f in dataclasses.fields(self):  # TOML writes 1.0 as 1.0, but a hand-written 1 is an int
            value = getattr(self, f.name)
            if f.type in ("float", "float | None") and _is_int(value):
                object.__setattr__(self, f.name, float(value))
        _validate(self)

    # ---- dictionaries and files ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["activation_options"] = list(self.activation_options)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> NeatConfig:
        """Build from a mapping; unknown keys raise ValueError naming the closest valid key."""
        check_keys(values, source=source)
        return cls(**values)

    def replace(self, **changes: Any) -> NeatConfig:
        check_keys(changes, source="replace()")
        return dataclasses.replace(self, **changes)

    def to_toml(self) -> str:
        lines = ["# evosparse NEAT configuration (evosparse.neat.NeatConfig)"]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                lines.append(f"# {f.name}: {f.metadata['doc']} (none)")
                continue
            lines.append(f"# {f.name}: {f.metadata['doc']}")
            lines.append(f"{f.name} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, *, source: str = "TOML config") -> NeatConfig:
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{source} is not valid TOML: {error}") from None
        section = values.get("neat", values)  # accept a [neat] table or top-level keys
        return cls.from_dict(section, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> NeatConfig:
        """Read a TOML file, or a neat-python INI file (``.ini`` / ``.cfg`` or a ``[NEAT]`` section)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise FileNotFoundError(f"cannot read config file {path}: {error.strerror or error}") from None
        if path.suffix.lower() in (".ini", ".cfg") or text.lstrip().startswith("[NEAT]"):
            from evosparse.neat.ini import config_from_ini

            return config_from_ini(text, source=str(path))
        return cls.from_toml(text, source=str(path))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_toml(), encoding="utf-8")
        return path


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(NeatConfig)]


def check_keys(values: Mapping[str, Any], *, source: str = "config") -> None:
    """Raise ValueError if ``values`` has keys that are not NeatConfig fields."""
    check_unknown_keys(values, field_names(), source=source, list_valid=False)


# ---- validation: a table of (field, kind, low, high); every error names the field, value and range ---------


_INTEGERS = {
    "n_inputs": 1,
    "n_outputs": 1,
    "population_size": 2,
    "small_genome_size": 0,
    "target_species": 0,
    "elitism": 0,
    "elitism_min_species_size": 1,
    "max_stagnation": 1,
    "species_elitism": 0,
    "population_stagnation": 0,
    "add_connection_tries": 1,
}
_RATES = (  # probabilities, in [0, 1]
    "activation_mutate_rate",
    "crossover_rate",
    "interspecies_mating_rate",
    "add_node_rate",
    "add_connection_rate",
    "weight_mutate_rate",
    "weight_replace_rate",
    "bias_mutate_rate",
    "enable_toggle_rate",
    "disable_inherited_rate",
)
_NON_NEGATIVE = (
    "excess_coefficient",
    "disjoint_coefficient",
    "weight_coefficient",
    "weight_perturb_power",
    "weight_init_stdev",
    "threshold_step",
    "threshold_min",
)
_POSITIVE = ("compatibility_threshold", "weight_max")
_CHOICES = {
    "activation": ACTIVATIONS,
    "fitness_criterion": FITNESS_CRITERIA,
    "initial_connection": INITIAL_CONNECTIONS,
    "weight_perturbation": WEIGHT_PERTURBATIONS,
}


def _validate(config: NeatConfig) -> None:
    for name, minimum in _INTEGERS.items():
        value = getattr(config, name)
        if not _is_int(value) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    for name in _RATES:
        value = getattr(config, name)
        if not (_is_real(value) and 0 <= value <= 1):
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    for name in _NON_NEGATIVE:
        value = getattr(config, name)
        if not (_is_real(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    for name in _POSITIVE:
        value = getattr(config, name)
        if not (_is_real(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not (_is_real(config.survival_threshold) and 0 < config.survival_threshold <= 1):
        raise ValueError(f"survival_threshold must be in (0, 1], got {config.survival_threshold!r}")
    for name, options in _CHOICES.items():
        value = getattr(config, name)
        if value not in options:
            raise ValueError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    if not config.activation_options or any(a not in ACTIVATIONS for a in config.activation_options):
        raise ValueError(
            f"activation_options must be a non-empty list of {', '.join(ACTIVATIONS)}; "
            f"got {config.activation_options!r}"
        )
    if not isinstance(config.feed_forward, bool):
        raise ValueError(f"feed_forward must be true or false, got {config.feed_forward!r}")
    if config.fitness_threshold is not None and not _is_real(config.fitness_threshold):
        raise ValueError(f"fitness_threshold must be a finite number or none, got {config.fitness_threshold!r}")
