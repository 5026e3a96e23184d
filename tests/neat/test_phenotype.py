"""The compiled phenotype equals a slow node-by-node evaluation; recurrent networks carry state."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evosparse.neat import FeedForwardNetwork, NeatConfig, Networks, RecurrentNetwork
from evosparse.neat.config import ACTIVATIONS

REFERENCE_ACTIVATIONS = {
    "sigmoid": lambda x: 1 / (1 + math.exp(-max(min(4.9 * x, 60.0), -60.0))),
    "tanh": math.tanh,
    "relu": lambda x: max(x, 0.0),
    "identity": lambda x: x,
    "sin": math.sin,
    "gauss": lambda x: math.exp(-x * x),
    "abs": abs,
    "clamped": lambda x: min(max(x, -1.0), 1.0),
}


def incoming(genome) -> dict[int, list[tuple[int, float]]]:
    links: dict[int, list[tuple[int, float]]] = {}
    for source, target, weight, enabled in zip(
        genome.sources.tolist(), genome.targets.tolist(), genome.weights.tolist(), genome.enabled.tolist()
    ):
        if enabled:
            links.setdefault(target, []).append((source, weight))
    return links


def node_value(genome, node, inputs, links, memo):
    """Feed-forward, recursively: a node's value from its sources' values (the obvious definition)."""
    if node < 0:
        return inputs[-node - 1]
    if node not in memo:
        index = int(np.flatnonzero(genome.node_ids == node)[0])
        total = genome.biases[index] + sum(
            w * node_value(genome, s, inputs, links, memo) for s, w in links.get(node, [])
        )
        memo[node] = REFERENCE_ACTIVATIONS[ACTIVATIONS[genome.activations[index]]](total)
    return memo[node]


def reference_feed_forward(genome, inputs, n_outputs):
    links = incoming(genome)
    return [node_value(genome, o, inputs, links, {}) for o in range(n_outputs)]


def reference_recurrent(genome, sequence, n_outputs):
    """Every step, every node from the previous step's values (inputs: the current step's)."""
    links = incoming(genome)
    values = {int(n): 0.0 for n in genome.node_ids}
    outputs = []
    for inputs in sequence:
        current = {**values, **{-(i + 1): x for i, x in enumerate(inputs)}}
        for index, node in enumerate(genome.node_ids.tolist()):
            total = genome.biases[index] + sum(w * current[s] for s, w in links.get(node, []))
            values[node] = REFERENCE_ACTIVATIONS[ACTIVATIONS[genome.activations[index]]](total)
        outputs.append([values[o] for o in range(n_outputs)])
    return outputs


def varied_config(feed_forward: bool) -> NeatConfig:
    return NeatConfig(
        n_inputs=3,
        n_outputs=2,
        population_size=30,
        add_node_rate=0.3,
        add_connection_rate=0.4,
        enable_toggle_rate=0.2,
        feed_forward=feed_forward,
        activation_mutate_rate=0.2,
        activation_options=ACTIVATIONS,
    )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_feed_forward_equals_node_by_node(grow, seed):
    config = varied_config(True)
    genomes = list(grow(config, seed=seed, generations=8).genomes.values())
    inputs = np.random.default_rng(seed).normal(size=(5, 3))
    outputs = Networks.from_genomes(genomes, config).activate(inputs)
    assert outputs.shape == (len(genomes), 5, 2)
    for g, genome in enumerate(genomes):
        for b in range(5):
            np.testing.assert_allclose(
                outputs[g, b], reference_feed_forward(genome, inputs[b], 2), rtol=1e-12, atol=1e-12
            )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_recurrent_equals_node_by_node(grow, seed):
    config = varied_config(False)
    genomes = list(grow(config, seed=seed, generations=8).genomes.values())
    sequence = np.random.default_rng(seed).normal(size=(6, 3))
    networks = Networks.from_genomes(genomes, config)
    networks.reset()
    steps = np.stack([networks.step(np.tile(x, (len(genomes), 1))) for x in sequence], axis=1)
    for g, genome in enumerate(genomes):
        np.testing.assert_allclose(steps[g], reference_recurrent(genome, sequence, 2), rtol=1e-12, atol=1e-12)


def test_degenerate_genomes(make_genome):
    config = NeatConfig(n_inputs=2, n_outputs=1)
    no_connections = make_genome([], biases=[0.3])
    all_disabled = make_genome([(0, -1, 0, 2.0, False), (1, -2, 0, 1.0, False)], biases=[-0.2])
    dangling = make_genome([(0, -1, 0, 1.0), (1, -1, 1, 5.0)], hidden=[1])  # hidden node 1 reaches no output
    one = make_genome([(0, -2, 0, 1.5)])
    genomes = [no_connections, all_disabled, dangling, one]
    inputs = np.array([[0.5, -1.0], [0.0, 0.0]])
    outputs = Networks.from_genomes(genomes, config).activate(inputs)
    for g, genome in enumerate(genomes):
        for b in range(2):
            assert outputs[g, b, 0] == pytest.approx(reference_feed_forward(genome, inputs[b], 1)[0], abs=1e-14)
    assert outputs[0, 0, 0] == pytest.approx(1 / (1 + math.exp(-4.9 * 0.3)))
    assert Networks.from_genomes([], config).activate(inputs).shape == (0, 2, 1)


def test_hand_worked_network(make_genome):
    # out = sigmoid(0.1 + 2*x1 - 1*h), h = relu(x2 - 0.5), with x = (1, 2): h = 1.5, out = sigmoid(0.1 + 2 - 1.5)
    genome = make_genome([(0, -1, 0, 2.0), (1, -2, 1, 1.0), (2, 1, 0, -1.0)], hidden=[1], biases=[0.1, -0.5])
    genome.activations = np.array([0, 2], dtype=np.int8)
    net = FeedForwardNetwork.create(genome, NeatConfig(n_inputs=2, n_outputs=1))
    assert net.activate([1.0, 2.0])[0] == pytest.approx(1 / (1 + math.exp(-4.9 * 0.6)))


def test_recurrent_networks_carry_state(make_genome):
    # identity output with a self-loop of weight 1 sums its inputs over time: 1, 1+1, 1+1+1
    genome = make_genome([(0, -1, 0, 1.0), (1, 0, 0, 1.0)], activation=ACTIVATIONS.index("identity"))
    net = RecurrentNetwork.create(genome, NeatConfig(n_inputs=1, n_outputs=1, feed_forward=False))
    assert [net.activate([1.0])[0] for _ in range(3)] == [1.0, 2.0, 3.0]
    net.reset()
    assert net.activate([1.0])[0] == 1.0
    # a hidden node delays the signal one step: x -> h -> out
    delayed = make_genome([(0, -1, 1, 1.0), (1, 1, 0, 1.0)], hidden=[1], activation=ACTIVATIONS.index("identity"))
    net = RecurrentNetwork.create(delayed, NeatConfig(n_inputs=1, n_outputs=1, feed_forward=False))
    assert [net.activate([x])[0] for x in (3.0, 0.0, 0.0)] == [0.0, 3.0, 0.0]


def test_shape_errors_name_the_expected_shape(make_genome):
    networks = Networks.from_genomes([make_genome([])], NeatConfig(n_inputs=2, n_outputs=1))
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, 2\)"):
        networks.activate(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"inputs must have shape \(1, 2\)"):
        networks.step(np.zeros((2, 2)))
