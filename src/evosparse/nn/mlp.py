"""Multilayer perceptrons: the sparse SET-MLP and its dense twin (same recipe, for comparisons)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as torch_module

from evosparse.nn.activations import check_alpha, make_activation
from evosparse.nn.dropout import SeededDropout
from evosparse.nn.linear import SparseLinear
from evosparse.sparse.functional import resolve_backend
from evosparse.sparse.init import epsilon_for_density
from evosparse.sparse.pattern import auto_block_rows, check_block_rows_or_auto


def _check_sizes(layer_sizes: Sequence[int]) -> list[int]:
    sizes = list(layer_sizes)
    integers = all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in sizes)
    if len(sizes) < 2 or not integers or any(s <= 0 for s in sizes):
        raise ValueError(f"layer_sizes needs at least two positive sizes (input, ..., output), got {sizes}")
    return [int(s) for s in sizes]


def _check_dropout(dropout: float) -> None:
    # Checked here, not only in SeededDropout: a negative or NaN rate would otherwise skip the dropout layer.
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")


def _hooked(module: nn.Module) -> bool:
    """Hooks of the module itself that calling it would run: a fused block would skip them."""
    return bool(
        module._forward_hooks or module._forward_pre_hooks or module._backward_hooks or module._backward_pre_hooks
    )


def _global_hooks() -> bool:
    """Module hooks registered for every module (``torch.nn.modules.module.register_module_forward_hook`` ...)."""
    return bool(
        torch_module._global_forward_hooks
        or torch_module._global_forward_pre_hooks
        or torch_module._global_backward_hooks
        or torch_module._global_backward_pre_hooks
    )


def fusable_block(blocks: list[nn.Module], i: int, x: torch.Tensor) -> int:
    """How many modules from ``blocks[i]`` run as one fused op on input ``x``: 3 (sparse layer, ReLU,
    SeededDropout), 2 (sparse layer, ReLU) or 0 (none: the module runs alone).

    Only numba-backend layers on 2-D CPU float input, followed by a plain ``nn.ReLU``, with no hook on any of
    the modules (hooks record activations or gradients of the separate modules: RigL, saliencies); the
    caller checks the global hooks.
    """
    layer = blocks[i]
    if not isinstance(layer, SparseLinear) or i + 1 >= len(blocks) or type(blocks[i + 1]) is not nn.ReLU:
        return 0
    if x.dim() != 2 or resolve_backend(layer.backend, x) != "numba":
        return 0
    taken = 3 if i + 2 < len(blocks) and type(blocks[i + 2]) is SeededDropout else 2
    return 0 if any(_hooked(m) for m in blocks[i : i + taken]) else taken


WIDE_INPUTS = 1 << 15  # SparseMLP's block_rows applies to layers with at least this many inputs


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
        x = x.flatten(1)
        blocks = list(self.net)
        if _hooked(self.net) or _global_hooks() or not any(isinstance(m, SparseLinear) for m in blocks):
            return self.net(x)
        # Sparse layer + ReLU (+ dropout) blocks run as one op each (SparseLinear.forward_relu_dropout): the
        # same numbers with fewer passes; anything else module by module, as nn.Sequential does.
        i = 0
        while i < len(blocks):
            taken = fusable_block(blocks, i, x)
            if taken:
                dropout = blocks[i + 2] if taken == 3 else None
                x = blocks[i].forward_relu_dropout(x, dropout)
                i += taken
            else:
                x = blocks[i](x)
                i += 1
        return x


class SparseMLP(_MLP):
    """SET-MLP: every layer a :class:`SparseLinear` with Erdos-Renyi connectivity.

    Args:
        layer_sizes: neurons per layer, input first and output last, e.g. (784, 1000, 1000, 1000, 10).
        activation: one of "relu", "srelu", "allrelu", "tanh", "sigmoid" (hidden layers only; the output is
            left linear, for a softmax / cross-entropy loss).
        dropout: dropout rate after each hidden activation (paper: 0.3 on Fashion-MNIST / CIFAR-10).
        epsilon: Erdos-Renyi sparsity parameter of every layer (paper: 20).
        density: if given, the *per-layer* density: every layer keeps this fraction of its own connections
            (as :class:`SparseLinear`'s ``density``), instead of epsilon.
        target_density: if given, the *overall* density of the network (its connections over those of the
            dense network): the layers are Erdos-Renyi with the epsilon that reaches it
            (:func:`~evosparse.sparse.epsilon_for_density`; small layers saturate, so their own densities
            differ). At most one of ``density`` and ``target_density``.
        alpha: All-ReLU slope.
        weight_init: see :class:`SparseLinear`.
        backend: see :class:`SparseLinear`.
        block_rows: see :class:`SparseLinear`; applied to the layers with at least :data:`WIDE_INPUTS` inputs
            (1: CSR order everywhere; 0: each of those layers gets its own size,
            :func:`~evosparse.sparse.pattern.auto_block_rows`). A narrower input stays in cache anyway, and CSR
            order was faster there (the 3,312-input first layer of the one-million-neuron network: backward
            49 ms vs 75 ms blocked).
        seed: seeds topology, weights, SReLU parameters and dropout masks.
        empty: every layer starts with no connections (see :class:`SparseLinear`), for a model whose state dict
            is loaded next (the resume of a run).

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
        target_density: float | None = None,
        alpha: float = 0.6,
        weight_init: str = "fan_in",
        backend: str = "auto",
        block_rows: int = 1,
        seed: int | None = None,
        empty: bool = False,
    ) -> None:
        sizes = _check_sizes(layer_sizes)
        _check_dropout(dropout)
        check_alpha(alpha)  # before any layer is built
        block_rows = check_block_rows_or_auto(block_rows, auto="a size per wide layer")
        if density is not None and target_density is not None:
            raise ValueError(
                f"give density (per layer, got {density}) or target_density (overall, got {target_density}), not both"
            )
        if target_density is not None:
            epsilon = epsilon_for_density(sizes, target_density)
        rng = np.random.default_rng(seed)
        linears = [
            SparseLinear(
                n_in,
                n_out,
                epsilon=epsilon,
                density=density,
                weight_init=weight_init,
                backend=backend,
                seed=rng,
                block_rows=block_rows if n_in >= WIDE_INPUTS and block_rows != 0 else 1,
                empty=empty,
            )
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
        ]
        if block_rows == 0:  # automatic: a size per wide layer
            for layer in linears:
                if layer.in_features >= WIDE_INPUTS:
                    layer.set_block_rows(auto_block_rows(layer.out_features, layer.in_features, layer.nnz))
        super().__init__(linears, sizes, activation, dropout, alpha, seed)
        self.epsilon, self.density, self.target_density = epsilon, density, target_density

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
        _check_dropout(dropout)
        check_alpha(alpha)  # before any layer is built
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
