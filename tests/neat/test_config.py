"""NeatConfig: defaults are the paper's, every bad value names field / value / range, TOML round trip."""

from __future__ import annotations

import dataclasses

import pytest

from evosparse.neat import NeatConfig


def test_defaults_are_the_papers_settings():
    config = NeatConfig()
    assert config.population_size == 150
    assert (config.excess_coefficient, config.disjoint_coefficient, config.weight_coefficient) == (1.0, 1.0, 0.4)
    assert config.compatibility_threshold == 3.0
    assert (config.add_node_rate, config.add_connection_rate) == (0.03, 0.05)
    assert (config.weight_mutate_rate, config.weight_replace_rate) == (0.8, 0.1)
    assert (config.crossover_rate, config.interspecies_mating_rate, config.disable_inherited_rate) == (
        0.75,
        0.001,
        0.75,
    )
    assert config.max_stagnation == 15 and config.elitism_min_species_size == 6


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_inputs": 0}, "n_inputs must be an integer >= 1, got 0"),
        ({"population_size": 2.5}, "population_size must be an integer >= 2, got 2.5"),
        ({"add_node_rate": 1.5}, "add_node_rate must be in [0, 1], got 1.5"),
        ({"weight_coefficient": -1.0}, "weight_coefficient must be a finite number >= 0, got -1.0"),
        ({"compatibility_threshold": 0.0}, "compatibility_threshold must be a finite number > 0, got 0.0"),
        ({"survival_threshold": 0.0}, "survival_threshold must be in (0, 1], got 0.0"),
        ({"activation": "softmax"}, "activation must be one of sigmoid, tanh"),
        ({"activation_options": ("tanh", "cube")}, "activation_options must be a non-empty list of"),
        ({"feed_forward": "yes"}, "feed_forward must be true or false, got 'yes'"),
        ({"fitness_threshold": float("nan")}, "fitness_threshold must be a finite number or none, got nan"),
        ({"weight_perturbation": "cauchy"}, "weight_perturbation must be one of uniform, gaussian; got 'cauchy'"),
    ],
)
def test_every_bad_value_is_named(changes, message):
    with pytest.raises(ValueError) as error:
        NeatConfig(**changes)
    assert message in str(error.value)


def test_unknown_keys_are_rejected_with_a_suggestion():
    with pytest.raises(ValueError, match=r"'populaton_size' \(did you mean 'population_size'\?\)"):
        NeatConfig.from_dict({"populaton_size": 10})


def test_toml_round_trip(tmp_path):
    config = NeatConfig(n_inputs=3, population_size=20, activation_options=("sigmoid", "tanh"), fitness_threshold=3.5)
    path = config.save(tmp_path / "neat.toml")
    assert NeatConfig.from_file(path) == config
    assert NeatConfig.from_toml(NeatConfig().to_toml()) == NeatConfig()  # fitness_threshold None is left out


def test_integers_in_toml_become_floats_and_a_neat_table_is_accepted():
    config = NeatConfig.from_toml("[neat]\ncompatibility_threshold = 4\nweight_max = 5\n")
    assert config.compatibility_threshold == 4.0 and isinstance(config.compatibility_threshold, float)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        NeatConfig().population_size = 3


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.toml"):
        NeatConfig.from_file(tmp_path / "absent.toml")


@pytest.mark.parametrize("task", ["xor", "double-pole", "double-pole-nv"])
def test_example_configs_are_the_task_presets(task):
    from pathlib import Path

    from evosparse.neat.tasks import preset

    path = Path(__file__).resolve().parents[2] / "examples" / "neat" / f"{task.replace('-', '_')}.toml"
    assert NeatConfig.from_file(path) == preset(task)
