"""Activations of the SET papers: SReLU (learnable) and All-ReLU.

* SReLU (Jin et al., "Deep learning with S-shaped rectified linear activation units", AAAI 2016),
  used by SET-MLP in Mocanu et al. 2018. Per neuron, four learnable parameters t_l, a_l, t_r, a_r:

      f(x) = t_r + a_r (x - t_r)   if x >= t_r
             x                     if t_l < x < t_r
             t_l + a_l (x - t_l)   if x <= t_l

  As in the Keras implementation the SET code used, the right threshold is parameterised as
  t_r = t_l + |d| so it never falls below t_l; initialisation t_l = 0, a_l ~ U(0, 1), d ~ U(0, 5), a_r = 1.

* All-ReLU (Curci, Mocanu, Pechenizkiy, "Truly sparse neural networks at scale", 2021, Eq. 2): a
  leaky ReLU whose negative slope alternates sign with the layer index, so that consecutive sparse
  layers keep negative information:

      f(x) = x            if x > 0
             -alpha * x   if x <= 0 and the layer index is even
             alpha * x    if x <= 0 and the layer index is odd

  with alpha = 0.6 by default (the paper's value for most data sets).
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = ("relu", "srelu", "allrelu", "tanh", "sigmoid")


class SReLU(nn.Module):
    """S-shaped ReLU with per-neuron learnable thresholds and slopes.

    Args:
        num_features: number of neurons (size of the last input dimension).
        generator: torch.Generator for the random initial values (None: torch's default generator).

    Shape: (*, num_features) -> same shape.
    """

    def __init__(self, num_features: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.num_features = num_features
        self.t_left = nn.Parameter(torch.zeros(num_features))
        self.a_left = nn.Parameter(torch.empty(num_features))
        self.t_width = nn.Parameter(torch.empty(num_features))  # t_right = t_left + |t_width|
        self.a_right = nn.Parameter(torch.ones(num_features))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        with torch.no_grad():
            self.t_left.zero_()
            self.a_left.uniform_(0.0, 1.0, generator=generator)
            self.t_width.uniform_(0.0, 5.0, generator=generator)
            self.a_right.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t_right = self.t_left + self.t_width.abs()
        right = t_right + self.a_right * (x - t_right)
        left = self.t_left + self.a_left * (x - self.t_left)
        return torch.where(x >= t_right, right, torch.where(x <= self.t_left, left, x))

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}"


class AllReLU(nn.Module):
    """All-ReLU: identity for x > 0, slope (-1)^(layer_index+1) * alpha for x <= 0 (negative for even index).

    Args:
        layer_index: 1-based index of the hidden layer this activation follows.
        alpha: magnitude of the negative-side slope.
    """

    def __init__(self, layer_index: int, alpha: float = 0.6) -> None:
        super().__init__()
        if isinstance(layer_index, bool) or not isinstance(layer_index, int) or layer_index < 1:
            raise ValueError(f"layer_index must be >= 1 (an integer), got {layer_index!r}")
        check_alpha(alpha)
        self.layer_index = layer_index
        self.alpha = alpha
        self.slope = -alpha if layer_index % 2 == 0 else alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A leaky ReLU with a (possibly negative) slope: one fused kernel, forward and backward.
        return torch.nn.functional.leaky_relu(x, self.slope)

    def extra_repr(self) -> str:
        return f"layer_index={self.layer_index}, alpha={self.alpha}"


def check_alpha(alpha: float) -> None:
    """All-ReLU's slope magnitude: a finite number >= 0 (a NaN slope would turn every negative input into NaN)."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")


def make_activation(
    name: str, num_features: int, layer_index: int, *, alpha: float = 0.6, generator: torch.Generator | None = None
) -> nn.Module:
    """Activation module by name (one of ACTIVATIONS) for a hidden layer of ``num_features`` neurons.

    ``alpha`` is checked whatever the name, so that a bad value never waits for a change of activation.
    """
    check_alpha(alpha)
    if name == "relu":
        return nn.ReLU()
    if name == "srelu":
        return SReLU(num_features, generator=generator)
    if name == "allrelu":
        return AllReLU(layer_index, alpha)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
