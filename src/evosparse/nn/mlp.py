"""Multilayer perceptrons: the sparse SET-MLP and its dense twin (same recipe, for comparisons)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from evosparse.nn.activations import make_activation
from evosparse.nn.dropout import SeededDropout
from evosparse.nn.linear import SparseLinear


def _check_sizes(layer_sizes: Sequence[int]) -> list[int]:
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"layer_sizes needs at least two positive sizes (input, ..., output), got {list(layer_sizes)}")
    return sizes


class _MLP(nn.Module):
    """Shared body: linear layers with activation and dropout after every hidden layer."""

    def __init__(
        self,
        linears: list[nn.Module],
        sizes: list[int],
        activation: str,
        dropout: float,
        alpha: float,
        seed: int | None,
    ) -> None:
        super().__init__()
        self.layer_sizes = sizes
        self.initial_layer_sizes = tuple(sizes)  # layer_sizes changes if neurons are removed during training
        self.activation = activation
        self.dropout = dropout
        # The generator of SReLU init and dropout masks; checkpoints save its state.
        self.generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        blocks: list[nn.Module] = []
        for i, linear in enumerate(linears):
            blocks.append(linear)
            if i < len(linears) - 1:
                blocks.append(make_activation(activation, sizes[i + 1], i + 1, alpha=alpha, generator=self.generator))
                if dropout > 0:
                    blocks.append(SeededDropout(dropout, self.generator))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class SparseMLP(_MLP):
    """SET-MLP: every layer a :class:`SparseLinear` with Erdos-Renyi connectivity.

    Args:
        layer_sizes: neurons per layer, input first and output last, e.g. (784, 1000, 1000, 1000, 10).
        activation: one of "relu", "srelu", "allrelu", "tanh", "sigmoid" (hidden layers only; the output is
            left linear, for a softmax / cross-entropy loss).
        dropout: dropout rate after each hidden activation (paper: 0.3 on Fashion-MNIST / CIFAR-10).
        epsilon: Erdos-Renyi sparsity parameter of every layer (paper: 20).
        density: if given, the connection density of every layer instead of epsilon.
        alpha: All-ReLU slope.
        weight_init: see :class:`SparseLinear`.
        backend: see :class:`SparseLinear`.
        seed: seeds topology, weights, SReLU parameters and dropout masks.

    Example::

        >>> model = SparseMLP((784, 1000, 1000, 1000, 10), activation="allrelu", epsilon=20, seed=0)
        >>> model(torch.randn(8, 784)).shape
        torch.Size([8, 10])
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        epsilon: float = 20.0,
        density: float | None = None,
        alpha: float = 0.6,
        weight_init: str = "fan_in",
        backend: str = "auto",
        seed: int | None = None,
    ) -> None:
        sizes = _check_sizes(layer_sizes)
        rng = np.random.default_rng(seed)
        linears = [
            SparseLinear(
                n_in, n_out, epsilon=epsilon, density=density, weight_init=weight_init, backend=backend, seed=rng
            )
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
        ]
        super().__init__(linears, sizes, activation, dropout, alpha, seed)
        self.epsilon, self.density = epsilon, density

    def sparse_layers(self) -> list[SparseLinear]:
        return [m for m in self.net if isinstance(m, SparseLinear)]


class DenseMLP(_MLP):
    """The dense twin of :class:`SparseMLP` (``nn.Linear`` layers, He-uniform init, same activations)."""

    def __init__(
        self,
        layer_sizes: Sequence[int],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        alpha: float = 0.6,
        seed: int | None = None,
    ) -> None:
        sizes = _check_sizes(layer_sizes)
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        linears = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            linear = nn.Linear(n_in, n_out)
            with torch.no_grad():
                bound = (6.0 / n_in) ** 0.5  # He-uniform, as SparseLinear's fan-in init with full fan-in
                linear.weight.uniform_(-bound, bound, generator=generator)
                linear.bias.zero_()
            linears.append(linear)
        super().__init__(linears, sizes, activation, dropout, alpha, seed)
