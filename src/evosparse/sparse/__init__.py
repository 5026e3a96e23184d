"""Sparse storage and kernels: the connectivity pattern, its initialisers, compiled kernels, the sparse linear op."""

from evosparse.sparse.functional import BACKENDS, sparse_linear
from evosparse.sparse.init import (
    epsilon_for_density,
    erdos_renyi_nnz,
    erdos_renyi_pattern,
    erdos_renyi_probability,
    network_nnz,
    random_pattern,
)
from evosparse.sparse.kernels import set_num_threads, warm_up
from evosparse.sparse.pattern import SparsePattern
from evosparse.sparse.sampling import sample_free_keys

__all__ = [
    "BACKENDS",
    "SparsePattern",
    "epsilon_for_density",
    "erdos_renyi_nnz",
    "erdos_renyi_pattern",
    "erdos_renyi_probability",
    "network_nnz",
    "random_pattern",
    "sample_free_keys",
    "set_num_threads",
    "sparse_linear",
    "warm_up",
]
