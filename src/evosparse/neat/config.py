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

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from evosparse._config import (
    Config,
    Rule,
    at_least,
    between,
    is_real,
    non_negative,
    one_of,
    param,
    positive,
    read_text,
    subset_of,
)

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity", "sin", "gauss", "abs", "clamped")
FITNESS_CRITERIA = ("max", "mean", "min")
INITIAL_CONNECTIONS = ("full", "none")
WEIGHT_PERTURBATIONS = ("uniform", "gaussian")
RATE = between(0, 1)  # a probability


@dataclass(frozen=True)
class NeatConfig(Config):
    """Settings of one NEAT run: network shape, population, speciation, reproduction, mutation.

    A TOML file may hold the settings at its top level or in a ``[neat]`` table; :meth:`from_file`
    also reads neat-python's INI files.
    """

    toml_table: ClassVar[str] = "neat"

    # ---- network -----------------------------------------------------------------------------------------
    n_inputs: int = param(2, "input nodes (ids -1 .. -n_inputs)", rule=at_least(1))
    n_outputs: int = param(1, "output nodes (ids 0 .. n_outputs-1)", rule=at_least(1))
    feed_forward: bool = param(True, "True: no cycles are ever added; False: recurrent connections allowed")
    initial_connection: str = param(
        "full", "'full': every input to every output (paper); 'none': no connections", rule=one_of(INITIAL_CONNECTIONS)
    )
    activation: str = param(
        "sigmoid", "activation of new nodes; sigmoid is the paper's 1/(1+exp(-4.9x))", rule=one_of(ACTIVATIONS)
    )
    activation_options: tuple[str, ...] = param(
        ("sigmoid",), "activations a node may change to", rule=subset_of(ACTIVATIONS)
    )
    activation_mutate_rate: float = param(
        0.0, "per node, chance of a new activation from activation_options", rule=RATE
    )
    # ---- population --------------------------------------------------------------------------------------
    population_size: int = param(150, "genomes per generation (paper: 150; 1000 for DPNV)", rule=at_least(2))
    fitness_criterion: str = param(
        "max", "statistic of the fitnesses compared with fitness_threshold", rule=one_of(FITNESS_CRITERIA)
    )
    fitness_threshold: float | None = param(
        None,
        "stop once the criterion reaches this (None: only n_generations)",
        rule=Rule(is_real, "a finite number or none"),
    )
    # ---- speciation (paper eq. 1: delta = c1 E / N + c2 D / N + c3 W) ---------------------------------------
    excess_coefficient: float = param(1.0, "c1, weight of excess genes (paper: 1.0)", rule=non_negative)
    disjoint_coefficient: float = param(1.0, "c2, weight of disjoint genes (paper: 1.0)", rule=non_negative)
    weight_coefficient: float = param(
        0.4, "c3, weight of the mean weight difference (paper: 0.4; 3.0 for DPNV)", rule=non_negative
    )
    compatibility_threshold: float = param(
        3.0, "delta_t, largest distance to a species' representative (paper 3.0)", rule=positive
    )
    small_genome_size: int = param(
        20, "N = 1 when both genomes have fewer genes than this (paper: 20)", rule=at_least(0)
    )
    target_species: int = param(
        0, "adapt delta_t each generation toward this many species (0: fixed delta_t)", rule=at_least(0)
    )
    threshold_step: float = param(0.3, "change of delta_t per generation when target_species > 0", rule=non_negative)
    threshold_min: float = param(0.3, "delta_t never drops below this", rule=non_negative)
    # ---- reproduction ------------------------------------------------------------------------------------
    survival_threshold: float = param(
        0.2, "fraction of each species (best first) allowed to be parents", rule=between(0, 1, low_open=True)
    )
    elitism: int = param(1, "champions of each large-enough species copied unchanged (paper: 1)", rule=at_least(0))
    elitism_min_species_size: int = param(
        6, "elitism applies to species with at least this many members (paper: 6)", rule=at_least(1)
    )
    crossover_rate: float = param(0.75, "fraction of offspring made by crossover (paper: 0.75)", rule=RATE)
    interspecies_mating_rate: float = param(
        0.001, "chance a crossover takes its second parent from another species", rule=RATE
    )
    max_stagnation: int = param(
        15, "species whose best fitness has not improved this many generations die", rule=at_least(1)
    )
    species_elitism: int = param(
        2, "the best this many species are never removed for stagnation (paper: 0)", rule=at_least(0)
    )
    population_stagnation: int = param(
        0, "no improvement this long: only the best 2 species breed (paper 20; 0: off)", rule=at_least(0)
    )
    # ---- mutation ----------------------------------------------------------------------------------------
    add_node_rate: float = param(
        0.03, "per offspring, chance to split a connection with a new node (paper 0.03)", rule=RATE
    )
    add_connection_rate: float = param(
        0.05, "per offspring, chance to add a connection (paper 0.05; 0.3 DPNV)", rule=RATE
    )
    add_connection_tries: int = param(
        20, "random node pairs tried to find a place for a new connection", rule=at_least(1)
    )
    weight_mutate_rate: float = param(
        0.8, "per offspring, chance its weights and biases are mutated (paper 0.8)", rule=RATE
    )
    weight_replace_rate: float = param(
        0.1, "per gene of a mutated genome, chance of a new random value (paper 0.1)", rule=RATE
    )
    weight_perturbation: str = param(
        "uniform",
        "perturbation noise: 'uniform' in [-power, power] (paper) or gaussian",
        rule=one_of(WEIGHT_PERTURBATIONS),
    )
    weight_perturb_power: float = param(1.0, "size of a weight or bias perturbation", rule=non_negative)
    weight_init_stdev: float = param(1.0, "new weights and biases ~ N(0, stdev^2)", rule=non_negative)
    weight_max: float = param(8.0, "weights and biases are clipped to [-weight_max, weight_max]", rule=positive)
    bias_mutate_rate: float = param(
        0.8, "per offspring, chance its node biases are mutated like the weights", rule=RATE
    )
    enable_toggle_rate: float = param(0.0, "per offspring, chance to flip one connection's enabled flag", rule=RATE)
    disable_inherited_rate: float = param(
        0.75, "a gene disabled in either parent stays disabled (paper: 0.75)", rule=RATE
    )

    @classmethod
    def from_file(cls, path: str | Path) -> NeatConfig:
        """Read a TOML file, or a neat-python INI file (``.ini`` / ``.cfg`` or a ``[NEAT]`` section)."""
        path = Path(path)
        text = read_text(path)
        if path.suffix.lower() in (".ini", ".cfg") or text.lstrip().startswith("[NEAT]"):
            from evosparse.neat.ini import config_from_ini

            return config_from_ini(text, source=str(path))
        return super().from_file(path)

    def save(self, path: str | Path) -> Path:
        """Write TOML (whatever the suffix: NEAT configs are TOML files)."""
        path = Path(path)
        path.write_text(self.to_toml(), encoding="utf-8")
        return path
