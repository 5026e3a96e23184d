"""Observation normalisation by running statistics: the agent's option ``normalize_observations``.

Observations of real systems mix scales (the building environment: prices ~0.1-0.4 next to temperatures
~20, hours left ~10 and an EV's remaining energy up to ~60 kWh); a network's first layer learns slowly on
such inputs. :class:`RunningMeanStd` keeps the mean and variance of every observation the agent has acted on
during training (Chan et al.'s parallel update, float64), and :meth:`RunningMeanStd.normalize` maps an
observation to ``clip((obs - mean) / sqrt(var + 1e-8), -clip, clip)``.

How the agents use it (as Stable-Baselines3's ``VecNormalize`` with an off-policy agent):

1. every observation the agent acts on while collecting updates the statistics, once (random warm-up
   steps included, so the statistics are warm when learning starts);
2. the replay buffer stores raw observations; sampled batches are normalised with the current statistics;
3. ``predict`` (evaluation, the ``agent:RUN_DIR`` controller) normalises with the statistics as they are and
   never updates them: evaluation sees frozen statistics;
4. the statistics are part of the agent's state (``save`` / checkpoints), so a resumed run and a loaded
   agent act exactly as the saved one.

Paper: Chan, Golub, LeVeque, "Updating formulae and a pairwise algorithm for computing sample variances"
(1979); the clipped running normalisation of Stable-Baselines3's ``VecNormalize`` (Raffin et al., 2021).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

VARIANCE_FLOOR = 1e-8  # a constant feature maps to 0, not to a division by zero


class RunningMeanStd:
    """Running mean and (population) variance of vectors of ``shape``.

    ``count`` starts at ``epsilon`` with mean 0 and variance 1 (SB3's choice): the first update moves the
    statistics almost entirely to the batch, and nothing divides by zero before it.
    """

    def __init__(self, shape: tuple[int, ...], *, clip: float = 10.0, epsilon: float = 1e-4) -> None:
        self.shape = tuple(shape)
        self.clip = float(clip)
        self.mean = np.zeros(self.shape, dtype=np.float64)
        self.var = np.ones(self.shape, dtype=np.float64)
        self.count = float(epsilon)
        self._tensors: tuple[torch.Tensor, torch.Tensor] | None = None  # (mean, 1 / std), float32, cached

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch of shape ``(n, *shape)`` into the statistics (Chan et al.'s pairwise formulae)."""
        batch = np.asarray(batch, dtype=np.float64).reshape(-1, *self.shape)
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean, batch_var = batch.mean(axis=0), batch.var(axis=0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.var = (self.var * self.count + batch_var * n + delta**2 * (self.count * n / total)) / total
        self.count = total
        self._tensors = None

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """``clip((obs - mean) / sqrt(var + 1e-8), -clip, clip)`` as float32 (numpy in, numpy out)."""
        scaled = (np.asarray(obs, dtype=np.float64) - self.mean) / np.sqrt(self.var + VARIANCE_FLOOR)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def normalize_tensor(self, obs: torch.Tensor) -> torch.Tensor:
        """The same for a float32 batch tensor (the replay samples), in float32."""
        if self._tensors is None:
            self._tensors = (
                torch.as_tensor(self.mean, dtype=torch.float32),
                torch.as_tensor(1.0 / np.sqrt(self.var + VARIANCE_FLOOR), dtype=torch.float32),
            )
        mean, inverse_std = self._tensors
        return ((obs - mean) * inverse_std).clamp_(-self.clip, self.clip)

    # ---- state ----------------------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able metadata, arrays) for a checkpoint."""
        return {"count": self.count}, {"mean": self.mean.copy(), "var": self.var.copy()}

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        mean, var = np.asarray(arrays["mean"], dtype=np.float64), np.asarray(arrays["var"], dtype=np.float64)
        if mean.shape != self.shape or var.shape != self.shape:
            raise ValueError(f"observation statistics must have shape {self.shape}, got {mean.shape} and {var.shape}")
        self.mean, self.var, self.count = mean.copy(), var.copy(), float(meta["count"])
        self._tensors = None
