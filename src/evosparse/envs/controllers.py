"""Controllers by name, and the yardstick comparison of ``evosparse grid run``.

A controller is any :class:`~evosparse.envs.policies.Controller` (``start(env)`` after ``env.reset``, then
``act(observation)`` per step); :func:`run_episode` does the loop. :data:`CONTROLLERS` maps a name to a
factory ``factory(argument, *, seed) -> Controller`` (``argument`` is the text after ``NAME:``, e.g. the run
folder of ``agent:RUN_DIR``, or None). The built-in yardsticks work for every registered environment:

* ``none``: the environment's no-control policy (its spec's ``no_control``);
* ``rule``: its practitioner's rules (its spec's ``rule``);
* ``optimal``: replays the perfect-foresight LP / MILP plan of its spec's ``optimum``;
* ``random``: uniform samples of the action space (seeded).

Other packages add controllers with :func:`register_controller` (the RL agents register ``agent``, so that
``evosparse grid run building --controller agent:runs/ppo`` plays a trained agent); this package knows no agent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evosparse.envs.metrics import episode_metrics, gap_closed
from evosparse.envs.policies import Controller
from evosparse.envs.registry import spec_of

ControllerFactory = Callable[..., Controller]


class _ByEnvironment(Controller):
    """The policy the environment's spec names under ``role`` (``no_control`` or ``rule``), made at ``start``."""

    def __init__(self, role: str):
        self.role = role

    def start(self, env) -> None:
        self.policy = getattr(spec_of(env), self.role)()
        self.policy.start(env)
        self.env = self.policy.env

    def act(self, observation):
        return self.policy.act(observation)


class RandomControl(Controller):
    def __init__(self, seed: int = 0):
        self.seed = seed

    def start(self, env) -> None:
        super().start(env)
        self.env.action_space.seed(self.seed)

    def act(self, observation):
        return self.env.action_space.sample()


class OptimalController(Controller):
    """Plays the perfect-foresight plan computed at ``start`` (the episode must be the one just reset)."""

    def start(self, env) -> None:
        super().start(env)
        self.plan = spec_of(self.env).optimum(self.env)
        self._t = 0

    def act(self, observation):
        action = self.plan.actions[self._t]
        self._t += 1
        return action.astype(np.float32)


def _no_argument(name: str, make: Callable[[int], Controller]) -> ControllerFactory:
    def factory(argument: str | None, *, seed: int) -> Controller:
        if argument is not None:
            raise ValueError(f"controller {name!r} takes no argument, got {name}:{argument}")
        return make(seed)

    return factory


CONTROLLERS: dict[str, ControllerFactory] = {
    "none": _no_argument("none", lambda seed: _ByEnvironment("no_control")),
    "rule": _no_argument("rule", lambda seed: _ByEnvironment("rule")),
    "optimal": _no_argument("optimal", lambda seed: OptimalController()),
    "random": _no_argument("random", lambda seed: RandomControl(seed)),
}


def register_controller(name: str, factory: ControllerFactory) -> None:
    """Make ``make_controller(name)`` / ``make_controller(f"{name}:{argument}")`` call
    ``factory(argument or None, seed=seed)``; ``grid run --controller`` accepts the name from then on."""
    if not name.isidentifier():
        raise ValueError(f"a controller name must be an identifier (letters, digits, _), got {name!r}")
    if name in CONTROLLERS and CONTROLLERS[name] is not factory:
        raise ValueError(f"controller {name!r} is already registered")
    CONTROLLERS[name] = factory


def parse_controller(text: str) -> tuple[str, str | None]:
    """``"agent:runs/ppo"`` -> ``("agent", "runs/ppo")``; ``"rule"`` -> ``("rule", None)``; unknown names raise."""
    name, colon, argument = text.partition(":")
    if name not in CONTROLLERS:
        raise ValueError(f"controller must be one of {', '.join(CONTROLLERS)} (NAME or NAME:ARGUMENT), got {text!r}")
    if colon and not argument:
        raise ValueError(f"controller {text!r} has an empty argument after ':'")
    return name, (argument if colon else None)


def make_controller(name: str, *, seed: int = 0) -> Controller:
    """The controller registered as ``name`` (``NAME`` or ``NAME:ARGUMENT``), seeded where it draws."""
    name, argument = parse_controller(name)
    return CONTROLLERS[name](argument, seed=seed)


def run_episode(env, controller: Controller, *, seed: int | None = None) -> dict[str, np.ndarray]:
    """Reset ``env`` with ``seed``, play one whole episode with ``controller``, return the environment's log."""
    observation, _ = env.reset(seed=seed)
    controller.start(env)
    done = False
    while not done:
        observation, _, terminated, truncated, _ = env.step(controller.act(observation))
        done = terminated or truncated
    return env.unwrapped.log


@dataclass
class Comparison:
    """KPIs per controller on one episode (``rows``), the logs, and notes such as the optimum's bound."""

    rows: dict[str, dict[str, float]]
    logs: dict[str, dict[str, np.ndarray]]
    notes: list[str]


def compare_controllers(env, names: list[str], *, seed: int, gap_reference: bool = True) -> Comparison:
    """Play each controller of ``names`` on the episode ``seed`` of ``env`` and tabulate its KPIs.

    With ``gap_reference``, ``none`` and ``optimal`` are also played (silently, when not listed) so every row
    has ``gap_closed``, the share of the gap between no control and the optimum the controller closes.
    """
    steps_per_day = 24 * getattr(env.unwrapped.config, "steps_per_hour", 1)
    references = [name for name in ("none", "optimal") if gap_reference and name not in names]
    rows, logs, notes = {}, {}, []
    for name in [*names, *references]:
        controller = make_controller(name, seed=seed)
        log = run_episode(env, controller, seed=seed)
        logs[name] = {key: value.copy() for key, value in log.items()}
        rows[name] = episode_metrics(log, steps_per_day=steps_per_day)
        rows[name]["clipped_actions"] = env.unwrapped.clipped_actions
        if isinstance(controller, OptimalController):
            plan = controller.plan
            notes.append(
                f"optimal: model cost {plan.objective:.3f}, proven lower bound {plan.bound:.3f} ({plan.status})"
            )
    if "none" in rows and "optimal" in rows:
        for row in rows.values():
            row["gap_closed"] = gap_closed(
                row["total_cost"], no_control=rows["none"]["total_cost"], optimum=rows["optimal"]["total_cost"]
            )
    played = [
        f"{name} (not listed) was played for gap_closed: total_cost {rows[name]['total_cost']:.3f}"
        for name in references
    ]
    notes[:0] = played
    for name in references:
        del rows[name], logs[name]
    for row in rows.values():
        row.setdefault("gap_closed", math.nan)
    return Comparison(rows=rows, logs=logs, notes=notes)
