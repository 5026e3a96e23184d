"""Benchmark tasks, each a fitness function ``task(genomes, config)`` with ``task.solution(genomes, config)``,
and the NEAT paper's settings for each (``preset``).

Names: xor, single-pole, single-pole-nv, double-pole (DPV), double-pole-nv (DPNV), cartpole (compiled
CartPole-v1), or gym:<environment id> for any gymnasium environment (e.g. gym:CartPole-v1).
"""

from __future__ import annotations

from typing import Any

from evosparse.neat.config import NeatConfig
from evosparse.neat.tasks.cartpole import CartPoleTask
from evosparse.neat.tasks.gym import GymTask
from evosparse.neat.tasks.pole import PoleBalancingTask
from evosparse.neat.tasks.xor import XorTask

TASKS = ("xor", "single-pole", "single-pole-nv", "double-pole", "double-pole-nv", "cartpole", "gym:<env id>")

# The paper's settings (Section 4.1) plus the perturbation size and survival fraction, which the paper
# does not state; chosen on seeds outside the benchmark's (see benchmarks/sections/neat.md).
_PRESETS: dict[str, dict[str, Any]] = {
    "xor": {"weight_perturb_power": 2.5, "survival_threshold": 0.4},
    "pole": {"weight_perturb_power": 1.0, "survival_threshold": 0.2},
    # DPNV: population 1,000, c3 = 3.0, delta_t = 4.0, add-connection 0.3, recurrent (paper, Section 4.2).
    "double-pole-nv": {
        "population_size": 1000,
        "weight_coefficient": 3.0,
        "compatibility_threshold": 4.0,
        "add_connection_rate": 0.3,
        "feed_forward": False,
        "weight_perturb_power": 0.5,
        # The paper's stagnation rules (Sections 3.3 and 4.1): a species that has not improved for 15
        # generations does not reproduce, the best ones included; if the whole population has not improved
        # for 20 generations, only the top two species reproduce.
        "species_elitism": 0,
        "population_stagnation": 20,
    },
    "single-pole-nv": {"feed_forward": False, "weight_perturb_power": 0.5},
    "cartpole": {"fitness_threshold": 475.0},
}


def make_task(name: str, *, episodes: int = 1, seed: int = 0):
    """The task called ``name`` (see ``TASKS``)."""
    if name == "xor":
        return XorTask()
    if name in ("single-pole", "single-pole-nv", "double-pole", "double-pole-nv"):
        return PoleBalancingTask(n_poles=1 if name.startswith("single") else 2, velocities=not name.endswith("-nv"))
    if name == "cartpole":
        return CartPoleTask(episodes=episodes, seed=seed)
    if name.startswith("gym:") and len(name) > 4:
        return GymTask(name[4:], episodes=episodes, seed=seed)
    raise ValueError(f"task must be one of {', '.join(TASKS)}; got {name!r}")


def preset(name: str, task=None) -> NeatConfig:
    """The NEAT paper's configuration for a task, sized to its inputs and outputs."""
    task = task if task is not None else make_task(name)
    key = "pole" if name in ("single-pole", "double-pole") else name
    changes = _PRESETS.get(key, {})
    return NeatConfig(n_inputs=task.n_inputs, n_outputs=task.n_outputs, **changes)


__all__ = ["TASKS", "CartPoleTask", "GymTask", "PoleBalancingTask", "XorTask", "make_task", "preset"]
