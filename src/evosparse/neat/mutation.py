"""Mutations of one genome, in place: the paper's structural and weight mutations.

As in the original NEAT implementation, an offspring gets at most one structural mutation: with
``add_node_rate`` a node splits a connection, else with ``add_connection_rate`` a connection is added,
else its weights (``weight_mutate_rate``), biases, enabled flags and activations may change.

Paper: Stanley & Miikkulainen 2002, Section 3.1 and Figure 3 (add connection, add node), Section 4.1.
"""

from __future__ import annotations

import numpy as np

from evosparse.neat.config import ACTIVATIONS, NeatConfig
from evosparse.neat.genome import Genome
from evosparse.neat.innovation import InnovationTracker


def mutate(genome: Genome, config: NeatConfig, tracker: InnovationTracker, rng: np.random.Generator) -> None:
    """Apply one round of mutation to ``genome`` (in place)."""
    if rng.random() < config.add_node_rate:
        add_node(genome, config, tracker, rng)
        return
    if rng.random() < config.add_connection_rate:
        add_connection(genome, config, tracker, rng)
        return
    if rng.random() < config.weight_mutate_rate:
        genome.weights = perturb(genome.weights, config, rng)
    if rng.random() < config.bias_mutate_rate:
        genome.biases = perturb(genome.biases, config, rng)
    if config.enable_toggle_rate and genome.n_connections and rng.random() < config.enable_toggle_rate:
        toggle_enable(genome, rng)
    if config.activation_mutate_rate:
        change_activations(genome, config, rng)


def perturb(values: np.ndarray, config: NeatConfig, rng: np.random.Generator) -> np.ndarray:
    """Each value replaced by a new random one (``weight_replace_rate``) or perturbed (paper: 90% / 10%)."""
    n = len(values)
    if config.weight_perturbation == "uniform":
        noise = rng.uniform(-config.weight_perturb_power, config.weight_perturb_power, n)
    else:
        noise = rng.normal(0.0, config.weight_perturb_power, n)
    replace = rng.random(n) < config.weight_replace_rate
    fresh = rng.normal(0.0, config.weight_init_stdev, n)
    return np.where(replace, fresh, values + noise).clip(-config.weight_max, config.weight_max)


def toggle_enable(genome: Genome, rng: np.random.Generator) -> None:
    """Flip the enabled flag of one random connection gene."""
    index = rng.integers(genome.n_connections)
    genome.enabled = genome.enabled.copy()
    genome.enabled[index] = not genome.enabled[index]


def change_activations(genome: Genome, config: NeatConfig, rng: np.random.Generator) -> None:
    changed = rng.random(len(genome.node_ids)) < config.activation_mutate_rate
    if changed.any():
        options = np.array([ACTIVATIONS.index(name) for name in config.activation_options], dtype=np.int8)
        genome.activations = np.where(changed, rng.choice(options, len(changed)), genome.activations).astype(np.int8)


def add_node(genome: Genome, config: NeatConfig, tracker: InnovationTracker, rng: np.random.Generator) -> bool:
    """Split a random enabled connection a -> b: disable it, add a -> new (weight 1) and new -> b (old weight).

    The new node starts with bias 0, so the network computes nearly what it did (paper, Figure 3).
    """
    candidates = np.flatnonzero(genome.enabled)
    if len(candidates) == 0:
        return False
    index = int(rng.choice(candidates))
    source, target = int(genome.sources[index]), int(genome.targets[index])
    node, innovation_in, innovation_out = tracker.split(int(genome.innovations[index]))
    if node in genome.node_ids:  # the same split twice in one genome (re-enabled connection): fresh numbers
        node, innovation_in, innovation_out = tracker.fresh_split()
    enabled = genome.enabled.copy()
    enabled[index] = False
    genome.enabled = enabled
    _insert_node(genome, node, bias=0.0, activation=ACTIVATIONS.index(config.activation))
    _append_connections(
        genome,
        innovations=[innovation_in, innovation_out],
        sources=[source, node],
        targets=[node, target],
        weights=[1.0, float(genome.weights[index])],
    )
    return True


def add_connection(genome: Genome, config: NeatConfig, tracker: InnovationTracker, rng: np.random.Generator) -> bool:
    """Connect two unconnected nodes with a random weight; in feed-forward mode never close a cycle."""
    inputs = np.arange(-1, -config.n_inputs - 1, -1)
    sources = np.concatenate([inputs, genome.node_ids])
    existing = set(zip(genome.sources.tolist(), genome.targets.tolist()))
    for _ in range(config.add_connection_tries):
        source = int(sources[rng.integers(len(sources))])
        target = int(genome.node_ids[rng.integers(len(genome.node_ids))])
        if (source, target) in existing:
            continue
        if config.feed_forward and (source == target or creates_cycle(genome, source, target)):
            continue
        weight = float(np.clip(rng.normal(0.0, config.weight_init_stdev), -config.weight_max, config.weight_max))
        _append_connections(
            genome,
            innovations=[tracker.connection(source, target)],
            sources=[source],
            targets=[target],
            weights=[weight],
        )
        return True
    return False


def creates_cycle(genome: Genome, source: int, target: int) -> bool:
    """True if ``source -> target`` would close a cycle: ``source`` is reachable from ``target``.

    All connection genes count, disabled ones too, since a disabled gene may be enabled again.
    """
    if source == target:
        return True
    outgoing: dict[int, list[int]] = {}
    for a, b in zip(genome.sources.tolist(), genome.targets.tolist()):
        outgoing.setdefault(a, []).append(b)
    seen, frontier = {target}, [target]
    while frontier:
        node = frontier.pop()
        for nxt in outgoing.get(node, ()):
            if nxt == source:
                return True
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False


# ---- array surgery: keep node ids and innovations sorted ---------------------------------------------------
def _insert_node(genome: Genome, node: int, *, bias: float, activation: int) -> None:
    position = int(np.searchsorted(genome.node_ids, node))
    genome.node_ids = np.insert(genome.node_ids, position, node)
    genome.biases = np.insert(genome.biases, position, bias)
    genome.activations = np.insert(genome.activations, position, activation).astype(np.int8)


def _append_connections(genome: Genome, *, innovations, sources, targets, weights) -> None:
    innovations = np.concatenate([genome.innovations, np.asarray(innovations, dtype=np.int64)])
    order = np.argsort(innovations, kind="stable")
    genome.innovations = innovations[order]
    genome.sources = np.concatenate([genome.sources, np.asarray(sources, dtype=np.int64)])[order]
    genome.targets = np.concatenate([genome.targets, np.asarray(targets, dtype=np.int64)])[order]
    genome.weights = np.concatenate([genome.weights, np.asarray(weights, dtype=np.float64)])[order]
    genome.enabled = np.concatenate([genome.enabled, np.ones(len(order) - len(genome.enabled), dtype=bool)])[order]
