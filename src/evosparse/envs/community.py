"""Energy community: N buildings with PV and batteries on one feeder, vectorised over buildings.

Two views of the same model:

* :class:`EnergyCommunityEnv` (gymnasium id ``evosparse/EnergyCommunity-v0``): one centralised controller sets
  every battery at once (action ``(N,)`` in [-1, 1], observation ``(N * F,)``, reward = the community's total);
* :class:`EnergyCommunityParallelEnv` (PettingZoo parallel API, ``evosparse_energy_community_v0``): each
  building is an agent with its own observation, action and reward.

One step (one hour), all buildings at once as numpy arrays:

1. batteries apply the requested power within their limits (:func:`evosparse.envs.devices.battery_step`);
2. each building's net load ``load - pv + battery`` goes to the meter;
3. with ``peer_to_peer``, exports are matched with imports inside the community at the mid price
   ``(import price + feed-in tariff) / 2``, pro rata (a uniform-price clearing rule); the rest trades with the grid;
4. the feeder carries the community's net load: kWh above ``feeder_kw`` pay ``overload_penalty``, and every rise
   of the episode's peak import pays ``peak_price`` per kW (a demand charge, settled as the peak grows);
   both community charges are shared in proportion to each building's imports in that hour.

Buildings are drawn from the CityLearn profiles (cycled), each with its own load scale and PV size
(from ``layout_seed``), so 1,000 agents can be built from a few real buildings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from evosparse._config import Config, between, param
from evosparse.envs import base, devices
from evosparse.envs.data import BUNDLED_BUILDINGS


@dataclass(frozen=True)
class CommunityConfig(Config):
    """Settings of the energy community (both views)."""

    n_buildings: int = param(10, "buildings in the community", rule=base.integer_between(1, 10**5))
    buildings: tuple[int, ...] = param(
        BUNDLED_BUILDINGS, "CityLearn profiles, cycled over the N buildings", rule=base.building_numbers
    )
    data_dir: str | None = param(None, "CityLearn 2022 folder; None = the bundled subset")
    price_file: str | None = param(None, "day-ahead prices; None = bundled Dutch prices")
    price_signal: str = param("day_ahead", "day_ahead or tariff", rule=base.PRICE_SIGNAL)
    price_start: str = param("2023-08-01", "first hour of the day-ahead prices", rule=base.iso_date("price_start"))
    network_charge: float = param(0.10, "currency/kWh added to day-ahead prices", rule=base.PRICE)
    feed_in_tariff: float = param(0.05, "currency/kWh paid for exports (capped at the import price)", rule=base.PRICE)
    start_hour: int = param(0, "first hour of an episode within the split", rule=base.START_HOUR)
    episode_hours: int = param(24 * 7, "steps per episode", rule=base.EPISODE_HOURS)
    random_start: bool = param(False, "draw the start day at reset among the days of the split")
    split: str = param(
        "all", "all, train, test (the last 30 days), fit, validation: evosparse.envs.base", rule=base.SPLIT
    )
    layout_seed: int = param(0, "draws each building's load scale and PV size", rule=base.integer_between(0, 2**63 - 1))
    load_scale_low: float = param(0.6, "smallest factor on a building's load", rule=between(0, 1e3))
    load_scale_high: float = param(1.4, "largest factor on a building's load", rule=between(0, 1e3))
    pv_kw_low: float = param(0.0, "smallest PV of a building", rule=base.SIZE)
    pv_kw_high: float = param(6.0, "largest PV of a building", rule=base.SIZE)
    battery_kwh: float = param(6.4, "battery capacity of each building", rule=base.SIZE)
    battery_kw: float = param(5.0, "battery power limit of each building", rule=base.SIZE)
    charge_efficiency: float = param(0.95, "share of the charged energy stored", rule=base.EFFICIENCY)
    discharge_efficiency: float = param(0.95, "share of the stored energy delivered", rule=base.EFFICIENCY)
    initial_soc: float = param(0.5, "state of charge at reset, fraction of capacity", rule=base.FRACTION)
    degradation_cost: float = param(0.0, "currency per kWh of battery throughput", rule=base.PENALTY)
    feeder_kw_per_building: float = param(2.0, "feeder capacity = this * n_buildings", rule=base.SIZE)
    overload_penalty: float = param(1.0, "currency per kWh above the feeder capacity", rule=base.PENALTY)
    peak_price: float = param(0.5, "currency per kW of the episode's peak community import", rule=base.PENALTY)
    peer_to_peer: bool = param(False, "trade inside the community at the mid price")

    def validate(self) -> None:
        for low, high in (("load_scale_low", "load_scale_high"), ("pv_kw_low", "pv_kw_high")):
            if getattr(self, high) < getattr(self, low):
                raise ValueError(f"{high} must be >= {low} ({getattr(self, low)}), got {getattr(self, high)}")


AGENT_OBSERVATION_NAMES = ("hour_sin", "hour_cos", "load", "pv", "price", "export_price", "soc", "community_net")


class EnergyCommunityEnv(gym.Env):
    """Centralised view: one controller, action ``(N,)``; also the vectorised core of the PettingZoo view."""

    metadata = {"render_modes": []}
    agent_observation_names = AGENT_OBSERVATION_NAMES

    def __init__(self, config: CommunityConfig | None = None, **overrides):
        config = (config or CommunityConfig()).replace(**overrides) if overrides else (config or CommunityConfig())
        self.config = config
        n = self.n_agents = config.n_buildings
        profiles = [base.building_data(b, config.data_dir) for b in config.buildings]
        self.n_hours = min(p.n_hours for p in profiles)
        base.check_window(config, self.n_hours, ", ".join(p.name for p in profiles))
        layout = np.random.default_rng(config.layout_seed)
        self.load_scale = layout.uniform(config.load_scale_low, config.load_scale_high, n)
        self.pv_kw = layout.uniform(config.pv_kw_low, config.pv_kw_high, n)
        self.profile = np.arange(n) % len(profiles)
        self._loads = np.stack([p.load[: self.n_hours] for p in profiles])  # (profiles, hours)
        self._solar = np.stack([p.solar[: self.n_hours] for p in profiles])
        self._data = profiles[0]
        self.day_ahead = base.day_ahead_prices(config.price_file).window(config.price_start, self.n_hours)
        self.feeder_kw = config.feeder_kw_per_building * n
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n * len(AGENT_OBSERVATION_NAMES),), np.float32)
        self.observation_names = tuple(f"{name}_{i}" for i in range(n) for name in AGENT_OBSERVATION_NAMES)
        self.action_names = tuple(f"building_{i}" for i in range(n))
        self.episode = None
        self.clipped_actions = 0

    # ---- episode -------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._start_episode(base.episode_start(self.config, self.n_hours, self.np_random))
        return self._observation_matrix().reshape(-1), {}

    def _start_episode(self, start: int) -> None:
        """The episode's series from hour ``start`` on (a pure function of it), and everything at its first hour."""
        config, data, steps = self.config, self._data, self.config.episode_hours
        self.first_hour = start
        window = slice(start, start + steps)
        price = base.import_price(config, self.day_ahead[window], data.tariff[window])
        # (steps, N) series, step-major so one step reads one contiguous row
        self.episode = {
            "load": (self._loads[self.profile, window] * self.load_scale[:, None]).T.copy(),
            "pv": (self._solar[self.profile, window] * self.pv_kw[:, None]).T.copy(),
            "price": price,
            "export_price": base.export_price(config, price),
            "carbon": data.carbon[window].copy(),
            "clock_hour": base.clock_hours(data, window),
        }
        self._t = 0
        self._soc = np.full(self.n_agents, config.initial_soc * config.battery_kwh)
        self._peak = 0.0
        self._community_net = 0.0
        self.clipped_actions = 0
        self.log = {
            name: np.zeros(steps)
            for name in (
                "load",
                "pv",
                "battery",
                "grid_import",
                "grid_export",
                "price",
                "carbon",
                "cost",
                "reward",
                "overload",
                "peer_to_peer",
            )
        }
        self.soc_log = np.zeros((steps, self.n_agents))

    def get_resume_state(self) -> dict:
        """The episode in progress as JSON data: its first hour (its series are built again from it), the
        batteries, the community's peak and net exchange so far, and the log so far."""
        if self.episode is None:
            return {"first_hour": None}
        t = self._t
        return {
            "first_hour": int(self.first_hour), "t": t, "soc": self._soc.tolist(), "peak": float(self._peak),
            "community_net": float(self._community_net), "clipped_actions": int(self.clipped_actions),
            "log": {name: values[:t].tolist() for name, values in self.log.items()},
            "soc_log": self.soc_log[:t].tolist(),
        }  # fmt: skip

    def set_resume_state(self, state: dict) -> None:
        """Continue the episode of :meth:`get_resume_state` (on an environment with the same config)."""
        if state["first_hour"] is None:
            return
        self._start_episode(int(state["first_hour"]))
        self._t, self._soc = int(state["t"]), np.array(state["soc"], dtype=float)
        self._peak, self._community_net = float(state["peak"]), float(state["community_net"])
        self.clipped_actions = int(state["clipped_actions"])
        for name, values in state["log"].items():
            self.log[name][: len(values)] = values
        self.soc_log[: self._t] = np.asarray(state["soc_log"], dtype=float).reshape(self._t, self.n_agents)

    def _observation_matrix(self) -> np.ndarray:
        episode, t = self.episode, min(self._t, self.config.episode_hours - 1)
        hour = 2 * math.pi * episode["clock_hour"][t] / 24
        features = np.empty((self.n_agents, len(AGENT_OBSERVATION_NAMES)), dtype=np.float32)
        features[:, 0] = math.sin(hour)
        features[:, 1] = math.cos(hour)
        features[:, 2] = episode["load"][t]
        features[:, 3] = episode["pv"][t]
        features[:, 4] = episode["price"][t]
        features[:, 5] = episode["export_price"][t]
        features[:, 6] = self._soc / self.config.battery_kwh if self.config.battery_kwh > 0 else 0.0
        features[:, 7] = self._community_net / self.n_agents
        return features

    def step_arrays(self, actions: np.ndarray):
        """One step for all buildings: actions ``(N,)`` -> (observations ``(N, F)``, rewards ``(N,)``, truncated,
        info)."""
        base.require_running(self._t, self.config.episode_hours, self.episode)
        clipped, n_clipped = base.check_action(actions, -1.0, 1.0, self.action_names)
        self.clipped_actions += n_clipped
        config, episode, t = self.config, self.episode, self._t
        self._soc, battery = devices.battery_step(
            self._soc,
            clipped * config.battery_kw,
            capacity=config.battery_kwh,
            max_power=config.battery_kw,
            charge_efficiency=config.charge_efficiency,
            discharge_efficiency=config.discharge_efficiency,
            hours=1.0,
        )
        net = episode["load"][t] - episode["pv"][t] + battery
        imports, exports = np.maximum(net, 0.0), np.maximum(-net, 0.0)
        price, export_price = episode["price"][t], episode["export_price"][t]
        total_import, total_export = imports.sum(), exports.sum()
        if config.peer_to_peer:  # uniform mid-price clearing inside the community, pro rata
            traded = min(total_import, total_export)
            mid = 0.5 * (price + export_price)
            bought = traded / total_import if total_import > 0 else 0.0
            sold = traded / total_export if total_export > 0 else 0.0
            cost = imports * (bought * mid + (1 - bought) * price) - exports * (sold * mid + (1 - sold) * export_price)
        else:
            traded = 0.0
            cost = imports * price - exports * export_price
        cost = cost + config.degradation_cost * np.abs(battery)
        community_net = total_import - total_export
        peak_rise = max(community_net - self._peak, 0.0)
        self._peak += peak_rise
        overload = max(abs(community_net) - self.feeder_kw, 0.0)
        shared = peak_rise * config.peak_price + overload * config.overload_penalty
        weights = imports / total_import if total_import > 0 else np.full(self.n_agents, 1.0 / self.n_agents)
        rewards = -(cost + shared * weights)

        log = self.log
        log["load"][t] = episode["load"][t].sum()
        log["pv"][t] = episode["pv"][t].sum()
        log["battery"][t] = battery.sum()
        log["grid_import"][t] = max(community_net, 0.0)
        log["grid_export"][t] = max(-community_net, 0.0)
        log["price"][t] = price
        log["carbon"][t] = episode["carbon"][t]
        log["cost"][t] = cost.sum()
        log["reward"][t] = rewards.sum()
        log["overload"][t] = overload
        log["peer_to_peer"][t] = traded
        self.soc_log[t] = self._soc
        self._community_net = community_net
        self._t += 1
        truncated = self._t >= config.episode_hours
        info = {
            "net": net,
            "battery": battery,
            "soc": self._soc,
            "community_net": community_net,
            "clipped_actions": self.clipped_actions,
        }
        return self._observation_matrix(), rewards, truncated, info

    def step(self, action):
        observations, rewards, truncated, info = self.step_arrays(action)
        return observations.reshape(-1), float(rewards.sum()), False, truncated, info


class EnergyCommunityParallelEnv(ParallelEnv):
    """PettingZoo parallel view: agents ``building_0 .. building_{N-1}``, each with a battery action in [-1, 1]."""

    metadata = {"name": "evosparse_energy_community_v0", "render_modes": []}

    def __init__(self, config: CommunityConfig | None = None, **overrides):
        self.core = EnergyCommunityEnv(config, **overrides)
        self.config = self.core.config
        self.possible_agents = list(self.core.action_names)
        self.agents: list[str] = []
        self._observation_space = gym.spaces.Box(-np.inf, np.inf, (len(AGENT_OBSERVATION_NAMES),), np.float32)
        self._action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def observation_space(self, agent: str) -> gym.spaces.Box:
        return self._observation_space

    def action_space(self, agent: str) -> gym.spaces.Box:
        return self._action_space

    def _observations(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.possible_agents, matrix))

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.core.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        return self._observations(self.core._observation_matrix()), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, np.ndarray]):
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"actions missing for agent(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        vector = np.array([actions[agent] for agent in self.possible_agents], dtype=np.float64).reshape(-1)
        matrix, rewards, truncated, _ = self.core.step_arrays(vector)
        agents = self.possible_agents
        observations = self._observations(matrix)
        reward_dict = dict(zip(agents, rewards.tolist()))
        terminations = dict.fromkeys(agents, False)
        truncations = dict.fromkeys(agents, truncated)
        infos = {agent: {} for agent in agents}
        if truncated:
            self.agents = []
        return observations, reward_dict, terminations, truncations, infos

    def state(self) -> np.ndarray:
        return self.core._observation_matrix().reshape(-1)

    @property
    def log(self):
        return self.core.log
