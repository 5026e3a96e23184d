"""Return decomposition: per-step rewards learned from rewards that are paid once per block of steps.

When an environment settles its reward only every ``period`` steps (a building billed once a day,
:class:`evosparse.rl.wrappers.DelayedReward`), a one-step TD target sees zeros at all but one step of a
block and must carry the payment back through ``period`` bootstraps; a correction made early in the day is
credited late, noisily, or never. Return decomposition (Arjona-Medina et al. 2019, "RUDDER"; Efroni et al.
2021; Ren et al. 2022, "Randomized return decomposition") instead learns a reward model ``r(s, a)`` whose
sum over each block equals the reward paid for it,

    loss = mean over blocks B of ( sum_{t in B} r(s_t, a_t) - R_B )^2 / |B|,

and the agent learns from ``r(s_t, a_t)`` at every step. Blocks are counted from the start of each episode
(the environment pays at a block's last step or when the episode ends); the target ``R_B`` is the sum of
all rewards received in the block, so a block without a delay (period 1) is learned exactly too.

The model is a small dense MLP on the normalised observation and the action (as stored: Box actions scaled
to [-1, 1]); it takes one Adam step per agent gradient step on about ``batch_size`` transitions (whole
blocks: ``max(1, batch_size // period)`` of them).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from evosparse.rl.networks import build_mlp

HIDDEN = (64, 64)  # the reward model's hidden layers: small, the reward of one step is a simple function


class ReturnDecomposition:
    """Args:
    obs_dim, action_dim: sizes of a flat observation and a stored action.
    period: steps per paid block (counted from each episode's start).
    capacity: transitions of blocks kept (the replay buffer's capacity: the same history).
    n_envs: environments adding a step at each vector step.
    batch_size: transitions per model update (whole blocks).
    learning_rate: Adam learning rate of the model.
    rng: numpy Generator of the model's initialisation and of block sampling.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        period: int,
        *,
        capacity: int,
        n_envs: int,
        batch_size: int,
        learning_rate: float,
        rng: np.random.Generator,
    ) -> None:
        if period < 1:
            raise ValueError(f"period must be an integer >= 1, got {period}")
        self.period, self.n_envs = int(period), int(n_envs)
        self.blocks_per_update = max(1, batch_size // self.period)
        width = obs_dim + action_dim
        self.obs_dim = obs_dim
        self.model = build_mlp([width, *HIDDEN, 1], rng=rng)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=learning_rate)
        self.rng = rng
        blocks = max(1, capacity // self.period)
        self.inputs = np.zeros((blocks, self.period, width), dtype=np.float32)  # raw obs | action
        self.lengths = np.zeros(blocks, dtype=np.int64)  # steps in each block (< period at an episode end)
        self.targets = np.zeros(blocks, dtype=np.float32)  # reward paid for each block
        self.pos, self.full = 0, False
        # Open blocks, one per environment.
        self.open_inputs = np.zeros((self.n_envs, self.period, width), dtype=np.float32)
        self.open_lengths = np.zeros(self.n_envs, dtype=np.int64)
        self.open_sums = np.zeros(self.n_envs, dtype=np.float64)
        self.last_loss: float | None = None  # of the latest update (None before the first)

    def __len__(self) -> int:
        return len(self.lengths) if self.full else self.pos

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, dones: np.ndarray) -> None:
        """One vector step: append each environment's step to its open block; close full or ended blocks."""
        n = self.n_envs
        steps = self.open_lengths
        self.open_inputs[np.arange(n), steps, : self.obs_dim] = obs.reshape(n, -1)
        self.open_inputs[np.arange(n), steps, self.obs_dim :] = actions.reshape(n, -1)
        self.open_sums += rewards
        steps += 1
        for i in np.flatnonzero((steps == self.period) | dones):
            self._close(i)

    def _close(self, env: int) -> None:
        length = int(self.open_lengths[env])
        self.inputs[self.pos, :length] = self.open_inputs[env, :length]
        self.inputs[self.pos, length:] = 0.0
        self.lengths[self.pos], self.targets[self.pos] = length, self.open_sums[env]
        self.open_lengths[env], self.open_sums[env] = 0, 0.0
        self.pos += 1
        if self.pos == len(self.lengths):
            self.pos, self.full = 0, True

    def update(self, normalize: Callable[[np.ndarray], np.ndarray]) -> None:
        """One Adam step on ``blocks_per_update`` random closed blocks (observations through ``normalize``)."""
        if len(self) == 0:
            return
        index = self.rng.integers(0, len(self), size=self.blocks_per_update)
        inputs = self.inputs[index].copy()
        inputs[..., : self.obs_dim] = normalize(inputs[..., : self.obs_dim])
        lengths = torch.from_numpy(self.lengths[index])
        mask = (torch.arange(self.period)[None, :] < lengths[:, None]).to(torch.float32)
        per_step = self.model(torch.from_numpy(inputs).reshape(-1, inputs.shape[-1])).reshape(mask.shape)
        block_sums = (per_step * mask).sum(dim=1)
        loss = ((block_sums - torch.from_numpy(self.targets[index])) ** 2 / lengths).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.last_loss = float(loss.detach())

    def rewards(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The model's per-step rewards for a batch of (normalised observations, stored actions)."""
        with torch.no_grad():
            inputs = torch.cat([obs.reshape(obs.shape[0], -1), actions.reshape(actions.shape[0], -1)], dim=1)
            return self.model(inputs.to(torch.float32)).reshape(-1)

    # ---- checkpointing (the model and its optimizer are saved with the agent's networks) ------------------------
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        filled = len(self)
        arrays = {
            "inputs": self.inputs[:filled], "lengths": self.lengths[:filled], "targets": self.targets[:filled],
            "open_inputs": self.open_inputs, "open_lengths": self.open_lengths, "open_sums": self.open_sums,
        }  # fmt: skip
        meta = {"pos": self.pos, "full": self.full, "rng": self.rng.bit_generator.state, "last_loss": self.last_loss}
        return meta, arrays

    def load_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        for name in ("inputs", "lengths", "targets", "open_inputs", "open_lengths", "open_sums"):
            target, saved = getattr(self, name), arrays[name]
            if saved.shape[1:] != target.shape[1:] or saved.shape[0] > target.shape[0]:
                raise ValueError(
                    f"saved return-decomposition array {name!r} has shape {saved.shape}, not {target.shape}"
                )
            target[: saved.shape[0]] = saved
        self.pos, self.full = int(meta["pos"]), bool(meta["full"])
        self.rng.bit_generator.state = meta["rng"]
        self.last_loss = None if meta["last_loss"] is None else float(meta["last_loss"])
