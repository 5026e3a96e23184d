"""A NEAT genome as arrays: node genes and connection genes sorted by innovation number.

Node ids follow neat-python: inputs are -1 .. -n_inputs (not stored, they have no genes), outputs
0 .. n_outputs-1, hidden nodes from n_outputs on. Node genes carry a bias and an activation; connection
genes carry source, target, weight, enabled flag and the innovation number (the historical marking).
Arrays instead of one Python object per gene make copying, alignment and compilation cheap.

Paper: Stanley & Miikkulainen 2002, Section 3.1 (genetic encoding), Figure 2.
"""

from __future__ import annotations

import numpy as np

from evosparse.neat.config import ACTIVATIONS, NeatConfig
from evosparse.neat.innovation import InnovationTracker


class Genome:
    """Node genes (``node_ids``, ``biases``, ``activations``) and connection genes (``innovations``,
    ``sources``, ``targets``, ``weights``, ``enabled``), connections sorted by innovation.

    ``fitness`` is set by the fitness function, as in neat-python.
    """

    __slots__ = (
        "key",
        "node_ids",
        "biases",
        "activations",
        "innovations",
        "sources",
        "targets",
        "weights",
        "enabled",
        "fitness",
        "_flat",
    )

    def __init__(
        self,
        key: int,
        *,
        node_ids: np.ndarray,
        biases: np.ndarray,
        activations: np.ndarray,
        innovations: np.ndarray,
        sources: np.ndarray,
        targets: np.ndarray,
        weights: np.ndarray,
        enabled: np.ndarray,
    ) -> None:
        self.key = key
        self.node_ids = np.asarray(node_ids, dtype=np.int64)
        self.biases = np.asarray(biases, dtype=np.float64)
        self.activations = np.asarray(activations, dtype=np.int8)
        self.innovations = np.asarray(innovations, dtype=np.int64)
        self.sources = np.asarray(sources, dtype=np.int64)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.enabled = np.asarray(enabled, dtype=bool)
        self.fitness: float | None = None
        self._flat = None  # (batch.Flat, index) when the arrays are views of a generation's flat arrays

    # ---- sizes -----------------------------------------------------------------------------------------
    @property
    def n_connections(self) -> int:
        """Connection genes, enabled or not."""
        return len(self.innovations)

    @property
    def n_enabled(self) -> int:
        """Enabled connection genes (the paper's "nondisabled connection genes")."""
        return int(self.enabled.sum())

    def n_hidden(self, n_outputs: int) -> int:
        return int((self.node_ids >= n_outputs).sum())

    def size(self, n_outputs: int) -> tuple[int, int]:
        """(hidden nodes, enabled connections)."""
        return self.n_hidden(n_outputs), self.n_enabled

    # ---- copies ------------------------------------------------------------------------------------------
    def copy(self, key: int | None = None) -> Genome:
        """An independent copy (arrays copied), fitness not carried over."""
        return Genome(
            self.key if key is None else key,
            node_ids=self.node_ids.copy(),
            biases=self.biases.copy(),
            activations=self.activations.copy(),
            innovations=self.innovations.copy(),
            sources=self.sources.copy(),
            targets=self.targets.copy(),
            weights=self.weights.copy(),
            enabled=self.enabled.copy(),
        )

    def check(self) -> None:
        """Raise AssertionError if an invariant is broken (sorted unique genes, endpoints exist)."""
        assert np.all(np.diff(self.node_ids) > 0), "node ids must be sorted and unique"
        assert np.all(np.diff(self.innovations) > 0), "innovations must be sorted and unique"
        known = set(self.node_ids.tolist())
        assert all(t in known for t in self.targets.tolist()), "every target must be a node gene"
        assert all(s < 0 or s in known for s in self.sources.tolist()), "every source must be an input or node"
        pairs = list(zip(self.sources.tolist(), self.targets.tolist()))
        assert len(pairs) == len(set(pairs)), "one connection gene per (source, target)"

    def __repr__(self) -> str:
        return (
            f"Genome(key={self.key}, nodes={len(self.node_ids)}, connections={self.n_enabled}/{self.n_connections}"
            f", fitness={self.fitness})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Genome):
            return NotImplemented
        return self.key == other.key and all(
            np.array_equal(getattr(self, name), getattr(other, name)) for name in self.__slots__[1:-2]
        )

    __hash__ = None  # mutable

    def __getstate__(self) -> dict:
        # For multiprocessing (ParallelEvaluator sends genomes to workers), not for files: those are
        # data-only (neat/checkpoint.py). Not the generation's flat arrays.
        return {name: getattr(self, name) for name in self.__slots__[:-1]}

    def __setstate__(self, state: dict) -> None:
        for name in self.__slots__[:-1]:
            setattr(self, name, state[name])
        self._flat = None


def initial_genome(key: int, config: NeatConfig, tracker: InnovationTracker, rng: np.random.Generator) -> Genome:
    """A minimal genome: the output nodes and, for 'full', every input -> output connection (paper, 3.4).

    Every initial genome gets the same innovation numbers for the same input -> output pair: the tracker
    hands them out once (the genomes of generation 0 share their structure).
    """
    n_in, n_out = config.n_inputs, config.n_outputs
    node_ids = np.arange(n_out, dtype=np.int64)
    biases = rng.normal(0.0, config.weight_init_stdev, n_out).clip(-config.weight_max, config.weight_max)
    activations = np.full(n_out, ACTIVATIONS.index(config.activation), dtype=np.int8)
    if config.initial_connection == "full":
        sources = np.repeat(-np.arange(1, n_in + 1), n_out)
        targets = np.tile(np.arange(n_out), n_in)
    else:
        sources = targets = np.zeros(0, dtype=np.int64)
    innovations = np.array([tracker.connection(int(s), int(t)) for s, t in zip(sources, targets)], dtype=np.int64)
    order = np.argsort(innovations)
    weights = rng.normal(0.0, config.weight_init_stdev, len(sources)).clip(-config.weight_max, config.weight_max)
    return Genome(
        key,
        node_ids=node_ids,
        biases=biases,
        activations=activations,
        innovations=innovations[order],
        sources=sources[order],
        targets=targets[order],
        weights=weights[order],
        enabled=np.ones(len(sources), dtype=bool),
    )
