"""``evosparse neat``: evolve networks with NEAT, draw them, plot a run.

    evosparse neat run [CONFIG] --task xor|single-pole|single-pole-nv|double-pole|double-pole-nv|cartpole|gym:ID
                       [--generations N] [--seed S] [--out-dir DIR] [--resume | --overwrite] [--workers N]
                       [--checkpoint-every N] [--checkpoint-seconds S] [--quiet]
    evosparse neat draw DIR_OR_WINNER.npz [--out FILE.png]
    evosparse neat plot DIR_OR_HISTORY.csv [--out FILE.png]

CONFIG is a TOML file of NeatConfig fields or a neat-python INI file; without it, the task's preset
(the NEAT paper's settings) is used. With ``--out-dir`` the run writes run.json, config.toml,
history.csv, checkpoint.npz (at most once a minute by default, atomically), winner.npz and summary.json
(see :mod:`evosparse.neat.run`); ``--resume`` continues from the checkpoint and gives the same results as
an uninterrupted run. Every file is data only (JSON, ``.npz``): nothing is ever unpickled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evosparse.cli._flags import seed_type

TASK_HELP = "xor, single-pole, single-pole-nv, double-pole, double-pole-nv, cartpole, or gym:<environment id>"


def _load_config(path: str | None):
    from evosparse.neat import NeatConfig

    if path is None:
        return None
    if not Path(path).is_file():
        raise FileNotFoundError(f"CONFIG file {path} not found")
    return NeatConfig.from_file(path)


def command_run(args: argparse.Namespace) -> int:
    from evosparse.neat import ConsoleReporter
    from evosparse.neat.run import run_neat

    if args.generations < 1:
        raise ValueError(f"--generations must be an integer >= 1, got {args.generations}")
    if args.workers < 1:
        raise ValueError(f"--workers must be an integer >= 1, got {args.workers}")
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be an integer >= 1, got {args.checkpoint_every}")
    if args.checkpoint_seconds is not None and not args.checkpoint_seconds >= 0:
        raise ValueError(f"--checkpoint-seconds must be a number >= 0, got {args.checkpoint_seconds}")
    if args.resume and args.out_dir is None:
        raise ValueError("--resume needs --out-dir, the folder of the run to continue")
    if args.resume and args.print_config:
        raise ValueError("--print-config shows the config of a new run; the config of a run is in its config.toml")
    config = _load_config(args.config)
    if args.print_config:
        from evosparse.neat.tasks import make_task, preset

        task = make_task(args.task, episodes=args.episodes or 1, seed=args.seed or 0)
        sys.stdout.write((config or preset(args.task, task)).to_toml())
        return 0
    # --checkpoint-every alone: by count only; --checkpoint-seconds (default 60) alone: by time only.
    seconds = args.checkpoint_seconds
    if seconds is None and args.checkpoint_every is None:
        seconds = 60.0
    result = run_neat(
        args.task,
        generations=args.generations,
        config=config,
        seed=args.seed,
        episodes=args.episodes,
        workers=args.workers,
        out_dir=args.out_dir,
        resume=args.resume,
        overwrite=args.overwrite,
        checkpoint_every=args.checkpoint_every,
        checkpoint_seconds=seconds,
        reporters=[] if args.quiet else [ConsoleReporter()],
    )
    print(json.dumps(result.summary))
    return 0


def _winner(path: Path):
    from evosparse.neat.checkpoint import load_winner

    if path.is_dir():
        # a folder of evosparse < 0.2 holds winner.pkl: name it, so the error says it is never unpickled
        legacy = path / "winner.pkl"
        path = legacy if legacy.exists() and not (path / "winner.npz").exists() else path / "winner.npz"
    if not path.is_file():
        raise FileNotFoundError(f"GENOME {path} not found (give a run folder or its winner.npz)")
    genome, config = load_winner(path)
    return genome, config, path


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
    run.add_argument("--generations", type=int, default=300, help="generations in total (also on --resume) [300]")
    run.add_argument("--seed", type=seed_type, default=None, help="seed of the run (and of the task's episodes) [0]")
    run.add_argument("--episodes", type=int, default=None, help="episodes per genome for cartpole and gym tasks [1]")
    run.add_argument("--workers", type=int, default=1, help="evaluate over this many processes [1]")
    run.add_argument("--out-dir", help="write run.json, config, history.csv, checkpoint, winner, summary here")
    run.add_argument(
        "--checkpoint-every", type=int, default=None, help="checkpoint every N generations [by time: once a minute]"
    )
    run.add_argument(
        "--checkpoint-seconds", type=float, default=None, help="checkpoint when this many seconds have passed [60]"
    )
    run.add_argument("--resume", action="store_true", help="continue the run in --out-dir from its checkpoint")
    run.add_argument("--overwrite", action="store_true", help="replace an earlier NEAT run in --out-dir")
    run.add_argument("--print-config", action="store_true", help="print the configuration as TOML and exit")
    run.add_argument("--quiet", action="store_true", help="no per-generation progress lines")
    run.set_defaults(handler=command_run, func=command_run)

    draw = sub.add_parser("draw", help="draw the winning network of a run", description="Draw a genome's network.")
    draw.add_argument("genome", metavar="GENOME", help="a run folder or its winner.npz")
    draw.add_argument("--out", help="picture file [next to the genome, .png]")
    draw.set_defaults(handler=command_draw, func=command_draw)

    plot = sub.add_parser("plot", help="plot fitness and species per generation", description="Plot a run's history.")
    plot.add_argument("history", metavar="HISTORY", help="a run folder or its history.csv")
    plot.add_argument("--out", help="picture file [next to the history, .png]")
    plot.set_defaults(handler=command_plot, func=command_plot)
    return neat
