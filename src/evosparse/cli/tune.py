"""``evosparse tune``: a hyperparameter search of ``evosparse train`` recipes on Ray Tune, with ASHA early stopping.

evosparse tune [CONFIG.toml] --search lr=loguniform(1e-3,1e-1) --search hidden=choice([64],[128,128]) ...
               --out-dir DIR [--samples 8] [--scheduler asha|none] [--grace-period 1] [--reduction-factor 3]
               [--search-seed 0] [--jobs N | --ray ADDRESS] [--overwrite] [--<TrainConfig field> VALUE ...]

The recipe is CONFIG (its ``[tune]`` table may hold the search, see :func:`evosparse.train.tune.read_recipe`)
with the flags over it; ``--search`` flags add to (or replace, per setting) the file's searched settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from evosparse.cli._flags import CommandError, add_config_flags, cap_threads, config_changes

SKIP = ("out_dir", "threads")  # the search places each trial and gives it one thread


def command_tune(args: argparse.Namespace) -> int:
    from evosparse.train.config import TrainConfig
    from evosparse.train.tune import SCHEDULERS, parse_dimension, read_recipe, tune

    values, table = read_recipe(args.config) if args.config else ({}, {})
    base = TrainConfig.from_dict({**values, **config_changes(args, TrainConfig)}, source="the command line")
    source = f"[tune.search] of {args.config}"
    search = {
        d.name: d
        for d in (parse_dimension(f"{k}={v}", base, source=source) for k, v in table.get("search", {}).items())
    }
    search.update({d.name: d for d in (parse_dimension(text, base) for text in args.search or ())})
    if not search:
        raise CommandError(
            "nothing to search: give --search NAME=FORM(...) (e.g. --search lr=loguniform(1e-3,1e-1)) or a "
            "[tune.search] table in CONFIG"
        )
    settings = {}
    for name, default in (("samples", 8), ("scheduler", "asha"), ("grace_period", 1), ("reduction_factor", 3.0),
                          ("search_seed", 0)):  # fmt: skip
        given = getattr(args, name)
        settings[name] = given if given is not None else table.get(name, default)
    if settings["scheduler"] not in SCHEDULERS:
        raise CommandError(f"--scheduler must be one of {', '.join(SCHEDULERS)}; got {settings['scheduler']!r}")
    for name in ("samples", "grace_period", "search_seed"):
        if not isinstance(settings[name], int) or isinstance(settings[name], bool):
            raise CommandError(f"samples, grace_period and search_seed are integers; {name} is {settings[name]!r}")
    if args.jobs is not None and args.ray is not None:
        raise CommandError("--jobs sizes the local Ray that tune starts; with --ray ADDRESS the cluster decides")
    if args.jobs is not None and args.jobs < 1:
        raise CommandError(f"--jobs must be >= 1, got {args.jobs}")
    jobs = cap_threads(args, args.jobs, name="--jobs")
    result = tune(
        base,
        list(search.values()),
        args.tune_out,
        jobs=jobs,
        ray=args.ray,
        overwrite=args.overwrite,
        log=None if args.quiet else print,
        **settings,
    )
    print(f"trials: {Path(args.tune_out) / 'trials.csv'}; best recipe: {Path(args.tune_out) / 'best.toml'} "
          f"({result.wall_seconds:.0f} s)")  # fmt: skip
    return 0


def register(commands, parser_class) -> None:
    """Add ``tune`` to the ``evosparse`` sub-command parsers."""
    from evosparse.train.config import TrainConfig
    from evosparse.train.tune import ALLOWED_FORMS, SCHEDULERS

    tune = commands.add_parser(
        "tune",
        help="hyperparameter search of a train recipe on Ray Tune, with ASHA early stopping",
        description="Sample --samples recipes from the --search space around CONFIG (and the TrainConfig flags), "
        "train each as a Ray Tune trial (one CPU, one thread), stop weak trials early with ASHA on the per-epoch "
        "test accuracy, and write trials.csv (one row per trial), best.toml (the best recipe, for "
        "`evosparse train --config`) and tune.json into --out-dir. Needs Ray: pip install 'evosparse[ray]'.",
    )
    tune.add_argument("config", nargs="?", metavar="CONFIG",
                      help="TOML (or .json) recipe; may hold a [tune] table with samples, scheduler, ... and a "
                      "[tune.search] table of NAME = \"FORM(...)\"")  # fmt: skip
    tune.add_argument("--search", action="append", metavar="NAME=FORM(...)",
                      help=f"a searched setting (repeat the flag for several); forms: {ALLOWED_FORMS}; list values "
                      "in brackets, e.g. hidden=choice([64],[128,128])".replace("%", "%%"))  # fmt: skip
    tune.add_argument("--out-dir", dest="tune_out", required=True, help="folder of the trials and reports")
    tune.add_argument("--samples", type=int, help="recipes drawn (per grid point, with grid(...)) [8]")
    tune.add_argument("--scheduler", choices=SCHEDULERS, help="asha: stop weak trials early; none: run all [asha]")
    tune.add_argument("--grace-period", type=int, help="ASHA: epochs every trial runs before it may be stopped [1]")
    tune.add_argument("--reduction-factor", type=float,
                      help="ASHA: keep the best 1/F of the trials at each rung (epochs grace x F^k) [3]")  # fmt: skip
    tune.add_argument("--search-seed", type=int, help="seed of the sampling of the recipes [0]")
    tune.add_argument("--jobs", type=int, help="CPUs of the local Ray (trials at once, one thread each) [all cores]")
    tune.add_argument("--ray", metavar="ADDRESS", help="use the Ray cluster at ADDRESS (e.g. auto, ray://host:10001)")
    tune.add_argument("--overwrite", action="store_true", help="replace the results of an earlier search in --out-dir")
    tune.add_argument("--quiet", action="store_true", help="no summary line")
    add_config_flags(tune, TrainConfig, skip=SKIP, title="TrainConfig")
    tune.set_defaults(handler=command_tune)
