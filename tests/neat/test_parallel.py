"""Parallel evaluation (processes, Ray) gives the serial results; Ray, when absent, fails with a clear message."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from evosparse.neat import ParallelEvaluator, Population, RayEvaluator
from evosparse.neat.parallel import _chunks
from evosparse.neat.tasks import make_task, preset


def test_chunks_cover_everything_in_order():
    items = list(range(10))
    assert _chunks(items, 3) == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert _chunks(items[:2], 5) == [[0], [1]]
    assert _chunks([], 2) == []


def test_process_pool_gives_the_serial_fitnesses():
    task = make_task("double-pole")
    config = preset("double-pole", task).replace(population_size=40)
    serial, parallel = Population(config, seed=3), Population(config, seed=3)
    with ParallelEvaluator(task, 2) as evaluate:
        for _ in range(2):
            serial.step(task)
            parallel.step(evaluate)
    assert [s.best_fitness for s in serial.history] == [s.best_fitness for s in parallel.history]
    assert np.array_equal([g.fitness for g in serial.genomes.values()], [g.fitness for g in parallel.genomes.values()])


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="Ray is installed")
def test_ray_missing_is_a_clear_error():
    with pytest.raises(ImportError, match="RayEvaluator needs Ray: pip install"):
        RayEvaluator(make_task("xor"))


def test_ray_gives_the_serial_fitnesses(ray_cluster):
    task = make_task("double-pole")
    config = preset("double-pole", task).replace(population_size=40)
    serial, on_ray = Population(config, seed=3), Population(config, seed=3)
    with RayEvaluator(task, 3) as evaluate:
        for _ in range(2):
            serial.step(task)
            on_ray.step(evaluate)
    assert ray_cluster.is_initialized()  # the evaluator used the running cluster and left it to its owner
    assert [s.best_fitness for s in serial.history] == [s.best_fitness for s in on_ray.history]
    assert np.array_equal([g.fitness for g in serial.genomes.values()], [g.fitness for g in on_ray.genomes.values()])
    with pytest.raises(ValueError, match="n_chunks must be an integer >= 1, got 0"):
        RayEvaluator(task, 0)


def test_without_ray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where Ray is not installed
    with pytest.raises(ImportError, match=r"RayEvaluator needs Ray: pip install 'evosparse\[ray\]' \(Ray is not"):
        RayEvaluator(make_task("xor"))
