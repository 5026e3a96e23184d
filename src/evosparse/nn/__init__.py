"""Layers, activations and models."""

from evosparse.nn.activations import ACTIVATIONS, AllReLU, SReLU, make_activation
from evosparse.nn.dropout import SeededDropout
from evosparse.nn.fused import FusedSGD
from evosparse.nn.linear import SparseLinear
from evosparse.nn.mlp import DenseMLP, SparseMLP

__all__ = [
    "ACTIVATIONS",
    "AllReLU",
    "DenseMLP",
    "FusedSGD",
    "SReLU",
    "SeededDropout",
    "SparseLinear",
    "SparseMLP",
    "make_activation",
]
