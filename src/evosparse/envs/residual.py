"""Residual control: an agent that corrects the practitioner's rule instead of replacing it.

:class:`ResidualAction` wraps an environment so that the agent's action ``a`` in ``[-1, 1]^d`` is a
correction of a base controller's action (the environment's ``rule`` or ``none`` yardstick):

    action = clip(base(observation) + scale * a, low, high)

With ``a = 0`` the wrapped environment plays the base controller exactly, so an agent whose corrections
start near zero starts from the rule's cost instead of from a random policy's, and its exploration noise
(and the uniform random warm-up of the off-policy agents, which is uniform in ``[-1, 1]^d``) is at most
``scale`` around the rule. The agent observes what the rule decides: the base action is appended to the
observation (``observe_base``), since the rule's own memory (its 24-hour price and heat-gain references)
is not all in the environment's observation. Two training aids: ``relative_reward`` (the reward minus the base
controller's on the same episode, played in a shadow copy) and ``correction_cost`` (a penalty on corrections).

The gymnasium id ``evosparse/Residual-v0`` makes one from a registered environment by name::

    gymnasium.make("evosparse/Residual-v0", base_env="building", base="rule", scale=0.3, price_signal="tariff")

so ``evosparse rl train --env evosparse/Residual-v0 --env-kwargs '{"base_env": "building", ...}'`` trains a
residual agent, and ``evosparse grid run ... --controller agent:RUN_DIR`` plays it through the same wrapper
(:mod:`evosparse.rl.grid`). The wrapper's state (the base controller's memory, rebuilt from the episode's
observations) is saved with the agents' checkpoints (``get_resume_state``).

Paper: Johannink et al., "Residual Reinforcement Learning for Robot Control", ICRA 2019; Silver et al.,
"Residual Policy Learning", arXiv:1812.06298 (2018).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from evosparse.envs.controllers import make_controller
from evosparse.envs.registry import get_spec

RESIDUAL_ID = "evosparse/Residual-v0"
BASES = ("rule", "none")  # the yardsticks that use no future information (never the optimum)
DEFAULT_SCALE = 0.3
RESIDUAL_KEYS = (
    "base_env",
    "base",
    "scale",
    "observe_base",
    "correction_cost",
    "relative_reward",
)  # the settings of the wrapper in gymnasium.make


class ResidualAction(gym.Wrapper):
    """The agent's action is a correction of ``base``'s action (see the module doc).

    Args:
        env: an environment of the registry (its spec names the ``rule`` / ``none`` controllers) with Box
            actions.
        base: ``"rule"`` (the practitioner's rules) or ``"none"`` (no control).
        scale: largest correction, in the environment's action units: a number in (0, 2] (2: the widest action
            range), or one number in [0, 2] per action (0: that device plays the base action unchanged).
        observe_base: append the base action to the observation.
        correction_cost: subtract ``correction_cost * sum((scale * a)^2)`` from the reward (the agent's only:
            the environment's log keeps its own costs), so corrections the agent cannot tell apart from noise
            shrink back to the base action (a regulariser; 0: off).
        relative_reward: the agent's reward is the step's reward minus the reward of the base controller
            playing the same episode alone (a shadow copy of the environment, restored from the episode's
            ``get_resume_state``). Both face the same loads, prices and sessions, so the agent learns from the
            effect of its corrections only, not from the weather; an episode's return is the environment's
            minus the base controller's, which no action changes, so the best policy is the same.

    ``relative_reward`` and ``correction_cost`` are training aids: :func:`evosparse.rl.grid.grid_run_config`
    turns them off in the evaluations; with ``evosparse rl train`` pass ``--eval-env-kwargs
    '{"relative_reward": false, "correction_cost": 0}'``.

    ``info["base_action"]`` is the base controller's action of the step, ``info["correction_cost"]`` the
    penalty subtracted, ``info["base_reward"]`` the shadow's reward (with ``relative_reward``).

    Example::

        env = ResidualAction(BuildingEnergyEnv(split="train", random_start=True), base="rule", scale=0.3)
    """

    def __init__(
        self,
        env: gym.Env,
        *,
        base: str = "rule",
        scale: float | list[float] = DEFAULT_SCALE,
        observe_base: bool = True,
        correction_cost: float = 0.0,
        relative_reward: bool = False,
    ):
        if base not in BASES:
            raise ValueError(f"base must be one of {', '.join(BASES)}, got {base!r}")
        for name, value in (("observe_base", observe_base), ("relative_reward", relative_reward)):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false, got {value!r}")
        if relative_reward and not hasattr(type(env.unwrapped), "get_resume_state"):
            raise ValueError(
                f"relative_reward needs an environment that can copy its episode (get_resume_state), "
                f"{type(env.unwrapped).__name__} cannot"
            )
        number = isinstance(correction_cost, int | float) and not isinstance(correction_cost, bool)
        if not (number and np.isfinite(correction_cost) and correction_cost >= 0):
            raise ValueError(f"correction_cost must be a finite number >= 0, got {correction_cost!r}")
        space = env.action_space
        if not isinstance(space, gym.spaces.Box):
            raise ValueError(f"a residual agent needs Box actions (no discrete_levels), got {space}")
        scales = _scales(scale, space.shape)
        if getattr(getattr(env.unwrapped, "config", None), "hvac_action", "power") != "power":
            raise ValueError('a residual agent corrects the rule\'s heat-pump power: needs hvac_action="power"')
        super().__init__(env)
        self.base, self.scale, self.observe_base = base, scales, observe_base
        self.correction_cost = float(correction_cost)
        self.relative_reward = relative_reward
        # The shadow: the same environment (same config) playing the base controller alone, episode by episode.
        self.shadow = type(env.unwrapped)(env.unwrapped.config) if relative_reward else None
        self.low, self.high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, space.shape, dtype=np.float32)
        if observe_base:
            inner = env.observation_space
            self.observation_space = gym.spaces.Box(
                np.concatenate([inner.low.ravel(), space.low]).astype(np.float32),
                np.concatenate([inner.high.ravel(), space.high]).astype(np.float32),
                dtype=np.float32,
            )
        self.controller = None
        self.base_action: np.ndarray | None = None
        self._seen: list[list[float]] = []  # the episode's observations: the base controller's memory

    # ---- the two halves, also used by a controller that plays a trained agent on a bare environment ----------
    def begin(self) -> None:
        """Start the base controller on the episode just reset (its memory empty)."""
        self.controller = make_controller(self.base)
        self.controller.start(self.env)
        self._seen = []

    def observe(self, observation) -> np.ndarray:
        """The base action for ``observation`` (once per observation: it updates the controller's memory)
        and what the agent observes."""
        if self.controller is None:
            raise RuntimeError("ResidualAction.observe before begin(): reset the environment first")
        self._seen.append(np.asarray(observation, dtype=np.float64).ravel().tolist())
        self.base_action = np.asarray(self.controller.act(observation), dtype=np.float64)
        if not self.observe_base:
            return np.asarray(observation, dtype=np.float32)
        return np.concatenate([np.asarray(observation, dtype=np.float32).ravel(), self.base_action.astype(np.float32)])

    def action(self, correction) -> np.ndarray:
        """``clip(base + scale * correction, low, high)``: the environment's action for the last observation."""
        correction = np.clip(np.asarray(correction, dtype=np.float64).reshape(self.low.shape), -1.0, 1.0)
        return np.clip(self.base_action + self.scale * correction, self.low, self.high).astype(np.float32)

    # ---- gymnasium ----------------------------------------------------------------------------------------------
    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        self.begin()
        if self.shadow is not None:  # the same episode from its start: the same first observation
            self.shadow.set_resume_state(self.env.unwrapped.get_resume_state())
            self._start_shadow(observation)
        return self.observe(observation), info

    def step(self, correction):
        action = self.action(correction)
        base_action = self.base_action
        observation, reward, terminated, truncated, info = self.env.step(action)
        penalty = 0.0
        if self.correction_cost:
            applied = self.scale * np.clip(np.asarray(correction, dtype=np.float64).reshape(self.low.shape), -1, 1)
            penalty = self.correction_cost * float(np.sum(applied**2))
        info = {**info, "base_action": base_action, "correction_cost": penalty}
        if self.shadow is not None:
            shadow_action = self.shadow_controller.act(self._shadow_observation)
            self._shadow_seen.append(self._shadow_observation.tolist())
            self._shadow_observation, base_reward = self.shadow.step(shadow_action)[:2]
            info["base_reward"] = float(base_reward)
            reward = reward - float(base_reward)
        return self.observe(observation), reward - penalty, terminated, truncated, info

    def _start_shadow(self, observation) -> None:
        self.shadow_controller = make_controller(self.base)
        self.shadow_controller.start(self.shadow)
        self._shadow_observation = np.asarray(observation, dtype=np.float32)
        self._shadow_seen: list[list[float]] = []

    # ---- resume: the controllers' memories are rebuilt by replaying the episode's observations -----------------
    def get_resume_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"observations": [list(row) for row in self._seen]}
        if self.shadow is not None:
            state["shadow"] = {
                "env": self.shadow.get_resume_state(),
                "seen": [list(row) for row in self._shadow_seen],
                "observation": self._shadow_observation.tolist(),
            }
        return state

    def set_resume_state(self, state: dict[str, Any]) -> None:
        self.begin()
        for row in state["observations"]:
            self.observe(np.asarray(row, dtype=np.float32))
        if self.shadow is not None:
            saved = state["shadow"]
            self.shadow.set_resume_state(saved["env"])
            self._start_shadow(saved["seen"][0] if saved["seen"] else saved["observation"])
            for row in saved["seen"]:
                self.shadow_controller.act(np.asarray(row, dtype=np.float32))
            self._shadow_seen = [list(row) for row in saved["seen"]]
            self._shadow_observation = np.asarray(saved["observation"], dtype=np.float32)


def _scales(scale, shape: tuple[int, ...]) -> np.ndarray:
    """``scale`` as one float per action, checked (see :class:`ResidualAction`)."""
    message = (
        f"scale must be a number in (0, 2] or {int(np.prod(shape))} numbers in [0, 2], not all 0 (largest "
        f"correction per action, in action units), got {scale!r}"
    )
    numbers = list(scale) if isinstance(scale, list | tuple | np.ndarray) else [scale]
    if not all(isinstance(value, int | float | np.floating) and not isinstance(value, bool) for value in numbers):
        raise ValueError(message)
    values = np.asarray(numbers, dtype=np.float64)
    if len(numbers) == 1 and not isinstance(scale, list | tuple | np.ndarray):
        values = np.full(shape, values[0])
    if values.shape != shape or not (np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 2))):
        raise ValueError(message)
    if not np.any(values > 0):
        raise ValueError(message)
    return values


def split_residual_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the wrapper's settings of :data:`RESIDUAL_KEYS` with ``base_env``, the environment's settings)."""
    residual = {key: kwargs[key] for key in RESIDUAL_KEYS if key in kwargs}
    residual.setdefault("base_env", "building")
    return residual, {key: value for key, value in kwargs.items() if key not in RESIDUAL_KEYS}


def make_residual_env(**kwargs) -> ResidualAction:
    """The entry point of ``evosparse/Residual-v0``: ``base_env`` (a registry name, default building), the
    wrapper's ``base`` / ``scale`` / ``observe_base``, and the environment's own settings."""
    residual, settings = split_residual_kwargs(kwargs)
    spec = get_spec(residual.pop("base_env"))
    return ResidualAction(spec.env(**settings), **residual)


if RESIDUAL_ID not in gym.registry:
    gym.register(id=RESIDUAL_ID, entry_point=make_residual_env)
