"""``evosparse tune`` and ``evosparse rl tune``: hyperparameter searches on Ray Tune, with ASHA early stopping.

evosparse tune [CONFIG.toml] --search lr=loguniform(1e-3,1e-1) --search hidden=choice([64],[128,128]) ...
               --out-dir DIR [--samples 8] [--scheduler asha|none] [--grace-period 1] [--reduction-factor 3]
               [--search-seed 0] [--jobs N | --ray ADDRESS] [--overwrite] [--<TrainConfig field> VALUE ...]
evosparse rl tune [CONFIG.toml] --env ID --algo {dqn,td3,sac} --search learning_rate=log(1e-4,1e-2) ...
               --out-dir DIR [the same search flags] [--<run or agent setting> VALUE ...]

The recipe is CONFIG (its ``[tune]`` table may hold the search, see :func:`evosparse.train.tune.read_recipe`)
with the flags over it; ``--search`` flags add to (or replace, per setting) the file's searched settings.
``evosparse tune`` scores a recipe by the per-epoch test accuracy, ``evosparse rl tune`` by the mean return
of each evaluation (:mod:`evosparse.rl.tune`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evosparse.cli._flags import CommandError, add_config_flags, cap_threads, config_changes

SKIP = ("out_dir", "threads")  # the search places each trial and gives it one thread
# None: the search's own default (the first rung that can tell recipes apart: see SearchTarget.grace_period).
SETTINGS = (
    ("samples", 8), ("scheduler", "asha"), ("grace_period", None), ("reduction_factor", 3.0), ("search_seed", 0)
)  # fmt: skip


def command_tune(args: argparse.Namespace) -> int:
    from evosparse.train.config import TrainConfig
    from evosparse.train.tune import read_recipe

    values, table = read_recipe(args.config) if args.config else ({}, {})
    base = TrainConfig.from_dict({**values, **config_changes(args, TrainConfig)}, source="the command line")
    return _search(args, base, table)


def command_rl_tune(args: argparse.Namespace) -> int:
    from evosparse.cli.rl import run_config
    from evosparse.rl.run import config_values
    from evosparse.rl.tune import RLSearch
    from evosparse.train.tune import split_recipe

    values, table = split_recipe(args.config) if args.config else ({}, {})
    file_run = config_values(values, source=f"config file {args.config}") if args.config else {}
    return _search(args, RLSearch(run_config(args, file_run)), table)


def _search(args: argparse.Namespace, base: Any, table: dict[str, Any]) -> int:
    """The search of ``base`` (a TrainConfig or a SearchTarget) with the file's ``[tune]`` table under the flags."""
    from evosparse.train.tune import SCHEDULERS, parse_dimension, tune

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
    for name, default in SETTINGS:
        given = getattr(args, name)
        settings[name] = given if given is not None else table.get(name, default)
    if settings["scheduler"] not in SCHEDULERS:
        raise CommandError(f"--scheduler must be one of {', '.join(SCHEDULERS)}; got {settings['scheduler']!r}")
    for name in ("samples", "grace_period", "search_seed"):
        if name == "grace_period" and settings[name] is None:
            continue
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


def _add_search_flags(parser, *, unit: str, example: str, grace: str = "1") -> None:
    """The flags every search shares; ``unit`` is what ASHA's rungs count (epochs, evaluations)."""
    from evosparse.train.tune import ALLOWED_FORMS, SCHEDULERS

    parser.add_argument("config", nargs="?", metavar="CONFIG",
                        help="TOML (or .json) recipe; may hold a [tune] table with samples, scheduler, ... and a "
                        "[tune.search] table of NAME = \"FORM(...)\"")  # fmt: skip
    parser.add_argument("--search", action="append", metavar="NAME=FORM(...)",
                        help=f"a searched setting (repeat the flag for several); forms: {ALLOWED_FORMS}; list "
                        f"values in brackets, e.g. {example}".replace("%", "%%"))  # fmt: skip
    parser.add_argument("--out-dir", dest="tune_out", required=True, help="folder of the trials and reports")
    parser.add_argument("--samples", type=int, help="recipes drawn (per grid point, with grid(...)) [8]")
    parser.add_argument("--scheduler", choices=SCHEDULERS, help="asha: stop weak trials early; none: run all [asha]")
    parser.add_argument("--grace-period", type=int,
                        help=f"ASHA: {unit} every trial runs before it may be stopped [{grace}]")  # fmt: skip
    parser.add_argument(
        "--reduction-factor",
        type=float,
        help=f"ASHA: keep the best 1/F of the trials at each rung ({unit}: grace x F^k) [3]",
    )
    parser.add_argument("--search-seed", type=int, help="seed of the sampling of the recipes [0]")
    parser.add_argument("--jobs", type=int, help="CPUs of the local Ray (trials at once, one thread each) [all cores]")
    parser.add_argument("--ray", metavar="ADDRESS", help="use the Ray cluster at ADDRESS (e.g. auto, ray://host:10001)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier search's results in --out-dir")
    parser.add_argument("--quiet", action="store_true", help="no summary line")


def register(commands, parser_class) -> None:
    """Add ``tune`` to the ``evosparse`` sub-command parsers."""
    from evosparse.train.config import TrainConfig

    tune = commands.add_parser(
        "tune",
        help="hyperparameter search of a train recipe on Ray Tune, with ASHA early stopping",
        description="Sample --samples recipes from the --search space around CONFIG (and the TrainConfig flags), "
        "train each as a Ray Tune trial (one CPU, one thread), stop weak trials early with ASHA on the per-epoch "
        "test accuracy, and write trials.csv (one row per trial), best.toml (the best recipe, for "
        "`evosparse train --config`) and tune.json into --out-dir. Needs Ray: pip install 'evosparse[ray]'.",
    )
    _add_search_flags(tune, unit="epochs", example="hidden=choice([64],[128,128])")
    add_config_flags(tune, TrainConfig, skip=SKIP, title="TrainConfig")
    tune.set_defaults(handler=command_tune)


def register_rl_tune(rl_commands) -> None:
    """Add ``tune`` to the ``evosparse rl`` sub-command parsers (called by :mod:`evosparse.cli.rl`)."""
    from evosparse.cli.rl import add_run_flags
    from evosparse.rl.tune import NOT_SEARCHED

    tune = rl_commands.add_parser(
        "tune",
        help="hyperparameter search of an RL agent on Ray Tune, with ASHA early stopping",
        description="Sample --samples recipes from the --search space around CONFIG (and the run and agent "
        "flags), train each as a Ray Tune trial (one CPU, one thread; an 'evosparse rl train' run folder under "
        "--out-dir/trials), stop weak trials early with ASHA on the mean return of each evaluation (every "
        "--eval-every steps), and write trials.csv, best.toml (for `evosparse rl train --config`) and tune.json "
        f"into --out-dir. Not searched: {', '.join(NOT_SEARCHED)}. Needs Ray: pip install 'evosparse[ray]'.",
    )
    _add_search_flags(tune, unit="evaluations", example="actor_hidden=choice([64,64],[256,256])",
                      grace="the first evaluation after learning_starts")  # fmt: skip
    add_run_flags(tune, skip=("threads",))
    tune.set_defaults(handler=command_rl_tune)
