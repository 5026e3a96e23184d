"""Checkpoints: the whole population (genomes, species, innovation history, random generator state)
pickled and written atomically: a temporary file in the same folder, fsync, then ``os.replace``.

A checkpoint is taken between generations, after speciation and before the next evaluation, so a
resumed run repeats the original run exactly (given a deterministic fitness function).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from evosparse.neat.reporting import GenerationStats, Reporter

if TYPE_CHECKING:
    from evosparse.neat.population import Population

FORMAT = "evosparse-neat-checkpoint-1"


def save_checkpoint(population: Population, path: str | Path) -> Path:
    path = Path(path)
    payload = pickle.dumps({"format": FORMAT, "population": population}, protocol=pickle.HIGHEST_PROTOCOL)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)  # atomic: readers see the old checkpoint or the new one
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def load_checkpoint(path: str | Path) -> Population:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    with path.open("rb") as file:
        try:
            payload = pickle.load(file)
        except Exception as error:  # truncated or foreign file
            raise ValueError(f"{path} is not an evosparse NEAT checkpoint ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not an evosparse NEAT checkpoint (expected format {FORMAT})")
    return payload["population"]


class Checkpointer(Reporter):
    """Saves the population every ``every`` generations (after reproduction) to ``path``."""

    def __init__(self, path: str | Path, *, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.path, self.every = Path(path), every

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        if population.solution is None and population.generation % self.every == 0:
            save_checkpoint(population, self.path)
