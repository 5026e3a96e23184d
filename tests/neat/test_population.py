"""The generational loop: reproducible from the seed, population size kept, species partition it, XOR solved."""

from __future__ import annotations

import numpy as np
import pytest

from evosparse.neat import NeatConfig, Population
from evosparse.neat.reproduction import offspring_counts
from evosparse.neat.tasks import make_task, preset


def fingerprint(population: Population) -> list:
    return [
        (k, g.innovations.tolist(), g.weights.tolist(), g.enabled.tolist(), g.biases.tolist())
        for k, g in population.genomes.items()
    ]


def test_same_seed_same_run_other_seed_other_run():
    task = make_task("xor")
    config = preset("xor")
    runs = []
    for seed in (5, 5, 6):
        population = Population(config, seed=seed)
        population.run(task, 6)
        runs.append((fingerprint(population), [s.best_fitness for s in population.history]))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_every_generation_has_the_population_size_and_species_partition_it(grow, grown_config):
    population = Population(grown_config, seed=2)
    task = lambda genomes, config: [setattr(g, "fitness", float(g.n_enabled)) for _, g in genomes]  # noqa: E731
    for _ in range(8):
        population.step(task)
        assert len(population.genomes) == grown_config.population_size
        members = sorted(k for s in population.species.species.values() for k in s.members)
        assert members == sorted(population.genomes)


@pytest.mark.parametrize("seed", [0, 1])
def test_xor_is_solved(seed):
    task = make_task("xor")
    population = Population(preset("xor"), seed=seed)
    population.run(task, 200, solved=task.solution)
    assert population.solution is not None
    outputs = task.outputs([population.solution], population.config)[0]
    np.testing.assert_array_equal(outputs >= 0.5, [False, True, True, False])
    assert population.solution.n_hidden(1) >= 1  # XOR needs a hidden node


def test_fitness_threshold_stops_the_run():
    task = make_task("xor")
    population = Population(preset("xor").replace(fitness_threshold=9.5), seed=0)
    population.run(task, 100)
    assert population.solution is not None and population.solution.fitness >= 9.5
    assert all(stats.best_fitness < 9.5 for stats in population.history[:-1])


def test_offspring_counts_are_proportional_to_mean_fitness_and_sum_to_the_population():
    np.testing.assert_array_equal(offspring_counts(np.array([3.0, 1.0]), 100), [75, 25])
    np.testing.assert_array_equal(offspring_counts(np.array([0.0, 0.0, 0.0]), 10), [4, 3, 3])
    counts = offspring_counts(np.array([-1.0, 1.0, 2.0]), 150)  # shifted: shares 0, 2, 3
    np.testing.assert_array_equal(counts, [0, 60, 90])


def test_stagnant_species_stop_breeding():
    from evosparse.neat.reproduction import PopulationRecord, breeding_species
    from evosparse.neat.species import Species

    species = [Species(key=k, created=0, representative=None, last_improved=0, best_fitness=5.0) for k in (1, 2, 3)]
    config = NeatConfig(max_stagnation=15, species_elitism=1)
    breeders = breeding_species(species, np.array([4.0, 3.0, 5.0]), 20, config, PopulationRecord())
    assert breeders.tolist() == [2]  # none improved for 20 generations; the best (index 2) is protected


def test_paper_stagnation_rules():
    """species_elitism = 0: stagnant species stop breeding, the best included (paper, Section 4.1); if the
    whole population has not improved for population_stagnation generations, only the two best species
    breed and get a fresh max_stagnation (paper, Section 3.3)."""
    from evosparse.neat.reproduction import PopulationRecord, breeding_species
    from evosparse.neat.species import Species

    def make():
        return [
            Species(key=k, created=0, representative=None, last_improved=improved, best_fitness=5.0)
            for k, improved in ((1, 0), (2, 10), (3, 0))
        ]

    config = NeatConfig(max_stagnation=15, species_elitism=0, population_stagnation=20)
    fitness = np.array([4.0, 3.0, 5.0])
    record = PopulationRecord(best_fitness=5.0, last_improved=10)
    assert breeding_species(make(), fitness, 20, config, record).tolist() == [1]  # only species 2 is young
    # no species young and the population not yet stagnant: the best species breeds rather than none
    record = PopulationRecord(best_fitness=5.0, last_improved=10)
    assert breeding_species(make(), fitness, 27, config, record).tolist() == [2]
    # population stagnant for 20 generations: the top two breed and their stagnation counts restart
    species, record = make(), PopulationRecord(best_fitness=5.0, last_improved=10)
    assert breeding_species(species, fitness, 30, config, record).tolist() == [2, 0]
    assert (record.last_improved, species[2].last_improved, species[0].last_improved) == (30, 30, 30)
    assert species[1].last_improved == 10
    assert breeding_species(species, fitness, 31, config, record).tolist() == [2, 0]


def test_bad_fitness_is_reported():
    population = Population(NeatConfig(population_size=4), seed=0)
    with pytest.raises(ValueError, match="left genome.fitness unset"):
        population.run(lambda genomes, config: None, 1)
    with pytest.raises(ValueError, match="finite number"):
        population.run(lambda genomes, config: [setattr(g, "fitness", float("nan")) for _, g in genomes], 1)
    with pytest.raises(ValueError, match="nothing can stop the run"):
        population.run(lambda genomes, config: None, None)
