"""``MicrogridEnv``: loads, PV, a battery, a fuel generator and a grid tie that fails (islanded periods).

The load and PV are CityLearn buildings added together (a small campus); grid outages are drawn at reset
(start probability per hour, geometric durations). The agent sets two fractions per hour:

1. battery power (-1 full discharge .. +1 full charge);
2. generator output (0 = off; otherwise on at ``max(min_output, fraction * generator_kw)``).

The rest follows physics and the tie's limits, in this order:

* grid connected: the balance is imported or exported up to ``grid_kw``; beyond it load is shed / PV curtailed;
* islanded: charging is limited to the local surplus (no grid to draw from); a deficit is shed load, a surplus is
  curtailed (spilled) generation.

Cost = imports - exports + fuel (per kWh) + no-load (per hour on) + start-up (per start)
+ value of lost load * shed kWh + curtailment cost * spilled kWh + battery wear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from evosparse.envs import base, devices
from evosparse.envs.config import ConfigMixin, check_choice, check_range
from evosparse.envs.data import BUNDLED_BUILDINGS


@dataclass(frozen=True)
class MicrogridConfig(ConfigMixin):
    """Settings of :class:`MicrogridEnv`."""

    buildings: tuple[int, ...] = BUNDLED_BUILDINGS  # CityLearn buildings whose loads add up to the microgrid's
    data_dir: str | None = None
    price_file: str | None = None
    price_signal: str = "day_ahead"
    price_start: str = "2023-08-01"
    network_charge: float = 0.10
    feed_in_tariff: float = 0.05
    start_hour: int = 0
    episode_hours: int = 24 * 7
    random_start: bool = False  # draw the start day at reset among the days of the split
    split: str = "all"  # "all", "train" or "test" (the last 30 days): see evosparse.envs.base
    pv_kw: float = 15.0
    battery_kwh: float = 20.0
    battery_kw: float = 8.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    initial_soc: float = 0.5
    degradation_cost: float = 0.01
    generator_kw: float = 8.0
    generator_min_kw: float = 2.0  # minimum stable output when on
    fuel_cost: float = 0.35  # currency per kWh generated
    no_load_cost: float = 0.4  # currency per hour on
    startup_cost: float = 2.0  # currency per start
    grid_kw: float = 30.0  # tie capacity, import and export
    outage_rate: float = 0.01  # probability that an outage starts in a given connected hour
    outage_mean_hours: float = 6.0
    shed_cost: float = 2.0  # value of lost load, currency per kWh
    curtail_cost: float = 0.0  # currency per kWh spilled
    generator_carbon: float = 0.8  # kgCO2 per kWh generated (a diesel set), counted in the carbon KPI

    def __post_init__(self):
        if not self.buildings:
            raise ValueError("buildings must name at least one CityLearn building, got ()")
        check_choice("price_signal", self.price_signal, ("day_ahead", "tariff"))
        check_choice("split", self.split, base.SPLITS)
        check_range("episode_hours", self.episode_hours, 1)
        for name in (
            "network_charge",
            "feed_in_tariff",
            "start_hour",
            "pv_kw",
            "battery_kwh",
            "battery_kw",
            "degradation_cost",
            "fuel_cost",
            "no_load_cost",
            "startup_cost",
            "grid_kw",
            "shed_cost",
            "curtail_cost",
            "generator_min_kw",
            "generator_carbon",
        ):
            check_range(name, getattr(self, name), 0.0)
        check_range("generator_kw", self.generator_kw, max(self.generator_min_kw, 0.0), low_open=True)
        for name in ("charge_efficiency", "discharge_efficiency"):
            check_range(name, getattr(self, name), 0.0, 1.0, low_open=True)
        check_range("initial_soc", self.initial_soc, 0.0, 1.0)
        check_range("outage_rate", self.outage_rate, 0.0, 1.0)
        check_range("outage_mean_hours", self.outage_mean_hours, 1.0)
        object.__setattr__(self, "buildings", tuple(self.buildings))


class MicrogridEnv(gym.Env):
    """A grid-tied microgrid with outages (gymnasium API); see the module docstring."""

    metadata = {"render_modes": []}
    action_names = ("battery", "generator")
    observation_names = (
        "hour_sin",
        "hour_cos",
        "load",
        "pv",
        "price",
        "export_price",
        "grid_available",
        "soc",
        "generator_on",
        "outage_hours_left",
    )

    def __init__(self, config: MicrogridConfig | None = None, **overrides):
        config = (config or MicrogridConfig()).replace(**overrides) if overrides else (config or MicrogridConfig())
        self.config = config
        profiles = [base.building_data(b, config.data_dir) for b in config.buildings]
        self.n_hours = min(p.n_hours for p in profiles)
        base.check_window(config, self.n_hours, ", ".join(p.name for p in profiles))
        self._load = np.sum([p.load[: self.n_hours] for p in profiles], axis=0)
        self._data = profiles[0]
        self.day_ahead = base.day_ahead_prices(config.price_file).window(config.price_start, self.n_hours)
        self._low = np.array([-1.0, 0.0], dtype=np.float32)
        self._high = np.ones(2, dtype=np.float32)
        self.action_space = gym.spaces.Box(self._low, self._high, dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (len(self.observation_names),), np.float32)
        self.episode = None
        self.clipped_actions = 0

    def _outages(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Grid availability per hour (1 connected, 0 islanded): outages start at ``outage_rate`` per hour
        and last a geometric number of hours with mean ``outage_mean_hours``."""
        available = np.ones(n)
        t = 0
        while t < n:
            if rng.random() < self.config.outage_rate:
                length = int(rng.geometric(1.0 / self.config.outage_mean_hours))
                available[t : t + length] = 0.0
                t += length
            t += 1
        return available

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        config, data, n = self.config, self._data, self.config.episode_hours
        start = self.first_hour = base.episode_start(config, self.n_hours, self.np_random)
        window = slice(start, start + n)
        price = base.import_price(config, self.day_ahead[window], data.tariff[window])
        available = self._outages(n, self.np_random)
        outage_left = np.zeros(n)
        for t in range(n - 1, -1, -1):  # hours until the grid returns (0 when connected)
            outage_left[t] = 0.0 if available[t] else 1.0 + (outage_left[t + 1] if t + 1 < n else 0.0)
        self.episode = {
            "load": self._load[window].copy(), "pv": data.solar[window] * config.pv_kw, "price": price,
            "export_price": base.export_price(config, price), "carbon": data.carbon[window].copy(),
            "clock_hour": base.clock_hours(data, window), "grid_available": available, "outage_left": outage_left,
        }  # fmt: skip
        self._series = {name: values.tolist() for name, values in self.episode.items()}
        self._t = 0
        self._soc = config.initial_soc * config.battery_kwh
        self._generator_on = False
        self.clipped_actions = 0
        self.log = {name: np.zeros(n) for name in (
            "load", "pv", "battery", "generator", "grid_import", "grid_export", "shed", "curtailed", "soc", "price",
            "carbon", "cost", "reward", "unmet", "grid_available", "starts", "fuel_carbon")}  # fmt: skip
        return self._observation(), {}

    def _observation(self) -> np.ndarray:
        series, t = self._series, min(self._t, self.config.episode_hours - 1)
        hour = 2 * math.pi * series["clock_hour"][t] / 24
        return np.array([
            math.sin(hour), math.cos(hour), series["load"][t], series["pv"][t], series["price"][t],
            series["export_price"][t], series["grid_available"][t],
            self._soc / self.config.battery_kwh if self.config.battery_kwh > 0 else 0.0, float(self._generator_on),
            series["outage_left"][t]], dtype=np.float32)  # fmt: skip

    def step(self, action):
        base.require_running(self._t, self.config.episode_hours, self.episode)
        clipped, n_clipped = base.check_action(action, self._low, self._high, self.action_names)
        self.clipped_actions += n_clipped
        battery_fraction, generator_fraction = clipped.tolist()
        config, series, t = self.config, self._series, self._t
        load, pv, connected = series["load"][t], series["pv"][t], series["grid_available"][t] > 0.5

        on = generator_fraction > 0.0
        generator = max(config.generator_min_kw, generator_fraction * config.generator_kw) if on else 0.0
        started = on and not self._generator_on
        self._generator_on = on
        request = battery_fraction * config.battery_kw
        if not connected:  # no grid to charge from: charging only from the local surplus
            request = min(request, max(pv + generator - load, 0.0))
        self._soc, battery = devices.battery_step_scalar(
            self._soc,
            request,
            config.battery_kwh,
            config.battery_kw,
            config.charge_efficiency,
            config.discharge_efficiency,
            1.0,
        )
        balance = load - pv - generator + battery  # > 0 needs energy, < 0 has energy to spare
        limit = config.grid_kw if connected else 0.0
        grid_import, grid_export = min(max(balance, 0.0), limit), min(max(-balance, 0.0), limit)
        shed = max(balance, 0.0) - grid_import
        curtailed = max(-balance, 0.0) - grid_export
        cost = (
            grid_import * series["price"][t]
            - grid_export * series["export_price"][t]
            + config.fuel_cost * generator
            + config.no_load_cost * on
            + config.startup_cost * started
            + config.degradation_cost * abs(battery)
        )
        penalty = config.shed_cost * shed + config.curtail_cost * curtailed
        reward = -(cost + penalty)

        log = self.log
        for name, value in (
            ("load", load),
            ("pv", pv),
            ("battery", battery),
            ("generator", generator),
            ("grid_import", grid_import),
            ("grid_export", grid_export),
            ("shed", shed),
            ("curtailed", curtailed),
            ("soc", self._soc),
            ("price", series["price"][t]),
            ("carbon", series["carbon"][t]),
            ("cost", cost),
            ("reward", reward),
            ("unmet", shed),
            ("grid_available", float(connected)),
            ("starts", float(started)),
            ("fuel_carbon", config.generator_carbon * generator),
        ):
            log[name][t] = value
        self._t += 1
        truncated = self._t >= config.episode_hours
        info = {
            "grid_import": grid_import,
            "grid_export": grid_export,
            "shed": shed,
            "curtailed": curtailed,
            "battery": battery,
            "generator": generator,
            "soc": self._soc,
            "clipped_actions": self.clipped_actions,
        }
        return self._observation(), float(reward), False, truncated, info
