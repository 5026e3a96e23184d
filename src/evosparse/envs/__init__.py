"""Smart-grid environments on real data, their rule-based baselines and perfect-foresight optima.

Environments (registry name, gymnasium id): :class:`BuildingEnergyEnv` (``building``,
``evosparse/BuildingEnergy-v0``), :class:`MicrogridEnv` (``microgrid``, ``evosparse/Microgrid-v0``),
:class:`IntradayMarketEnv` (``market``, ``evosparse/IntradayMarket-v0``) and :class:`EnergyCommunityEnv`
(``community``, ``evosparse/EnergyCommunity-v0``, one centralised controller), with its PettingZoo parallel
view :class:`EnergyCommunityParallelEnv` (one agent per building). :class:`ResidualAction`
(``evosparse/Residual-v0``) turns any of them into the residual task: correct the rule's action.
:data:`ENVIRONMENTS` holds their specs
(:mod:`evosparse.envs.registry`); :data:`CONTROLLERS` the yardstick controllers (:mod:`evosparse.envs.controllers`).
Importing this package registers the gymnasium ids.
"""

from evosparse.envs.base import HELD_OUT_DAYS, SPLITS
from evosparse.envs.building import BuildingConfig, BuildingEnergyEnv, Change
from evosparse.envs.community import CommunityConfig, EnergyCommunityEnv, EnergyCommunityParallelEnv
from evosparse.envs.controllers import (
    CONTROLLERS,
    compare_controllers,
    make_controller,
    register_controller,
    run_episode,
)
from evosparse.envs.data import load_citylearn_building, load_day_ahead_prices, load_ev_statistics
from evosparse.envs.market import IntradayMarketEnv, MarketConfig
from evosparse.envs.metrics import episode_metrics, format_table, gap_closed
from evosparse.envs.microgrid import MicrogridConfig, MicrogridEnv
from evosparse.envs.policies import Controller
from evosparse.envs.registry import ENVIRONMENTS, EnvSpec, make_env, optimum, register_environment, spec_of
from evosparse.envs.residual import RESIDUAL_ID, ResidualAction

__all__ = [
    "BuildingConfig",
    "BuildingEnergyEnv",
    "Change",
    "CommunityConfig",
    "EnergyCommunityEnv",
    "EnergyCommunityParallelEnv",
    "IntradayMarketEnv",
    "MarketConfig",
    "MicrogridConfig",
    "MicrogridEnv",
    "ResidualAction",
    "RESIDUAL_ID",
    "ENVIRONMENTS",
    "EnvSpec",
    "register_environment",
    "spec_of",
    "make_env",
    "HELD_OUT_DAYS",
    "SPLITS",
    "CONTROLLERS",
    "Controller",
    "register_controller",
    "make_controller",
    "run_episode",
    "compare_controllers",
    "optimum",
    "episode_metrics",
    "format_table",
    "gap_closed",
    "load_citylearn_building",
    "load_day_ahead_prices",
    "load_ev_statistics",
]
