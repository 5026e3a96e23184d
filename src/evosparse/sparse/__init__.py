"""Sparse storage and kernels: the connectivity pattern, compiled kernels, and the sparse linear op."""

from evosparse.sparse.functional import BACKENDS, sparse_linear
from evosparse.sparse.kernels import set_num_threads, warm_up
from evosparse.sparse.pattern import SparsePattern

__all__ = ["BACKENDS", "SparsePattern", "set_num_threads", "sparse_linear", "warm_up"]
