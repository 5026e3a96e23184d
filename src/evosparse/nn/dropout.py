"""Dropout driven by its own torch.Generator, so a run's randomness is explicit and checkpointable."""

from __future__ import annotations

import torch
from torch import nn


class SeededDropout(nn.Module):
    """Inverted dropout (Srivastava et al. 2014) that draws its masks from ``generator``.

    ``torch.nn.Dropout`` draws from torch's global generator; this one takes a generator so that a
    training run owns its randomness (and can save and restore it with a checkpoint).
    """

    def __init__(self, p: float, generator: torch.Generator) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
