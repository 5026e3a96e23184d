"""A neat-python configuration file loads into a NeatConfig (and neat-python reads the same file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evosparse.neat import NeatConfig, config_from_ini

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "neat"


def test_neat_python_xor_config_loads():
    config = NeatConfig.from_file(EXAMPLES / "xor.ini")
    assert (config.n_inputs, config.n_outputs, config.population_size) == (2, 1, 150)
    assert config.fitness_threshold == 15.9
    assert (config.add_node_rate, config.add_connection_rate) == (0.2, 0.5)
    assert (config.excess_coefficient, config.disjoint_coefficient, config.weight_coefficient) == (1.0, 1.0, 0.5)
    assert (config.max_stagnation, config.species_elitism, config.elitism) == (20, 2, 2)
    assert config.weight_perturbation == "gaussian" and config.weight_perturb_power == 0.5
    assert config.crossover_rate == 1.0 and config.interspecies_mating_rate == 0.0


def test_neat_python_reads_the_same_file():
    neat = pytest.importorskip("neat")
    if not hasattr(neat, "Config"):  # tests/neat itself (a namespace package on the test path), not neat-python
        pytest.skip("neat-python is not installed (pip install 'evosparse[bench]')")
    config = neat.Config(
        neat.DefaultGenome,
        neat.DefaultReproduction,
        neat.DefaultSpeciesSet,
        neat.DefaultStagnation,
        str(EXAMPLES / "xor.ini"),
    )
    assert config.pop_size == NeatConfig.from_file(EXAMPLES / "xor.ini").population_size


def ini(**genome_overrides) -> str:
    lines = (EXAMPLES / "xor.ini").read_text().splitlines()
    out = []
    for line in lines:
        key = line.split("=")[0].strip()
        out.append(f"{key} = {genome_overrides.pop(key)}" if key in genome_overrides else line)
    text = "\n".join(out)
    for key, value in genome_overrides.items():  # keys the file lacks go to [DefaultGenome]
        text = text.replace("[DefaultGenome]", f"[DefaultGenome]\n{key} = {value}")
    return text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_hidden": "2"}, r"\[DefaultGenome\] num_hidden = 2 has no evosparse counterpart; allowed: 0"),
        ({"node_delete_prob": "0.1"}, "node_delete_prob = 0.1 has no evosparse counterpart"),
        ({"aggregation_default": "product"}, "aggregation_default = product has no evosparse counterpart"),
        ({"activation_default": "cube"}, "activation 'cube' is not available"),
        ({"initial_connection": "partial_direct 0.5"}, "initial_connection 'partial_direct 0.5' is not supported"),
        ({"feed_forward": "maybe"}, "expected true or false, got 'maybe'"),
        ({"conn_add_prob": "1.5"}, r"add_connection_rate must be in \[0, 1\], got 1.5"),
        ({"surprise_key": "1"}, r"unknown key in .*\[DefaultGenome\] surprise_key"),
    ],
)
def test_bad_neat_python_configs_name_the_key(changes, message):
    with pytest.raises(ValueError, match=message):
        config_from_ini(ini(**changes), source="test.ini")


def test_no_fitness_termination_and_missing_section():
    config = config_from_ini(ini().replace("no_fitness_termination = False", "no_fitness_termination = True"))
    assert config.fitness_threshold is None
    with pytest.raises(ValueError, match=r"has no \[NEAT\] section"):
        config_from_ini("[DefaultGenome]\nnum_inputs = 2\n", source="bad.ini")
