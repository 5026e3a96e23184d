"""Initialisation and evolution of sparse connectivity."""

from evosparse.topology.erdos_renyi import erdos_renyi_pattern, erdos_renyi_probability, random_pattern
from evosparse.topology.rewire import Rewiring, apply_rewiring
from evosparse.topology.schedule import UpdateSchedule
from evosparse.topology.set import SET, set_rewiring, weakest_connections
from evosparse.topology.strategy import TopologyStrategy, sparse_layers

__all__ = [
    "SET",
    "Rewiring",
    "TopologyStrategy",
    "UpdateSchedule",
    "apply_rewiring",
    "erdos_renyi_pattern",
    "erdos_renyi_probability",
    "random_pattern",
    "set_rewiring",
    "sparse_layers",
    "weakest_connections",
]
