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

from evosparse._config import Config, between, param
from evosparse.envs import base, devices
from evosparse.envs.data import BUNDLED_BUILDINGS


@dataclass(frozen=True)
class MicrogridConfig(Config):
    """Settings of :class:`MicrogridEnv`."""

    buildings: tuple[int, ...] = param(
        BUNDLED_BUILDINGS, "CityLearn buildings whose loads add up to the microgrid's", rule=base.building_numbers
    )
    data_dir: str | None = param(None, "CityLearn 2022 folder; None = the bundled subset")
    price_file: str | None = param(None, "day-ahead price CSV; None = the bundled Dutch prices")
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
    pv_kw: float = param(15.0, "installed PV", rule=base.SIZE)
    battery_kwh: float = param(20.0, "battery capacity", rule=base.SIZE)
    battery_kw: float = param(8.0, "battery power limit", rule=base.SIZE)
    charge_efficiency: float = param(0.95, "share of the charged energy stored", rule=base.EFFICIENCY)
    discharge_efficiency: float = param(0.95, "share of the stored energy delivered", rule=base.EFFICIENCY)
    initial_soc: float = param(0.5, "state of charge at reset, fraction of capacity", rule=base.FRACTION)
    degradation_cost: float = param(0.01, "currency per kWh of battery throughput", rule=base.PENALTY)
    generator_kw: float = param(
        8.0, "generator rating (more than its minimum output)", rule=between(0, 1e6, low_open=True)
    )
    generator_min_kw: float = param(2.0, "minimum stable output when on", rule=base.SIZE)
    fuel_cost: float = param(0.35, "currency per kWh generated", rule=base.PENALTY)
    no_load_cost: float = param(0.4, "currency per hour on", rule=base.PENALTY)
    startup_cost: float = param(2.0, "currency per start", rule=base.PENALTY)
    grid_kw: float = param(30.0, "tie capacity, import and export", rule=base.SIZE)
    outage_rate: float = param(0.01, "probability that an outage starts in a given connected hour", rule=base.FRACTION)
    outage_mean_hours: float = param(6.0, "mean outage length", rule=between(1, 1e4))
    shed_cost: float = param(2.0, "value of lost load, currency per kWh", rule=base.PENALTY)
    curtail_cost: float = param(0.0, "currency per kWh spilled", rule=base.PENALTY)
    generator_carbon: float = param(
        0.8, "kgCO2 per kWh generated (a diesel set), in the carbon KPI", rule=between(0, 100)
    )

    def validate(self) -> None:
        if self.generator_kw <= self.generator_min_kw:
            raise ValueError(
                f"generator_kw must be > generator_min_kw ({self.generator_min_kw}), got {self.generator_kw}"
            )


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
