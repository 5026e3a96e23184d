"""The practitioner's policies of each environment: no control, and rules of thumb.

A policy (any :class:`Controller`) is told ``start(env)`` after each ``env.reset`` and then asked
``act(observation)`` once per step. Rules read the observation by name (``env.observation_names``) and the
device sizes from ``env.config``, as a practitioner reads a datasheet; prices are called cheap or expensive
against the mean of the last 24 observed prices (:class:`PriceMemory`), so no rule looks into the future.

* no control: batteries idle, the heat pump holds the set point, EVs and appliances run as soon as they can,
  the microgrid's generator only covers outages, no market bids;
* rules: charge on PV surplus or in cheap hours, discharge in expensive hours, pre-cool / pre-heat in cheap
  hours, defer EVs and appliances to cheap hours unless the deadline forces them.

Each environment names its two policies in its spec (:mod:`evosparse.envs.registry`).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from evosparse.envs import devices


class Controller:
    """Base class: ``start`` after each reset, then ``act`` on each observation."""

    def start(self, env) -> None:
        self.env = env.unwrapped if hasattr(env, "unwrapped") else env

    def act(self, observation):
        raise NotImplementedError

    def _named(self, observation) -> dict[str, float]:
        return dict(zip(self.env.observation_names, np.asarray(observation, dtype=np.float64).tolist()))


class PriceMemory:
    """Mean of the last ``n`` observed prices: the reference of a rule's cheap / expensive decisions."""

    def __init__(self, n: int = 24, cheap: float = 0.9, expensive: float = 1.1):
        self.prices: deque[float] = deque(maxlen=n)
        self.cheap, self.expensive = cheap, expensive

    def classify(self, price: float) -> tuple[bool, bool]:
        self.prices.append(price)
        reference = sum(self.prices) / len(self.prices)
        spread = abs(reference)
        return price < reference - (1 - self.cheap) * spread, price > reference + (self.expensive - 1) * spread


def _share(amount, size: float):
    """``amount / size``, or 0 for a device of size 0 (a config may switch a device off by its size)."""
    return amount / size if size > 0 else amount * 0.0


def _thermostat(env, o: dict[str, float], target: float) -> float:
    """Heat-pump fraction that brings the zone to ``target`` degrees from the set point in one hour."""
    config = env.config
    power = devices.thermostat_power(
        o["temperature_deviation"], o["thermal_gain"], target, cop=config.cop, thermal_mass=config.thermal_mass,
        loss=config.conductance / config.thermal_mass,
    )  # fmt: skip
    return float(np.clip(power / config.hvac_kw, -1.0, 1.0)) if config.hvac_kw > 0 else 0.0


# ---- one building -------------------------------------------------------------------------------------------
class BuildingNoControl(Controller):
    def act(self, observation):
        o, actions = self._named(observation), []
        for name in self.env.action_names:
            if name == "battery":
                actions.append(0.0)
            elif name == "hvac":
                actions.append(_thermostat(self.env, o, 0.0))
            else:
                actions.append(1.0)  # EV and appliance: as soon as plugged in / released
        return np.array(actions, dtype=np.float32)


class BuildingRule(Controller):
    def start(self, env) -> None:
        super().start(env)
        self.memory = PriceMemory()
        self.gains: deque[float] = deque(maxlen=24)

    def act(self, observation):
        o, env = self._named(observation), self.env
        config = env.config
        cheap, expensive = self.memory.classify(o["price"])
        surplus = o["pv"] - o["load"]
        actions = []
        for name in env.action_names:
            if name == "battery":
                if surplus > 0:
                    action = _share(surplus, config.battery_kw)
                elif expensive:
                    action = _share(surplus, config.battery_kw)  # discharge to cover the net load
                elif cheap:
                    action = 1.0
                else:
                    action = 0.0
            elif name == "hvac":
                # Pre-condition within the band, only in the direction the season needs (from the mean heat
                # gain of the last day), so the heat pump never heats and cools on alternate hours.
                self.gains.append(o["thermal_gain"])
                cooling = sum(self.gains) >= 0
                band = 0.9 * config.comfort_band
                target = 0.0
                if cheap or surplus > 0:
                    target = -0.7 * band if cooling else 0.7 * band
                elif expensive:
                    target = band if cooling else -band
                action = _thermostat(env, o, target)
                action = max(action, 0.0) if cooling else min(action, 0.0)
                action = min(max(action, _thermostat(env, o, band)), _thermostat(env, o, -band))
            else:
                prefix = "ev" if name == "ev" else "appliance"
                power = config.ev_kw * config.ev_efficiency if name == "ev" else config.appliance_kw
                remaining, hours_left = o[f"{prefix}_remaining"], o[f"{prefix}_hours_left"]
                must_run = remaining > (hours_left - 1) * power - 1e-9
                action = 1.0 if (must_run or cheap or surplus > 0) and remaining > 0 else 0.0
            actions.append(action)
        return np.clip(np.array(actions, dtype=np.float32), env._low, env._high)


# ---- microgrid ----------------------------------------------------------------------------------------------
class MicrogridNoControl(Controller):
    def act(self, observation):
        o, config = self._named(observation), self.env.config
        deficit = o["load"] - o["pv"]
        generator = deficit / config.generator_kw if o["grid_available"] < 0.5 and deficit > 0 else 0.0
        return np.array([0.0, min(generator, 1.0)], dtype=np.float32)


class MicrogridRule(Controller):
    def start(self, env) -> None:
        super().start(env)
        self.memory = PriceMemory()

    def act(self, observation):
        o, config = self._named(observation), self.env.config
        cheap, expensive = self.memory.classify(o["price"])
        deficit = o["load"] - o["pv"]
        islanded = o["grid_available"] < 0.5
        if deficit < 0:
            battery = _share(-deficit, config.battery_kw)
        elif islanded or expensive:
            battery = _share(-deficit, config.battery_kw)
        elif cheap and o["soc"] < 0.9:
            battery = 1.0
        else:
            battery = 0.0
        # The generator covers what the battery cannot during an outage.
        available = o["soc"] * config.battery_kwh * config.discharge_efficiency
        shortfall = deficit - min(available, config.battery_kw) if islanded else 0.0
        generator = min(shortfall / config.generator_kw, 1.0) if shortfall > 1e-9 else 0.0
        return np.array([np.clip(battery, -1, 1), generator], dtype=np.float32)


# ---- intraday market ----------------------------------------------------------------------------------------
class MarketNoControl(Controller):
    def act(self, observation):
        return np.zeros(2, dtype=np.float32)


class MarketRule(Controller):
    def start(self, env) -> None:
        super().start(env)
        self.memory = PriceMemory(24 * self.env.config.steps_per_hour)  # a day of products, whatever their length

    def act(self, observation):
        o, env = self._named(observation), self.env
        config = env.config
        cheap, expensive = self.memory.classify(o["forecast"])
        step_kwh = config.battery_kw * env.hours
        room = (1.0 - o["soc"]) * config.battery_kwh / config.charge_efficiency  # kWh the battery can still take
        stock = o["soc"] * config.battery_kwh * config.discharge_efficiency  # kWh it can still give
        if cheap and room > 1e-6:  # buy no more than the battery can take, limit a little above the forecast
            return np.array([min(_share(room, step_kwh), 1.0), 0.5], dtype=np.float32)
        if expensive and stock > 1e-6:
            return np.array([-min(_share(stock, step_kwh), 1.0), -0.5], dtype=np.float32)
        return np.zeros(2, dtype=np.float32)


# ---- energy community ---------------------------------------------------------------------------------------
class CommunityNoControl(Controller):
    def act(self, observation):
        return np.zeros(self.env.action_space.shape, dtype=np.float32)


class CommunityRule(Controller):
    def start(self, env) -> None:
        super().start(env)
        self.memory = PriceMemory()

    def act(self, observation):
        env = self.env
        features = np.asarray(observation, dtype=np.float64).reshape(env.n_agents, -1)
        names = env.agent_observation_names
        surplus = features[:, names.index("pv")] - features[:, names.index("load")]
        cheap, expensive = self.memory.classify(float(features[0, names.index("price")]))
        config = env.config
        action = _share(surplus, config.battery_kw)  # self-consumption: store surplus, cover deficit
        if cheap:  # top up, but keep each building's import under its share of the feeder (no rebound peak)
            headroom = _share(config.feeder_kw_per_building + surplus, config.battery_kw)
            action = np.maximum(action, np.minimum(headroom, 1.0))
        elif not expensive:
            action = np.where(surplus < 0, 0.0, action)  # hold the charge for the expensive hours
        return np.clip(action, -1.0, 1.0).astype(np.float32)
