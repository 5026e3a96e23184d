"""``evosparse rbm``: train a sparse RBM in a run folder; ``evosparse plot samples``: its samples and filters.

    evosparse rbm train [--dataset coil20] [--topology {dense,fixprob,set,xbm}] [--hidden N] [--epochs N]
        [--out-dir DIR] [--resume | --overwrite] [--config FILE.toml] [--<setting> VALUE ...] [--quiet]
    evosparse plot samples RUN [--steps N] [--n N] [--seed S]

Every field of :class:`evosparse.rbm.RBMConfig` is a ``train`` flag (``weight_decay`` -> ``--weight-decay``);
flags override ``--config``, which overrides the defaults (the SET-RBM reference setting).

Adding a sub-command to ``evosparse rbm`` (e.g. ``forecast``) from another module takes a few lines: in that
module's ``register(commands, parser_class)``::

    from evosparse.cli.rbm import rbm_commands
    forecast = rbm_commands(commands, parser_class).add_parser("forecast", help=..., description=...)
    forecast.set_defaults(handler=command_forecast)

and the module's name in ``COMMAND_MODULES`` (cli/main.py), after ``evosparse.cli.rbm`` or before: whichever
registers first creates the ``rbm`` command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evosparse.cli._flags import CommandError, add_config_flags, file_and_flags, subcommands


def rbm_commands(commands, parser_class=argparse.ArgumentParser):
    """The sub-command parsers of ``evosparse rbm`` (train here; other modules add theirs)."""
    return subcommands(
        commands,
        "rbm",
        parser_class,
        dest="rbm_command",
        help="restricted Boltzmann machines with truly sparse, evolving weights (train, ...)",
        description="Sparse RBMs: SET-RBM, XBM, FixProb and dense RBMs trained by contrastive divergence.",
    )


def command_train(args: argparse.Namespace) -> int:
    from evosparse.rbm import RBMConfig, format_summary, train_rbm

    if args.resume and args.overwrite:
        raise CommandError("--resume continues a run and --overwrite replaces it; give one of them")
    changes = file_and_flags(args, RBMConfig)
    log = None if args.quiet else print
    if args.resume:
        if not changes.get("out_dir"):
            raise CommandError("--resume needs --out-dir, the folder of the run to continue")
        args.out_dir = changes["out_dir"]
        result = train_rbm(RBMConfig(out_dir=changes["out_dir"]), resume=True, changes=changes, log=log,
                           accept_data_change=args.accept_data_change)  # fmt: skip
    else:
        if args.accept_data_change:
            raise CommandError("--accept-data-change goes with --resume (a new run records its data)")
        config = RBMConfig.from_dict(changes, source="the command line")
        if args.print_config:
            sys.stdout.write(config.to_toml())
            return 0
        from evosparse.rbm.run import default_out_dir

        config = config if config.out_dir is not None else config.replace(out_dir=str(default_out_dir(config)))
        args.out_dir = config.out_dir
        result = train_rbm(config, overwrite=args.overwrite, log=log)
    print(format_summary(result.summary))
    return 0


def command_plot_samples(args: argparse.Namespace) -> int:
    from evosparse.rbm import load_run, plot_filters, plot_samples
    from evosparse.rbm.run import load_data

    if args.steps < 1 or args.n < 1:
        raise CommandError(f"--steps and --n must be integers >= 1, got {args.steps} and {args.n}")
    run = Path(args.run)
    config, rbm, _ = load_run(run)
    data = load_data(config)
    label = f"{config.topology} RBM, {config.dataset}, {rbm.n_hidden} hidden, {rbm.nnz:,} weights"
    out = [
        plot_samples(
            rbm,
            run / "samples.png",
            data=data.x_test,
            shape=data.feature_shape,
            n=args.n,
            steps=args.steps,
            rng=args.seed,
            title=label,
        ),  # fmt: skip
        plot_filters(rbm, run / "filters.png", shape=data.feature_shape),
    ]
    for path in out:
        print(f"wrote {path}")
    return 0


def register(commands, parser_class=argparse.ArgumentParser) -> None:
    """Add ``rbm train`` and ``plot samples`` to the ``evosparse`` sub-command parsers."""
    from evosparse.rbm import RBMConfig

    train = rbm_commands(commands, parser_class).add_parser(
        "train",
        help="train an RBM in a run folder (history, checkpoints, summary)",
        description="Train a sparse RBM by contrastive divergence. Writes run.json, config.toml, history.csv/.json, "
        "checkpoint.npz (every epoch; --resume continues exactly) and summary.json into --out-dir (default "
        "runs/rbm/<dataset>-<topology>-h<hidden>-s<seed>). Defaults: the SET-RBM reference setting on COIL20.",
    )
    train.add_argument("--config", metavar="FILE", help="TOML (or .json) config file; flags override it")
    train.add_argument("--resume", action="store_true", help="continue the run in --out-dir from its checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace the run in --out-dir")
    train.add_argument("--accept-data-change", action="store_true",
                       help="with --resume: continue although the data changed (warns)")  # fmt: skip
    train.add_argument("--quiet", action="store_true", help="no line per epoch")
    train.add_argument("--print-config", action="store_true", help="print the run's config as TOML and exit")
    add_config_flags(train, RBMConfig, title="RBMConfig")
    train.set_defaults(handler=command_train, resume_hint="rbm train --resume")

    samples = subcommands(
        commands, "plot", parser_class, dest="kind", help="pictures of a run", description="Pictures of a run."
    ).add_parser(  # fmt: skip
        "samples",
        help="samples and filters of an RBM run (samples.png, filters.png)",
        description="Draw Gibbs samples of the RBM at RUN's last checkpoint (chains from test data and from random "
        "states) into RUN/samples.png, and its hidden units' filters into RUN/filters.png.",
    )
    samples.add_argument("run", metavar="RUN", help="folder of a run of 'evosparse rbm train'")
    samples.add_argument("--steps", type=int, default=1000, help="Gibbs steps per chain [1000]")
    samples.add_argument("--n", type=int, default=50, help="chains per picture [50]")
    samples.add_argument("--seed", type=int, default=0, help="seed of the chains [0]")
    samples.set_defaults(handler=command_plot_samples)
