"""Robustness wrappers: rewards paid late, and dynamics that change suddenly in the middle of training.

* :class:`DelayedReward` pays the reward accumulated over ``every`` steps at once (and what is left at the
  episode's end), zero in between: the return of every episode is unchanged, only its timing is. The
  building environment has its own ``reward_delay="daily"`` (the day's reward at its last hour).
* :class:`DynamicsChange` changes a MuJoCo model's masses, gravity or friction once, when the wrapper has
  taken ``at_step`` steps in total, counted across episodes (a robot that picks up a load, or moves from
  dry to wet ground, while it learns). The building environment's sudden changes are its ``Change`` events.

Both keep their counters in ``get_resume_state()`` / ``set_resume_state()``, which the agents' checkpoints
save with the environment (:mod:`evosparse.rl.envs`), so a resumed run continues with the same pending reward
and the same dynamics.

Paper: sudden changes and delayed rewards as robustness tests of deep RL (Dulac-Arnold et al., "Challenges
of real-world reinforcement learning", 2021, sections 2.3 and 2.7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np


class DelayedReward(gym.Wrapper):
    """Pay the reward accumulated since the last payment every ``every`` steps of an episode, and at its end.

    ``info["undelayed_reward"]`` carries the step's own reward, for logging.

    Example::

        env = DelayedReward(gym.make("Pendulum-v1"), every=20)
    """

    def __init__(self, env: gym.Env, every: int):
        if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
            raise ValueError(f"every must be an integer >= 1 (steps between reward payments), got {every!r}")
        super().__init__(env)
        self.every = int(every)
        self._pending = 0.0
        self._steps = 0

    def reset(self, **kwargs):
        self._pending, self._steps = 0.0, 0
        return self.env.reset(**kwargs)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._pending += float(reward)
        self._steps += 1
        info = {**info, "undelayed_reward": float(reward)}
        if terminated or truncated or self._steps % self.every == 0:
            paid, self._pending = self._pending, 0.0
        else:
            paid = 0.0
        return observation, paid, terminated, truncated, info

    def get_resume_state(self) -> dict[str, Any]:
        return {"pending": self._pending, "steps": self._steps}

    def set_resume_state(self, state: dict[str, Any]) -> None:
        self._pending, self._steps = float(state["pending"]), int(state["steps"])


def _mujoco_model(env: gym.Env):
    model = getattr(env.unwrapped, "model", None)
    if model is None or not all(hasattr(model, name) for name in ("body_mass", "geom_friction", "opt")):
        raise ValueError(
            f"DynamicsChange needs a MuJoCo environment (env.unwrapped.model with body_mass, opt.gravity, "
            f"geom_friction), got {type(env.unwrapped).__name__}"
        )
    return model


class DynamicsChange(gym.Wrapper):
    """Change a MuJoCo model once, after ``at_step`` steps counted across episodes.

    Args:
        at_step: steps taken (over all episodes of this wrapper) before the change; 0 changes at once.
        body_mass_scale: factor on every body's mass and rotational inertia (scaled together, as a body
            made of denser material: scaling the mass alone would make it spin unnaturally fast).
        gravity: the new gravity, as a number (the z component, e.g. -4.9 for half of Earth's) or an
            (x, y, z) vector; None keeps it.
        friction_scale: factor on every geom's friction coefficients (sliding, torsional, rolling).

    Factors apply to the model's values at construction, so loading a state never compounds them.
    ``info["dynamics_changed"]`` says whether the step ran with the new dynamics.

    Example::

        env = DynamicsChange(gym.make("HalfCheetah-v5"), at_step=100_000, body_mass_scale=1.5)
    """

    def __init__(
        self,
        env: gym.Env,
        *,
        at_step: int,
        body_mass_scale: float = 1.0,
        gravity: float | Sequence[float] | None = None,
        friction_scale: float = 1.0,
    ):
        if isinstance(at_step, bool) or not isinstance(at_step, int | np.integer) or at_step < 0:
            raise ValueError(f"at_step must be an integer >= 0 (steps before the change), got {at_step!r}")
        for name, value in (("body_mass_scale", body_mass_scale), ("friction_scale", friction_scale)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if gravity is not None:
            vector = np.array([0.0, 0.0, gravity] if np.ndim(gravity) == 0 else gravity, dtype=np.float64)
            if vector.shape != (3,) or not np.isfinite(vector).all():
                raise ValueError(f"gravity must be a finite number (the z component) or 3 numbers, got {gravity!r}")
            gravity = vector
        if body_mass_scale == 1.0 and friction_scale == 1.0 and gravity is None:
            raise ValueError("DynamicsChange changes nothing: give body_mass_scale, gravity or friction_scale")
        model = _mujoco_model(env)
        super().__init__(env)
        self.at_step = int(at_step)
        self.body_mass_scale, self.gravity, self.friction_scale = float(body_mass_scale), gravity, float(friction_scale)
        self._original = {
            "body_mass": model.body_mass.copy(),
            "body_inertia": model.body_inertia.copy(),
            "gravity": model.opt.gravity.copy(),
            "geom_friction": model.geom_friction.copy(),
        }
        self.total_steps = 0
        self.frozen = False
        self.changed = False
        self._apply(self.at_step == 0)

    def _apply(self, changed: bool) -> None:
        """Set the model to the changed (True) or the original (False) dynamics."""
        model, original = _mujoco_model(self.env), self._original
        mass_scale = self.body_mass_scale if changed else 1.0
        model.body_mass[:] = original["body_mass"] * mass_scale
        model.body_inertia[:] = original["body_inertia"] * mass_scale
        model.opt.gravity[:] = self.gravity if changed and self.gravity is not None else original["gravity"]
        model.geom_friction[:] = original["geom_friction"] * (self.friction_scale if changed else 1.0)
        self.changed = changed

    def step(self, action):
        if not self.changed and self.total_steps >= self.at_step:
            self._apply(True)
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.total_steps += 0 if self.frozen else 1
        return observation, reward, terminated, truncated, {**info, "dynamics_changed": self.changed}

    def freeze_at(self, total_steps: int) -> None:
        """Hold the dynamics of the step after ``total_steps`` steps: an evaluation environment shows the
        dynamics the training environment has at that point, and never changes during an evaluation."""
        self.total_steps, self.frozen = int(total_steps), True
        self._apply(self.total_steps >= self.at_step)

    def get_resume_state(self) -> dict[str, Any]:
        return {"total_steps": self.total_steps}

    def set_resume_state(self, state: dict[str, Any]) -> None:
        self.total_steps = int(state["total_steps"])
        # A change applies at the first step at or after at_step: a state saved exactly at at_step has not seen it.
        self._apply(self.total_steps > self.at_step or (self.at_step == 0))
