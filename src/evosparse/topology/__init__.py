"""Evolution of sparse connectivity: the strategy interface, SET, RigL, the static baseline, their schedule."""

from evosparse.topology.rewire import Rewiring, apply_rewiring
from evosparse.topology.rigl import RigL, rigl_rewiring
from evosparse.topology.schedule import UpdateSchedule
from evosparse.topology.set import SET, set_rewiring, weakest_connections
from evosparse.topology.static import StaticSparse
from evosparse.topology.strategy import TopologyStrategy, sparse_layers

__all__ = [
    "SET",
    "Rewiring",
    "RigL",
    "StaticSparse",
    "TopologyStrategy",
    "UpdateSchedule",
    "apply_rewiring",
    "rigl_rewiring",
    "set_rewiring",
    "sparse_layers",
    "weakest_connections",
]
