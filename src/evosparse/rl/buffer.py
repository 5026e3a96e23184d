"""Replay buffer: preallocated numpy arrays, one column per environment, optional n-step returns.

Storage is ``(capacity, n_envs, ...)``, flattened to ``capacity * n_envs`` rows, so the step after row
``i`` of an environment is row ``i + n_envs``. Each transition keeps its own ``next_obs`` (the *real*
next observation, also at a time-limit truncation, where the environment has already been reset).

A sample returns ``(obs, actions, rewards, next_obs, discounts)`` with the n-step return folded in:

    rewards   = r_t + gamma r_{t+1} + ... + gamma^(k-1) r_{t+k-1}
    discounts = gamma^k * (1 - terminated_{t+k-1})

where ``k <= n`` stops at the first episode end (terminated *or* truncated) or at the newest stored step.
The agent's target is then ``rewards + discounts * V(next_obs)``: a termination cuts the bootstrap, a
truncation does not (Pardo et al. 2018, "Time limits in reinforcement learning").

Paper (n-step returns): Sutton 1988; Hessel et al. 2018 (Rainbow), Section 3.
"""

from __future__ import annotations

import numpy as np
import torch

_ARRAYS = ("obs", "next_obs", "actions", "rewards", "terminated", "ended")


class ReplayBuffer:
    """Args:
    capacity: transitions kept (all environments together; rounded down to a multiple of ``n_envs``).
    obs_shape: shape of one observation (stored as float32).
    action_shape: shape of one action as stored (``()`` for a Discrete action).
    action_dtype: numpy dtype of stored actions (float32 for Box, int64 for (Multi)Discrete).
    n_envs: environments adding a transition at each step.
    n_step: n of the n-step return (1: one-step).
    gamma: discount of the n-step return and of ``discounts``.
    seed: int or ``numpy.random.Generator`` of the sampling.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...],
        *,
        action_dtype: np.dtype = np.float32,
        n_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if capacity < n_envs:
            raise ValueError(f"capacity must be >= n_envs ({n_envs}), got {capacity}")
        if n_step < 1:
            raise ValueError(f"n_step must be an integer >= 1, got {n_step}")
        self.steps = capacity // n_envs  # rows per environment
        self.n_envs, self.n_step, self.gamma = n_envs, n_step, float(gamma)
        rows = self.steps * n_envs
        self.obs = np.zeros((rows, *obs_shape), dtype=np.float32)
        self.next_obs = np.zeros((rows, *obs_shape), dtype=np.float32)
        self.actions = np.zeros((rows, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros(rows, dtype=np.float32)
        self.terminated = np.zeros(rows, dtype=np.float32)
        self.ended = np.zeros(rows, dtype=bool)  # terminated or truncated: an n-step return stops here
        self.pos = 0  # next step row (per environment) to write
        self.full = False
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._discount_powers = self.gamma ** np.arange(n_step + 1, dtype=np.float64)
        self._out: dict[int, tuple] = {}  # preallocated sample arrays per batch size

    @property
    def capacity(self) -> int:
        return self.steps * self.n_envs

    def __len__(self) -> int:
        return (self.steps if self.full else self.pos) * self.n_envs

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Store one step of every environment (arrays with a leading ``n_envs`` axis)."""
        rows = slice(self.pos * self.n_envs, (self.pos + 1) * self.n_envs)
        self.obs[rows] = obs
        self.next_obs[rows] = next_obs
        self.actions[rows] = actions
        self.rewards[rows] = rewards
        self.terminated[rows] = terminated
        self.ended[rows] = np.logical_or(terminated, truncated)
        self.pos += 1
        if self.pos == self.steps:
            self.pos, self.full = 0, True

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """``batch_size`` uniform transitions as float32 tensors (actions in their stored dtype).

        The tensors share memory with arrays reused at the next call of the same size: consume them first.
        """
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = self.rng.integers(0, len(self), size=batch_size)
        return self.gather(index)

    def gather(self, index: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The transitions at flat rows ``index`` (with their n-step returns)."""
        batch_size = index.shape[0]
        if batch_size not in self._out:
            self._out[batch_size] = tuple(
                np.empty((batch_size, *a.shape[1:]), dtype=a.dtype) for a in (self.obs, self.actions, self.next_obs)
            ) + (np.empty(batch_size, np.float32), np.empty(batch_size, np.float32))
        obs, actions, next_obs, rewards, discounts = self._out[batch_size]
        np.take(self.obs, index, axis=0, out=obs)
        np.take(self.actions, index, axis=0, out=actions)
        if self.n_step == 1:
            np.take(self.next_obs, index, axis=0, out=next_obs)
            np.take(self.rewards, index, out=rewards)
            np.multiply(1.0 - self.terminated[index], self.gamma, out=discounts)
        else:
            last, returns, k = self._n_step(index)
            np.take(self.next_obs, last, axis=0, out=next_obs)
            rewards[:] = returns
            discounts[:] = self._discount_powers[k] * (1.0 - self.terminated[last])
        return tuple(torch.from_numpy(a) for a in (obs, actions, rewards, next_obs, discounts))

    def _n_step(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Last row, discounted reward sum and length k of the n-step return starting at each row."""
        rows = self.capacity
        # Steps stored after each sampled one in its environment's column (newest first stop).
        start = index // self.n_envs
        available = (self.pos - 1 - start) % self.steps + 1 if self.full else self.pos - start
        returns = np.zeros(index.shape[0], dtype=np.float64)
        last = index.copy()
        length = np.zeros(index.shape[0], dtype=np.int64)
        alive = np.ones(index.shape[0], dtype=bool)
        for j in range(self.n_step):
            row = (index + j * self.n_envs) % rows
            step_alive = alive & (j < available)
            returns += np.where(step_alive, self._discount_powers[j] * self.rewards[row], 0.0)
            last = np.where(step_alive, row, last)
            length += step_alive
            alive = step_alive & ~self.ended[row]
        return last, returns.astype(np.float32), length

    # ---- checkpointing ------------------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able metadata, arrays of the filled rows) -- everything a resume needs."""
        filled = len(self)
        arrays = {name: getattr(self, name)[:filled] for name in _ARRAYS}
        meta = {"pos": self.pos, "full": self.full, "rng": self.rng.bit_generator.state}
        return meta, arrays

    def load_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        for name in _ARRAYS:
            saved = arrays[name]
            target = getattr(self, name)
            if saved.shape[1:] != target.shape[1:] or saved.shape[0] > target.shape[0]:
                raise ValueError(f"saved replay buffer array {name!r} has shape {saved.shape}, buffer {target.shape}")
            target[: saved.shape[0]] = saved
        self.pos, self.full = int(meta["pos"]), bool(meta["full"])
        self.rng.bit_generator.state = meta["rng"]
