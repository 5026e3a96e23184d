"""evosparse: truly sparse neural networks that evolve their own wiring."""

from evosparse.nn import DenseMLP, SparseLinear, SparseMLP
from evosparse.topology import SET, TopologyStrategy, UpdateSchedule
from evosparse.train import TrainConfig, train

__version__ = "0.1.0"

__all__ = [
    "TrainConfig",
    "train",
    "SET",
    "DenseMLP",
    "SparseLinear",
    "SparseMLP",
    "TopologyStrategy",
    "UpdateSchedule",
    "__version__",
]
