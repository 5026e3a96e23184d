"""Checkpoints and winner files: data only (JSON + numpy ``.npz``), never pickle.

A checkpoint holds everything a population needs to continue exactly as if it had never stopped:

* the config, the seed and the state of the one random generator;
* the genomes (their genes back to back, as in ``batch.Flat``, with pointers per genome, and fitness);
* the species (key, birth, members, stagnation record, representative), the compatibility threshold;
* the innovation tracker's counters, the population's stagnation record, the best genome, the solution;
* the history (one :class:`GenerationStats` row per generation so far).

It is taken between generations, after speciation and before the next evaluation, and written with
:func:`evosparse.io.save_arrays`: atomically, with a format tag and a SHA-256 checksum that
:func:`load_checkpoint` verifies. Opening a file runs no code from it: a foreign, truncated, corrupt or
tampered file raises :class:`evosparse.io.FileFormatError` (a ValueError) naming it; a pickle file (the
format of evosparse < 0.2) is recognised and refused, never unpickled.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evosparse.io import FileFormatError, dump_arrays, load_arrays, save_arrays
from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome
from evosparse.neat.reporting import GenerationStats, Reporter

if TYPE_CHECKING:
    from evosparse.neat.population import Population

FORMAT, VERSION = "evosparse-neat-checkpoint", 2
WINNER_FORMAT, WINNER_VERSION = "evosparse-neat-winner", 1
WHAT, WINNER_WHAT = "evosparse NEAT checkpoint", "evosparse NEAT winner file"
GENE_ARRAYS = ("node_ids", "biases", "activations", "innovations", "sources", "targets", "weights", "enabled")
# Bit generators a checkpoint may name (numpy's default is PCG64); anything else is refused.
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


# ---- genomes <-> arrays --------------------------------------------------------------------------------------
def genomes_state(genomes: Sequence[Genome]) -> dict[str, Any]:
    """Genomes as arrays: keys, fitness (NaN: not evaluated), gene arrays back to back, pointers."""
    node_ptr = np.zeros(len(genomes) + 1, dtype=np.int64)
    connection_ptr = np.zeros(len(genomes) + 1, dtype=np.int64)
    np.cumsum([len(g.node_ids) for g in genomes], out=node_ptr[1:])
    np.cumsum([len(g.innovations) for g in genomes], out=connection_ptr[1:])
    state: dict[str, Any] = {
        "keys": np.array([g.key for g in genomes], dtype=np.int64),
        "fitness": np.array([np.nan if g.fitness is None else g.fitness for g in genomes], dtype=np.float64),
        "node_ptr": node_ptr,
        "connection_ptr": connection_ptr,
    }
    for name in GENE_ARRAYS:
        parts = [getattr(g, name) for g in genomes]
        state[name] = np.concatenate(parts) if parts else np.zeros(0, dtype=_dtype(name))
    return state


def genomes_from_state(state: Mapping[str, Any]) -> list[Genome]:
    """The genomes :func:`genomes_state` recorded (each with its own copy of its genes)."""
    node_ptr, connection_ptr = state["node_ptr"], state["connection_ptr"]
    n = len(state["keys"])
    if len(node_ptr) != n + 1 or len(connection_ptr) != n + 1 or len(state["fitness"]) != n:
        raise ValueError("genome pointers do not match the number of genomes")
    if node_ptr[-1] != len(state["node_ids"]) or connection_ptr[-1] != len(state["innovations"]):
        raise ValueError("genome pointers do not match the gene arrays")
    genomes = []
    for index in range(n):
        nodes = slice(int(node_ptr[index]), int(node_ptr[index + 1]))
        connections = slice(int(connection_ptr[index]), int(connection_ptr[index + 1]))
        genes = {
            name: np.array(state[name][nodes if name in ("node_ids", "biases", "activations") else connections])
            for name in GENE_ARRAYS
        }
        genome = Genome(int(state["keys"][index]), **genes)
        fitness = float(state["fitness"][index])
        genome.fitness = None if np.isnan(fitness) else fitness
        genomes.append(genome)
    return genomes


def _dtype(name: str) -> type:
    return {"biases": np.float64, "weights": np.float64, "activations": np.int8, "enabled": np.bool_}.get(
        name, np.int64
    )


# ---- population <-> data -------------------------------------------------------------------------------------
def population_state(population: Population) -> dict[str, Any]:
    """Everything :func:`population_from_state` needs, as nested data with numpy arrays."""
    tracker, species_set = population.tracker, population.species
    species = list(species_set.species.values())
    return {
        "config": population.config.to_dict(),
        "seed": population.seed,
        "rng": population.rng.bit_generator.state,
        "generation": population.generation,
        "evaluations": population.evaluations,
        "next_key": population.next_key,
        "genomes": genomes_state(list(population.genomes.values())),
        "tracker": {
            "next_innovation": tracker.next_innovation,
            "next_node_id": tracker.next_node_id,
            "connections": np.array([[*pair, n] for pair, n in tracker._connections.items()], dtype=np.int64),
            "splits": np.array([[key, *numbers] for key, numbers in tracker._splits.items()], dtype=np.int64),
        },
        "species": {
            "threshold": species_set.threshold,
            "next_key": species_set.next_key,
            "keys": [s.key for s in species],
            "created": [s.created for s in species],
            "members": [np.array(s.members, dtype=np.int64) for s in species],
            "best_fitness": [float(s.best_fitness) for s in species],
            "last_improved": [s.last_improved for s in species],
            "representatives": genomes_state([s.representative for s in species]),
        },
        "record": {
            "best_fitness": float(population.record.best_fitness),
            "last_improved": population.record.last_improved,
        },
        "best_genome": None if population.best_genome is None else genomes_state([population.best_genome]),
        "solution": None if population.solution is None else genomes_state([population.solution]),
        "history": [stats.as_row() for stats in population.history],
    }


def population_from_state(state: Mapping[str, Any]) -> Population:
    """The population :func:`population_state` recorded, without reporters."""
    from evosparse.neat import batch
    from evosparse.neat.innovation import InnovationTracker
    from evosparse.neat.population import Population
    from evosparse.neat.reproduction import PopulationRecord
    from evosparse.neat.species import Species, SpeciesSet

    population = Population.__new__(Population)  # not __init__: it would draw a new generation 0
    population.config = NeatConfig.from_dict(state["config"], source="the config in the checkpoint")
    population.seed = int(state["seed"])
    population.rng = _generator(state["rng"])
    population.generation = int(state["generation"])
    population.evaluations = int(state["evaluations"])
    population.next_key = int(state["next_key"])
    genomes = genomes_from_state(state["genomes"])
    population.genomes = {genome.key: genome for genome in genomes}
    population._flat = batch.flatten(genomes)

    saved = state["tracker"]
    tracker = InnovationTracker(next_innovation=int(saved["next_innovation"]), next_node_id=int(saved["next_node_id"]))
    tracker._connections = {(int(s), int(t)): int(n) for s, t, n in np.asarray(saved["connections"]).reshape(-1, 3)}
    tracker._splits = {int(k): (int(a), int(b), int(c)) for k, a, b, c in np.asarray(saved["splits"]).reshape(-1, 4)}
    population.tracker = tracker

    saved = state["species"]
    species_set = SpeciesSet(threshold=float(saved["threshold"]), next_key=int(saved["next_key"]))
    representatives = genomes_from_state(saved["representatives"])
    for i, key in enumerate(saved["keys"]):
        representative = representatives[i]
        same = population.genomes.get(representative.key)
        if same is not None and same == representative:  # the representative is a member of this generation
            representative = same
        species_set.species[int(key)] = Species(
            key=int(key),
            created=int(saved["created"][i]),
            representative=representative,
            members=[int(m) for m in saved["members"][i]],
            best_fitness=float(saved["best_fitness"][i]),
            last_improved=int(saved["last_improved"][i]),
        )
    population.species = species_set
    record = state["record"]
    population.record = PopulationRecord(float(record["best_fitness"]), int(record["last_improved"]))
    population.best_genome = None if state["best_genome"] is None else genomes_from_state(state["best_genome"])[0]
    population.solution = None if state["solution"] is None else genomes_from_state(state["solution"])[0]
    population.history = [GenerationStats(**row) for row in state["history"]]
    population.reporters = []
    return population


def _generator(state: Any) -> np.random.Generator:
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in BIT_GENERATORS:
        raise ValueError(f"unknown random generator {name!r}")
    generator = np.random.Generator(getattr(np.random, name)())
    generator.bit_generator.state = state
    return generator


# ---- files ---------------------------------------------------------------------------------------------------
def checkpoint_bytes(population: Population, *, extra: Mapping[str, Any] | None = None) -> bytes:
    """The bytes of a checkpoint file (for writing it together with other files)."""
    return dump_arrays(
        {"population": population_state(population), "extra": dict(extra or {})}, format=FORMAT, version=VERSION
    )


def save_checkpoint(population: Population, path: str | Path, *, extra: Mapping[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (a crash leaves the previous one intact); ``extra``: JSON data kept beside."""
    data = {"population": population_state(population), "extra": dict(extra or {})}
    return save_arrays(path, data, format=FORMAT, version=VERSION)


def read_checkpoint(path: str | Path) -> tuple[Population, dict[str, Any]]:
    """The population a checkpoint holds and the ``extra`` data saved with it."""
    path = Path(path)
    data = load_arrays(path, format=FORMAT, version=VERSION, what=WHAT)
    try:
        return population_from_state(data["population"]), dict(data.get("extra") or {})
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise FileFormatError(f"{path} is not a usable {WHAT} ({type(error).__name__}: {error})") from None


def load_checkpoint(path: str | Path) -> Population:
    """The population a checkpoint holds (see :func:`read_checkpoint`)."""
    return read_checkpoint(path)[0]


def winner_bytes(genome: Genome, config: NeatConfig) -> bytes:
    """The bytes of a winner file: one genome with its fitness and the run's config."""
    return dump_arrays(
        {"genome": genomes_state([genome]), "config": config.to_dict()}, format=WINNER_FORMAT, version=WINNER_VERSION
    )


def save_winner(genome: Genome, config: NeatConfig, path: str | Path) -> Path:
    """Write a winner file atomically."""
    data = {"genome": genomes_state([genome]), "config": config.to_dict()}
    return save_arrays(path, data, format=WINNER_FORMAT, version=WINNER_VERSION)


def load_winner(path: str | Path) -> tuple[Genome, NeatConfig]:
    """The genome and config of a winner file (:func:`save_winner`)."""
    path = Path(path)
    data = load_arrays(path, format=WINNER_FORMAT, version=WINNER_VERSION, what=WINNER_WHAT)
    try:
        (genome,) = genomes_from_state(data["genome"])
        config = NeatConfig.from_dict(data["config"], source=f"the config in {path}")
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise FileFormatError(f"{path} is not a usable {WINNER_WHAT} ({type(error).__name__}: {error})") from None
    return genome, config


# ---- the reporter --------------------------------------------------------------------------------------------
class Checkpointer(Reporter):
    """Saves the population to ``path`` after a generation, every ``every`` generations and/or whenever
    ``seconds`` have passed since the last save (a checkpoint of a large population costs time: the
    default is at most one a minute).

    Args:
        path: the checkpoint file, replaced atomically.
        every: save every this many generations (None: only by time).
        seconds: save when this many seconds have passed since the last save (None: only by count).
        extra: JSON data stored with every checkpoint (the run folder's run id).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        every: int | None = None,
        seconds: float | None = 60.0,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise ValueError(f"every must be an integer >= 1 or None, got {every!r}")
        if seconds is not None and not seconds >= 0:
            raise ValueError(f"seconds must be >= 0 or None, got {seconds!r}")
        if every is None and seconds is None:
            raise ValueError("give every (generations) or seconds (time) between checkpoints, or both")
        self.path, self.every, self.seconds, self.extra = Path(path), every, seconds, dict(extra or {})
        self.last_save = time.monotonic()

    def due(self, population: Population) -> bool:
        by_count = self.every is not None and population.generation % self.every == 0
        by_time = self.seconds is not None and time.monotonic() - self.last_save >= self.seconds
        return by_count or by_time

    def end_generation(self, population: Population, stats: GenerationStats) -> None:
        if population.solution is None and self.due(population):
            self.save(population)

    def save(self, population: Population) -> Path:
        path = save_checkpoint(population, self.path, extra=self.extra)
        self.last_save = time.monotonic()
        return path
