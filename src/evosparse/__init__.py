"""evosparse: truly sparse neural networks that evolve their own wiring.

``evosparse.train`` is the training subpackage; its function that runs a whole training run is
``evosparse.train.train``, exported here as :func:`run_training` so that it does not hide the subpackage.
"""

# First: sets OpenMP's wait policy before torch and Numba load their runtimes (see evosparse._threading).
from evosparse import _threading  # noqa: F401
from evosparse.nn import DenseMLP, SparseLinear, SparseMLP
from evosparse.topology import SET, TopologyStrategy, UpdateSchedule
from evosparse.train import TrainConfig
from evosparse.train.run import train as run_training

__version__ = "0.1.0"

__all__ = [
    "TrainConfig",
    "run_training",
    "SET",
    "DenseMLP",
    "SparseLinear",
    "SparseMLP",
    "TopologyStrategy",
    "UpdateSchedule",
    "__version__",
]
