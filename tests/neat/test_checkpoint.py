"""Checkpoints are atomic and a resumed run reproduces the uninterrupted one exactly."""

from __future__ import annotations

import os
import pickle

import pytest

from evosparse.neat import Checkpointer, Population, load_checkpoint, save_checkpoint
from evosparse.neat.tasks import make_task, preset


def snapshot(population: Population):
    genomes = [
        (k, g.innovations.tolist(), g.weights.tolist(), g.enabled.tolist(), g.biases.tolist(), g.node_ids.tolist())
        for k, g in population.genomes.items()
    ]
    history = [(s.generation, s.best_fitness, s.mean_fitness, s.n_species) for s in population.history]
    return genomes, history, population.tracker.next_innovation, population.evaluations


@pytest.mark.parametrize("task_name", ["xor", "double-pole-nv"])
def test_resume_reproduces_the_run(tmp_path, task_name):
    task = make_task(task_name)
    config = preset(task_name, task).replace(population_size=60)
    straight = Population(config, seed=11)
    straight.run(task, 8)
    first = Population(config, seed=11, reporters=[Checkpointer(tmp_path / "run.pkl", every=1)])
    first.run(task, 4)
    resumed = Population.restore(tmp_path / "run.pkl")
    resumed.run(task, 4)
    assert snapshot(resumed) == snapshot(straight)


def test_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    population = Population(preset("xor"), seed=0)
    path = save_checkpoint(population, tmp_path / "run.pkl")
    before = path.read_bytes()
    population.generation = 42

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(population, path)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pkl"]  # and no temporary file is left


def test_foreign_or_missing_files_are_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pkl"):
        load_checkpoint(tmp_path / "absent.pkl")
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(ValueError, match="not an evosparse NEAT checkpoint"):
        load_checkpoint(tmp_path / "other.pkl")
    (tmp_path / "broken.pkl").write_bytes(b"\x80\x05garbage")
    with pytest.raises(ValueError, match="not an evosparse NEAT checkpoint"):
        load_checkpoint(tmp_path / "broken.pkl")
