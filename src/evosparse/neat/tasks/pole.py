"""Pole balancing with the physics of the NEAT paper's benchmark (Wieland 1991; Gruau et al. 1996).

A cart (1 kg) on a 4.8 m track carries one or two poles hinged side by side: pole 1 is 1 m long and
0.1 kg, pole 2 0.1 m and 0.01 kg, with hinge friction 2e-6. The network's output in [0, 1] sets a force
(output - 0.5) * 20 N; the equations of motion are integrated with 4th-order Runge-Kutta, two steps of
0.01 s per action. A trial fails when the cart leaves [-2.4, 2.4] m or a pole leans more than 36 degrees.
Trials start with pole 1 at 0.07 rad (about 4 degrees), everything else at rest, as in the NEAT code.

* With velocities (DPV, Markovian): inputs x/4.8, x'/2, theta1/0.52, theta1'/2, theta2/0.52, theta2'/2;
  fitness = time steps balanced; solved at 100,000 steps.
* Without velocities (DPNV): inputs x/4.8, theta1/0.52, theta2/0.52 (a recurrent network must infer
  the velocities). Fitness is Gruau et al.'s damping fitness over a 1,000-step trial,
  0.1 t / 1000 + 0.9 * 0.75 / sum over the last 100 steps of (|x| + |x'| + |theta1| + |theta1'|)
  (the second term only once t > 100), which punishes solutions that merely jiggle the cart. Solved when
  a generation's champion balances 100,000 steps from the standard start and then keeps the poles up
  for 1,000 steps from at least 200 of 625 start states (the generalisation test).

Single-pole variants use the same cart with pole 1 only. Every trial runs in one compiled loop.

Paper: Stanley & Miikkulainen 2002, Section 4.2; Gruau, Whitley & Pyeatt 1996; Wieland 1991.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome
from evosparse.neat.phenotype import Networks, forward_one, recurrent_one

GRAVITY = -9.8
CART_MASS = 1.0
POLE_MASSES = (0.1, 0.01)
HALF_LENGTHS = (0.5, 0.05)
FORCE = 10.0
HINGE_FRICTION = 0.000002
TAU = 0.01  # integration step; two per action
TRACK_LIMIT = 2.4
ANGLE_LIMIT = 0.6283185307179586  # 36 degrees
START_ANGLE = 0.07  # pole 1, radians
LONG_TRIAL = 100_000
DAMPING_TRIAL = 1_000


@numba.njit(cache=True)
def _derivatives(force, state, n_poles):
    """d(state)/dt for state (x, x', theta1, theta1', theta2, theta2'): Wieland's equations."""
    out = np.zeros(6)
    effective_force = force
    effective_mass = CART_MASS
    costheta = np.zeros(2)
    temp = np.zeros(2)
    gsintheta = np.zeros(2)
    for p in range(n_poles):
        theta, omega = state[2 + 2 * p], state[3 + 2 * p]
        mass, length = POLE_MASSES[p], HALF_LENGTHS[p]
        costheta[p] = np.cos(theta)
        gsintheta[p] = GRAVITY * np.sin(theta)
        mass_length = length * mass
        temp[p] = HINGE_FRICTION * omega / mass_length
        effective_force += mass_length * omega * omega * np.sin(theta) + 0.75 * mass * costheta[p] * (
            temp[p] + gsintheta[p]
        )
        effective_mass += mass * (1.0 - 0.75 * costheta[p] * costheta[p])
    acceleration = effective_force / effective_mass
    out[0] = state[1]
    out[1] = acceleration
    for p in range(n_poles):
        out[2 + 2 * p] = state[3 + 2 * p]
        out[3 + 2 * p] = -0.75 * (acceleration * costheta[p] + gsintheta[p] + temp[p]) / HALF_LENGTHS[p]
    return out


@numba.njit(cache=True)
def physics_step(action, state, n_poles):
    """The state after one action in [0, 1]: two Runge-Kutta steps of TAU seconds."""
    force = (action - 0.5) * FORCE * 2.0
    for _ in range(2):
        k1 = _derivatives(force, state, n_poles)
        k2 = _derivatives(force, state + 0.5 * TAU * k1, n_poles)
        k3 = _derivatives(force, state + 0.5 * TAU * k2, n_poles)
        k4 = _derivatives(force, state + TAU * k3, n_poles)
        state = state + TAU / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return state


@numba.njit(cache=True)
def _failed(state, n_poles):
    if abs(state[0]) > TRACK_LIMIT:
        return True
    for p in range(n_poles):
        if abs(state[2 + 2 * p]) > ANGLE_LIMIT:
            return True
    return False


@numba.njit(cache=True)
def run_trials(
    genome_index,
    start_states,
    max_steps,
    n_poles,
    velocities,
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
    """For each trial e: genome ``genome_index[e]`` balances from ``start_states[e]``.

    Returns (steps balanced, the damping sum over the last 100 steps) per trial.
    """
    n_trials = len(genome_index)
    steps = np.zeros(n_trials, dtype=np.int64)
    damping = np.zeros(n_trials)
    values = np.zeros(n_slots.max())
    scratch = np.zeros(n_slots.max())
    recent = np.zeros(100)
    for e in range(n_trials):
        g = genome_index[e]
        values[:] = 0.0
        recent[:] = 0.0
        state = start_states[e].copy()
        t = 0
        while t < max_steps:
            if velocities:
                for i in range(2 + 2 * n_poles):
                    values[i] = state[i] / (4.8 if i == 0 else (2.0 if i % 2 == 1 else 0.52))
            else:
                values[0] = state[0] / 4.8
                for p in range(n_poles):
                    values[1 + p] = state[2 + 2 * p] / 0.52
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
            state = physics_step(values[output_slots[g, 0]], state, n_poles)
            recent[t % 100] = abs(state[0]) + abs(state[1]) + abs(state[2]) + abs(state[3])
            if _failed(state, n_poles):
                break
            t += 1
        steps[e] = t
        damping[e] = recent.sum()
    return steps, damping


def standard_start() -> np.ndarray:
    state = np.zeros(6)
    state[2] = START_ANGLE
    return state


def generalisation_starts() -> np.ndarray:
    """The 625 start states of the generalisation test: x, x', theta1, theta1' each at 5 levels
    (0.05, 0.25, 0.5, 0.75, 0.95 of their ranges: +-2.16 m, +-1.35 m/s, +-3.6 deg, +-8.6 deg/s)."""
    levels = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    grid = np.array(np.meshgrid(levels, levels, levels, levels, indexing="ij")).reshape(4, -1).T
    starts = np.zeros((len(grid), 6))
    starts[:, 0] = grid[:, 0] * 4.32 - 2.16
    starts[:, 1] = grid[:, 1] * 2.70 - 1.35
    starts[:, 2] = grid[:, 2] * 0.12566304 - 0.06283152
    starts[:, 3] = grid[:, 3] * 0.30019504 - 0.15009752
    return starts


@dataclass
class PoleBalancingTask:
    """Single (``n_poles=1``) or double pole balancing, with or without velocity inputs."""

    n_poles: int = 2
    velocities: bool = True
    long_trial: int = LONG_TRIAL
    damping_trial: int = DAMPING_TRIAL
    generalisation_needed: int = 200

    def __post_init__(self) -> None:
        if self.n_poles not in (1, 2):
            raise ValueError(f"n_poles must be 1 or 2, got {self.n_poles!r}")

    @property
    def name(self) -> str:
        return ("single" if self.n_poles == 1 else "double") + ("-pole" if self.velocities else "-pole-nv")

    @property
    def n_inputs(self) -> int:
        return 2 + 2 * self.n_poles if self.velocities else 1 + self.n_poles

    n_outputs = 1

    def trials(self, networks: Networks, genome_index: np.ndarray, starts: np.ndarray, max_steps: int):
        return run_trials(
            genome_index.astype(np.int64),
            np.ascontiguousarray(starts),
            max_steps,
            self.n_poles,
            self.velocities,
            networks.feed_forward,
            networks.n_slots,
            networks.output_slots,
            *networks.program,
        )

    def __call__(self, genomes: list[tuple[int, Genome]], config: NeatConfig) -> None:
        self._check(config)
        networks = Networks.from_genomes([genome for _, genome in genomes], config)
        index = np.arange(len(genomes))
        starts = np.tile(standard_start(), (len(genomes), 1))
        if self.velocities:
            steps, _ = self.trials(networks, index, starts, self.long_trial)
            fitness = steps.astype(np.float64)
        else:
            steps, damping = self.trials(networks, index, starts, self.damping_trial)
            stable = np.where(steps > 100, 0.9 * 0.75 / np.maximum(damping, 1e-12), 0.0)
            fitness = 0.1 * steps / self.damping_trial + stable
        for (_, genome), value in zip(genomes, fitness.tolist()):
            genome.fitness = value

    def solution(self, genomes: list[Genome], config: NeatConfig) -> Genome | None:
        if self.velocities:  # fitness is the number of steps balanced
            best = max(genomes, key=lambda g: g.fitness)
            return best if best.fitness >= self.long_trial else None
        champion = max(genomes, key=lambda g: g.fitness)
        networks = Networks.from_genomes([champion], config)
        steps, _ = self.trials(networks, np.zeros(1), standard_start()[None], self.long_trial)
        if steps[0] < self.long_trial:
            return None
        return champion if self.generalisation(champion, config) >= self.generalisation_needed else None

    def generalisation(self, genome: Genome, config: NeatConfig) -> int:
        """How many of the 625 generalisation start states the genome balances for 1,000 steps."""
        networks = Networks.from_genomes([genome], config)
        starts = generalisation_starts()
        steps, _ = self.trials(networks, np.zeros(len(starts)), starts, DAMPING_TRIAL)
        return int((steps >= DAMPING_TRIAL).sum())

    def _check(self, config: NeatConfig) -> None:
        if config.n_inputs != self.n_inputs or config.n_outputs != 1:
            raise ValueError(
                f"{self.name} needs n_inputs = {self.n_inputs} and n_outputs = 1, got "
                f"n_inputs = {config.n_inputs}, n_outputs = {config.n_outputs}"
            )
