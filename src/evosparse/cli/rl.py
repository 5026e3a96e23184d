"""``evosparse rl``: train a (sparse) DQN / TD3 / SAC agent in a run folder, evaluate it; ``plot returns``.

    evosparse rl train --env ID --algo {dqn,td3,sac} [--strategy {dense,static,set,rigl,gmp}]
        [--actor-density D] [--critic-density D] [--total-steps N] [--seed S] [--out-dir DIR]
        [--resume | --overwrite] [--config FILE.toml] [--<run or agent setting> VALUE ...] [--quiet]
    evosparse rl community --mode {shared,independent} [--algo {sac,td3}] [--n-buildings 10] [--total-hours N]
        [--out-dir DIR] [--resume | --overwrite] [--<community run or agent setting> VALUE ...] [--quiet]
    evosparse rl eval RUN [--episodes N] [--seed S] [--json]
    evosparse plot returns RUN [RUN ...] [--out FILE.png] [--group-seeds]

Every field of :class:`evosparse.rl.run.RunConfig` and of the algorithms' configs (``DQNConfig``,
``TD3Config``, ``SACConfig``) is a ``train`` flag (``learning_rate`` -> ``--learning-rate``); flags override
``--config`` (TOML: the run's fields, the agent's in an ``[agent]`` table or at the top level), which
overrides the defaults. Environments are gymnasium ids, ``evosparse/BuildingEnergy-v0`` and the other
smart-grid ids included; ``--env-kwargs '{"reward_delay": "daily"}'`` passes keyword arguments to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from evosparse.cli._flags import add_config_flags, field_parser

RUN_ONLY = ("agent",)  # RunConfig fields that are not flags (the agent's settings are flags of their own)


# ---- flags of the algorithms' configs ------------------------------------------------------------------------------
# The run's flags come from add_config_flags (cli/_flags.py). The agent's flags span three configs (DQN, TD3,
# SAC) whose defaults and fields differ: one flag per name, its help listing each algorithm's default.
def agent_fields() -> dict[str, tuple[dict[str, Any], Any, list[str]]]:
    """Every algorithm config field: name -> (doc and default per algorithm, its setting, algorithms that have it)."""
    from evosparse.rl import ALGORITHMS, AlgoConfig

    shared = {field.name: field.metadata.get("doc", "") for field in dataclasses.fields(AlgoConfig)}
    fields: dict[str, tuple[dict[str, Any], Any, list[str]]] = {}
    for name, entry in ALGORITHMS.items():
        for leaf in entry.config_class.leaves():
            info, _, owners = fields.setdefault(leaf.flat, ({"doc": shared.get(leaf.flat, leaf.doc)}, leaf, []))
            info[name] = leaf.field.default
            owners.append(name)
    return fields


def _default_text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else ("none" if value in (None, {}) else str(value))


def _add_flags(group, fields) -> None:
    for name, (info, leaf, algorithms) in fields.items():
        defaults = {algo: _default_text(info[algo]) for algo in algorithms}
        if len(set(defaults.values())) == 1:
            default = next(iter(defaults.values()))
        else:
            default = ", ".join(f"{algo} {value}" for algo, value in defaults.items())
        owners = "" if len(algorithms) == 3 else f" ({', '.join(algorithms)} only)"
        doc = f"{info['doc']}{owners} [{default}]".replace("%", "%%")
        parse, metavar, boolean = field_parser(leaf)
        flag = "--" + name.replace("_", "-")
        if boolean:
            action = argparse.BooleanOptionalAction
            group.add_argument(flag, dest=name, action=action, default=argparse.SUPPRESS, help=doc)
        else:
            group.add_argument(flag, dest=name, type=parse, metavar=metavar, default=argparse.SUPPRESS, help=doc)


def split_values(values: dict[str, Any], *, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run settings, agent settings) of a flat mapping of settings; a key of neither is an error."""
    from evosparse._config import check_unknown_keys
    from evosparse.rl.run import RunConfig

    run_names, agent_names = RunConfig.flat_names(), agent_fields()
    check_unknown_keys(values, [*run_names, *agent_names], source=source)
    run = {key: value for key, value in values.items() if key in run_names}
    agent = {key: value for key, value in values.items() if key in agent_names}
    return run, {**(run.pop("agent", None) or {}), **agent}


def _check_agent_keys(algo: str, agent: dict[str, Any]) -> None:
    fields = agent_fields()
    foreign = [name for name in agent if algo not in fields[name][2]]
    if foreign:
        names = ", ".join("--" + name.replace("_", "-") for name in foreign)
        owners = sorted({owner for name in foreign for owner in fields[name][2]})
        raise ValueError(f"{names} is a setting of {', '.join(owners)}, not of --algo {algo}")


def run_config(args: argparse.Namespace, file_run: dict[str, Any], *, saved=None):
    """The :class:`RunConfig` of the flags over a config file's settings (over a resumed run's ``saved`` config)."""
    from evosparse.rl.run import RunConfig

    file_run = dict(file_run)
    file_agent = file_run.pop("agent", None) or {}
    flags = {name: getattr(args, name) for name in [*RunConfig.flat_names(), *agent_fields()] if hasattr(args, name)}
    flag_run, flag_agent = split_values(flags, source="the command line")
    if saved is not None:
        run = {**saved.to_dict(), **file_run, **flag_run}
        run["agent"] = {**saved.agent, **file_agent, **flag_agent}
    else:
        run = {**file_run, **flag_run, "agent": {**file_agent, **flag_agent}}
    _check_agent_keys(run.get("algo", "sac"), run["agent"])
    return RunConfig.from_dict(run, source="the command line")


def add_run_flags(parser, *, skip: tuple[str, ...] = ()) -> None:
    """The run's flags (RunConfig but ``skip``) and the agent's (every algorithm's config), with their choices."""
    from evosparse.rl import ALGORITHMS, STRATEGIES
    from evosparse.rl.run import RunConfig

    add_config_flags(parser, RunConfig, skip=(*RUN_ONLY, *skip), title="run")
    for action in parser._actions:
        if action.dest == "algo":  # a usage error before any work, like --strategy's
            action.choices = tuple(ALGORITHMS)
    agent_group = parser.add_argument_group("agent settings (DQNConfig / TD3Config / SACConfig; default in brackets)")
    _add_flags(agent_group, agent_fields())
    for action in agent_group._group_actions:
        if action.dest == "strategy":
            action.choices, action.metavar = STRATEGIES, "{" + ",".join(STRATEGIES) + "}"


def _default_out_dir(config) -> Path:
    env = config.env.split("/")[-1]
    return Path("runs") / "rl" / f"{env}-{config.algo}-{config.algo_config().strategy}-s{config.seed}"


# ---- commands -----------------------------------------------------------------------------------------------------
def command_train(args: argparse.Namespace) -> int:
    from evosparse.rl.run import format_summary, read_config_values, read_run_config, train_rl

    if args.resume and args.overwrite:
        raise ValueError("--resume continues a run and --overwrite replaces it; give one of them")
    file_run = read_config_values(args.config) if args.config else {}
    out_dir = getattr(args, "out_dir", None)
    saved = None
    if args.resume:
        if out_dir is None:
            raise ValueError("--resume needs --out-dir, the folder of the run to continue")
        saved = read_run_config(out_dir)
    config = run_config(args, file_run, saved=saved)
    if args.print_config:
        sys.stdout.write(config.to_toml())
        return 0
    out_dir = Path(out_dir) if out_dir is not None else _default_out_dir(config)
    args.out_dir = str(out_dir)  # for the message if the run is interrupted
    progress = not args.quiet and sys.stderr.isatty()
    if args.quiet:
        log = None
    else:
        from tqdm.auto import tqdm

        def log(line: str) -> None:
            tqdm.write(line, file=sys.stdout)

    result = train_rl(config, out_dir, resume=args.resume, overwrite=args.overwrite, progress=progress, log=log)
    if result.agent.num_timesteps >= config.total_steps:
        print(format_summary(result.summary))
        print(f"run folder: {out_dir}")
    return 0


def command_community(args: argparse.Namespace) -> int:
    from evosparse.rl.community import CommunityRunConfig, read_community_config, train_community

    if args.resume and args.overwrite:
        raise ValueError("--resume continues a run and --overwrite replaces it; give one of them")
    run_names = [name for name in CommunityRunConfig.flat_names() if name != "agent"]
    run = {name: getattr(args, name) for name in run_names if hasattr(args, name)}
    agent = {name: getattr(args, name) for name in agent_fields() if hasattr(args, name)}
    out_dir = getattr(args, "out_dir", None)
    if args.resume:
        if out_dir is None:
            raise ValueError("--resume needs --out-dir, the folder of the run to continue")
        saved = read_community_config(out_dir)
        run, agent = {**saved.to_dict(), **run}, {**saved.agent, **agent}
    _check_agent_keys(run.get("algo", "sac"), agent)
    config = CommunityRunConfig.from_dict({**run, "agent": agent}, source="the command line")
    if out_dir is None:
        strategy = config.algo_config().strategy
        out_dir = Path("runs") / "rl" / f"community-{config.mode}-{config.algo}-{strategy}-s{config.seed}"
    args.out_dir = str(out_dir)  # for the message if the run is interrupted
    result = train_community(config, out_dir, resume=args.resume, overwrite=args.overwrite,
                             log=None if args.quiet else print)  # fmt: skip
    summary = result.summary
    weights = ", ".join(f"{name} {count['weights']:,}/{count['dense_weights']:,}"
                        for name, count in summary["parameters"].items())  # fmt: skip
    print(f"{config.mode} {config.algo} {summary['strategy']} on {config.n_buildings} buildings: held-out month "
          f"return {summary['final_return']:.2f} after {summary['steps']:,} hours; weights {weights}")  # fmt: skip
    print(f"run folder: {out_dir} (evosparse grid run community --n-buildings {config.n_buildings} "
          f"--controller none,rule,agent:{out_dir})")  # fmt: skip
    return 0


def command_eval(args: argparse.Namespace) -> int:
    from evosparse.rl.evaluation import evaluate_policy
    from evosparse.rl.run import load_agent, make_run_env, read_run_config, set_threads

    if args.episodes < 1:
        raise ValueError(f"--episodes must be an integer >= 1, got {args.episodes}")
    config = read_run_config(args.run)
    set_threads(config.threads)
    agent = load_agent(args.run)
    env = make_run_env(config, evaluation=True)
    seed = config.eval_seed if args.seed is None else args.seed
    result = evaluate_policy(agent, env, episodes=args.episodes, seed=seed, deterministic=not args.stochastic)
    env.close()
    agent.close()
    if args.json:
        print(json.dumps({"run": str(args.run), "step": agent.num_timesteps, "seed": seed, **result.row(),
                          "returns": list(result.returns)}, indent=2))  # fmt: skip
    else:
        print(
            f"{args.run}: return {result.mean:.2f} +- {result.std:.2f} over {args.episodes} episodes "
            f"(seeds {seed}..{seed + args.episodes - 1}), agent at step {agent.num_timesteps:,}"
        )
    return 0


def command_plot_returns(args: argparse.Namespace) -> int:
    from evosparse.rl.plots import plot_returns

    runs = [Path(run) for run in args.runs]
    out = Path(args.out) if args.out else (runs[0] / "returns.png" if len(runs) == 1 else Path("returns.png"))
    path = plot_returns(runs, out, title=args.title, group_seeds=args.group_seeds)
    print(f"wrote {path}")
    return 0


# ---- parsers ------------------------------------------------------------------------------------------------------
def _plot_kinds(commands, parser_class):
    """The sub-parsers of ``evosparse plot`` (created by another command module, or here if it is absent)."""
    plot = commands.choices.get("plot")
    if plot is None:
        plot = commands.add_parser("plot", help="pictures of a run", description="Pictures of a run.")
        return plot.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=parser_class)
    return next(action for action in plot._actions if isinstance(action, argparse._SubParsersAction))


def register(commands, parser_class=argparse.ArgumentParser) -> None:
    """Add ``rl`` (train, eval) and ``plot returns`` to the ``evosparse`` sub-command parsers, and the
    ``agent:RUN_DIR`` controller to ``evosparse grid run``."""
    from evosparse.rl import STRATEGIES
    from evosparse.rl.grid import register_agent_controller

    register_agent_controller()

    rl = commands.add_parser(
        "rl",
        help="deep RL agents with truly sparse, evolving networks (train, eval)",
        description="DQN, TD3 and SAC (Stable-Baselines3-shaped) whose actor and critic are truly sparse "
        "networks that evolve (SET, RigL), stay fixed (static), or are pruned from dense (gmp).",
    )
    sub = rl.add_subparsers(dest="rl_command", metavar="COMMAND", required=True, parser_class=parser_class)
    train = sub.add_parser(
        "train",
        help="train an agent in a run folder (evaluations, checkpoints, summary)",
        description="Train an agent. Writes run.json, config.toml, history.csv/.json (the deterministic "
        "evaluations), checkpoint.* (every --checkpoint-every steps; --resume continues exactly), "
        "summary.json and TensorBoard logs (if installed) into --out-dir (default "
        "runs/rl/<env>-<algo>-<strategy>-s<seed>).",
    )
    train.add_argument("--config", metavar="FILE", help="TOML (or .json) config file; flags override it")
    train.add_argument("--resume", action="store_true", help="continue the run in --out-dir from its checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace the run in --out-dir")
    train.add_argument("--out-dir", dest="out_dir", default=argparse.SUPPRESS, help="run folder")
    train.add_argument("--quiet", action="store_true", help="no progress bar and no evaluation lines")
    train.add_argument("--print-config", action="store_true", help="print the run's config as TOML and exit")
    add_run_flags(train)
    train.set_defaults(handler=command_train, func=command_train, resume_hint="rl train --resume")

    from evosparse.cli.tune import register_rl_tune

    register_rl_tune(sub)

    from evosparse.rl.community import CommunityRunConfig

    community = sub.add_parser(
        "community",
        help="train the energy community's buildings: one shared policy or independent learners",
        description="Train SAC or TD3 learners for the energy community over random start days of the first "
        "eleven months, evaluated on the held-out last month: --mode shared (one policy for every building, a "
        "batch row per building) or independent (one learner per building). Writes a run folder like 'rl train' "
        "(--resume continues it); play it with 'evosparse grid run community --controller agent:RUN'. Agent "
        "settings that count steps count hours of one building.",
    )
    community.add_argument("--resume", action="store_true", help="continue the run in --out-dir from its checkpoint")
    community.add_argument("--overwrite", action="store_true", help="replace the run in --out-dir")
    community.add_argument("--out-dir", dest="out_dir", default=argparse.SUPPRESS,
                           help="run folder [runs/rl/community-<mode>-<algo>-<strategy>-s<seed>]")  # fmt: skip
    community.add_argument("--quiet", action="store_true", help="no evaluation lines")
    add_config_flags(community, CommunityRunConfig, skip=("agent",), title="community run")
    community_agent = community.add_argument_group("agent settings (TD3Config / SACConfig; default in brackets)")
    _add_flags(community_agent, agent_fields())
    for action in community_agent._group_actions:
        if action.dest == "strategy":
            action.choices, action.metavar = STRATEGIES, "{" + ",".join(STRATEGIES) + "}"
    community.set_defaults(handler=command_community, func=command_community, resume_hint="rl community --resume")

    evaluate = sub.add_parser(
        "eval",
        help="evaluate a run's agent (last checkpoint) on its evaluation environment",
        description="Load the agent at the last checkpoint of RUN and play --episodes episodes of its evaluation "
        "environment with the deterministic policy; print the return mean and standard deviation.",
    )
    evaluate.add_argument("run", metavar="RUN", help="folder of a run of 'evosparse rl train'")
    evaluate.add_argument("--episodes", type=int, default=10, help="episodes to play [10]")
    evaluate.add_argument("--seed", type=int, help="seed of the first episode [the run's eval_seed]")
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions instead of the greedy / mean one")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(handler=command_eval, func=command_eval)

    returns = _plot_kinds(commands, parser_class).add_parser(
        "returns",
        help="learning curves (evaluation return against steps) of RL runs, in one PNG",
        description="Draw the evaluation return of one or more 'evosparse rl train' runs against environment "
        "steps (mean and +- sd band) into one PNG.",
    )
    returns.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    returns.add_argument("--out", metavar="FILE.png", help="output [RUN/returns.png for one run, else returns.png]")
    returns.add_argument("--group-seeds", action="store_true", help="one line per setting, averaged over seeds")
    returns.add_argument("--title", help="title of the plot")
    returns.set_defaults(handler=command_plot_returns, func=command_plot_returns)
