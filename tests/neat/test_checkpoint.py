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


# ---- the data-only format --------------------------------------------------------------------------------
def full_state(population: Population):
    """Everything a checkpoint must restore, comparable with ==."""
    species = [
        (s.key, s.created, s.members, s.best_fitness, s.last_improved, s.representative.key)
        for s in population.species.species.values()
    ]
    tracker = population.tracker
    return (
        snapshot(population),
        [g.fitness for g in population.genomes.values()],
        species,
        population.species.threshold,
        population.species.next_key,
        (tracker.next_innovation, tracker.next_node_id, tracker._connections, tracker._splits),
        population.rng.bit_generator.state,
        (population.generation, population.next_key, population.record),
        population.best_genome,
        population.best_genome.fitness,
        [s.as_row() for s in population.history],
    )


def test_checkpoint_restores_every_part_of_a_grown_population(tmp_path, grown_config, grow):
    population = grow(grown_config, seed=5, generations=6)
    assert any(g.n_hidden(grown_config.n_outputs) for g in population.genomes.values())  # structure grew
    restored = load_checkpoint(save_checkpoint(population, tmp_path / "c.npz"))
    assert full_state(restored) == full_state(population)
    for species in restored.species.species.values():  # representatives are this generation's genomes
        assert species.representative is restored.genomes[species.representative.key]


def test_winner_round_trip(tmp_path, grown_config, grow):
    from evosparse.neat.checkpoint import load_winner, save_winner

    population = grow(grown_config, seed=2, generations=3)
    genome, config = load_winner(save_winner(population.best_genome, grown_config, tmp_path / "w.npz"))
    assert genome == population.best_genome and genome.fitness == population.best_genome.fitness
    assert config == grown_config


@pytest.mark.parametrize("loader", ["checkpoint", "winner"])
def test_pickle_files_are_refused_and_never_run(tmp_path, loader):
    from hostile import pickle_bytes

    from evosparse.neat.checkpoint import load_winner

    load = load_checkpoint if loader == "checkpoint" else load_winner
    marker = tmp_path / "pwned"
    (tmp_path / "old.pkl").write_bytes(pickle_bytes(marker))
    with pytest.raises(ValueError, match="old.pkl holds pickled data, which evosparse never loads"):
        load(tmp_path / "old.pkl")
    assert not marker.exists()


def test_damaged_checkpoints_are_refused_in_one_line(tmp_path):
    from hostile import flipped, positions

    from evosparse.io import FileFormatError

    good = save_checkpoint(Population(preset("xor").replace(population_size=20), seed=0), tmp_path / "c.npz")
    data = good.read_bytes()
    for length in positions(len(data), 25)[:-1]:
        (tmp_path / "cut.npz").write_bytes(data[:length])
        with pytest.raises(FileFormatError, match="cut.npz"):
            load_checkpoint(tmp_path / "cut.npz")
    refused = 0
    for position in positions(len(data), 60):
        (tmp_path / "flip.npz").write_bytes(flipped(data, position))
        try:
            restored = load_checkpoint(tmp_path / "flip.npz")
        except FileFormatError as error:
            assert "\n" not in str(error)
            refused += 1
        else:  # an unused zip header field: the population is exactly the saved one
            assert snapshot(restored) == snapshot(load_checkpoint(good))
    assert refused > 30


def test_consistent_but_impossible_checkpoint_is_refused(tmp_path):
    from evosparse.io import FileFormatError, save_arrays
    from evosparse.neat.checkpoint import FORMAT, VERSION, population_state

    state = population_state(Population(preset("xor").replace(population_size=10), seed=0))
    state["genomes"]["node_ptr"] = state["genomes"]["node_ptr"][:-3]  # a valid checksum over wrong data
    save_arrays(tmp_path / "c.npz", {"population": state, "extra": {}}, format=FORMAT, version=VERSION)
    with pytest.raises(FileFormatError, match="not a usable evosparse NEAT checkpoint"):
        load_checkpoint(tmp_path / "c.npz")
    state = population_state(Population(preset("xor").replace(population_size=10), seed=0))
    state["rng"] = {"bit_generator": "os.system", "state": {}}
    save_arrays(tmp_path / "c.npz", {"population": state, "extra": {}}, format=FORMAT, version=VERSION)
    with pytest.raises(FileFormatError, match="unknown random generator 'os.system'"):
        load_checkpoint(tmp_path / "c.npz")


@pytest.mark.parametrize(
    ("every", "seconds", "saved"),
    [(None, 0.0, [1, 2, 3, 4, 5, 6]), (2, None, [2, 4, 6]), (None, 3600.0, []), (4, 3600.0, [4])],
)
def test_checkpointer_by_count_or_by_time(tmp_path, every, seconds, saved, monkeypatch):
    from evosparse.neat import checkpoint as module

    taken = []
    monkeypatch.setattr(module, "save_checkpoint", lambda population, path, extra: taken.append(population.generation))
    task = make_task("xor")
    population = Population(preset("xor").replace(population_size=30), seed=0)
    population.add_reporter(Checkpointer(tmp_path / "c.npz", every=every, seconds=seconds))
    population.run(task, 6)
    assert taken == saved


def test_checkpointer_needs_a_rule():
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        Checkpointer("c.npz", every=0)
    with pytest.raises(ValueError, match="give every"):
        Checkpointer("c.npz", every=None, seconds=None)
