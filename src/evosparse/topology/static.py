"""Static sparse training: the Erdos-Renyi topology of initialisation, never changed (the baseline that
shows what evolving the topology adds)."""

from __future__ import annotations

from evosparse.topology.strategy import TopologyStrategy


class StaticSparse(TopologyStrategy):
    """A strategy that never changes connectivity."""

    name = "static"
