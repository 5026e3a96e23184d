"""``evosparse grid run ENV``: play the smart-grid yardsticks on an episode and print the KPI table.

    evosparse grid run ENV [--controller none,rule,optimal] [--start-day 335] [--days 30] [--seed 0]
        [--data-dir DIR] [--price-file CSV] [--building 1] [--n-buildings 10] [--peer-to-peer]
        [--steps-per-hour 1] [--set FIELD=VALUE ...] [--plot FILE.png] [--plot-week 0] [--json]

    evosparse grid list                 the registered environments and controllers

ENV is any registered environment (:data:`evosparse.envs.ENVIRONMENTS`), a controller any registered
controller (:data:`evosparse.envs.CONTROLLERS`, ``NAME`` or ``NAME:ARGUMENT``). The table has one row per
controller (CityLearn-style KPIs, see :mod:`evosparse.envs.metrics`) and ``gap_closed``: each controller's
share of the gap between no control and the perfect-foresight optimum (both are played for it even when not
listed, unless the optimum is too large to solve). Every input is checked before the first episode runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

from evosparse._config import check_unknown_keys
from evosparse.cli._flags import seed_type

DAYS_IN_DATA = 365  # the CityLearn 2022 year
# The community LP has ~5 variables per building-hour; 300 buildings x 30 days took 150 s and 2 GB here.
MAX_OPTIMAL_BUILDING_HOURS = 300 * 24 * 30
# Flags that set one config field, for the environments whose config has that field (None: not given).
FIELD_FLAGS = {
    "data_dir": "--data-dir",
    "price_file": "--price-file",
    "building": "--building",
    "n_buildings": "--n-buildings",
    "peer_to_peer": "--peer-to-peer",
    "steps_per_hour": "--steps-per-hour",
}


def _controllers(text: str) -> list[str]:
    from evosparse.envs.controllers import CONTROLLERS, parse_controller

    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(f"--controller must be one or more of {','.join(CONTROLLERS)} (comma-separated), got {text!r}")
    for name in names:
        try:
            parse_controller(name)
        except ValueError as error:
            raise ValueError(
                f"--controller must be one or more of {','.join(CONTROLLERS)} (comma-separated): {error}"
            ) from None
    return list(dict.fromkeys(names))


def _setting(text: str) -> tuple[str, object]:
    """``FIELD=VALUE`` with VALUE read as JSON (numbers, true/false, lists) or else as a string."""
    field, equals, value = text.partition("=")
    if not equals or not field.strip():
        raise ValueError(f"--set takes FIELD=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return field.strip(), tuple(parsed) if isinstance(parsed, list) else parsed


def config_overrides(args: argparse.Namespace, config_class) -> dict:
    """The config fields the command line sets for an environment whose config is ``config_class``."""
    fields = {field.name for field in dataclasses.fields(config_class)}
    overrides = {"start_hour": 24 * args.start_day, "episode_hours": 24 * args.days}
    for name, flag in FIELD_FLAGS.items():
        value = getattr(args, name)
        if value is None or value is False:
            continue
        if name not in fields:
            raise ValueError(f"{flag} does not apply to the {args.env} environment (its config has no {name!r})")
        overrides[name] = value
    for text in args.set or ():
        name, value = _setting(text)
        check_unknown_keys({name: value}, [field.name for field in dataclasses.fields(config_class)], source="--set")
        overrides[name] = value
    return overrides


def make_env(args: argparse.Namespace):
    """The environment named by ``args.env`` with the episode window and data options of the command line."""
    from evosparse.envs.registry import ENVIRONMENTS

    if args.env not in ENVIRONMENTS:
        raise ValueError(f"ENV must be one of {', '.join(ENVIRONMENTS)} (see 'evosparse grid list'), got {args.env!r}")

    if args.days < 1 or args.start_day < 0 or args.start_day + args.days > DAYS_IN_DATA:
        raise ValueError(
            f"--start-day + --days must fit in the {DAYS_IN_DATA}-day data year with --days >= 1 "
            f"and --start-day >= 0, got --start-day {args.start_day} --days {args.days}"
        )
    if args.n_buildings is not None and args.n_buildings < 1:
        raise ValueError(f"--n-buildings must be >= 1, got {args.n_buildings}")
    if args.steps_per_hour is not None and args.steps_per_hour not in (1, 4):
        raise ValueError(f"--steps-per-hour must be 1 or 4, got {args.steps_per_hour}")
    spec = ENVIRONMENTS[args.env]
    return spec.env(spec.config(**config_overrides(args, spec.config)))


def _check_plot(args: argparse.Namespace) -> None:
    """--plot / --plot-week are checked before any episode runs, not after the last one."""
    if args.plot_week < 0:
        raise ValueError(f"--plot-week must be >= 0, got {args.plot_week}")
    weeks = math.ceil(args.days / 7)
    if args.plot_week >= weeks:
        raise ValueError(
            f"--plot-week must be in [0, {weeks - 1}] for an episode of --days {args.days}, got {args.plot_week}"
        )
    if args.plot is None:
        return
    path = Path(args.plot)
    if path.suffix.lower() != ".png":
        raise ValueError(f"--plot must name a .png file, got {args.plot!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--plot: the folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"--plot: {args.plot!r} is a folder, not a file")
    from evosparse.envs.plot import require_matplotlib

    require_matplotlib()


def command_run(args: argparse.Namespace) -> int:
    from evosparse.envs.controllers import compare_controllers
    from evosparse.envs.metrics import format_table

    controllers = _controllers(args.controller)
    _check_plot(args)
    env = make_env(args)
    n_buildings = getattr(env.unwrapped.config, "n_buildings", None)
    building_hours = (n_buildings or 1) * args.days * 24
    optimum_fits = building_hours <= MAX_OPTIMAL_BUILDING_HOURS
    if "optimal" in controllers and not optimum_fits:
        raise ValueError(
            f"--controller optimal solves one LP over --n-buildings x --days x 24 = {building_hours:,} "
            f"building-hours; the limit is {MAX_OPTIMAL_BUILDING_HOURS:,} (e.g. 300 buildings for 30 days): "
            "lower --n-buildings or --days, or leave out optimal"
        )
    comparison = compare_controllers(env, controllers, seed=args.seed, gap_reference=optimum_fits)
    rows, notes = comparison.rows, comparison.notes
    if not optimum_fits:
        notes.append("gap_closed not computed: the optimum of this many building-hours is too large to solve")
    split = getattr(env.unwrapped.config, "split", "all")
    days = f"days {args.start_day}..{args.start_day + args.days - 1}"
    where = "of the data year" if split == "all" else f"of its {split!r} split"
    if getattr(env.unwrapped.config, "random_start", False):
        days, where = f"{args.days} days from a random start day", f"in its {split!r} split"
    title = f"{args.env}: {days} {where}, seed {args.seed}" + (
        f", {n_buildings} buildings" if n_buildings is not None else ""
    )
    if args.json:
        clean = {
            name: {
                key: (None if isinstance(value, float) and not math.isfinite(value) else value)
                for key, value in row.items()
            }
            for name, row in rows.items()
        }
        print(json.dumps({"title": title, "metrics": clean, "notes": notes}, indent=2))
    else:
        print(format_table(rows, title))
        for note in notes:
            print(note)
    if args.plot:
        from evosparse.envs.plot import plot_week

        shown = controllers[-1]
        steps_per_day = 24 * getattr(env.unwrapped.config, "steps_per_hour", 1)
        path = plot_week(
            comparison.logs[shown],
            args.plot,
            week=args.plot_week,
            steps_per_day=steps_per_day,
            title=f"{title} - {shown} controller, week {args.plot_week}",
        )
        print(f"plot of week {args.plot_week} ({shown} controller) written to {path}")
    return 0


def command_list(args: argparse.Namespace) -> int:
    from evosparse.envs import CONTROLLERS, ENVIRONMENTS

    print("environments (evosparse grid run NAME):")
    for name, spec in ENVIRONMENTS.items():
        parallel = f", PettingZoo {spec.parallel.__name__}" if spec.parallel else ""
        print(f"  {name:<11}{spec.gym_id} ({spec.env.__name__}{parallel}): {spec.description}")
    print(f"controllers (--controller NAME[,NAME...]): {', '.join(CONTROLLERS)}")
    return 0


def register(commands, parser_class=argparse.ArgumentParser) -> None:
    """Add ``grid`` (``run`` and ``list`` under it) to an argparse subparsers object.

    The registries are read when a command runs, not here: importing the environments (gymnasium, SciPy)
    for every ``evosparse`` command would cost a second each."""
    grid = commands.add_parser(
        "grid",
        help="smart-grid environments: play the no-control, rule and optimal yardsticks",
        description="Smart-grid environments on real data (CityLearn 2022, ENTSO-E prices, ElaadNL EV sessions).",
    )
    sub = grid.add_subparsers(dest="grid_command", metavar="COMMAND", required=True, parser_class=parser_class)
    run = sub.add_parser(
        "run",
        help="run controllers on one episode and print the KPI table",
        description="Run controllers on one episode of an environment and print CityLearn-style KPIs with each "
        "controller's share of the gap to the optimum; the default window is the held-out last 30 days of the "
        "data year. 'evosparse grid list' names the environments and controllers.",
    )
    run.add_argument("env", metavar="ENV", help="a registered environment, e.g. building (see 'evosparse grid list')")
    run.add_argument(
        "--controller",
        default="none,rule,optimal",
        metavar="NAME[,NAME...]",
        help="registered controllers (NAME or NAME:ARGUMENT; see 'evosparse grid list') [none,rule,optimal]",
    )
    run.add_argument("--start-day", type=int, default=335, help="first day of the episode in the data year [335]")
    run.add_argument("--days", type=int, default=30, help="episode length in days [30]")
    run.add_argument("--seed", type=seed_type, default=0, help="seed of the episode (EV sessions, outages, noise) [0]")
    run.add_argument("--data-dir", help="CityLearn 2022 folder (Building_N.csv, ...) [the bundled subset]")
    run.add_argument("--price-file", help="day-ahead price CSV (EV2Gym Dutch or Belgian DAM_prices.csv) [bundled]")
    run.add_argument("--building", type=int, help="building: the CityLearn building number [1]")
    run.add_argument("--n-buildings", type=int, help="community: number of buildings [10]")
    run.add_argument("--peer-to-peer", action="store_true", help="community: trade inside at the mid price")
    run.add_argument("--steps-per-hour", type=int, help="market: 1 (hourly) or 4 (quarter-hourly) [1]")
    run.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="set any field of the environment's config, e.g. --set battery_kwh=10 (repeatable)",
    )
    run.add_argument("--plot", metavar="FILE.png", help="write a PNG of one week for the last controller listed")
    run.add_argument("--plot-week", type=int, default=0, help="which week of the episode to plot [0]")
    run.add_argument("--json", action="store_true", help="print JSON instead of a table")
    run.set_defaults(handler=command_run, func=command_run)
    listing = sub.add_parser("list", help="the registered environments and controllers")
    listing.set_defaults(handler=command_list, func=command_list)
