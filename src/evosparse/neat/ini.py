"""Read a neat-python configuration file (INI) into a :class:`NeatConfig`, for users who migrate.

Keys map by meaning (``pop_size`` -> ``population_size``, ``conn_add_prob`` -> ``add_connection_rate``,
...). Differences worth knowing:

* neat-python draws weight and bias changes per gene; evosparse (as the paper) decides per genome whether
  its weights change, then changes each gene. The rates carry over unchanged; perturbations become
  gaussian with neat-python's ``*_mutate_power``.
* neat-python's ``sigmoid`` is 1/(1+exp(-5x)); evosparse's is the paper's 1/(1+exp(-4.9x)).
* neat-python makes every child by crossover (its two parents may be the same genome), keeps ``elitism``
  champions of every species, never mates across species and has no population-level stagnation rule:
  ``crossover_rate`` 1.0, ``elitism_min_species_size`` 1, ``interspecies_mating_rate`` 0,
  ``population_stagnation`` 0.
* Keys with no counterpart are accepted only at their neutral values (no hidden nodes at the start, no
  deletion mutations, ``sum`` aggregation, response 1): anything else raises ValueError naming the key.
  Unknown keys raise ValueError, as neat-python does.
"""

from __future__ import annotations

import configparser
from typing import Any

from evosparse.neat.config import ACTIVATIONS, NeatConfig


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _activation(text: str) -> str:
    name = text.strip().lower()
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not available; evosparse has {', '.join(ACTIVATIONS)}")
    return name


def _activations(text: str) -> tuple[str, ...]:
    return tuple(_activation(name) for name in text.split())


def _initial_connection(text: str) -> str:
    name = text.strip().lower()
    if name in ("full", "full_direct", "full_nodirect"):
        return "full"
    if name == "unconnected":
        return "none"
    raise ValueError(f"initial_connection {name!r} is not supported; use full or unconnected")


# What neat-python does where it has no key: every child from crossover, elitism in every species, no
# mating across species, no population-level stagnation rule, gaussian perturbations.
_NEAT_PYTHON_BEHAVIOUR: dict[str, Any] = {
    "crossover_rate": 1.0,
    "elitism_min_species_size": 1,
    "interspecies_mating_rate": 0.0,
    "population_stagnation": 0,
    "weight_perturbation": "gaussian",
}
# (section, key) -> (NeatConfig field(s), parse)
_MAPPED: dict[tuple[str, str], tuple[tuple[str, ...], Any]] = {
    ("NEAT", "pop_size"): (("population_size",), int),
    ("NEAT", "fitness_criterion"): (("fitness_criterion",), str.strip),
    ("NEAT", "fitness_threshold"): (("fitness_threshold",), float),
    ("DefaultGenome", "num_inputs"): (("n_inputs",), int),
    ("DefaultGenome", "num_outputs"): (("n_outputs",), int),
    ("DefaultGenome", "feed_forward"): (("feed_forward",), _bool),
    ("DefaultGenome", "initial_connection"): (("initial_connection",), _initial_connection),
    ("DefaultGenome", "compatibility_disjoint_coefficient"): (("excess_coefficient", "disjoint_coefficient"), float),
    ("DefaultGenome", "compatibility_weight_coefficient"): (("weight_coefficient",), float),
    ("DefaultGenome", "conn_add_prob"): (("add_connection_rate",), float),
    ("DefaultGenome", "node_add_prob"): (("add_node_rate",), float),
    ("DefaultGenome", "activation_default"): (("activation",), _activation),
    ("DefaultGenome", "activation_options"): (("activation_options",), _activations),
    ("DefaultGenome", "activation_mutate_rate"): (("activation_mutate_rate",), float),
    ("DefaultGenome", "weight_init_stdev"): (("weight_init_stdev",), float),
    ("DefaultGenome", "weight_mutate_rate"): (("weight_mutate_rate",), float),
    ("DefaultGenome", "weight_mutate_power"): (("weight_perturb_power",), float),
    ("DefaultGenome", "weight_replace_rate"): (("weight_replace_rate",), float),
    ("DefaultGenome", "weight_max_value"): (("weight_max",), float),
    ("DefaultGenome", "bias_mutate_rate"): (("bias_mutate_rate",), float),
    ("DefaultGenome", "enabled_mutate_rate"): (("enable_toggle_rate",), float),
    ("DefaultSpeciesSet", "compatibility_threshold"): (("compatibility_threshold",), float),
    ("DefaultStagnation", "max_stagnation"): (("max_stagnation",), int),
    ("DefaultStagnation", "species_elitism"): (("species_elitism",), int),
    ("DefaultReproduction", "elitism"): (("elitism",), int),
    ("DefaultReproduction", "survival_threshold"): (("survival_threshold",), float),
}
# Keys read but without effect here, each allowed only at the values listed (None: any value).
_NEUTRAL: dict[tuple[str, str], tuple[str, ...] | None] = {
    ("NEAT", "reset_on_extinction"): None,  # species_elitism keeps the best species alive instead
    ("NEAT", "no_fitness_termination"): None,  # handled below
    ("NEAT", "seed"): None,  # evosparse takes the seed from Population(seed=...) / --seed
    ("DefaultGenome", "num_hidden"): ("0",),
    ("DefaultGenome", "conn_delete_prob"): ("0", "0.0"),
    ("DefaultGenome", "node_delete_prob"): ("0", "0.0"),
    ("DefaultGenome", "single_structural_mutation"): None,  # evosparse: always one (the paper's scheme)
    ("DefaultGenome", "structural_mutation_surer"): None,
    ("DefaultGenome", "aggregation_default"): ("sum",),
    ("DefaultGenome", "aggregation_options"): ("sum",),
    ("DefaultGenome", "aggregation_mutate_rate"): None,
    ("DefaultGenome", "bias_init_mean"): ("0", "0.0"),
    ("DefaultGenome", "bias_init_stdev"): None,  # biases start like weights, N(0, weight_init_stdev^2)
    ("DefaultGenome", "bias_init_type"): None,
    ("DefaultGenome", "bias_max_value"): None,
    ("DefaultGenome", "bias_min_value"): None,
    ("DefaultGenome", "bias_mutate_power"): None,  # biases move like weights (weight_mutate_power)
    ("DefaultGenome", "bias_replace_rate"): None,
    ("DefaultGenome", "weight_init_mean"): ("0", "0.0"),
    ("DefaultGenome", "weight_init_type"): ("gaussian", "normal", "gauss"),
    ("DefaultGenome", "weight_min_value"): None,  # symmetric: -weight_max
    ("DefaultGenome", "enabled_default"): ("true", "True"),
    ("DefaultGenome", "enabled_rate_to_true_add"): None,
    ("DefaultGenome", "enabled_rate_to_false_add"): None,
    ("DefaultGenome", "response_init_mean"): ("1", "1.0"),
    ("DefaultGenome", "response_init_stdev"): ("0", "0.0"),
    ("DefaultGenome", "response_max_value"): None,
    ("DefaultGenome", "response_min_value"): None,
    ("DefaultGenome", "response_mutate_power"): None,
    ("DefaultGenome", "response_mutate_rate"): ("0", "0.0"),
    ("DefaultGenome", "response_replace_rate"): ("0", "0.0"),
    ("DefaultGenome", "response_init_type"): None,
    ("DefaultStagnation", "species_fitness_func"): ("max",),
    ("DefaultReproduction", "min_species_size"): None,
}


def config_from_ini(text: str, *, source: str = "INI config") -> NeatConfig:
    """A :class:`NeatConfig` from the text of a neat-python configuration file."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=source)
    except configparser.Error as error:
        raise ValueError(f"{source} is not a valid INI file: {error}") from None
    if not parser.has_section("NEAT"):
        raise ValueError(f"{source} has no [NEAT] section; is it a neat-python configuration file?")
    values: dict[str, Any] = dict(_NEAT_PYTHON_BEHAVIOUR)
    for section in parser.sections():
        for key, raw in parser.items(section):
            where = f"{source} [{section}] {key}"
            if (section, key) in _MAPPED:
                fields, parse = _MAPPED[(section, key)]
                try:
                    value = parse(raw)
                except ValueError as error:
                    raise ValueError(f"{where}: {error}") from None
                values.update({name: value for name in fields})
            elif (section, key) in _NEUTRAL:
                allowed = _NEUTRAL[(section, key)]
                if allowed is not None and raw.strip() not in allowed:
                    raise ValueError(
                        f"{where} = {raw.strip()} has no evosparse counterpart; allowed: {', '.join(allowed)}"
                    )
            else:
                raise ValueError(f"unknown key in {source}: [{section}] {key}")
    if parser.has_option("NEAT", "no_fitness_termination") and _bool(parser.get("NEAT", "no_fitness_termination")):
        values["fitness_threshold"] = None
    if "activation" in values and "activation_options" not in values:
        values["activation_options"] = (values["activation"],)
    return NeatConfig(**values)
