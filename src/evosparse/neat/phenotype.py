"""Genomes compiled to flat arrays and run in batch: many genomes, many inputs, one compiled loop.

Each genome becomes a short program over a value vector (slots 0..n_inputs-1 hold the inputs, then one
slot per node): for every node in evaluation order, ``value = activation(bias + sum(w * value[source]))``.
The programs of a whole population sit back to back in a few arrays (CSR style: node ranges per genome,
connection ranges per node), so one numba call evaluates every genome on every input.

* Feed-forward: only nodes that reach an output are kept, in topological order; one pass per input.
  (Compilation itself is one compiled call for all genomes: ``batch.compile_flat``.)
* Recurrent: every node is kept; one synchronous update per step, each node reading the previous step's
  values (as neat-python's ``RecurrentNetwork`` and the original NEAT code do), so networks carry state.

The obvious node-by-node evaluation lives in the tests (``tests/neat/test_phenotype.py``) and must agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from evosparse.neat import batch
from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome

# ---- activation functions, by their index in config.ACTIVATIONS ---------------------------------------------


@numba.njit(cache=True, inline="always")
def activate(code, x):
    if code == 0:  # the paper's steepened sigmoid, 1 / (1 + exp(-4.9 x)), clipped to avoid overflow
        z = min(max(4.9 * x, -60.0), 60.0)
        return 1.0 / (1.0 + np.exp(-z))
    if code == 1:
        return np.tanh(x)
    if code == 2:
        return max(x, 0.0)
    if code == 3:
        return x
    if code == 4:
        return np.sin(x)
    if code == 5:
        return np.exp(-x * x)
    if code == 6:
        return abs(x)
    return min(max(x, -1.0), 1.0)  # clamped


# ---- compiled kernels --------------------------------------------------------------------------------------
@numba.njit(cache=True)
def forward_one(
    genome,
    values,
    genome_nodes,
    node_slot,
    node_bias,
    node_activation,
    node_connections,
    connection_source,
    connection_weight,
):
    """One feed-forward pass of genome ``genome`` over ``values`` (inputs already in place)."""
    for k in range(genome_nodes[genome], genome_nodes[genome + 1]):
        total = node_bias[k]
        for c in range(node_connections[k], node_connections[k + 1]):
            total += connection_weight[c] * values[connection_source[c]]
        values[node_slot[k]] = activate(node_activation[k], total)


@numba.njit(cache=True)
def recurrent_one(
    genome,
    values,
    scratch,
    genome_nodes,
    node_slot,
    node_bias,
    node_activation,
    node_connections,
    connection_source,
    connection_weight,
):
    """One synchronous update: every node reads the values of the previous step, then all are written."""
    start = genome_nodes[genome]
    for k in range(start, genome_nodes[genome + 1]):
        total = node_bias[k]
        for c in range(node_connections[k], node_connections[k + 1]):
            total += connection_weight[c] * values[connection_source[c]]
        scratch[k - start] = activate(node_activation[k], total)
    for k in range(start, genome_nodes[genome + 1]):
        values[node_slot[k]] = scratch[k - start]


@numba.njit(cache=True)
def _forward_batch(
    inputs,
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
    n_genomes, n_batch, n_in = inputs.shape
    out = np.zeros((n_genomes, n_batch, output_slots.shape[1]))
    values = np.zeros(n_slots.max())
    for g in range(n_genomes):
        for b in range(n_batch):
            values[: n_slots[g]] = 0.0
            values[:n_in] = inputs[g, b]
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
            for o in range(output_slots.shape[1]):
                out[g, b, o] = values[output_slots[g, o]]
    return out


@numba.njit(cache=True)
def _recurrent_batch(
    state,
    inputs,
    output_slots,
    genome_nodes,
    node_slot,
    node_bias,
    node_activation,
    node_connections,
    connection_source,
    connection_weight,
):
    n_genomes, n_in = inputs.shape
    out = np.zeros((n_genomes, output_slots.shape[1]))
    scratch = np.zeros(state.shape[1])
    for g in range(n_genomes):
        values = state[g]
        values[:n_in] = inputs[g]
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
        for o in range(output_slots.shape[1]):
            out[g, o] = values[output_slots[g, o]]
    return out


class Networks:
    """The phenotypes of a list of genomes, compiled into one set of flat arrays.

    >>> nets = Networks.from_genomes(genomes, config)
    >>> outputs = nets.activate(inputs)           # (n_genomes, batch, n_outputs), feed-forward
    >>> nets.reset(); y = nets.step(observations)  # (n_genomes, n_outputs), one recurrent step each
    """

    def __init__(self, genomes: Sequence[Genome], *, n_inputs: int, n_outputs: int, feed_forward: bool) -> None:
        self.n_inputs, self.n_outputs, self.feed_forward = n_inputs, n_outputs, feed_forward
        self.n_genomes = len(genomes)
        flat = batch.flatten(list(genomes))
        (
            self.genome_nodes,
            self.node_slot,
            self.node_bias,
            self.node_activation,
            self.node_connections,
            self.connection_source,
            self.connection_weight,
            self.output_slots,
            self.n_slots,
        ) = batch.compile_flat(
            flat.node_ptr,
            flat.node_ids,
            flat.biases,
            flat.activations,
            flat.connection_ptr,
            flat.sources,
            flat.targets,
            flat.weights,
            flat.enabled,
            n_inputs,
            n_outputs,
            feed_forward,
        )
        self.state = np.zeros((self.n_genomes, int(self.n_slots.max(initial=n_inputs))))

    @classmethod
    def from_genomes(cls, genomes: Sequence[Genome], config: NeatConfig, *, feed_forward: bool | None = None):
        return cls(
            genomes,
            n_inputs=config.n_inputs,
            n_outputs=config.n_outputs,
            feed_forward=config.feed_forward if feed_forward is None else feed_forward,
        )

    @property
    def program(self) -> tuple[np.ndarray, ...]:
        """The arrays every kernel takes, in their order (for tasks with their own compiled loops)."""
        return (
            self.genome_nodes,
            self.node_slot,
            self.node_bias,
            self.node_activation,
            self.node_connections,
            self.connection_source,
            self.connection_weight,
        )

    def activate(self, inputs: np.ndarray) -> np.ndarray:
        """Feed-forward outputs, (n_genomes, batch, n_outputs). ``inputs``: (batch, n_inputs), the same for
        every genome, or (n_genomes, batch, n_inputs)."""
        if not self.feed_forward:
            raise ValueError("activate() is the feed-forward pass; recurrent networks use reset() and step()")
        inputs = np.asarray(inputs, dtype=np.float64)
        if inputs.ndim == 2:
            inputs = np.broadcast_to(inputs, (self.n_genomes, *inputs.shape))
        if inputs.shape[0] != self.n_genomes or inputs.shape[-1] != self.n_inputs:
            raise ValueError(
                f"inputs must have shape (batch, {self.n_inputs}) or ({self.n_genomes}, batch, "
                f"{self.n_inputs}), got {inputs.shape}"
            )
        if self.n_genomes == 0:
            return np.zeros((0, inputs.shape[-2], self.n_outputs))
        return _forward_batch(np.ascontiguousarray(inputs), self.n_slots, self.output_slots, *self.program)

    def reset(self) -> None:
        """Zero every node's value (the start of an episode)."""
        self.state[:] = 0.0

    def step(self, inputs: np.ndarray) -> np.ndarray:
        """One step for every genome, each on its own input row: (n_genomes, n_inputs) -> (n_genomes, n_outputs).
        Feed-forward networks do a full pass; recurrent ones one synchronous update of every node."""
        inputs = np.ascontiguousarray(inputs, dtype=np.float64)
        if inputs.shape != (self.n_genomes, self.n_inputs):
            raise ValueError(f"inputs must have shape ({self.n_genomes}, {self.n_inputs}), got {inputs.shape}")
        if self.feed_forward:
            return self.activate(inputs[:, None, :])[:, 0, :]
        return _recurrent_batch(self.state, inputs, self.output_slots, *self.program)


class FeedForwardNetwork:
    """neat-python's ``FeedForwardNetwork.create(genome, config).activate(inputs)`` for one genome."""

    def __init__(self, networks: Networks) -> None:
        self._networks = networks

    @classmethod
    def create(cls, genome: Genome, config: NeatConfig) -> FeedForwardNetwork:
        return cls(Networks.from_genomes([genome], config, feed_forward=True))

    def activate(self, inputs: Sequence[float]) -> list[float]:
        return self._networks.activate(np.asarray(inputs, dtype=np.float64)[None, :])[0, 0].tolist()


class RecurrentNetwork:
    """neat-python's ``RecurrentNetwork``: ``activate`` is one synchronous step; ``reset`` clears the state."""

    def __init__(self, networks: Networks) -> None:
        self._networks = networks

    @classmethod
    def create(cls, genome: Genome, config: NeatConfig) -> RecurrentNetwork:
        return cls(Networks.from_genomes([genome], config, feed_forward=False))

    def reset(self) -> None:
        self._networks.reset()

    def activate(self, inputs: Sequence[float]) -> list[float]:
        return self._networks.step(np.asarray(inputs, dtype=np.float64)[None, :])[0].tolist()
