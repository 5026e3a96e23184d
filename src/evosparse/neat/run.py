"""A whole NEAT run, as ``evosparse neat run`` does it: folder, population, evolution, files; or its resume.

:func:`run_neat`:

1. **Folder** (with ``out_dir``): :class:`evosparse.io.RunFolder` of kind ``neat`` decides whether to
   start, refuse, resume or overwrite, and holds the folder's lock for the whole run. The manifest
   records the task, seed, episodes, generations and the NeatConfig.
2. **Population**: a new one from the config and seed, or the one in ``checkpoint.npz`` (whose run id
   must be the manifest's). A run killed before its first checkpoint restarts from generation 0, which
   gives the same numbers (the run is deterministic given its seed).
3. **History first**: on resume ``history.csv`` is rewritten from the checkpoint's history, so rows of
   generations after the checkpoint (run again now) are never duplicated.
4. **Evolve** up to ``generations`` in total, or until solved; ``checkpoint.npz`` every
   ``checkpoint_every`` generations and/or every ``checkpoint_seconds`` seconds (default: at most one
   a minute: a checkpoint of a population of thousands costs as much as a generation).
5. **Files**: ``summary.json``, ``winner.npz``, ``history.csv`` and the final ``checkpoint.npz``
   replaced together, the checkpoint last. A finished run (solved, or all its generations done) is
   never run again: resuming it raises :class:`evosparse.io.RunFolderError`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evosparse.io import RunFolder, RunFolderError, atomic_write_text
from evosparse.neat.checkpoint import Checkpointer, checkpoint_bytes, read_checkpoint, winner_bytes
from evosparse.neat.config import NeatConfig
from evosparse.neat.population import Population
from evosparse.neat.reporting import CsvReporter, GenerationStats, Reporter

KIND = "neat"
CONFIG_FILE, HISTORY_FILE, CHECKPOINT_FILE = "config.toml", "history.csv", "checkpoint.npz"
WINNER_FILE, SUMMARY_FILE = "winner.npz", "summary.json"
# What a NEAT run folder may hold: its files, the pictures 'neat draw' / 'neat plot' put beside them, and
# the pickle files of evosparse < 0.2 (replaced by --overwrite, never loaded).
RUN_FILES = (
    CONFIG_FILE,
    HISTORY_FILE,
    CHECKPOINT_FILE,
    WINNER_FILE,
    SUMMARY_FILE,
    "winner.png",
    "history.png",
    "checkpoint.pkl",
    "winner.pkl",
)


@dataclass
class NeatRunResult:
    """What :func:`run_neat` returns."""

    population: Population
    summary: dict[str, Any]
    out_dir: Path | None


def run_neat(
    task: str,
    *,
    generations: int,
    config: NeatConfig | None = None,
    seed: int | None = None,
    episodes: int | None = None,
    workers: int = 1,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    checkpoint_every: int | None = None,
    checkpoint_seconds: float | None = 60.0,
    reporters: Iterable[Reporter] = (),
) -> NeatRunResult:
    """Evolve a population on ``task`` (see :func:`evosparse.neat.tasks.make_task`), or resume a run.

    Args:
        generations: generations in total (a resumed run continues up to this number).
        config: None: the task's preset (the paper's settings). seed: 0 if None. episodes: 1 if None.
        workers: evaluate over this many processes.
        out_dir: the run folder (None: nothing is written).
        resume: continue the run in ``out_dir``; ``config``, ``seed``, ``episodes`` and ``task`` must be
            None or equal to the saved ones (a different value raises :class:`RunFolderError`).
        overwrite: replace an earlier NEAT run in ``out_dir``.
        checkpoint_every, checkpoint_seconds: checkpoint after this many generations and/or seconds.
        reporters: e.g. a ConsoleReporter.
    """
    _check_positive("generations", generations)
    _check_positive("workers", workers)
    if checkpoint_every is not None:
        _check_positive("checkpoint_every", checkpoint_every)
    if checkpoint_seconds is not None and not checkpoint_seconds >= 0:
        raise ValueError(f"checkpoint_seconds must be >= 0, got {checkpoint_seconds!r}")
    if resume and out_dir is None:
        raise ValueError("--resume needs --out-dir, the folder of the run to continue")
    if out_dir is None:
        spec = _spec(task, config, seed, episodes, generations)
        population = Population(NeatConfig.from_dict(spec["neat"]), seed=spec["seed"], reporters=reporters)
        _evolve(population, spec, generations, workers)
        return NeatRunResult(population, summarize(population, task), None)
    out_dir = Path(out_dir)
    if resume:
        folder = RunFolder.open(
            out_dir,
            kind=KIND,
            files=RUN_FILES,
            resume=True,
            check=lambda saved: _check_resume(saved, out_dir, task, config, seed, episodes),
        )
    else:
        spec = _spec(task, config, seed, episodes, generations)  # before the folder: bad input leaves no trace
        folder = RunFolder.open(out_dir, kind=KIND, files=RUN_FILES, config=spec, overwrite=overwrite)
    with folder:
        if resume:
            spec = dict(folder.config)
            population = _resumed_population(folder, generations)
            folder.update_manifest(config={**spec, "generations": generations})
        else:
            atomic_write_text(out_dir / CONFIG_FILE, NeatConfig.from_dict(spec["neat"]).to_toml())
            population = Population(NeatConfig.from_dict(spec["neat"]), seed=spec["seed"])
        # History first: the rows the checkpoint holds, nothing of generations that will be run again.
        atomic_write_text(out_dir / HISTORY_FILE, history_csv(population.history))
        population.reporters = [*reporters, CsvReporter(out_dir / HISTORY_FILE)]
        if checkpoint_every is not None or checkpoint_seconds is not None:
            population.reporters.append(
                Checkpointer(
                    out_dir / CHECKPOINT_FILE,
                    every=checkpoint_every,
                    seconds=checkpoint_seconds,
                    extra={"run_id": folder.run_id},
                )
            )
        _evolve(population, spec, generations, workers)
        summary = summarize(population, spec["task"])
        winner = population.solution or population.best_genome
        folder.write_set(
            {
                SUMMARY_FILE: _json_text(summary).encode("utf-8"),
                WINNER_FILE: winner_bytes(winner, population.config),
                HISTORY_FILE: history_csv(population.history).encode("utf-8"),
                CHECKPOINT_FILE: checkpoint_bytes(population, extra={"run_id": folder.run_id}),
            },
            last=[CHECKPOINT_FILE],
        )
        population.reporters = []
    return NeatRunResult(population, summary, out_dir)


# ---- steps ---------------------------------------------------------------------------------------------------
def _spec(task: str, config: NeatConfig | None, seed: int | None, episodes: int | None, generations: int) -> dict:
    """The manifest's record of a new run: task, seed, episodes, generations and the NeatConfig."""
    from evosparse.neat.tasks import make_task, preset

    seed = 0 if seed is None else seed
    episodes = 1 if episodes is None else episodes
    _check_int("seed", seed, low=0)
    _check_positive("episodes", episodes)
    made = make_task(task, episodes=episodes, seed=seed)
    config = preset(task, made) if config is None else config
    if (config.n_inputs, config.n_outputs) != (made.n_inputs, made.n_outputs):
        raise ValueError(
            f"the config has n_inputs = {config.n_inputs}, n_outputs = {config.n_outputs}, but --task "
            f"{task} needs n_inputs = {made.n_inputs}, n_outputs = {made.n_outputs}"
        )
    return {"task": task, "seed": seed, "episodes": episodes, "generations": generations, "neat": config.to_dict()}


def _check_resume(saved: Any, out_dir: Path, task: str, config: NeatConfig | None, seed, episodes) -> None:
    """Raise unless the request repeats the saved run's settings (or leaves them out)."""
    if not isinstance(saved, dict) or not {"task", "seed", "episodes", "neat"} <= set(saved):
        raise RunFolderError(f"the manifest of {out_dir} lacks the run's settings; it cannot be resumed")
    conflicts = []
    if task is not None and task != saved["task"]:
        conflicts.append(f"--task {task} (saved: {saved['task']})")
    if seed is not None and seed != saved["seed"]:
        conflicts.append(f"--seed {seed} (saved: {saved['seed']})")
    if episodes is not None and episodes != saved["episodes"]:
        conflicts.append(f"--episodes {episodes} (saved: {saved['episodes']})")
    if config is not None:
        saved_config = saved["neat"]
        changed = [name for name, value in config.to_dict().items() if saved_config.get(name) != value]
        if changed:
            shown = ", ".join(
                f"{name} = {getattr(config, name)!r} (saved: {saved_config.get(name)!r})" for name in changed[:3]
            )
            conflicts.append(f"a CONFIG with {shown}" + (f" and {len(changed) - 3} more" if len(changed) > 3 else ""))
    if conflicts:
        raise RunFolderError(
            f"--resume continues the run in {out_dir} with its saved settings, but you asked for "
            f"{'; '.join(conflicts)}; drop those options, or start a new run with another --out-dir"
        )


def _resumed_population(folder: RunFolder, generations: int) -> Population:
    path = folder.path / CHECKPOINT_FILE
    spec = folder.config
    if path.exists():
        population, extra = read_checkpoint(path)
        folder.check_run_id(extra.get("run_id"), path)
    else:  # killed before the first checkpoint: start again, which gives the same numbers
        population = Population(NeatConfig.from_dict(spec["neat"]), seed=spec["seed"])
    if population.solution is not None:
        raise RunFolderError(
            f"the run in {folder.path} was solved in generation {population.generation}; nothing to resume "
            "(start a new run with another --out-dir)"
        )
    done = len(population.history)
    if done >= generations:
        raise RunFolderError(
            f"the run in {folder.path} already ran {done} generations; give --generations more than {done} "
            "to continue it"
        )
    return population


def _evolve(population: Population, spec: dict, generations: int, workers: int) -> None:
    from evosparse.neat.parallel import ParallelEvaluator
    from evosparse.neat.tasks import make_task

    task = make_task(spec["task"], episodes=spec["episodes"], seed=spec["seed"])
    remaining = generations - len(population.history)
    if remaining <= 0 or population.solution is not None:
        return
    evaluate = ParallelEvaluator(task, workers) if workers > 1 else task
    try:
        population.run(evaluate, remaining, solved=task.solution)
    finally:
        if workers > 1:
            evaluate.close()


# ---- files ---------------------------------------------------------------------------------------------------
def summarize(population: Population, task: str) -> dict[str, Any]:
    """The numbers ``summary.json`` holds (no timings: a resumed run's summary equals the uninterrupted one's)."""
    winner = population.solution or population.best_genome
    hidden, connections = winner.size(population.config.n_outputs)
    return {
        "task": task,
        "solved": population.solution is not None,
        "generations": len(population.history),
        "evaluations": population.evaluations,
        "best_fitness": winner.fitness,
        "hidden_nodes": hidden,
        "enabled_connections": connections,
    }


def history_csv(history: Iterable[GenerationStats]) -> str:
    """``history.csv`` as :class:`CsvReporter` writes it, all rows at once."""
    rows = [stats.as_row() for stats in history]
    buffer = io.StringIO(newline="")
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def _json_text(values: dict[str, Any]) -> str:
    import json

    return json.dumps(values, indent=2) + "\n"


def _check_positive(name: str, value: Any) -> None:
    _check_int(name, value, low=1)


def _check_int(name: str, value: Any, *, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")
