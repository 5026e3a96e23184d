"""Reporters: hooks the population calls each generation (console progress line, CSV file, checkpoints).

A reporter overrides any of ``start_generation``, ``end_generation`` and ``found_solution``;
``GenerationStats`` is the one record of a generation that every reporter and plot reads.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

if TYPE_CHECKING:
    from evosparse.neat.batch import Flat
    from evosparse.neat.genome import Genome
    from evosparse.neat.population import Population


@dataclass
class GenerationStats:
    """Numbers of one generation, taken after evaluation."""

    generation: int
    evaluations: int
    best_fitness: float
    mean_fitness: float
    stdev_fitness: float
    n_species: int
    species_sizes: str  # "12 40 98", biggest first
    threshold: float
    best_hidden: int
    best_connections: int
    mean_hidden: float
    mean_connections: float
    seconds: float = 0.0

    @classmethod
    def collect(
        cls, population: Population, genomes: list[Genome], fitnesses: np.ndarray, flat: Flat
    ) -> GenerationStats:
        """The numbers of ``genomes`` (whose genes ``flat`` holds, in order) after evaluation."""
        hidden = np.diff(flat.node_ptr) - population.config.n_outputs
        cumulative = np.concatenate([[0], np.cumsum(flat.enabled)])
        enabled = cumulative[flat.connection_ptr[1:]] - cumulative[flat.connection_ptr[:-1]]
        best = int(np.argmax(fitnesses))
        sizes = sorted((len(s.members) for s in population.species.species.values()), reverse=True)
        return cls(
            generation=population.generation,
            evaluations=population.evaluations,
            best_fitness=float(fitnesses[best]),
            mean_fitness=float(fitnesses.mean()),
            stdev_fitness=float(fitnesses.std()),
            n_species=len(sizes),
            species_sizes=" ".join(map(str, sizes)),
            threshold=float(population.species.threshold),
            best_hidden=int(hidden[best]),
            best_connections=int(enabled[best]),
            mean_hidden=float(hidden.mean()),
            mean_connections=float(enabled.mean()),
        )

    def as_row(self) -> dict:
        return dataclasses.asdict(self)


class Reporter:
    """Base class: every hook does nothing."""

    def start_generation(self, population: Population) -> None:
        pass

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        pass

    def found_solution(self, population: Population, genome: Genome) -> None:
        pass


class ConsoleReporter(Reporter):
    """One progress line per generation, and a line when a solution is found."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        self._print(
            f"gen {stats.generation:4d}  evals {stats.evaluations:7d}  best {stats.best_fitness:10.4f}  "
            f"mean {stats.mean_fitness:10.4f}  species {stats.n_species:3d} (delta_t {stats.threshold:.2f})  "
            f"best net {stats.best_hidden} hidden / {stats.best_connections} conn  {1000 * stats.seconds:7.1f} ms"
        )

    def found_solution(self, population: Population, genome: Genome) -> None:
        hidden, connections = genome.size(population.config.n_outputs)
        self._print(
            f"solved in generation {population.generation} after {population.evaluations} evaluations: "
            f"{hidden} hidden nodes, {connections} enabled connections, fitness {genome.fitness:.4f}"
        )


class CsvReporter(Reporter):
    """Appends one row of :class:`GenerationStats` per generation to a CSV file (header on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        row = stats.as_row()
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)


HISTORY_COLUMNS = ("generation", "best_fitness", "mean_fitness", "stdev_fitness", "n_species")


def read_history(path: str | Path) -> list[dict]:
    """The rows a :class:`CsvReporter` wrote, numbers as floats.

    Raises:
        ValueError: one line naming the file and the problem (not UTF-8 text, a column a plot needs
            missing, a value that is not a number, no rows).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a NEAT history.csv (not UTF-8 text)") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as error:
        raise ValueError(f"{path} is not a NEAT history.csv ({error})") from None
    missing = [name for name in HISTORY_COLUMNS if name not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(
            f"{path} is not a NEAT history.csv: it has no {', '.join(repr(m) for m in missing)} column "
            f"(columns: {', '.join(reader.fieldnames or []) or 'none'})"
        )
    if not rows:
        raise ValueError(f"{path} holds no generations yet")
    history = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        converted = {}
        for key, value in row.items():
            if key == "species_sizes" or key is None:
                converted[key] = value
                continue
            try:
                converted[key] = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{path}, line {number}: {key} = {value!r} is not a number") from None
        converted.pop(None, None)  # cells beyond the header
        history.append(converted)
    return history
