"""``evosparse compare`` (strategies side by side) and ``evosparse plot degrees`` (a run's connectivity).

evosparse compare --strategies set,rigl,magnitude --densities 0.01,0.05 --seeds 0,1,2 --out-dir DIR [--jobs 2]
                  [--ray [ADDRESS]] [--config FILE.toml] [--<TrainConfig field> VALUE ...]
evosparse plot degrees RUN_DIR [--image-shape 28,28]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from evosparse.cli._flags import (
    CommandError,
    add_config_flags,
    cap_threads,
    parse_names,
    parse_numbers,
    parse_sizes,
    train_changes,
)

PER_RUN = ("strategy", "density", "seed", "model", "out_dir")  # compare sets these for each run


def command_compare(args: argparse.Namespace) -> int:
    from evosparse.train.compare import compare
    from evosparse.train.config import STRATEGIES, TrainConfig
    from evosparse.train.ray_backend import RunsFailedError

    changes = train_changes(args)
    for name in PER_RUN:
        if name in changes:
            raise ValueError(f"{name} is set per run by compare (--strategies, --densities, --seeds, --out-dir); "
                             f"remove it from {args.config}")  # fmt: skip
    args.jobs = cap_threads(args, args.jobs, name="--jobs")  # compare checks jobs >= 1
    if args.retries is not None and args.ray is None:
        raise CommandError("--retries applies to runs on Ray; add --ray [ADDRESS], or drop --retries")
    strategies = args.strategies or STRATEGIES
    try:
        compare(
            TrainConfig.from_dict(changes, source="the command line"),
            strategies,
            args.densities,
            args.seeds,
            args.compare_out,
            jobs=args.jobs,
            dense=not args.no_dense,
            log=None if args.quiet else print,
            ray=False if args.ray is None else (args.ray or True),
            retries=1 if args.retries is None else args.retries,
        )
    except RunsFailedError as error:
        raise CommandError(str(error)) from None
    print((Path(args.compare_out) / "table.md").read_text(), end="")
    return 0


def command_plot_degrees(args: argparse.Namespace) -> int:
    import torch

    from evosparse.report.plots import plot_connectivity_over_time, plot_degree_distribution, plot_input_degree_maps
    from evosparse.train.callbacks import ConnectivityCallback, read_connectivity
    from evosparse.train.checkpoint import load_checkpoint
    from evosparse.train.config import TrainConfig
    from evosparse.train.run import build_trainer, load_tensors

    folder = Path(args.run_dir)
    record = folder / ConnectivityCallback.FILE
    if not record.exists():
        raise FileNotFoundError(f"{record} not found: run_dir must be the folder of a sparse run (evosparse train)")
    epochs, degrees = read_connectivity(record)  # no pickle; a damaged file is a one-line error
    shape = tuple(args.image_shape) if args.image_shape else None
    written = [plot_input_degree_maps(degrees, epochs.tolist(), folder / "input_degrees.png", image_shape=shape)]
    checkpoint = load_checkpoint(folder / "checkpoint.pt")
    config = TrainConfig.from_dict(checkpoint["config"])
    trainer = build_trainer(config, load_tensors(config))
    trainer.load_state_dict(checkpoint["trainer"])
    with torch.no_grad():
        written.append(plot_degree_distribution(trainer.model, folder / "degree_distribution.png"))
    written.append(plot_connectivity_over_time(list(trainer.history), folder / "connectivity_over_time.png"))
    for path in written:
        print(path)
    return 0


def register(commands, parser_class) -> None:
    """Add ``compare`` and ``plot`` to the ``evosparse`` sub-command parsers."""
    from evosparse.train.config import STRATEGIES, TrainConfig

    compare = commands.add_parser(
        "compare",
        help="train several topology strategies at several densities and seeds; table and plots",
        description="Train the dense baseline and every strategy x density x seed with one recipe (the "
        "TrainConfig flags below), then write results.csv, table.md/.csv, accuracy_vs_density.png and "
        "accuracy_vs_flops.png into --out-dir. Finished runs found there are reused, so an interrupted "
        "comparison continues. With --ray each run is a Ray task (a local Ray, or a cluster): same folders, "
        f"same table. Strategies: {', '.join(STRATEGIES)}.",
    )
    compare.add_argument("--strategies", type=parse_names, metavar="NAME,...", help="strategies to compare [all]")
    compare.add_argument("--densities", type=parse_numbers, default=(0.01, 0.02, 0.05, 0.1), metavar="D,...",
                         help="overall weight densities [0.01,0.02,0.05,0.1]")  # fmt: skip
    compare.add_argument("--seeds", type=parse_sizes, default=(0, 1, 2), metavar="N,...", help="seeds [0,1,2]")
    compare.add_argument("--out-dir", dest="compare_out", required=True, help="folder of the runs and reports")
    compare.add_argument("--jobs", type=int, help="runs in parallel, one thread each [1; with --ray: all cores]")
    compare.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                         help="run every run as a Ray task (pip install 'evosparse[ray]'): on a local Ray of --jobs "
                         "CPUs, or on the Ray cluster at ADDRESS (e.g. auto, ray://host:10001)")  # fmt: skip
    retries = "with --ray: restarts of a run whose worker died (it resumes from its checkpoint) [1]"
    compare.add_argument("--retries", type=int, metavar="N", help=retries)
    compare.add_argument("--no-dense", action="store_true", help="skip the dense baseline")
    compare.add_argument("--config", metavar="FILE", help="TOML (or .json) recipe; flags override it")
    compare.add_argument("--quiet", action="store_true", help="no line per finished run")
    add_config_flags(compare, TrainConfig, skip=PER_RUN, title="TrainConfig")
    compare.set_defaults(handler=command_compare)

    plot = commands.add_parser("plot", help="pictures of a run", description="Pictures of a finished or running run.")
    kinds = plot.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=parser_class)
    degrees = kinds.add_parser(
        "degrees",
        help="input-neuron degree maps over epochs and degree histograms of every sparse layer",
        description="Write input_degrees.png (connections per input neuron, as an image, over the epochs: the "
        "SET paper's picture), degree_distribution.png and connectivity_over_time.png into RUN_DIR.",
    )
    degrees.add_argument("run_dir", metavar="RUN_DIR", help="folder of a run of evosparse train")
    degrees.add_argument("--image-shape", type=parse_sizes, metavar="H,W", help="input image shape [square]")
    degrees.set_defaults(handler=command_plot_degrees)
