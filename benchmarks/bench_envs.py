"""Smart-grid environments: steps per second (ours vs CityLearn, side by side) and the yardstick KPI tables.

    python benchmarks/bench_envs.py [--repeats 5] [--citylearn-python /work/venv-citylearn/bin/python]
                                    [--data-dir ../shared/data/energy] [--skip-speed] [--skip-metrics]

1. Speed, one building: ``BuildingEnergyEnv`` (all devices, and battery only as in CityLearn 2022) against
   ``citylearn.CityLearnEnv`` on the same 2022 data (Building_1, central agent). CityLearn runs in its own
   virtual environment (it pins gymnasium 0.28), called through a subprocess each repeat; the timing is taken
   inside that process around the step loop only. Repeats alternate ours / CityLearn; medians and ratios.
2. Speed, communities: the vectorised core, the centralised gymnasium view and the PettingZoo view with 17 and
   1,000 buildings, against CityLearn's 17-building district (per building-step).
3. KPI tables of none / rule / optimal on the held-out month (the last 30 days of the data year) per environment.

Actions are pre-drawn uniform random vectors (seeded), so every simulator does real work each step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "energy"
HELD_OUT = {"start_hour": 24 * 335, "episode_hours": 24 * 30}

CITYLEARN_SCRIPT = r"""
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
from citylearn.citylearn import CityLearnEnv
schema, n_buildings, n_steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buildings = [f"Building_{i}" for i in range(1, n_buildings + 1)]
env = CityLearnEnv(schema, central_agent=True, buildings=buildings)
env.reset()
rng = np.random.default_rng(0)
shape = env.action_space[0].shape
actions = [[rng.uniform(-1, 1, shape).astype(np.float32)] for _ in range(n_steps)]
start = time.perf_counter()
for action in actions:
    env.step(action)
elapsed = time.perf_counter() - start
print(json.dumps({"steps_per_second": n_steps / elapsed, "n_buildings": n_buildings,
                  "n_actions": int(np.prod(shape))}))
"""


def _time_steps(step, actions) -> float:
    start = time.perf_counter()
    for action in actions:
        step(action)
    return len(actions) / (time.perf_counter() - start)


def ours_one_building(n_steps: int, *, battery_only: bool, wrapped: bool = False) -> float:
    import gymnasium as gym

    import evosparse.envs  # noqa: F401  (registers the ids)
    from evosparse.envs import BuildingEnergyEnv

    options = dict(hvac=False, ev=False, appliance=False) if battery_only else {}
    if wrapped:
        env = gym.make("evosparse/BuildingEnergy-v0", episode_hours=n_steps, **options)
    else:
        env = BuildingEnergyEnv(episode_hours=n_steps, **options)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (n_steps, *env.action_space.shape)).astype(np.float32)
    return _time_steps(env.step, actions)


def ours_community(n_buildings: int, n_steps: int, view: str) -> float:
    from evosparse.envs import EnergyCommunityEnv, EnergyCommunityParallelEnv

    if view == "pettingzoo":
        env = EnergyCommunityParallelEnv(n_buildings=n_buildings, episode_hours=n_steps)
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        actions = [
            {agent: rng.uniform(-1, 1, 1).astype(np.float32) for agent in env.possible_agents} for _ in range(n_steps)
        ]
        return _time_steps(env.step, actions)
    env = EnergyCommunityEnv(n_buildings=n_buildings, episode_hours=n_steps)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (n_steps, n_buildings)).astype(np.float32)
    return _time_steps(env.step_arrays if view == "core" else env.step, actions)


def citylearn(python: str, schema: Path, n_buildings: int, n_steps: int, script: Path) -> float | None:
    try:
        result = subprocess.run(
            [python, str(script), str(schema), str(n_buildings), str(n_steps)],
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        print(f"  CityLearn run failed: {error}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["steps_per_second"]


def speed(args) -> None:
    schema = Path(args.data_dir) / "citylearn_challenge_2022_phase_all" / "schema.json"
    have_citylearn = Path(args.citylearn_python).is_file() and schema.is_file()
    if not have_citylearn:
        print(f"CityLearn comparison skipped: need {args.citylearn_python} and {schema}")
    script = Path(tempfile.mkdtemp()) / "citylearn_steps.py"
    script.write_text(CITYLEARN_SCRIPT)
    samples: dict[str, list[float]] = {}

    def record(name, value):
        if value is not None:
            samples.setdefault(name, []).append(value)

    for repeat in range(args.repeats):
        record("ours 1 building, all devices", ours_one_building(args.steps, battery_only=False))
        record("ours 1 building, battery only", ours_one_building(args.steps, battery_only=True))
        record("ours 1 building, gym.make wrappers", ours_one_building(args.steps, battery_only=False, wrapped=True))
        if have_citylearn:
            record("CityLearn 1 building", citylearn(args.citylearn_python, schema, 1, args.citylearn_steps, script))
            record(
                "CityLearn 17 buildings",
                citylearn(args.citylearn_python, schema, 17, args.citylearn_steps // 4, script),
            )
        for view in ("core", "gymnasium", "pettingzoo"):
            record(f"ours 17 buildings, {view}", ours_community(17, args.steps // 4, view))
            record(f"ours 1000 buildings, {view}", ours_community(1000, args.steps // 20, view))
        print(f"  repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)

    medians = {name: statistics.median(values) for name, values in samples.items()}
    buildings = {name: (1000 if "1000" in name else 17 if "17" in name else 1) for name in medians}
    print(f"\nSteps per second, median of {args.repeats} alternating repeats (building-steps/s = steps/s x buildings)")
    print(f"{'environment':<40}{'steps/s':>12}{'building-steps/s':>18}{'min..max steps/s':>24}")
    for name, value in medians.items():
        low, high = min(samples[name]), max(samples[name])
        print(f"{name:<40}{value:>12,.0f}{value * buildings[name]:>18,.0f}{f'{low:,.0f}..{high:,.0f}':>24}")
    if "CityLearn 1 building" in medians:
        reference = medians["CityLearn 1 building"]
        district = medians["CityLearn 17 buildings"] * 17
        print("\nRatios per building-step (target >= 20x):")
        for name in (
            "ours 1 building, all devices",
            "ours 1 building, battery only",
            "ours 1 building, gym.make wrappers",
        ):
            print(f"  {name} / CityLearn 1 building: {medians[name] / reference:.1f}x")
        for view in ("core", "gymnasium", "pettingzoo"):
            ours = medians[f"ours 17 buildings, {view}"] * 17
            print(f"  ours 17 buildings ({view}) / CityLearn 17 buildings: {ours / district:.1f}x")


def metrics(args) -> None:
    from evosparse.envs import compare_controllers, format_table, make_env

    citylearn_dir = Path(args.data_dir) / "citylearn_challenge_2022_phase_all"
    full = citylearn_dir.is_dir()
    community_options = (
        dict(n_buildings=17, buildings=tuple(range(1, 18)), data_dir=str(citylearn_dir))
        if full
        else dict(n_buildings=10)
    )
    n_community = community_options["n_buildings"]
    environments = {  # title: (registry name, config fields)
        "building (Building_1, day-ahead price)": ("building", {}),
        "building (Building_1, CityLearn tariff)": ("building", dict(price_signal="tariff")),
        "microgrid (Buildings 1-3, outages)": ("microgrid", {}),
        "intraday market (hourly)": ("market", {}),
        "intraday market (quarter-hourly)": ("market", dict(steps_per_hour=4)),
        f"community ({n_community} buildings)": ("community", community_options),
        f"community ({n_community} buildings, peer-to-peer)": (
            "community",
            dict(peer_to_peer=True, **community_options),
        ),
    }
    for title, (name, options) in environments.items():
        env = make_env(name, **options, **HELD_OUT)
        start = time.perf_counter()
        comparison = compare_controllers(env, ["none", "rule", "optimal"], seed=0)
        elapsed = time.perf_counter() - start
        print()
        print(format_table(comparison.rows, f"{title}: held-out month (days 335-364), seed 0"))
        for note in comparison.notes:
            print(note)
        print(f"three controllers (plan included) {elapsed:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8000, help="steps per timing of one building")
    parser.add_argument("--citylearn-steps", type=int, default=2000)
    parser.add_argument("--citylearn-python", default="/work/venv-citylearn/bin/python")
    parser.add_argument("--data-dir", default=os.environ.get("EVOSPARSE_ENERGY_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-metrics", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    if not args.skip_speed:
        speed(args)
    if not args.skip_metrics:
        metrics(args)


if __name__ == "__main__":
    main()
