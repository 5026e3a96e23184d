"""RL agents on the smart grid: train on the first eleven months, evaluate on the held-out last month.

The yardsticks of ``evosparse grid run`` (none / rule / optimal) play the last 30 days of the data year (the
environments' ``split="test"``). An agent is trained the same way a practitioner would: episodes that start
on random days of the other eleven months (``split="train", random_start=True``), evaluated during training
on the held-out month (``split="test"``), never trained on it. With ``validation=True`` the agent trains on the
first ten months (``"fit"``) and is evaluated on the eleventh (``"validation"``), keeping its best checkpoint
there (``keep_best``): a checkpoint chosen without looking at the test month, played on it by ``agent_best``.

* :func:`grid_run_config`: the :class:`~evosparse.rl.run.RunConfig` of such a run for a registered
  environment (``building``, ``microgrid``, ``market``, ``community``), with the delayed-reward
  (``reward_delay="daily"``) and sudden-change (``changes``) variants as environment settings, and the
  residual task (``residual="rule"``: the agent corrects the rule's action, :mod:`evosparse.envs.residual`).
* :class:`AgentController`: a trained run's agent as a yardstick controller; registered as ``agent``, so
  ``evosparse grid run building --controller none,rule,optimal,agent:RUN_DIR`` reports the share of the gap
  to the optimum the agent closes. The environments never import the agents: this module registers it.
  A community run (:mod:`evosparse.rl.community`: a shared policy or independent learners) plays through the
  same ``agent:RUN_DIR``. ``agent_best:RUN_DIR`` plays the run's best checkpoint (``keep_best``) instead of its last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from evosparse.envs.policies import Controller
from evosparse.envs.registry import spec_of
from evosparse.envs.residual import RESIDUAL_ID, ResidualAction, split_residual_kwargs
from evosparse.rl.run import RunConfig, load_agent, read_run_config

HELD_OUT_HOURS = 24 * 30  # the test split: the last 30 days of the data year


def split_kwargs(episode_days: int = 7, *, validation: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training, evaluation) environment settings: random ``episode_days``-day episodes of the training
    split, and the whole held-out month; with ``validation``, of the first ten months, and the eleventh."""
    if not (isinstance(episode_days, int) and 1 <= episode_days <= 30):
        raise ValueError(f"episode_days must be an integer in [1, 30], got {episode_days!r}")
    fit, evaluate = ("fit", "validation") if validation else ("train", "test")
    train = {"split": fit, "random_start": True, "episode_hours": 24 * episode_days}
    test = {"split": evaluate, "random_start": False, "start_hour": 0, "episode_hours": HELD_OUT_HOURS}
    return train, test


def grid_run_config(
    env: str = "building",
    *,
    algo: str = "sac",
    episode_days: int = 7,
    env_kwargs: dict[str, Any] | None = None,
    residual: str | None = None,
    residual_scale: float | None = None,
    validation: bool = False,
    **run_fields: Any,
) -> RunConfig:
    """A run of ``algo`` on the registered environment ``env`` over the training split, evaluated on the
    held-out month (one episode per evaluation by default: the month is the test set).

    ``env_kwargs`` (e.g. ``{"reward_delay": "daily"}`` or ``{"changes": [{"kind": "battery_failure",
    "hour": 240}]}``) apply to both environments; ``run_fields`` are other :class:`RunConfig` fields.
    ``residual`` (``"rule"`` or ``"none"``): the agent corrects that controller's action by at most
    ``residual_scale`` (default :data:`evosparse.envs.residual.DEFAULT_SCALE`), through the environment
    ``evosparse/Residual-v0``. ``validation``: train on the first ten months, evaluate on the eleventh and keep
    the best checkpoint there (``keep_best``); the test month stays unseen until ``agent_best:RUN_DIR`` plays it.
    """
    from evosparse import envs
    from evosparse.envs import residual as residual_module

    if env not in envs.ENVIRONMENTS:
        raise ValueError(f"env must be one of {', '.join(envs.ENVIRONMENTS)}; got {env!r}")
    train, test = split_kwargs(episode_days, validation=validation)
    if validation:
        run_fields.setdefault("keep_best", True)
    extra = dict(env_kwargs or {})
    if residual is not None:
        if residual not in residual_module.BASES:
            raise ValueError(f"residual must be one of {', '.join(residual_module.BASES)} or None, got {residual!r}")
        scale = residual_module.DEFAULT_SCALE if residual_scale is None else residual_scale
        extra = {"base_env": env, "base": residual, "scale": scale, **extra}
        gym_id = residual_module.RESIDUAL_ID
        # Training aids (a penalty on corrections, rewards relative to the rule's): evaluations report the
        # environment's own reward.
        if extra.get("correction_cost"):
            test = {**test, "correction_cost": 0.0}
        if extra.get("relative_reward"):
            test = {**test, "relative_reward": False}
    elif residual_scale is not None:
        raise ValueError("residual_scale needs residual (the controller the agent corrects: rule or none)")
    else:
        gym_id = envs.ENVIRONMENTS[env].gym_id
    run_fields.setdefault("eval_episodes", 1)
    run_fields.setdefault("eval_every", 24 * 7 * 10)
    return RunConfig(
        env=gym_id,
        algo=algo,
        env_kwargs={**extra, **train},
        eval_env_kwargs=test,
        **run_fields,
    )


class AgentController(Controller):
    """The deterministic policy of a run's agent (its last checkpoint), as a yardstick controller.

    A DQN agent trained with ``discrete_levels`` plays a continuous environment through the same levels; a
    residual agent (trained on ``evosparse/Residual-v0``) plays through the same :class:`ResidualAction` as in
    training, around the bare environment of the yardsticks.
    """

    def __init__(self, run_dir: str | Path, *, best: bool = False):
        self.run_dir, self.best = Path(run_dir), best
        self.config = read_run_config(self.run_dir)  # a folder without an RL run fails here, at once
        self.agent = None

    def start(self, env) -> None:
        super().start(env)
        if self.agent is None:
            self.agent = load_agent(self.run_dir, best=self.best)
        self._residual = None
        env_obs, env_actions = self.env.observation_space.shape, self.env.action_space
        if self.config.env == RESIDUAL_ID:
            settings, _ = split_residual_kwargs(self.config.env_kwargs)
            trained_on, playing = settings.pop("base_env"), spec_of(self.env).name
            if trained_on != playing:
                raise ValueError(
                    f"agent:{self.run_dir} corrects the {settings.get('base', 'rule')} controller of {trained_on}; "
                    f"this environment is {playing}"
                )
            self._residual = ResidualAction(self.env, **settings)
            self._residual.begin()
            env_obs, env_actions = self._residual.observation_space.shape, self._residual.action_space
        agent_obs = self.agent.observation_space.shape
        if agent_obs != env_obs:
            raise ValueError(
                f"agent:{self.run_dir} was trained on {self.config.env} with observations of shape {agent_obs}; "
                f"this environment's have shape {env_obs}"
            )
        self._levels = None
        agent_actions = self.agent.action_space
        if isinstance(agent_actions, gym.spaces.MultiDiscrete) and isinstance(env_actions, gym.spaces.Box):
            if agent_actions.shape != env_actions.shape:
                raise ValueError(
                    f"agent:{self.run_dir} acts with {agent_actions}; this environment needs {env_actions}"
                )
            self._levels = agent_actions.nvec - 1
        elif agent_actions.shape != env_actions.shape:
            raise ValueError(f"agent:{self.run_dir} acts with {agent_actions}; this environment needs {env_actions}")
        # An agent trained with hvac_action="target" plays a "power" environment (the yardsticks') through the
        # environment's own thermostat, which is what its training environment did inside step().
        trained = self.config.env_kwargs.get("hvac_action", "power")
        playing = getattr(getattr(self.env, "config", None), "hvac_action", trained)
        self._hvac_target = None
        if trained != playing:
            if trained != "target":
                raise ValueError(
                    f"agent:{self.run_dir} was trained with hvac_action={trained!r}; this environment takes "
                    f"hvac_action={playing!r}"
                )
            self._hvac_target = self.env.action_names.index("hvac")

    def act(self, observation):
        if self._residual is not None:  # the agent sees the rule's action too, and corrects it
            observed = self._residual.observe(observation)
            correction, _ = self.agent.predict(observed, deterministic=True)
            return self._residual.action(correction)
        action, _ = self.agent.predict(np.asarray(observation, dtype=np.float32), deterministic=True)
        if self._levels is not None:  # level k of n -> low + (high - low) k / (n - 1)
            space = self.env.action_space
            action = (space.low + (space.high - space.low) * np.asarray(action) / self._levels).astype(np.float32)
        if self._hvac_target is not None:
            action = np.array(action, dtype=np.float64, copy=True)  # the fraction as the environment computes it
            action[self._hvac_target] = self.env.hvac_fraction_for_target(float(action[self._hvac_target]))
        return action


def agent_controller(argument: str | None, *, seed: int = 0) -> AgentController:
    """The ``agent:RUN_DIR`` controller factory (the seed is the run's own; the episode's comes from grid run):
    a community run (:mod:`evosparse.rl.community`) or a single-agent run."""
    if argument is None:
        raise ValueError("controller 'agent' needs the run folder: agent:RUN_DIR")
    from evosparse.io import read_manifest

    path = Path(argument)
    manifest = read_manifest(path) if path.is_dir() else None
    if manifest is not None and manifest.get("kind") == "rl-community":
        from evosparse.rl.community import CommunityController

        return CommunityController(path)
    return AgentController(argument)


def best_agent_controller(argument: str | None, *, seed: int = 0) -> AgentController:
    """The ``agent_best:RUN_DIR`` controller: a single-agent run's best checkpoint (trained with ``keep_best``)."""
    if argument is None:
        raise ValueError("controller 'agent_best' needs the run folder: agent_best:RUN_DIR")
    controller = AgentController(argument, best=True)
    # loaded now, not at start(): a run without a best checkpoint fails before any episode is played
    controller.agent = load_agent(controller.run_dir, best=True)
    return controller


def register_agent_controller() -> None:
    """Register ``agent`` and ``agent_best`` with the environments' controller registry (once)."""
    from evosparse.envs import controllers

    if getattr(controllers, "CONTROLLERS", {}).get("agent") is agent_controller:
        return
    controllers.register_controller("agent", agent_controller)
    controllers.register_controller("agent_best", best_agent_controller)
