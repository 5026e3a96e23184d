"""The environments' registry: one :class:`EnvSpec` per environment, read by everything that needs one.

gymnasium registration (``gymnasium.make("evosparse/BuildingEnergy-v0")``), the ``none`` / ``rule`` /
``optimal`` controllers, :func:`optimum`, :func:`make_env` and ``evosparse grid run`` all read this table,
so adding an environment takes its own module (environment, config, and, where the shared ones do not fit,
its policies and its perfect-foresight model) plus one entry in ``_BUILT_IN`` below, or one
:func:`register_environment` call from outside the package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium

from evosparse.envs import building, community, market, microgrid, optimal, policies


@dataclass(frozen=True)
class EnvSpec:
    """Everything the package needs to know about one environment."""

    name: str  # short name: ``evosparse grid run NAME``, ``make_env(NAME)``
    gym_id: str  # gymnasium id, ``evosparse/<Name>-v0`` for the class ``<Name>Env``
    env: type  # the gymnasium environment: ``env(config=None, **overrides)``
    config: type  # its frozen config dataclass
    no_control: type  # the "none" yardstick: a policies.Controller class
    rule: type  # the practitioner's rules: a policies.Controller class
    optimum: Callable  # perfect-foresight plan of a reset env -> optimal.Plan
    description: str  # one line, for --help and the docs
    parallel: type | None = None  # the PettingZoo parallel view, where there is one


ENVIRONMENTS: dict[str, EnvSpec] = {}


def register_environment(spec: EnvSpec) -> EnvSpec:
    """Add ``spec`` to :data:`ENVIRONMENTS` and register its gymnasium id (once per process)."""
    if spec.name in ENVIRONMENTS and ENVIRONMENTS[spec.name] != spec:
        raise ValueError(f"environment {spec.name!r} is already registered")
    ENVIRONMENTS[spec.name] = spec
    if spec.gym_id not in gymnasium.registry:
        gymnasium.register(id=spec.gym_id, entry_point=spec.env)
    return spec


_BUILT_IN = (
    EnvSpec(
        name="building",
        gym_id="evosparse/BuildingEnergy-v0",
        env=building.BuildingEnergyEnv,
        config=building.BuildingConfig,
        no_control=policies.BuildingNoControl,
        rule=policies.BuildingRule,
        optimum=optimal.building_optimum,
        description="one building: PV, battery, heat pump and thermal zone, EV charger, deferrable appliance",
    ),
    EnvSpec(
        name="microgrid",
        gym_id="evosparse/Microgrid-v0",
        env=microgrid.MicrogridEnv,
        config=microgrid.MicrogridConfig,
        no_control=policies.MicrogridNoControl,
        rule=policies.MicrogridRule,
        optimum=optimal.microgrid_optimum,
        description="a campus microgrid: PV, battery, fuel generator, and a grid tie that fails",
    ),
    EnvSpec(
        name="market",
        gym_id="evosparse/IntradayMarket-v0",
        env=market.IntradayMarketEnv,
        config=market.MarketConfig,
        no_control=policies.MarketNoControl,
        rule=policies.MarketRule,
        optimum=optimal.market_optimum,
        description="a battery owner bidding on an intraday market built from real day-ahead prices",
    ),
    EnvSpec(
        name="community",
        gym_id="evosparse/EnergyCommunity-v0",
        env=community.EnergyCommunityEnv,
        config=community.CommunityConfig,
        no_control=policies.CommunityNoControl,
        rule=policies.CommunityRule,
        optimum=optimal.community_optimum,
        description="N buildings with PV and batteries on one feeder: peak and overload charges, peer-to-peer trades",
        parallel=community.EnergyCommunityParallelEnv,
    ),
)
for _spec in _BUILT_IN:
    register_environment(_spec)


def get_spec(name: str) -> EnvSpec:
    if name not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {', '.join(ENVIRONMENTS)}, got {name!r}")
    return ENVIRONMENTS[name]


def spec_of(env) -> EnvSpec:
    """The spec of an environment instance (gymnasium wrappers and the PettingZoo view are looked through)."""
    env = env.unwrapped if hasattr(env, "unwrapped") else env
    env = env.core if hasattr(env, "core") else env
    exact = [spec for spec in ENVIRONMENTS.values() if type(env) is spec.env]
    subclass = [spec for spec in ENVIRONMENTS.values() if isinstance(env, spec.env)]
    if not (exact or subclass):
        raise ValueError(f"{type(env).__name__} is not a registered environment ({', '.join(ENVIRONMENTS)})")
    return (exact or subclass)[0]


def make_env(name: str, config=None, **overrides):
    """The environment registered as ``name``, from a config object and / or keyword overrides of its fields."""
    return get_spec(name).env(config, **overrides)


def optimum(env) -> optimal.Plan:
    """The perfect-foresight plan of a reset environment of any registered kind."""
    return spec_of(env).optimum(env)
