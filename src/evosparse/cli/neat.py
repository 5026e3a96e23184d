"""``evosparse neat``: evolve networks with NEAT, draw them, plot a run.

    evosparse neat run [CONFIG] --task xor|single-pole|single-pole-nv|double-pole|double-pole-nv|cartpole|gym:ID
                       [--generations N] [--seed S] [--out-dir DIR] [--resume] [--workers N] [--quiet]
    evosparse neat draw DIR_OR_GENOME.pkl [--out FILE.png]
    evosparse neat plot DIR_OR_HISTORY.csv [--out FILE.png]

CONFIG is a TOML file of NeatConfig fields or a neat-python INI file; without it, the task's preset
(the NEAT paper's settings) is used. With ``--out-dir`` the run writes config.toml, history.csv,
checkpoint.pkl (every ``--checkpoint-every`` generations, atomically), winner.pkl and summary.json;
``--resume`` continues from the checkpoint and gives the same results as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

from evosparse.cli._flags import seed_type

TASK_HELP = "xor, single-pole, single-pole-nv, double-pole, double-pole-nv, cartpole, or gym:<environment id>"


def _load_config(path: str | None, task, task_name: str):
    from evosparse.neat import NeatConfig
    from evosparse.neat.tasks import preset

    config = preset(task_name, task) if path is None else NeatConfig.from_file(path)
    if (config.n_inputs, config.n_outputs) != (task.n_inputs, task.n_outputs):
        raise ValueError(
            f"CONFIG {path} has n_inputs = {config.n_inputs}, n_outputs = {config.n_outputs}, but --task "
            f"{task_name} needs n_inputs = {task.n_inputs}, n_outputs = {task.n_outputs}"
        )
    return config


def command_run(args: argparse.Namespace) -> int:
    from evosparse.neat import Checkpointer, ConsoleReporter, CsvReporter, ParallelEvaluator, Population
    from evosparse.neat.tasks import make_task

    if args.generations < 1:
        raise ValueError(f"--generations must be an integer >= 1, got {args.generations}")
    if args.workers < 1:
        raise ValueError(f"--workers must be an integer >= 1, got {args.workers}")
    if args.checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be an integer >= 1, got {args.checkpoint_every}")
    if args.config is not None and not Path(args.config).is_file():
        raise FileNotFoundError(f"CONFIG file {args.config} not found")
    task = make_task(args.task, episodes=args.episodes, seed=args.seed)
    out_dir = Path(args.out_dir) if args.out_dir else None
    if args.resume and out_dir is None:
        raise ValueError("--resume needs --out-dir, the folder of the run to continue")
    reporters = [] if args.quiet else [ConsoleReporter()]
    if out_dir is not None:
        reporters += [
            CsvReporter(out_dir / "history.csv"),
            Checkpointer(out_dir / "checkpoint.pkl", every=args.checkpoint_every),
        ]
    if args.resume:
        population = Population.restore(out_dir / "checkpoint.pkl", reporters=reporters)
        config = population.config
        if (config.n_inputs, config.n_outputs) != (task.n_inputs, task.n_outputs):
            raise ValueError(f"--task {args.task} does not fit the checkpoint in {out_dir}")
    else:
        config = _load_config(args.config, task, args.task)
        if args.print_config:
            sys.stdout.write(config.to_toml())
            return 0
        if out_dir is not None:
            if (out_dir / "checkpoint.pkl").exists() and not args.overwrite:
                raise ValueError(f"--out-dir {out_dir} holds a run; add --resume to continue it or --overwrite")
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "history.csv").unlink(missing_ok=True)
            config.save(out_dir / "config.toml")
        population = Population(config, seed=args.seed, reporters=reporters)
    remaining = args.generations - len(population.history)
    evaluate = ParallelEvaluator(task, args.workers) if args.workers > 1 else task
    try:
        if remaining > 0 and population.solution is None:
            population.run(evaluate, remaining, solved=task.solution)
    finally:
        if args.workers > 1:
            evaluate.close()
    winner = population.solution or population.best_genome
    summary = {
        "task": args.task,
        "solved": population.solution is not None,
        "generations": len(population.history),
        "evaluations": population.evaluations,
        "best_fitness": winner.fitness,
        "hidden_nodes": winner.size(config.n_outputs)[0],
        "enabled_connections": winner.size(config.n_outputs)[1],
    }
    if out_dir is not None:
        with (out_dir / "winner.pkl").open("wb") as file:
            pickle.dump({"genome": winner, "config": config}, file)
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary))
    return 0


def _winner(path: Path):
    path = path / "winner.pkl" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"GENOME {path} not found (give a run folder or its winner.pkl)")
    with path.open("rb") as file:
        try:
            saved = pickle.load(file)
        except Exception as error:
            raise ValueError(f"GENOME {path} is not a winner.pkl written by 'evosparse neat run' ({error})") from None
    if not isinstance(saved, dict) or "genome" not in saved:
        raise ValueError(f"GENOME {path} is not a winner.pkl written by 'evosparse neat run'")
    return saved["genome"], saved["config"], path


def command_draw(args: argparse.Namespace) -> int:
    from evosparse.neat.draw import draw_genome

    genome, config, path = _winner(Path(args.genome))
    out = Path(args.out) if args.out else path.with_suffix(".png")
    draw_genome(genome, config.n_inputs, config.n_outputs, out)
    print(f"wrote {out}")
    return 0


def command_plot(args: argparse.Namespace) -> int:
    from evosparse.neat.draw import plot_history
    from evosparse.neat.reporting import read_history

    path = Path(args.history)
    path = path / "history.csv" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"HISTORY {path} not found (give a run folder or its history.csv)")
    out = Path(args.out) if args.out else path.with_suffix(".png")
    plot_history(read_history(path), out)
    print(f"wrote {out}")
    return 0


def register(commands, parser_class=argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``neat`` and its sub-commands to the sub-parsers ``commands`` of the main parser."""
    neat = commands.add_parser(
        "neat",
        help="evolve networks with NEAT (run, draw, plot)",
        description="NeuroEvolution of Augmenting Topologies (Stanley & Miikkulainen 2002): evolve network "
        "weights and topology on XOR, pole balancing or any gymnasium environment.",
    )
    sub = neat.add_subparsers(dest="neat_command", metavar="NEAT_COMMAND", required=True, parser_class=parser_class)

    run = sub.add_parser(
        "run",
        help="evolve a population on a task (one progress line per generation)",
        description="Evolve a NEAT population on --task until solved or --generations. Without CONFIG the "
        "task's preset (the paper's settings) is used.",
    )
    run.add_argument("config", nargs="?", metavar="CONFIG", help="TOML file of NeatConfig fields or neat-python INI")
    run.add_argument("--task", required=True, metavar="TASK", help=TASK_HELP)
    run.add_argument("--generations", type=int, default=300, help="most generations to run [300]")
    run.add_argument("--seed", type=seed_type, default=0, help="seed of the run (and of the task's episodes) [0]")
    run.add_argument("--episodes", type=int, default=1, help="episodes per genome for cartpole and gym tasks [1]")
    run.add_argument("--workers", type=int, default=1, help="evaluate over this many processes [1]")
    run.add_argument("--out-dir", help="write config, history.csv, checkpoint.pkl, winner.pkl, summary.json here")
    run.add_argument("--checkpoint-every", type=int, default=1, help="generations between checkpoints [1]")
    run.add_argument("--resume", action="store_true", help="continue the run in --out-dir from its checkpoint")
    run.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out-dir")
    run.add_argument("--print-config", action="store_true", help="print the configuration as TOML and exit")
    run.add_argument("--quiet", action="store_true", help="no per-generation progress lines")
    run.set_defaults(handler=command_run, func=command_run)

    draw = sub.add_parser("draw", help="draw the winning network of a run", description="Draw a genome's network.")
    draw.add_argument("genome", metavar="GENOME", help="a run folder or its winner.pkl")
    draw.add_argument("--out", help="picture file [next to the genome, .png]")
    draw.set_defaults(handler=command_draw, func=command_draw)

    plot = sub.add_parser("plot", help="plot fitness and species per generation", description="Plot a run's history.")
    plot.add_argument("history", metavar="HISTORY", help="a run folder or its history.csv")
    plot.add_argument("--out", help="picture file [next to the history, .png]")
    plot.set_defaults(handler=command_plot, func=command_plot)
    return neat
