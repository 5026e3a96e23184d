"""The grid results table: RL agents against the rule controller on the held-out month, as a share of the gap
between no control and the perfect-foresight optimum.

    python benchmarks/bench_rl_grid.py train --out-dir DIR [--variants building-day_ahead,...] [--kinds dense,sparse]
        [--steps 8000] [--seeds 0] [--eval-every 2000] [--hvac-action power|target]
        [--residual rule|none] [--residual-scale 0.3] [--residual-cost 0]
        [--relative-reward] [--alpha-init 1.0] [--agent-settings JSON] [--validation]
    python benchmarks/bench_rl_grid.py table --out-dir DIR [--variants ...] [--kinds ...] [--seeds 0]
        [--checkpoint last|best]

1. **train**: every (variant, kind, seed) is trained into ``DIR/runs/<variant>-<kind>-s<seed>`` on the training
   split (random start days of the first eleven months) and evaluated on the held-out last month
   (:func:`evosparse.rl.grid.grid_run_config`; the community through :mod:`evosparse.rl.community`).
   Finished runs are reused and interrupted ones resumed, so the runner can be stopped and started again.
   With ``--validation`` a run trains on the first ten months, is evaluated on the eleventh (before it learns,
   too) and keeps its best checkpoint there (``keep_best``): the held-out month is not looked at to choose.
2. **table**: for each variant, the environment of ``evosparse grid run`` on the held-out month (seed 0) plays
   none / rule / optimal and every finished agent (the ``agent:RUN_DIR`` controller); the table gives each
   one's total cost and share of the gap closed, the weights of the agent's networks against the dense
   ones, and its training steps and time. The sudden-change variant also splits the month at the change:
   gap closed before and after it, and the days until the agent's three-day gap closed is back at its level
   before the change. ``--checkpoint best`` plays each run's best validation checkpoint (``agent_best``)
   instead of its last; the steps column then gives that checkpoint's step.

Variants (``VARIANTS``): the building with day-ahead and with tariff prices, with the reward settled once a day
(``reward_delay="daily"``), with a sudden tariff switch (day-ahead -> tariff mid-episode: hour 84 of each training
week, day 15 of the held-out month); the intraday market; the community with one shared policy, with independent
learners, and with one central agent whose action is every battery (``community-central``, the one community
variant that can correct the rule). Kinds: ``dense`` (SAC 64-64), ``sparse`` (SAC, SET at 20% of the dense
weights), ``dqn`` (DQN with 5 levels per device, building only). Every agent normalises its observations by
running statistics (``normalize_observations``); the building agents also observe the mean price of the last 24
hours (``price_memory_hours=24``, the rule's reference) and, with ``--hvac-action target``, set the zone's
temperature through its thermostat (``hvac_action="target"``) instead of the heat pump's power. With ``--residual
rule`` the building, market and central community agents correct the rule's action by at most ``--residual-scale``
instead of acting alone (``evosparse/Residual-v0``, :mod:`evosparse.envs.residual`); ``--alpha-init`` sets SAC's
initial entropy temperature (the residual runs start it low, so early exploration noise stays small beside the
rule).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from evosparse.envs.controllers import compare_controllers
from evosparse.envs.metrics import gap_closed
from evosparse.envs.registry import get_spec
from evosparse.rl.grid import grid_run_config, register_agent_controller, split_kwargs
from evosparse.rl.run import read_run_config, train_rl

CHANGE_TRAIN_HOUR, CHANGE_TEST_DAY = 84, 15
COMMUNITY_BUILDINGS = 5  # independent learners cost one update per building-hour: 5 buildings fit the budget
TARIFF_SWITCH = {"kind": "tariff_switch"}
# The building agents observe the mean price of the last 24 hours, the reference of the rule controller
# (evosparse.envs.policies.PriceMemory): otherwise they would see less of the price history than the rule.
MEMORY = {"price_memory_hours": 24}
RESIDUAL_OUTPUT_SCALE = 0.01  # residual agents: factor on the actor's initial output layer (corrections ~0)
# name -> (environment, settings of both splits, settings of the held-out month only)
VARIANTS = {
    "building-day_ahead": ("building", {"price_signal": "day_ahead", **MEMORY}, {}),
    "building-tariff": ("building", {"price_signal": "tariff", **MEMORY}, {}),
    "building-delayed": ("building", {"reward_delay": "daily", **MEMORY}, {}),
    "building-change": (
        "building",
        {"changes": [{**TARIFF_SWITCH, "hour": CHANGE_TRAIN_HOUR}], **MEMORY},
        {"changes": [{**TARIFF_SWITCH, "hour": 24 * CHANGE_TEST_DAY}]},
    ),
    "market": ("market", {}, {}),
    "community-shared": ("community", {"n_buildings": COMMUNITY_BUILDINGS}, {}),
    "community-independent": ("community", {"n_buildings": COMMUNITY_BUILDINGS}, {}),
    # One agent for the whole community (every battery is one coordinate of its action): a single-agent run
    # of the centralised environment, so that it can correct the community's rule (--residual rule).
    "community-central": ("community", {"n_buildings": COMMUNITY_BUILDINGS}, {}),
}
COMMUNITY_MODES = ("community-shared", "community-independent")  # multi-agent runs (evosparse.rl.community)
# Observations mix scales (prices ~0.1-0.4, temperatures ~20, an EV's remaining kWh up to ~60): the agents
# normalise them by running statistics (evosparse.rl.normalize), saved with every checkpoint.
NETWORK = {
    "actor_hidden": [64, 64], "critic_hidden": [64, 64], "batch_size": 128, "learning_starts": 1000,
    "normalize_observations": True,
}  # fmt: skip
KINDS = {
    "dense": {"algo": "sac", "agent": {"strategy": "dense"}},
    "sparse": {"algo": "sac", "agent": {"strategy": "set", "actor_density": 0.2, "critic_density": 0.2}},
    "td3": {"algo": "td3", "agent": {"strategy": "dense"}},
    "td3-sparse": {"algo": "td3", "agent": {"strategy": "set", "actor_density": 0.2, "critic_density": 0.2}},
    "dqn": {
        "algo": "dqn",
        "agent": {"critic_hidden": [64, 64], "learning_starts": 1000, "normalize_observations": True},
        "levels": 5,
    },  # fmt: skip
}


def run_config(
    variant: str, kind: str, *, seed: int, steps: int, eval_every: int, hvac_action: str = "power",
    residual: str | None = None, residual_scale: float | None = None, alpha_init: float | None = None,
    agent_settings: dict | None = None, residual_cost: float | None = None, relative_reward: bool = False,
    validation: bool = False,
):  # fmt: skip
    """The RunConfig of one single-agent run (building and market variants); ``hvac_action="target"``: the
    building agents set the zone's temperature through its thermostat instead of the heat pump's power;
    ``residual``: the agent corrects that controller's action by at most ``residual_scale``."""
    env, both, test_only = VARIANTS[variant]
    if env == "building" and hvac_action != "power":
        both = {**both, "hvac_action": hvac_action}
    spec = KINDS[kind]
    if spec["algo"] == "dqn" and env != "building":
        raise ValueError(f"kind dqn applies to the building variants only, got {variant!r}")
    agent = {**NETWORK, **spec["agent"]} if spec["algo"] in ("sac", "td3") else dict(spec["agent"])
    agent["buffer_size"] = steps
    if residual is not None:  # the policy starts at the rule: its initial corrections are ~0 (envs.residual)
        agent["actor_output_scale"] = RESIDUAL_OUTPUT_SCALE
    if alpha_init is not None:
        if spec["algo"] != "sac":
            raise ValueError(f"alpha_init applies to the SAC kinds (dense, sparse), got kind {kind!r}")
        agent["alpha_init"] = alpha_init
    agent.update(agent_settings or {})
    env_kwargs = dict(both)
    if residual_cost is not None:
        env_kwargs["correction_cost"] = residual_cost
    if relative_reward:
        env_kwargs["relative_reward"] = True
    if "levels" in spec:
        env_kwargs["discrete_levels"] = spec["levels"]
    config = grid_run_config(
        env, algo=spec["algo"], env_kwargs=env_kwargs, total_steps=steps, seed=seed, eval_every=eval_every,
        checkpoint_every=eval_every, agent=agent, residual=residual, residual_scale=residual_scale,
        validation=validation,
    )  # fmt: skip
    if test_only:
        config = config.replace(eval_env_kwargs={**config.eval_env_kwargs, **test_only})
    return config


def community_config(variant: str, kind: str, *, seed: int, steps: int, eval_every: int):
    from evosparse.rl.community import CommunityRunConfig

    spec = KINDS[kind]
    if spec["algo"] != "sac":
        raise ValueError(f"the community variants train SAC (kinds dense, sparse), got kind {kind!r}")
    settings = dict(VARIANTS[variant][1])
    return CommunityRunConfig(
        mode=variant.split("-")[1], n_buildings=settings.pop("n_buildings"), env=settings, total_hours=steps,
        seed=seed, eval_every=eval_every, checkpoint_every=eval_every,
        agent={**NETWORK, **spec["agent"], "buffer_size": steps},
    )  # fmt: skip


def run_dir(out_dir: Path, variant: str, kind: str, seed: int) -> Path:
    return out_dir / "runs" / f"{variant}-{kind}-s{seed}"


def _finished(folder: Path, steps: int | None = None) -> bool:
    """The run has a summary (and, with ``steps``, reached that many steps)."""
    summary = folder / "summary.json"
    return summary.is_file() and (steps is None or json.loads(summary.read_text())["steps"] >= steps)


def command_train(args: argparse.Namespace) -> None:
    for variant in args.variants:
        for kind in args.kinds:
            if KINDS[kind]["algo"] == "dqn" and not variant.startswith("building"):
                continue
            if args.residual is not None and (variant in COMMUNITY_MODES or KINDS[kind]["algo"] == "dqn"):
                raise SystemExit(
                    f"--residual applies to the building, market and community-central variants with SAC, "
                    f"not {variant}, {kind}"
                )
            for seed in args.seeds:
                folder = run_dir(args.out_dir, variant, kind, seed)
                if _finished(folder, args.steps):
                    print(f"{folder.name}: finished, reused", flush=True)
                    continue
                resume = (folder / "checkpoint.json").is_file()
                began = time.perf_counter()
                print(f"{folder.name}: {'resuming' if resume else 'training'} ({args.steps} steps)", flush=True)
                if variant in COMMUNITY_MODES:
                    from evosparse.rl.community import train_community

                    config = community_config(variant, kind, seed=seed, steps=args.steps, eval_every=args.eval_every)
                    train_community(config, folder, resume=resume, overwrite=not resume and folder.exists())
                else:
                    config = run_config(
                        variant, kind, seed=seed, steps=args.steps, eval_every=args.eval_every,
                        hvac_action=args.hvac_action, residual=args.residual, residual_scale=args.residual_scale,
                        residual_cost=args.residual_cost, alpha_init=args.alpha_init,
                        agent_settings=args.agent_settings, relative_reward=args.relative_reward,
                        validation=args.validation,
                    )  # fmt: skip
                    if resume:  # a longer run continues the saved one (its replay buffer keeps the saved size)
                        config = read_run_config(folder).replace(total_steps=max(args.steps, config.total_steps))
                    train_rl(config, folder, resume=resume, overwrite=not resume and folder.exists())
                print(f"{folder.name}: done in {time.perf_counter() - began:.0f} s", flush=True)


def test_environment(variant: str):
    """The held-out month of ``variant`` as ``evosparse grid run`` plays it."""
    env, both, test_only = VARIANTS[variant]
    settings = {**both, **split_kwargs()[1], **test_only}
    settings.pop("reward_delay", None)  # costs are the same; the yardsticks read the undelayed log
    settings.pop("hvac_action", None)  # the yardsticks set powers; the agent controller converts its targets
    spec = get_spec(env)
    return spec.env(spec.config.from_dict(settings, source=variant) if settings else None)


def _daily_cost(log: dict[str, np.ndarray]) -> np.ndarray:
    cost = -log["reward"]
    return cost[: len(cost) // 24 * 24].reshape(-1, 24).sum(axis=1)


def recovery(logs: dict, name: str, change_day: int) -> dict[str, float | int | None]:
    """Gap closed before / after the change, and the days after it until the three-day gap closed of ``name``
    is back at its level before the change (None: not within the month)."""
    none, best, own = (_daily_cost(logs[key]) for key in ("none", "optimal", name))

    def share(days: slice) -> float:
        return gap_closed(own[days].sum(), no_control=none[days].sum(), optimum=best[days].sum())

    before = share(slice(0, change_day))
    back = None
    for day in range(change_day, len(own) - 2):
        if share(slice(day, day + 3)) >= before:
            back = day - change_day
            break
    return {"before": before, "after": share(slice(change_day, len(own))), "recovery_days": back}


def command_table(args: argparse.Namespace) -> None:
    register_agent_controller()
    lines = []
    for variant in args.variants:
        agents = {}
        for kind in args.kinds:
            for seed in args.seeds:
                folder = run_dir(args.out_dir, variant, kind, seed)
                if _finished(folder):
                    agents[f"{kind} s{seed}"] = folder
                elif (folder / "checkpoint.json").is_file():  # an unfinished run plays its last checkpoint
                    agents[f"{kind} s{seed} (unfinished)"] = folder
        env = test_environment(variant)
        controller = "agent_best" if args.checkpoint == "best" else "agent"
        names = ["none", "rule", "optimal", *(f"{controller}:{folder}" for folder in agents.values())]
        comparison = compare_controllers(env, names, seed=0)
        lines += ["", f"### {variant}", ""]
        change = variant == "building-change"
        header = "| controller | total cost | gap closed |" + (
            " before change | after | recovery days |" if change else ""
        )
        lines += [header + " weights (of dense) | steps | train s |", "|" + "---|" * (header.count("|") + 2)]
        for label, name in [("none", "none"), ("rule", "rule"), ("optimal", "optimal")] + [
            (label, f"{controller}:{folder}") for label, folder in agents.items()
        ]:
            row = comparison.rows[name]
            cells = [label, f"{row['total_cost']:.2f}", f"{row['gap_closed']:.1%}"]
            if change:
                if name in ("none", "optimal"):
                    cells += ["", "", ""]
                else:
                    moved = recovery(comparison.logs, name, CHANGE_TEST_DAY)
                    days = moved["recovery_days"]
                    cells += [f"{moved['before']:.1%}", f"{moved['after']:.1%}", "-" if days is None else str(days)]
            folder = Path(name.partition(":")[2])
            if name.startswith(controller + ":") and _finished(folder):
                summary = json.loads((folder / "summary.json").read_text())
                stored = sum(count["weights"] for count in summary["parameters"].values())
                dense = sum(count["dense_weights"] for count in summary["parameters"].values())
                seconds = summary["train_seconds"]
                steps = summary["best_step"] if controller == "agent_best" else summary["steps"]
                cells += [f"{stored:,} ({stored / dense:.0%})", f"{steps:,}", f"{seconds:.0f}"]
            elif name.startswith(controller + ":"):
                record = json.loads((folder / "checkpoint.json").read_text())["data"]
                seconds = record["extra"]["train_seconds"]
                cells += ["-", f"{record['num_timesteps']:,}", f"{seconds:.0f}"]
            else:
                cells += ["", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
        print("\n".join(lines[-(len(names) + 4) :]), flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines).lstrip() + "\n")


def _list(choices):
    def parse(text: str) -> list[str]:
        values = [value.strip() for value in text.split(",") if value.strip()]
        unknown = [value for value in values if value not in choices]
        if unknown or not values:
            raise argparse.ArgumentTypeError(f"must be a comma-separated list of {', '.join(choices)}, got {text!r}")
        return values

    return parse


def _scale(text: str) -> float | list[float]:
    try:
        values = [float(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or comma-separated numbers, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("train", "table"):
        command = sub.add_parser(name)
        command.add_argument("--out-dir", type=Path, required=True)
        command.add_argument("--variants", type=_list(VARIANTS), default=list(VARIANTS))
        command.add_argument("--kinds", type=_list(KINDS), default=["dense", "sparse"])
        command.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], default=[0])
        if name == "train":
            command.add_argument("--steps", type=int, default=8000, help="training steps (community: hours)")
            command.add_argument("--eval-every", type=int, default=2000)
            command.add_argument(
                "--hvac-action", choices=("power", "target"), default="power",
                help="building agents set the heat pump's power, or a target deviation held by the thermostat",
            )  # fmt: skip
            command.add_argument(
                "--residual", choices=("rule", "none"), default=None,
                help="the agent corrects this controller's action (residual RL) instead of acting alone",
            )  # fmt: skip
            command.add_argument(
                "--residual-scale", type=_scale, default=None,
                help="largest correction in action units, one number or one per action (default 0.3)",
            )  # fmt: skip
            command.add_argument(
                "--residual-cost", type=float, default=None,
                help="training penalty per squared correction (envs.residual correction_cost; default 0)",
            )  # fmt: skip
            command.add_argument(
                "--relative-reward", action="store_true",
                help="residual agents learn from the reward minus the rule's on the same episode (a shadow copy)",
            )  # fmt: skip
            command.add_argument("--alpha-init", type=float, default=None, help="SAC's initial entropy temperature")
            command.add_argument(
                "--agent-settings", type=json.loads, default=None,
                help='JSON table of agent settings over the kind\'s, e.g. \'{"gamma": 0.9}\'',
            )  # fmt: skip
            command.add_argument(
                "--validation", action="store_true",
                help="train on the first ten months, keep the best checkpoint on the eleventh (keep_best)",
            )  # fmt: skip
        else:
            command.add_argument("--out", help="also write the markdown tables to this file")
            command.add_argument(
                "--checkpoint", choices=("last", "best"), default="last",
                help="play each run's last checkpoint, or its best validation one (runs trained with --validation)",
            )  # fmt: skip
    args = parser.parse_args(argv)
    if args.command == "train":
        import torch

        torch.set_num_threads(1)
        command_train(args)
    else:
        command_table(args)


if __name__ == "__main__":
    main(sys.argv[1:])
