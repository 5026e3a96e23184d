"""Evolution of sparse connectivity: the strategy interface, drop-and-grow rewiring (SET, RigL and their
criteria), the static baseline, their schedule."""

from evosparse.topology.criteria import DROP_CRITERIA, GROW_CRITERIA, GrowCriterion, rewiring
from evosparse.topology.drop_grow import DropAndGrow
from evosparse.topology.rewire import Rewiring, apply_rewiring
from evosparse.topology.rigl import RigL, rigl_rewiring
from evosparse.topology.schedule import UpdateSchedule
from evosparse.topology.set import SET, set_rewiring, weakest_connections
from evosparse.topology.static import StaticSparse
from evosparse.topology.strategy import TopologyStrategy, sparse_layers

__all__ = [
    "DROP_CRITERIA",
    "GROW_CRITERIA",
    "SET",
    "DropAndGrow",
    "GrowCriterion",
    "Rewiring",
    "RigL",
    "StaticSparse",
    "TopologyStrategy",
    "UpdateSchedule",
    "apply_rewiring",
    "rewiring",
    "rigl_rewiring",
    "set_rewiring",
    "sparse_layers",
    "weakest_connections",
]
