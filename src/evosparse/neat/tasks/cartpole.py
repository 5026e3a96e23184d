"""CartPole-v1 in one compiled loop: gymnasium's equations, thresholds and 500-step limit, every genome
of a generation at once. Start states come from gymnasium's own ``reset(seed=...)``, and the network sees
the float32 observations gymnasium would return, so a genome's return equals the one a plain
``gymnasium.make("CartPole-v1")`` loop gives (``tests/neat/test_tasks.py`` checks this step by step).

Actions: with one output, push right when it is >= 0.5; with two, the larger output wins (argmax).
Fitness: the mean return over ``episodes`` episodes seeded ``seed, seed+1, ...``; solved at 475, the
gymnasium threshold of CartPole-v1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome
from evosparse.neat.phenotype import Networks, forward_one, recurrent_one

GRAVITY, CART_MASS, POLE_MASS, HALF_LENGTH, FORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS = CART_MASS + POLE_MASS
POLE_MASS_LENGTH = POLE_MASS * HALF_LENGTH
THETA_LIMIT = 12 * 2 * np.pi / 360
X_LIMIT = 2.4
MAX_STEPS = 500
REWARD_THRESHOLD = 475.0


@numba.njit(cache=True)
def cartpole_step(state, push_right):
    """gymnasium CartPoleEnv.step (Euler integration), on a float64 state (x, x', theta, theta')."""
    x, x_dot, theta, theta_dot = state[0], state[1], state[2], state[3]
    force = FORCE if push_right else -FORCE
    costheta, sintheta = np.cos(theta), np.sin(theta)
    temp = (force + POLE_MASS_LENGTH * theta_dot * theta_dot * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * costheta * costheta / TOTAL_MASS)
    )
    xacc = temp - POLE_MASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    out = np.empty(4)
    out[0] = x + TAU * x_dot
    out[1] = x_dot + TAU * xacc
    out[2] = theta + TAU * theta_dot
    out[3] = theta_dot + TAU * thetaacc
    return out


@numba.njit(cache=True)
def _returns(
    starts,
    feed_forward,
    n_slots,
    output_slots,
    genome_nodes,
    node_slot,
    node_bias,
    node_activation,
    node_connections,
    connection_source,
    connection_weight,
):
    n_genomes, n_episodes = len(n_slots), len(starts)
    returns = np.zeros(n_genomes)
    values = np.zeros(n_slots.max())
    scratch = np.zeros(n_slots.max())
    n_out = output_slots.shape[1]
    for g in range(n_genomes):
        for e in range(n_episodes):
            values[:] = 0.0
            state = starts[e].copy()
            for _ in range(MAX_STEPS):
                for i in range(4):
                    values[i] = np.float32(state[i])  # what gymnasium's observation holds
                if feed_forward:
                    forward_one(
                        g,
                        values,
                        genome_nodes,
                        node_slot,
                        node_bias,
                        node_activation,
                        node_connections,
                        connection_source,
                        connection_weight,
                    )
                else:
                    recurrent_one(
                        g,
                        values,
                        scratch,
                        genome_nodes,
                        node_slot,
                        node_bias,
                        node_activation,
                        node_connections,
                        connection_source,
                        connection_weight,
                    )
                if n_out == 1:
                    push_right = values[output_slots[g, 0]] >= 0.5
                else:
                    push_right = values[output_slots[g, 1]] > values[output_slots[g, 0]]
                state = cartpole_step(state, push_right)
                returns[g] += 1.0  # gymnasium pays 1 for the step that terminates, too
                if abs(state[0]) > X_LIMIT or abs(state[2]) > THETA_LIMIT:
                    break
    return returns / n_episodes


def gymnasium_starts(seed: int, episodes: int) -> np.ndarray:
    """The start states ``gymnasium.make("CartPole-v1").reset(seed=seed + e)`` draws."""
    import gymnasium

    env = gymnasium.make("CartPole-v1")
    starts = []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        starts.append(np.array(env.unwrapped.state, dtype=np.float64))
    env.close()
    return np.array(starts)


@dataclass
class CartPoleTask:
    """CartPole-v1, compiled; ``n_outputs`` 1 (threshold) or 2 (argmax)."""

    episodes: int = 5
    seed: int = 0
    n_outputs: int = 2
    name = "cartpole"
    n_inputs = 4

    def __post_init__(self) -> None:
        if self.n_outputs not in (1, 2):
            raise ValueError(f"n_outputs must be 1 or 2 for CartPole, got {self.n_outputs!r}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes!r}")
        self._starts = gymnasium_starts(self.seed, self.episodes)

    def returns(self, genomes: list[Genome], config: NeatConfig) -> np.ndarray:
        networks = Networks.from_genomes(genomes, config)
        return _returns(self._starts, networks.feed_forward, networks.n_slots, networks.output_slots, *networks.program)

    def __call__(self, genomes: list[tuple[int, Genome]], config: NeatConfig) -> None:
        for (_, genome), value in zip(genomes, self.returns([g for _, g in genomes], config).tolist()):
            genome.fitness = value

    def solution(self, genomes: list[Genome], config: NeatConfig) -> Genome | None:
        best = max(genomes, key=lambda g: g.fitness)
        return best if best.fitness >= REWARD_THRESHOLD else None
