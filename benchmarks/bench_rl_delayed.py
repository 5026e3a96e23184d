"""Delayed rewards on Pendulum-v1: SAC learning from the rewards as paid against SAC with return decomposition.

    python benchmarks/bench_rl_delayed.py [--every 50] [--seeds 0,1,2] [--steps 6000]
        [--methods plain,nstep,decomposition,undelayed]

The training environment pays the reward accumulated since the last payment every ``--every`` steps and at the
episode's end (:class:`evosparse.rl.wrappers.DelayedReward`; Pendulum's episodes last 200 steps); evaluation
plays the plain environment (10 episodes, deterministic policy). Methods, all SAC 64-64 (the learning checks'
Pendulum settings: batch 128, 500 random steps, lr 1e-3, gamma 0.98):

* ``plain``: one-step TD on the rewards as paid (zeros between payments);
* ``nstep``: n-step returns with n = ``--every`` (each transition's return reaches the next payment);
* ``decomposition``: ``reward_period = --every``: per-step rewards learned from the paid block sums
  (:mod:`evosparse.rl.decomposition`);
* ``undelayed``: the same agent on the plain environment, the ceiling.

Prints one line per run and a mean +- sd per method.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym

from evosparse.rl import SAC
from evosparse.rl.evaluation import evaluate_policy
from evosparse.rl.run import set_threads
from evosparse.rl.wrappers import DelayedReward

PENDULUM = {
    "actor_hidden": (64, 64), "critic_hidden": (64, 64), "batch_size": 128, "learning_starts": 500,
    "learning_rate": 1e-3, "gamma": 0.98,
}  # fmt: skip
METHODS = ("plain", "nstep", "decomposition", "undelayed")


def run(method: str, *, every: int, seed: int, steps: int) -> tuple[float, float]:
    """(mean evaluation return, training seconds) of one run."""
    env = gym.make("Pendulum-v1")
    settings = dict(PENDULUM)
    if method != "undelayed":
        env = DelayedReward(env, every)
    if method == "nstep":
        settings["n_step"] = every
    elif method == "decomposition":
        settings["reward_period"] = every
    began = time.perf_counter()
    agent = SAC(env, seed=seed, **settings).learn(steps)
    seconds = time.perf_counter() - began
    result = evaluate_policy(agent, gym.make("Pendulum-v1"), episodes=10, seed=10_000)
    return result.mean, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=50, help="steps between reward payments [50]")
    parser.add_argument("--seeds", type=lambda t: [int(s) for s in t.split(",")], default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=6000, help="training steps per run [6000]")
    parser.add_argument("--methods", type=lambda t: t.split(","), default=list(METHODS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    set_threads(args.threads)
    print(f"Pendulum-v1, SAC 64-64, reward paid every {args.every} steps, {args.steps} steps, seeds {args.seeds}")
    summary = {}
    for method in args.methods:
        returns = []
        for seed in args.seeds:
            mean, seconds = run(method, every=args.every, seed=seed, steps=args.steps)
            returns.append(mean)
            print(f"{method:14} seed {seed}: return {mean:8.1f}   ({seconds:.0f} s)", flush=True)
        summary[method] = returns
    print()
    for method, returns in summary.items():
        spread = statistics.stdev(returns) if len(returns) > 1 else 0.0
        each = ", ".join(f"{r:.1f}" for r in returns)
        print(f"{method:14} {statistics.mean(returns):8.1f} +- {spread:5.1f}   [{each}]")


if __name__ == "__main__":
    main()
