"""``IntradayMarketEnv``: a battery owner bids on an intraday market built from real day-ahead prices.

Each step (an hour, or a quarter hour with ``steps_per_hour=4``) the agent places one bid for the step:

1. quantity: a fraction of the battery power (+ buy / charge, - sell / discharge);
2. limit price: the forecast plus ``price_range * b / (1 - |b|)`` for ``b`` in [-1, 1] (``b = +-1`` is a
   market order that clears at any price).

The clearing price is the real day-ahead price of the hour plus market noise; the agent only sees a
forecast of it (the real price plus an AR(1) forecast error). A buy clears when its limit is at or above the
clearing price, a sell when at or below; cleared energy settles at the clearing price. The battery then
delivers the cleared position as far as its limits allow, and any deviation is settled at the imbalance
price: shortfalls bought at ``clearing + imbalance_spread``, surpluses sold at ``clearing - imbalance_spread``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from evosparse._config import Config, between, one_of, param
from evosparse.envs import base, devices

STEPS_PER_HOUR = (1, 4)


@dataclass(frozen=True)
class MarketConfig(Config):
    """Settings of :class:`IntradayMarketEnv`."""

    price_file: str | None = param(None, "day-ahead price CSV; None = the bundled Dutch 2023-08..2024-07 prices")
    start: str = param("2023-08-01", "first hour of the price window (ISO date)", rule=base.iso_date("start"))
    start_hour: int = param(0, "first hour of an episode within the split (from start)", rule=base.START_HOUR)
    episode_hours: int = param(24 * 7, "hours per episode", rule=base.EPISODE_HOURS)
    random_start: bool = param(False, "draw the start day at reset among the days of the split")
    split: str = param("all", "all, train, test (last 30 days of prices from start), fit, validation", rule=base.SPLIT)
    steps_per_hour: int = param(1, "1 hourly or 4 quarter-hourly products", rule=one_of(STEPS_PER_HOUR))
    battery_kwh: float = param(10.0, "battery capacity", rule=base.SIZE)
    battery_kw: float = param(5.0, "battery power limit", rule=base.SIZE)
    charge_efficiency: float = param(0.95, "share of the charged energy stored", rule=base.EFFICIENCY)
    discharge_efficiency: float = param(0.95, "share of the stored energy delivered", rule=base.EFFICIENCY)
    initial_soc: float = param(0.5, "state of charge at reset, fraction of capacity", rule=base.FRACTION)
    degradation_cost: float = param(0.005, "currency per kWh throughput", rule=base.PENALTY)
    market_noise: float = param(
        0.01, "std of the clearing price around the day-ahead price, currency/kWh", rule=base.PRICE
    )
    forecast_error: float = param(0.015, "std of the stationary AR(1) forecast error, currency/kWh", rule=base.PRICE)
    forecast_correlation: float = param(
        0.8, "AR(1) coefficient of the forecast error between steps", rule=between(0, 1, high_open=True)
    )
    imbalance_spread: float = param(
        0.05, "currency/kWh added to / taken from the clearing price for deviations", rule=base.PRICE
    )
    price_range: float = param(0.05, "scale of the limit-price offset, currency/kWh", rule=base.PRICE)
    forecast_steps: int = param(4, "future forecasts in the observation", rule=base.integer_between(0, 168))


class IntradayMarketEnv(gym.Env):
    """Bid quantity and limit price each step; see the module docstring."""

    metadata = {"render_modes": []}
    action_names = ("quantity", "limit_price")

    def __init__(self, config: MarketConfig | None = None, **overrides):
        config = (config or MarketConfig()).replace(**overrides) if overrides else (config or MarketConfig())
        self.config = config
        prices = base.day_ahead_prices(config.price_file)
        first = int((np.datetime64(config.start, "h") - prices.times[0]).astype(np.int64))
        if first < 0 or first >= len(prices.price):
            raise ValueError(
                f"start must lie in the price series {prices.name} ({prices.times[0]} .. {prices.times[-1]}), "
                f"got {config.start!r}"
            )
        base.check_window(config, len(prices.price) - first, f"{prices.name} from {config.start}")
        self.prices = prices.price[first:]
        self.n_hours = len(self.prices)  # the hours the episodes (and the split) are drawn from
        self.times = prices.times[first:]
        self.hours = 1.0 / config.steps_per_hour
        self.n_steps = config.episode_hours * config.steps_per_hour
        self.observation_names = (
            "hour_sin",
            "hour_cos",
            "forecast",
            *(f"forecast_next_{k}" for k in range(1, config.forecast_steps + 1)),
            "soc",
            "last_clearing_price",
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (len(self.observation_names),), np.float32)
        self.episode = None
        self.clipped_actions = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        config, rng, n = self.config, self.np_random, self.n_steps
        start = self.first_hour = base.episode_start(config, self.n_hours, rng)
        hourly = self.prices[start : start + config.episode_hours]
        product_price = np.repeat(hourly, config.steps_per_hour)  # a quarter-hour product inherits its hour's price
        clearing = product_price + config.market_noise * rng.standard_normal(n)
        error = np.empty(n)
        rho = config.forecast_correlation
        innovation = config.forecast_error * math.sqrt(1 - rho**2) * rng.standard_normal(n)
        error[0] = config.forecast_error * rng.standard_normal()
        for t in range(1, n):
            error[t] = rho * error[t - 1] + innovation[t]
        clock = (self.times[start].astype(np.int64) % 24 + np.arange(n) / config.steps_per_hour) % 24
        self.episode = {"clearing_price": clearing, "forecast": clearing + error, "clock_hour": clock}
        self._forecast_padded = np.concatenate(
            [self.episode["forecast"], np.repeat(self.episode["forecast"][-1:], config.forecast_steps)]
        )
        self._t = 0
        self._soc = config.initial_soc * config.battery_kwh
        self._last_clearing = float(self.episode["forecast"][0])  # unknown before the first step
        self.clipped_actions = 0
        self.log = {
            name: np.zeros(n)
            for name in (
                "position",
                "battery",
                "grid_import",
                "grid_export",
                "imbalance",
                "soc",
                "price",
                "cost",
                "reward",
                "cleared",
            )
        }
        return self._observation(), {}

    def _observation(self) -> np.ndarray:
        t = min(self._t, self.n_steps - 1)
        hour = 2 * math.pi * self.episode["clock_hour"][t] / 24
        forecasts = self._forecast_padded[t : t + 1 + self.config.forecast_steps]
        soc = self._soc / self.config.battery_kwh if self.config.battery_kwh > 0 else 0.0
        return np.array([math.sin(hour), math.cos(hour), *forecasts, soc, self._last_clearing], dtype=np.float32)

    def step(self, action):
        base.require_running(self._t, self.n_steps, self.episode)
        clipped, n_clipped = base.check_action(action, -1.0, 1.0, self.action_names)
        self.clipped_actions += n_clipped
        fraction, offset = clipped.tolist()
        config, t, hours = self.config, self._t, self.hours
        forecast, clearing = self.episode["forecast"][t], self.episode["clearing_price"][t]

        # 1. the market clears the bid
        quantity = fraction * config.battery_kw * hours  # kWh, + buy
        limit = forecast + (
            config.price_range * offset / (1 - abs(offset)) if abs(offset) < 1 else math.copysign(math.inf, offset)
        )
        cleared = (quantity > 0 and limit >= clearing) or (quantity < 0 and limit <= clearing)
        position = quantity if cleared else 0.0
        # 2. the battery delivers what it can; 3. deviations settle at the imbalance price
        self._soc, battery = devices.battery_step_scalar(
            self._soc,
            position / hours,
            config.battery_kwh,
            config.battery_kw,
            config.charge_efficiency,
            config.discharge_efficiency,
            hours,
        )
        deviation = battery * hours - position  # > 0: took more than bought (short), < 0: long
        imbalance_price = clearing + math.copysign(config.imbalance_spread, deviation)
        cost = position * clearing + deviation * imbalance_price + config.degradation_cost * abs(battery) * hours
        reward = -cost

        log = self.log
        for name, value in (
            ("position", position),
            ("battery", battery * hours),
            ("grid_import", max(battery * hours, 0.0)),
            ("grid_export", max(-battery * hours, 0.0)),
            ("imbalance", abs(deviation)),
            ("soc", self._soc),
            ("price", clearing),
            ("cost", cost),
            ("reward", reward),
            ("cleared", float(cleared and quantity != 0)),
        ):
            log[name][t] = value
        self._last_clearing = clearing
        self._t += 1
        truncated = self._t >= self.n_steps
        info = {
            "cleared": cleared,
            "position": position,
            "battery": battery,
            "deviation": deviation,
            "clearing_price": clearing,
            "soc": self._soc,
            "clipped_actions": self.clipped_actions,
        }
        return self._observation(), float(reward), False, truncated, info
