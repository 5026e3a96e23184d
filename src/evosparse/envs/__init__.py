"""Smart-grid environments on real data, their rule-based baselines and perfect-foresight optima.

Environments (gymnasium ids in brackets): :class:`BuildingEnergyEnv` (``evosparse/BuildingEnergy-v0``),
:class:`MicrogridEnv` (``evosparse/Microgrid-v0``), :class:`IntradayMarketEnv` (``evosparse/IntradayMarket-v0``),
:class:`CommunityEnv` (``evosparse/EnergyCommunity-v0``, one centralised controller) and
:class:`EnergyCommunityEnv` (PettingZoo parallel API, one agent per building).
"""

import gymnasium

from evosparse.envs.building import BuildingConfig, BuildingEnergyEnv, Change
from evosparse.envs.community import CommunityConfig, CommunityEnv, EnergyCommunityEnv
from evosparse.envs.controllers import CONTROLLERS, make_controller, run_episode
from evosparse.envs.data import load_citylearn_building, load_day_ahead_prices, load_ev_statistics
from evosparse.envs.market import IntradayMarketEnv, MarketConfig
from evosparse.envs.metrics import episode_metrics, format_table, gap_closed
from evosparse.envs.microgrid import MicrogridConfig, MicrogridEnv
from evosparse.envs.optimal import optimum

ENVIRONMENTS = {
    "building": BuildingEnergyEnv,
    "microgrid": MicrogridEnv,
    "market": IntradayMarketEnv,
    "community": CommunityEnv,
}

for _id, _entry in (
    ("BuildingEnergy-v0", "evosparse.envs.building:BuildingEnergyEnv"),
    ("Microgrid-v0", "evosparse.envs.microgrid:MicrogridEnv"),
    ("IntradayMarket-v0", "evosparse.envs.market:IntradayMarketEnv"),
    ("EnergyCommunity-v0", "evosparse.envs.community:CommunityEnv"),
):
    if f"evosparse/{_id}" not in gymnasium.registry:
        gymnasium.register(id=f"evosparse/{_id}", entry_point=_entry)

__all__ = [
    "BuildingConfig",
    "BuildingEnergyEnv",
    "Change",
    "CommunityConfig",
    "CommunityEnv",
    "EnergyCommunityEnv",
    "IntradayMarketEnv",
    "MarketConfig",
    "MicrogridConfig",
    "MicrogridEnv",
    "ENVIRONMENTS",
    "CONTROLLERS",
    "make_controller",
    "run_episode",
    "optimum",
    "episode_metrics",
    "format_table",
    "gap_closed",
    "load_citylearn_building",
    "load_day_ahead_prices",
    "load_ev_statistics",
]
