"""Parallel evaluation: split a generation into chunks and evaluate them in worker processes (spawn
context: forking a process that already runs thread pools can deadlock), or on a Ray cluster.

Both evaluators are fitness functions themselves: ``population.run(ParallelEvaluator(task, 2), n)``.
The wrapped ``fitness_function(genomes, config)`` must be picklable (a module-level function or a task
object); each worker returns the fitnesses, which are written back in order, so results do not depend
on the number of workers.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import numpy as np

from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome


def evaluate_chunk(fitness_function: Callable, genomes: list[tuple[int, Genome]], config: NeatConfig) -> list[float]:
    """Run ``fitness_function`` on one chunk and return the fitnesses (the worker's job)."""
    fitness_function(genomes, config)
    return [genome.fitness for _, genome in genomes]


def _chunks(genomes: list, n_chunks: int) -> list[list]:
    """``genomes`` cut into at most ``n_chunks`` contiguous, non-empty pieces."""
    bounds = np.linspace(0, len(genomes), min(n_chunks, len(genomes)) + 1).astype(int)
    return [genomes[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]


class ParallelEvaluator:
    """Evaluate a generation over ``n_workers`` processes (a spawn-context pool kept open between calls)."""

    def __init__(self, fitness_function: Callable, n_workers: int = 2, *, chunks_per_worker: int = 1) -> None:
        if n_workers < 1:
            raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        self.fitness_function = fitness_function
        self.n_workers = n_workers
        self.chunks_per_worker = chunks_per_worker
        self._pool = multiprocessing.get_context("spawn").Pool(n_workers)

    def __call__(self, genomes: list[tuple[int, Genome]], config: NeatConfig) -> None:
        chunks = _chunks(genomes, self.n_workers * self.chunks_per_worker)
        results = self._pool.starmap(evaluate_chunk, [(self.fitness_function, chunk, config) for chunk in chunks])
        for chunk, fitnesses in zip(chunks, results):
            for (_, genome), fitness in zip(chunk, fitnesses):
                genome.fitness = fitness

    def solution(self, genomes: list[Genome], config: NeatConfig):
        return self.fitness_function.solution(genomes, config)

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> ParallelEvaluator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RayEvaluator:
    """Evaluate a generation as Ray tasks (``pip install "evosparse[ray]"``), one per chunk.

    ``address`` None starts a local Ray of ``num_cpus`` CPUs (default: all cores), shut down by
    :meth:`close`; an address (``"auto"``, ``"ray://host:10001"``) connects to a running cluster. A process
    that already joined a Ray cluster evaluates on it and leaves it running. The fitness function goes to
    the object store once; each generation sends only the genomes of each chunk.
    """

    def __init__(
        self,
        fitness_function: Callable,
        n_chunks: int = 4,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
    ) -> None:
        from evosparse._ray import ray_session

        if n_chunks < 1:
            raise ValueError(f"n_chunks must be an integer >= 1, got {n_chunks!r}")
        self._session = ray_session(address, num_cpus=num_cpus, what="RayEvaluator")
        self._ray = self._session.__enter__()  # raises the ImportError naming the extra when Ray is absent
        self._remote = self._ray.remote(evaluate_chunk)
        self._function = self._ray.put(fitness_function)
        self.fitness_function, self.n_chunks = fitness_function, n_chunks

    def __call__(self, genomes: list[tuple[int, Genome]], config: NeatConfig) -> None:
        chunks = _chunks(genomes, self.n_chunks)
        results = self._ray.get([self._remote.remote(self._function, chunk, config) for chunk in chunks])
        for chunk, fitnesses in zip(chunks, results):
            for (_, genome), fitness in zip(chunk, fitnesses):
                genome.fitness = fitness

    def solution(self, genomes: list[Genome], config: NeatConfig):
        return self.fitness_function.solution(genomes, config)

    def close(self) -> None:
        """Shut down the local Ray this evaluator started (a cluster it joined keeps running)."""
        if self._session is not None:
            session, self._session = self._session, None
            session.__exit__(None, None, None)

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
