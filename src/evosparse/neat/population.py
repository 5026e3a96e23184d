"""``Population``: the NEAT generational loop, with neat-python's API.

    population = Population(config, seed=0)
    winner = population.run(fitness_function, n_generations=100)

Each generation (as in neat-python's ``Population``):

1. Evaluate: ``fitness_function(genomes, config)`` sets ``genome.fitness`` for every ``(key, genome)``.
2. Stop if solved: the ``solved`` callback returns a genome, or the fitness criterion reaches
   ``config.fitness_threshold``.
3. Reproduce: stagnation, fitness sharing, elitism, selection, crossover, mutation (``reproduction.py``).
4. Speciate the new generation by compatibility distance (``species.py``).
5. Go to 1.

All randomness comes from one ``numpy.random.Generator`` seeded by ``seed``; a checkpoint stores it, so
a resumed run continues exactly as the uninterrupted one would.

Paper: Stanley & Miikkulainen 2002, Section 3.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from evosparse.neat import batch
from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome, initial_genome
from evosparse.neat.innovation import InnovationTracker
from evosparse.neat.reporting import GenerationStats, Reporter
from evosparse.neat.reproduction import PopulationRecord, reproduce
from evosparse.neat.species import SpeciesSet

FitnessFunction = Callable[[list[tuple[int, Genome]], NeatConfig], object]
SolvedFunction = Callable[[list[Genome], NeatConfig], Genome | None]
_CRITERIA = {"max": np.max, "mean": np.mean, "min": np.min}


class Population:
    """A NEAT population: genomes, species, innovation history and the seeded random generator."""

    def __init__(self, config: NeatConfig, *, seed: int = 0, reporters: Iterable[Reporter] = ()) -> None:
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.tracker = InnovationTracker(next_node_id=config.n_outputs)
        self.genomes = {
            key: initial_genome(key, config, self.tracker, self.rng) for key in range(config.population_size)
        }
        self.next_key = config.population_size
        self.species = SpeciesSet(threshold=config.compatibility_threshold)
        self._flat = batch.flatten(list(self.genomes.values()))  # the genes of self.genomes, back to back
        self.species.speciate(self.genomes, 0, config, self.rng, flat=self._flat)
        self.generation = 0
        self.evaluations = 0
        self.record = PopulationRecord()
        self.best_genome: Genome | None = None
        self.solution: Genome | None = None
        self.history: list[GenerationStats] = []
        self.reporters: list[Reporter] = list(reporters)

    def add_reporter(self, reporter: Reporter) -> None:
        self.reporters.append(reporter)

    # ---- the loop ----------------------------------------------------------------------------------------
    def run(
        self,
        fitness_function: FitnessFunction,
        n_generations: int | None = None,
        *,
        solved: SolvedFunction | None = None,
    ) -> Genome:
        """Evolve for at most ``n_generations`` (None: until solved); return the best genome seen."""
        if n_generations is None and solved is None and self.config.fitness_threshold is None:
            raise ValueError(
                "n_generations is None but nothing can stop the run: give n_generations, solved= "
                "or config.fitness_threshold"
            )
        done = 0
        while self.solution is None and (n_generations is None or done < n_generations):
            self.step(fitness_function, solved=solved)
            done += 1
        if self.best_genome is None:
            raise ValueError("n_generations must be >= 1 to evaluate anything")
        return self.best_genome

    def step(self, fitness_function: FitnessFunction, *, solved: SolvedFunction | None = None) -> GenerationStats:
        """One generation: evaluate, maybe stop, reproduce, speciate."""
        started = time.perf_counter()
        for reporter in self.reporters:
            reporter.start_generation(self)
        genomes = list(self.genomes.values())
        fitness_function(list(self.genomes.items()), self.config)  # 1. evaluate
        self.evaluations += len(genomes)
        fitnesses = self._checked_fitnesses(genomes)
        champion = genomes[int(np.argmax(fitnesses))]
        if self.best_genome is None or champion.fitness > self.best_genome.fitness:
            self.best_genome = _evaluated_copy(champion)
        winner = solved(genomes, self.config) if solved is not None else None  # 2. stop if solved
        threshold = self.config.fitness_threshold
        if winner is None and threshold is not None:
            if _CRITERIA[self.config.fitness_criterion](fitnesses) >= threshold:
                winner = champion
        stats = GenerationStats.collect(self, genomes, fitnesses, self._flat)
        if winner is not None:
            self.solution = _evaluated_copy(winner)
        else:
            self.genomes, self.next_key, self._flat = reproduce(
                self.genomes,
                self.species,
                self.generation,
                self.config,
                self.tracker,
                self.rng,
                self.record,
                self.next_key,
                flat=self._flat,
            )  # 3.
            self.generation += 1
            self.species.speciate(self.genomes, self.generation, self.config, self.rng, flat=self._flat)  # 4.
        stats.seconds = time.perf_counter() - started
        self.history.append(stats)
        for reporter in self.reporters:
            reporter.end_generation(self, stats)
        if winner is not None:
            for reporter in self.reporters:
                reporter.found_solution(self, self.solution)
        return stats

    def _checked_fitnesses(self, genomes: Sequence[Genome]) -> np.ndarray:
        missing = [g.key for g in genomes if g.fitness is None]
        if missing:
            raise ValueError(f"the fitness function left genome.fitness unset for genome(s) {missing[:5]}")
        fitnesses = np.array([g.fitness for g in genomes], dtype=np.float64)
        if not np.all(np.isfinite(fitnesses)):
            bad = [g.key for g in genomes if not math.isfinite(g.fitness)]
            raise ValueError(f"fitness must be a finite number; genome(s) {bad[:5]} got nan or inf")
        return fitnesses

    # ---- checkpoints -------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write an atomic checkpoint (everything but the reporters)."""
        from evosparse.neat.checkpoint import save_checkpoint

        return save_checkpoint(self, path)

    @classmethod
    def restore(cls, path: str | Path, *, reporters: Iterable[Reporter] = ()) -> Population:
        """A population continued from ``path``; running it gives the same results as the original run."""
        from evosparse.neat.checkpoint import load_checkpoint

        population = load_checkpoint(path)
        population.reporters = list(reporters)
        return population


def _evaluated_copy(genome: Genome) -> Genome:
    copy = genome.copy()
    copy.fitness = genome.fitness
    return copy
