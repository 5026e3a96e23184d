"""The agents' networks: MLPs (dense ``DenseMLP`` or truly sparse ``SparseMLP``), actors and twin critics.

* :func:`build_mlp` makes one MLP at an overall weight density. A sparse network spreads its budget with
  the Erdos-Renyi rule, layer density ``min(1, epsilon (n_in + n_out) / (n_in n_out))`` with one epsilon
  solved so the whole network has the requested density (Evci et al. 2020, Section 3; used by Graesser et
  al. 2022 for RL): a 3 -> 256 input layer stays much denser than a 256 x 256 hidden layer.
* Initialisation is PyTorch's ``nn.Linear`` default (SB3's networks use it): weights and biases
  ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, with each neuron's *actual* fan-in in a sparse layer. Both kinds
  draw from one numpy generator in CSR (row-major) order, so a sparse network at density 1 starts with
  exactly the weights of its dense twin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from evosparse.nn import DenseMLP, SparseLinear, SparseMLP
from evosparse.rl.fused import run_mlp, run_mlps
from evosparse.sparse.pattern import SparsePattern
from evosparse.sparse.sampling import sample_free_keys

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SB3's clamp of the SAC actor's log std


def layer_densities(sizes: Sequence[int], density: float) -> list[float]:
    """Per-layer densities of an MLP with ``sizes`` whose overall density is ``density`` (Erdos-Renyi rule)."""
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    shapes = list(zip(sizes[:-1], sizes[1:]))
    totals = np.array([n_in * n_out for n_in, n_out in shapes], dtype=np.float64)
    scale = np.array([(n_in + n_out) / (n_in * n_out) for n_in, n_out in shapes])
    budget = density * totals.sum()

    def nnz(epsilon: float) -> float:
        return float((np.minimum(1.0, epsilon * scale) * totals).sum())

    low, high = 0.0, 1.0 / scale.min()  # at high every layer is dense
    for _ in range(100):  # bisection: nnz(epsilon) is increasing
        middle = 0.5 * (low + high)
        low, high = (middle, high) if nnz(middle) < budget else (low, middle)
    return [float(min(1.0, high * s)) for s in scale]


def build_mlp(
    sizes: Sequence[int],
    *,
    density: float = 1.0,
    sparse: bool = False,
    activation: str = "relu",
    backend: str = "auto",
    rng: np.random.Generator,
) -> nn.Module:
    """A ``DenseMLP`` (``sparse=False``, density must be 1) or a ``SparseMLP`` at overall ``density``."""
    sizes = [int(s) for s in sizes]
    # One draw decides the topology (and DenseMLP's activation seed): both kinds consume ``rng`` alike,
    # so the weights drawn next are the same for a dense network and a sparse one at density 1.
    topology_seed = int(rng.integers(2**31))
    if not sparse:
        if density != 1:
            raise ValueError(f"a dense network needs density 1, got {density}")
        model = DenseMLP(sizes, activation=activation, seed=topology_seed)
    else:
        model = SparseMLP(sizes, activation=activation, density=1.0 / max(sizes), backend=backend, seed=topology_seed)
        topology_rng = np.random.default_rng(topology_seed)
        for layer, layer_density in zip(model.sparse_layers(), layer_densities(sizes, density)):
            n_out, n_in = layer.out_features, layer.in_features
            nnz = min(n_out * n_in, max(1, int(round(layer_density * n_out * n_in))))
            keys = sample_free_keys(n_out, n_in, nnz, np.empty(0, dtype=np.int64), topology_rng)
            pattern = SparsePattern.from_sorted_keys(keys, n_out, n_in)
            layer.set_pattern(pattern, torch.zeros(pattern.nnz))
    reset_uniform(model, rng)
    return model


def reset_uniform(model: nn.Module, rng: np.random.Generator) -> None:
    """PyTorch's default ``nn.Linear`` init, drawn from ``rng``: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    with torch.no_grad():
        for layer in weight_layers(model):
            if isinstance(layer, SparseLinear):
                fan_in = np.maximum(layer.pattern.row_degrees(), 1)
                bounds = 1.0 / np.sqrt(fan_in)
                layer.values.copy_(torch.from_numpy(rng.uniform(-1, 1, layer.nnz) * bounds[layer.pattern.rows]))
            else:
                bounds = np.full(layer.out_features, 1.0 / np.sqrt(layer.in_features))
                draw = rng.uniform(-1, 1, layer.weight.numel()).reshape(layer.weight.shape) * bounds[:, None]
                layer.weight.copy_(torch.from_numpy(draw))
            layer.bias.copy_(torch.from_numpy(rng.uniform(-1, 1, layer.out_features) * bounds))


def scale_output_layer(model: nn.Module, factor: float) -> None:
    """Multiply the weights and biases of ``model``'s last layer by ``factor`` (a policy that starts near 0)."""
    layer = weight_layers(model)[-1]
    with torch.no_grad():
        (layer.values if isinstance(layer, SparseLinear) else layer.weight).mul_(factor)
        layer.bias.mul_(factor)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The ``nn.Linear`` and ``SparseLinear`` layers of ``model``, in definition order."""
    return [m for m in model.modules() if isinstance(m, nn.Linear | SparseLinear)]


def count_parameters(model: nn.Module) -> int:
    """Stored parameters: nnz of the sparse weights plus every dense parameter (biases, dense weights)."""
    return sum(p.numel() for p in model.parameters())


def count_weights(model: nn.Module) -> tuple[int, int]:
    """(weights stored, weights of the dense network with the same layer sizes)."""
    stored = dense = 0
    for layer in weight_layers(model):
        dense += layer.in_features * layer.out_features
        stored += layer.nnz if isinstance(layer, SparseLinear) else layer.weight.numel()
    return stored, dense


class DeterministicActor(nn.Module):
    """TD3's actor: ``tanh(mlp(obs))``, an action in [-1, 1]^|A| (scaled to the Box by the agent)."""

    def __init__(self, mlp: nn.Module) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(run_mlp(self.mlp, obs))


class SquashedGaussianActor(nn.Module):
    """SAC's actor: ``mlp(obs)`` gives mean and log std of u; the action is ``tanh(u)``.

    The log-likelihood of ``a = tanh(u)`` is ``log N(u; mu, sigma) - sum log(1 - tanh(u)^2)`` (Haarnoja et
    al. 2018, Appendix C), with ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`` for stability.
    """

    def __init__(self, mlp: nn.Module, action_dim: int) -> None:
        super().__init__()
        self.mlp = mlp
        self.action_dim = action_dim

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(action, log-probability); ``noise`` None gives the deterministic action tanh(mu) and no log-prob."""
        out = run_mlp(self.mlp, obs)
        mean, log_std = out[:, : self.action_dim], out[:, self.action_dim :]
        if noise is None:
            return torch.tanh(mean), None
        log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        u = mean + noise * log_std.exp()
        log_prob = (-0.5 * noise.square() - log_std).sum(1) - 0.5 * np.log(2 * np.pi) * self.action_dim
        log_prob = log_prob - (2.0 * (np.log(2.0) - u - nn.functional.softplus(-2.0 * u))).sum(1)
        return torch.tanh(u), log_prob


class TwinCritic(nn.Module):
    """Two Q-networks ``Q_i(obs, action)`` in one module (one optimizer); ``forward`` returns shape (2, batch)."""

    def __init__(self, q1: nn.Module, q2: nn.Module) -> None:
        super().__init__()
        self.q1, self.q2 = q1, q2

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        # One autograd node for both critics (rl.fused); each has one output, so the result is (2, batch).
        return run_mlps([self.q1, self.q2], torch.cat([obs, actions], dim=1))

    def first(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q_1 only (TD3's actor loss)."""
        return run_mlps([self.q1], torch.cat([obs, actions], dim=1))[0]
