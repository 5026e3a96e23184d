"""NEAT benchmarks: the paper's experiments over many seeds, and wall time against neat-python.

    # success rate, evaluations to solve, final network size over 50 seeds (paper: Section 4)
    python benchmarks/bench_neat.py study --task xor --seeds 50
    python benchmarks/bench_neat.py study --task double-pole --seeds 50
    python benchmarks/bench_neat.py study --task double-pole-nv --seeds 50 --max-generations 150

    # seconds per generation, neat-python vs evosparse, same process, same configuration file
    python benchmarks/bench_neat.py compare --task xor --generations 50 --repeats 3
    python benchmarks/bench_neat.py compare --task cartpole --generations 20 --repeats 3

``study`` runs seeds 1000, 1001, ... (the presets were chosen on seeds 0-29), over ``--workers``
processes, and prints one line per seed and a summary. Evaluations to solve count every genome of every
generation up to and including the one where the solution appears (the paper's "networks evaluated").
``--seed-list 1000,1006`` runs only those seeds (e.g. the failures of a study again with a longer cap).

``compare`` loads one neat-python INI file into both libraries (``examples/neat/xor.ini`` /
``examples/neat/cartpole.ini``), evaluates with the same fitness (XOR: (4 - sum |error|)^2; CartPole-v1:
mean return over 3 episodes seeded 0, 1, 2, neat-python stepping ``gymnasium.make("CartPole-v1")``)
and runs a fixed number of generations (no early stop), alternating the two libraries ``--repeats``
times. It reports the median seconds per generation of each and their ratio. evosparse's generic
gymnasium adapter (``gym:CartPole-v1``) is timed too, next to the compiled ``cartpole`` task.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from evosparse.neat import NeatConfig, Population
from evosparse.neat.tasks import make_task, preset

REPO = Path(__file__).resolve().parents[1]
FIRST_SEED = 1000
PAPER = {  # Stanley & Miikkulainen 2002, Section 4 (XOR: 100 runs; pole balancing: Tables 1 and 2)
    "xor": "4,755 evaluations mean (sd 2,553), 0 failures in 100 runs, 2.35 hidden nodes, 7.48 connections",
    "double-pole": "3,600 evaluations mean, 0 failures",
    "double-pole-nv": "33,184 evaluations mean, generalisation 286 of 625",
}


# ---- study -------------------------------------------------------------------------------------------------
def run_seed(task_name: str, seed: int, max_generations: int) -> dict:
    task = make_task(task_name)
    config = preset(task_name, task)
    started = time.perf_counter()
    population = Population(config, seed=seed)
    population.run(task, max_generations, solved=task.solution)
    solution = population.solution
    result = {
        "seed": seed,
        "solved": solution is not None,
        "evaluations": population.evaluations,
        "generations": len(population.history),  # evaluated generations
        "seconds": time.perf_counter() - started,
        "species": len(population.species.species),
    }
    if solution is not None:
        result["hidden"], result["connections"] = solution.size(config.n_outputs)
        if task_name == "double-pole-nv":
            result["generalisation"] = task.generalisation(solution, config)
    return result


def summarise(results: list[dict]) -> dict:
    solved = [r for r in results if r["solved"]]
    evaluations = [r["evaluations"] for r in solved]
    summary = {"runs": len(results), "solved": len(solved), "success_rate": len(solved) / len(results)}
    if solved:
        summary.update(
            evaluations_mean=statistics.mean(evaluations),
            evaluations_median=statistics.median(evaluations),
            evaluations_sd=statistics.stdev(evaluations) if len(evaluations) > 1 else 0.0,
            evaluations_min=min(evaluations),
            evaluations_max=max(evaluations),
            hidden_mean=statistics.mean(r["hidden"] for r in solved),
            connections_mean=statistics.mean(r["connections"] for r in solved),
        )
        if "generalisation" in solved[0]:
            summary["generalisation_mean"] = statistics.mean(r["generalisation"] for r in solved)
    summary["seconds_total"] = sum(r["seconds"] for r in results)
    return summary


def command_study(args: argparse.Namespace) -> int:
    if args.seed_list:
        seeds = [int(seed) for seed in args.seed_list.split(",")]
        what = f"seeds {args.seed_list}"
    else:
        seeds = list(range(FIRST_SEED, FIRST_SEED + args.seeds))
        what = f"{args.seeds} seeds from {FIRST_SEED}"
    jobs = [(args.task, seed, args.max_generations) for seed in seeds]
    print(f"# study {args.task}: {what}, at most {args.max_generations} generations")
    print(f"# config: {preset(args.task).to_dict()}")
    started = time.perf_counter()
    results = []
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for result in pool.starmap(run_seed, jobs, chunksize=1) if args.workers > 1 else map(run_seed, *zip(*jobs)):
            results.append(result)
    for result in results:
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}))
    summary = summarise(results)
    print("# summary", json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in summary.items()}))
    print(f"# paper: {PAPER.get(args.task, 'n/a')}")
    print(f"# wall time {time.perf_counter() - started:.0f} s with {args.workers} worker(s)")
    if args.out:
        Path(args.out).write_text(json.dumps({"results": results, "summary": summary}, indent=1))
    return 0


# ---- compare with neat-python ------------------------------------------------------------------------------
XOR_INPUTS = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))
XOR_TARGETS = (0.0, 1.0, 1.0, 0.0)
CARTPOLE_EPISODES = 3


def neat_python_xor(genomes, config) -> None:
    import neat

    for _, genome in genomes:
        net = neat.nn.FeedForwardNetwork.create(genome, config)
        error = sum(abs(net.activate(x)[0] - y) for x, y in zip(XOR_INPUTS, XOR_TARGETS))
        genome.fitness = (4.0 - error) ** 2


def neat_python_cartpole(genomes, config) -> None:
    import gymnasium
    import neat

    env = gymnasium.make("CartPole-v1")
    for _, genome in genomes:
        net = neat.nn.FeedForwardNetwork.create(genome, config)
        total = 0.0
        for episode in range(CARTPOLE_EPISODES):
            observation, _ = env.reset(seed=episode)
            done = False
            while not done:
                output = net.activate(observation)
                observation, reward, terminated, truncated, _ = env.step(int(np.argmax(output)))
                total += reward
                done = terminated or truncated
        genome.fitness = total / CARTPOLE_EPISODES
    env.close()


class _GenerationTimer:
    """neat-python reporter: seconds from one generation's start to the next."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def start_generation(self, generation) -> None:
        self.starts.append(time.perf_counter())

    def __getattr__(self, name):  # every other reporter hook: do nothing
        return lambda *args, **kwargs: None


def time_neat_python(ini: Path, fitness, generations: int, seed: int) -> list[float]:
    import neat

    config = neat.Config(
        neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet, neat.DefaultStagnation, str(ini)
    )
    config.no_fitness_termination = True
    population = neat.Population(config, seed=seed)
    timer = _GenerationTimer()
    population.add_reporter(timer)
    population.run(fitness, generations + 1)
    return list(np.diff(timer.starts)[:generations])


def time_evosparse(config: NeatConfig, task, generations: int, seed: int) -> list[float]:
    population = Population(config.replace(fitness_threshold=None), seed=seed)
    seconds = []
    for _ in range(generations):
        started = time.perf_counter()
        population.step(task)
        seconds.append(time.perf_counter() - started)
    return seconds


def command_compare(args: argparse.Namespace) -> int:
    import neat

    ini = REPO / "examples" / "neat" / f"{args.task}.ini"
    config = NeatConfig.from_file(ini)
    if args.task == "xor":
        candidates = {"evosparse": make_task("xor")}
        reference = neat_python_xor
    else:
        candidates = {
            "evosparse": make_task("cartpole", episodes=CARTPOLE_EPISODES),
            "evosparse gym adapter": make_task("gym:CartPole-v1", episodes=CARTPOLE_EPISODES),
        }
        reference = neat_python_cartpole
    for task in candidates.values():  # compile the numba kernels before timing
        time_evosparse(config, task, 1, seed=0)
    times: dict[str, list[float]] = {"neat-python": [], **{name: [] for name in candidates}}
    print(
        f"# compare {args.task}: {ini.relative_to(REPO)}, population {config.population_size}, "
        f"{args.generations} generations x {args.repeats} repeats, neat-python {neat.__version__}"
    )
    for repeat in range(args.repeats):
        times["neat-python"] += time_neat_python(ini, reference, args.generations, seed=repeat)
        for name, task in candidates.items():
            times[name] += time_evosparse(config, task, args.generations, seed=repeat)
        print(f"# repeat {repeat}: " + ", ".join(f"{n} {statistics.median(t) * 1000:.2f} ms" for n, t in times.items()))
    base = statistics.median(times["neat-python"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:24s} median {median * 1000:9.2f} ms/generation   total {sum(values):7.2f} s   "
            f"neat-python / this = {base / median:6.1f}x"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    study = commands.add_parser("study", help="success rate and evaluations to solve over many seeds")
    study.add_argument("--task", default="xor", choices=["xor", "single-pole", "double-pole", "double-pole-nv"])
    study.add_argument("--seeds", type=int, default=50)
    study.add_argument("--seed-list", help="comma-separated seeds to run instead of --seeds")
    study.add_argument("--max-generations", type=int, default=500)
    study.add_argument("--workers", type=int, default=2)
    study.add_argument("--out", help="also write every run and the summary to this JSON file")
    study.set_defaults(handler=command_study)
    compare = commands.add_parser("compare", help="seconds per generation against neat-python")
    compare.add_argument("--task", default="xor", choices=["xor", "cartpole"])
    compare.add_argument("--generations", type=int, default=30)
    compare.add_argument("--repeats", type=int, default=3)
    compare.set_defaults(handler=command_compare)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
