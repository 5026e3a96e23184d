"""``evosparse grid run ENV``: play the smart-grid yardsticks on an episode and print the KPI table.

    evosparse grid run {building,microgrid,market,community} [--controller none,rule,optimal]
        [--start-day 335] [--days 30] [--seed 0] [--data-dir DIR] [--price-file CSV]
        [--building 1] [--n-buildings 10] [--peer-to-peer] [--steps-per-hour 1] [--plot FILE.png] [--plot-week 0]
        [--json]

The table has one row per controller (CityLearn-style KPIs, see :mod:`evosparse.envs.metrics`); with both
``none`` and ``optimal`` in the list, ``gap_closed`` gives each controller's share of the gap closed.
"""

from __future__ import annotations

import argparse
import json
import math

from evosparse.cli._flags import seed_type

ENV_NAMES = ("building", "microgrid", "market", "community")
DAYS_IN_DATA = 365  # the CityLearn 2022 year
# The community LP has ~5 variables per building-hour; 300 buildings x 30 days took 150 s and 2 GB here.
MAX_OPTIMAL_BUILDING_HOURS = 300 * 24 * 30


def _controllers(text: str) -> list[str]:
    from evosparse.envs.controllers import CONTROLLERS

    names = [name.strip() for name in text.split(",") if name.strip()]
    bad = [name for name in names if name not in CONTROLLERS]
    if not names or bad:
        raise ValueError(f"--controller must be one or more of {','.join(CONTROLLERS)} (comma-separated), got {text!r}")
    return list(dict.fromkeys(names))


def make_env(args: argparse.Namespace):
    """The environment named by ``args.env`` with the episode window and data options of the command line."""
    from evosparse import envs

    if args.days < 1 or args.start_day < 0 or args.start_day + args.days > DAYS_IN_DATA:
        raise ValueError(
            f"--start-day + --days must fit in the {DAYS_IN_DATA}-day data year with --days >= 1 "
            f"and --start-day >= 0, got --start-day {args.start_day} --days {args.days}"
        )
    if args.n_buildings < 1:
        raise ValueError(f"--n-buildings must be >= 1, got {args.n_buildings}")
    if args.steps_per_hour not in (1, 4):
        raise ValueError(f"--steps-per-hour must be 1 or 4, got {args.steps_per_hour}")
    window = {"start_hour": 24 * args.start_day, "episode_hours": 24 * args.days}
    data = {} if args.data_dir is None else {"data_dir": args.data_dir}
    prices = {} if args.price_file is None else {"price_file": args.price_file}
    if args.env == "building":
        return envs.BuildingEnergyEnv(building=args.building, **window, **data, **prices)
    if args.env == "microgrid":
        return envs.MicrogridEnv(**window, **data, **prices)
    if args.env == "market":
        return envs.IntradayMarketEnv(steps_per_hour=args.steps_per_hour, **window, **prices)
    return envs.CommunityEnv(n_buildings=args.n_buildings, peer_to_peer=args.peer_to_peer, **window, **data, **prices)


def command_run(args: argparse.Namespace) -> int:
    from evosparse.envs.controllers import make_controller, run_episode
    from evosparse.envs.metrics import episode_metrics, format_table, gap_closed

    controllers = _controllers(args.controller)
    if args.plot_week < 0:
        raise ValueError(f"--plot-week must be >= 0, got {args.plot_week}")
    if args.env == "community" and "optimal" in controllers:
        building_hours = args.n_buildings * args.days * 24
        if building_hours > MAX_OPTIMAL_BUILDING_HOURS:
            raise ValueError(
                f"--controller optimal solves one LP over --n-buildings x --days x 24 = {building_hours:,} "
                f"building-hours; the limit is {MAX_OPTIMAL_BUILDING_HOURS:,} (e.g. 300 buildings for 30 days): "
                "lower --n-buildings or --days, or leave out optimal"
            )
    env = make_env(args)
    steps_per_day = 24 * getattr(env.config, "steps_per_hour", 1)
    rows, logs, notes = {}, {}, []
    for name in controllers:
        controller = make_controller(name, seed=args.seed)
        log = run_episode(env, controller, seed=args.seed)
        logs[name] = {key: value.copy() for key, value in log.items()}
        rows[name] = episode_metrics(log, steps_per_day=steps_per_day)
        rows[name]["clipped_actions"] = env.unwrapped.clipped_actions
        if name == "optimal":
            plan = controller.plan
            notes.append(
                f"optimal: model cost {plan.objective:.3f}, proven lower bound {plan.bound:.3f} ({plan.status})"
            )
    if "none" in rows and "optimal" in rows:
        for row in rows.values():
            row["gap_closed"] = gap_closed(
                row["total_cost"], no_control=rows["none"]["total_cost"], optimum=rows["optimal"]["total_cost"]
            )
    title = (
        f"{args.env}: days {args.start_day}..{args.start_day + args.days - 1} of the data year, seed {args.seed}"
        + (f", {args.n_buildings} buildings" if args.env == "community" else "")
    )
    if args.json:
        clean = {
            name: {
                key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in row.items()
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
        path = plot_week(
            logs[shown],
            args.plot,
            week=args.plot_week,
            steps_per_day=steps_per_day,
            title=f"{title} - {shown} controller, week {args.plot_week}",
        )
        print(f"plot of week {args.plot_week} ({shown} controller) written to {path}")
    return 0


def register(commands, parser_class=argparse.ArgumentParser) -> None:
    """Add ``grid`` (with ``run`` under it) to an argparse subparsers object."""
    grid = commands.add_parser(
        "grid",
        help="smart-grid environments: play the no-control, rule and optimal yardsticks",
        description="Smart-grid environments on real data (CityLearn 2022, ENTSO-E prices, ElaadNL EV sessions).",
    )
    sub = grid.add_subparsers(dest="grid_command", metavar="COMMAND", required=True, parser_class=parser_class)
    run = sub.add_parser(
        "run",
        help="run controllers on one episode and print the KPI table",
        description="Run controllers on one episode of an environment and print CityLearn-style KPIs; "
        "the default window is the held-out last 30 days of the data year.",
    )
    run.add_argument("env", choices=ENV_NAMES, help="which environment")
    run.add_argument(
        "--controller",
        default="none,rule,optimal",
        metavar="NAME[,NAME...]",
        help="one or more of none,rule,optimal,random [none,rule,optimal]",
    )
    run.add_argument("--start-day", type=int, default=335, help="first day of the episode in the data year [335]")
    run.add_argument("--days", type=int, default=30, help="episode length in days [30]")
    run.add_argument("--seed", type=seed_type, default=0, help="seed of the episode (EV sessions, outages, noise) [0]")
    run.add_argument("--data-dir", help="CityLearn 2022 folder (Building_N.csv, ...) [the bundled subset]")
    run.add_argument("--price-file", help="day-ahead price CSV (EV2Gym Dutch or Belgian DAM_prices.csv) [bundled]")
    run.add_argument("--building", type=int, default=1, help="building number for the building env [1]")
    run.add_argument("--n-buildings", type=int, default=10, help="buildings in the community [10]")
    run.add_argument("--peer-to-peer", action="store_true", help="community: trade inside at the mid price")
    run.add_argument("--steps-per-hour", type=int, default=1, help="market: 1 (hourly) or 4 (quarter-hourly) [1]")
    run.add_argument("--plot", metavar="FILE.png", help="write a PNG of one week for the last controller listed")
    run.add_argument("--plot-week", type=int, default=0, help="which week of the episode to plot [0]")
    run.add_argument("--json", action="store_true", help="print JSON instead of a table")
    run.set_defaults(handler=command_run, func=command_run)
