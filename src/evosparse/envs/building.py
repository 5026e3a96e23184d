"""``BuildingEnergyEnv``: one building with PV, a battery, a heat pump, an EV charger and a deferrable appliance.

One step is one hour of real CityLearn 2022 data. The agent sets, as fractions of each device's power:

1. the battery (-1 full discharge .. +1 full charge),
2. the heat pump (-1 full heating .. +1 full cooling) of a first-order thermal zone with a comfort band,
3. the EV charger (0 .. 1) while an EV (ElaadNL arrival, stay and energy statistics) is plugged in,
4. the appliance (0 .. 1) while its job (energy, release time, deadline) is pending.

The grid takes the balance: ``import - export = load - pv + battery + |heat pump| + ev + appliance`` (kWh),
imported at a real-time price (day-ahead + network charge, or the CityLearn tariff), exported at a feed-in
tariff that never exceeds the import price (one meter cannot profit from importing and exporting at once).
Reward = -(energy cost + battery wear + comfort penalty * degree-hours + unmet penalty * kWh not delivered).

All exogenous series of an episode (prices, load, PV, heat gains, EV sessions, appliance jobs, changes) are
drawn at ``reset`` into :class:`BuildingEpisode`, which the perfect-foresight optimum in
:mod:`evosparse.envs.optimal` reads, so the yardstick sees exactly the episode the agent plays.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from evosparse._config import Config, between, one_of, param, toml_value
from evosparse.envs import base, devices
from evosparse.envs.data import BuildingData, load_ev_statistics

CHANGE_KINDS = ("tariff_switch", "battery_failure", "occupant")
REWARD_DELAYS = ("none", "daily")
HVAC_ACTIONS = ("power", "target")
LOG_NAMES = (
    "load", "pv", "battery", "hvac", "ev", "appliance", "grid_import", "grid_export", "soc", "price", "export_price",
    "carbon", "cost", "comfort_violation", "unmet", "reward", "temperature_deviation",
)  # fmt: skip


@dataclass(frozen=True)
class Change(Config):
    """A sudden change at ``hour`` (counted from the episode start).

    ``tariff_switch``: the import price switches to the other signal (day-ahead <-> tariff);
    ``battery_failure``: the battery can no longer charge or discharge;
    ``occupant``: the non-shiftable load is multiplied by ``scale`` and shifted by ``shift_hours``.
    """

    kind: str = param("occupant", "what changes", rule=one_of(CHANGE_KINDS))
    hour: int = param(0, "hour of the episode from which it applies", rule=base.START_HOUR)
    scale: float = param(1.0, "occupant: factor on the non-shiftable load", rule=between(0, 1e3))
    shift_hours: int = param(0, "occupant: hours the load pattern moves", rule=base.integer_between(-8760, 8760))


def _changes(value) -> None:
    if not (isinstance(value, tuple) and all(isinstance(change, Change) for change in value)):
        raise ValueError(f"changes must be a list of changes (tables with kind, hour, ...), got {value!r}")


@dataclass(frozen=True)
class BuildingConfig(Config):
    """Settings of :class:`BuildingEnergyEnv` (defaults: CityLearn 2022 Building_1 battery and PV sizes)."""

    building: int = param(1, "CityLearn building number", rule=base.integer_between(1, 10**4))
    data_dir: str | None = param(None, "CityLearn 2022 folder; None = the bundled subset")
    price_file: str | None = param(None, "day-ahead price CSV; None = the bundled Dutch 2023-08..2024-07 prices")
    price_signal: str = param(
        "day_ahead", "day_ahead (real-time) or tariff (CityLearn time of use)", rule=base.PRICE_SIGNAL
    )
    price_start: str = param(
        "2023-08-01",
        "first hour of the day-ahead prices aligned with the CityLearn year",
        rule=base.iso_date("price_start"),
    )
    network_charge: float = param(0.10, "currency/kWh added to the day-ahead price for imports", rule=base.PRICE)
    feed_in_tariff: float = param(0.05, "currency/kWh paid for exports (capped at the import price)", rule=base.PRICE)
    start_hour: int = param(0, "first hour of an episode within the split", rule=base.START_HOUR)
    episode_hours: int = param(24 * 7, "steps per episode", rule=base.EPISODE_HOURS)
    random_start: bool = param(False, "draw the start day at reset among the days of the split")
    split: str = param(
        "all",
        "all; train (all but the last 30 days); test (those); fit / validation (train divided)",
        rule=base.SPLIT,
    )
    pv_kw: float = param(4.0, "installed PV", rule=base.SIZE)
    battery_kwh: float = param(6.4, "battery capacity (0 disables the battery)", rule=base.SIZE)
    battery_kw: float = param(5.0, "battery power limit, charge and discharge", rule=base.SIZE)
    charge_efficiency: float = param(0.95, "share of the charged energy stored", rule=base.EFFICIENCY)
    discharge_efficiency: float = param(0.95, "share of the stored energy delivered", rule=base.EFFICIENCY)
    initial_soc: float = param(0.5, "state of charge at reset, fraction of capacity", rule=base.FRACTION)
    degradation_cost: float = param(0.0, "currency per kWh of battery throughput", rule=base.PENALTY)
    hvac: bool = param(True, "heat pump and thermal zone")
    hvac_kw: float = param(2.5, "heat pump electric power limit", rule=base.SIZE)
    hvac_action: str = param(
        "power",
        "power (fraction of hvac_kw, -1 heating .. 1 cooling) or target (the deviation to reach within the hour, "
        "as a fraction of comfort_band, held by the zone's thermostat)",
        rule=one_of(HVAC_ACTIONS),
    )
    cop: float = param(3.0, "heat pump coefficient of performance", rule=between(0, 20, low_open=True))
    thermal_mass: float = param(
        10.0, "kWh_th per degree (more than the conductance)", rule=between(0, 1e6, low_open=True)
    )
    conductance: float = param(0.2, "UA, kW per degree", rule=between(0, 1e3))
    solar_aperture: float = param(2.0, "effective window area, m2", rule=between(0, 1e4))
    set_point: float = param(22.0, "degrees C", rule=between(-50, 50))
    comfort_band: float = param(1.5, "allowed deviation from the set point, degrees", rule=between(0, 50))
    comfort_penalty: float = param(0.5, "currency per degree-hour outside the band", rule=base.PENALTY)
    ev: bool = param(True, "EV charger with ElaadNL sessions")
    ev_kw: float = param(7.4, "charger power", rule=base.SIZE)
    ev_efficiency: float = param(0.9, "share of the charger's energy stored in the EV", rule=base.EFFICIENCY)
    ev_battery_kwh: float = param(60.0, "caps a session's energy demand", rule=base.SIZE)
    ev_daily_probability: float = param(0.8, "chance that the EV arrives on a given day", rule=base.FRACTION)
    appliance: bool = param(True, "one deferrable job per day (dishwasher-like)")
    appliance_kwh: float = param(1.5, "energy of a job", rule=base.SIZE)
    appliance_kw: float = param(1.0, "appliance power", rule=between(0, 1e6, low_open=True))
    appliance_window_hours: int = param(
        10, "hours between release (19:00-22:00) and deadline", rule=base.integer_between(1, 14)
    )
    unmet_penalty: float = param(
        0.6, "currency per kWh an EV or appliance did not get by its deadline", rule=base.PENALTY
    )
    discrete_levels: int = param(
        0,
        "0: continuous Box actions; 2..101: MultiDiscrete with this many levels per device",
        rule=base.integer_between(0, 101),
    )
    price_memory_hours: int = param(
        0,
        "0: no price memory; h > 0: observe the mean import price of the last h hours (the rules' reference)",
        rule=base.integer_between(0, 24 * 7),
    )
    reward_delay: str = param(
        "none", "none, or daily (the day's reward settled at its last hour)", rule=one_of(REWARD_DELAYS)
    )
    changes: tuple[Change, ...] = param(
        (), "sudden changes (tables with kind, hour, scale, shift_hours)", rule=_changes
    )

    def __post_init__(self):
        changes = (
            tuple(Change.from_dict(c, source="changes") if isinstance(c, Mapping) else c for c in self.changes)
            if isinstance(self.changes, tuple | list)
            else self.changes
        )
        object.__setattr__(self, "changes", changes)
        super().__post_init__()

    def to_dict(self) -> dict:
        return {**super().to_dict(), "changes": [change.to_dict() for change in self.changes]}

    def to_toml(self) -> str:
        """TOML, the changes as an array of tables (``[[changes]]``) after the settings."""
        text = super(BuildingConfig, dataclasses.replace(self, changes=())).to_toml()
        if not self.changes:
            return text
        tables = [
            "\n[[changes]]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in change.to_dict().items())
            for change in self.changes
        ]
        return text.replace("\nchanges = []\n", "\n") + "".join(tables)

    def validate(self) -> None:
        if self.thermal_mass <= self.conductance:
            raise ValueError(f"thermal_mass must be > conductance ({self.conductance}), got {self.thermal_mass}")
        if self.discrete_levels == 1:
            raise ValueError("discrete_levels must be 0 (continuous) or in [2, 101], got 1")


@dataclass
class BuildingEpisode:
    """Every exogenous series of one episode (length ``n``), plus the EV sessions and appliance jobs.

    ``ev_session[t]`` / ``job[t]`` is the index of the session / job pending at step t (-1 when none);
    ``ev_required[k]`` its energy (kWh), ``ev_end[k]`` its departure step (exclusive); likewise for jobs.
    """

    load: np.ndarray
    pv: np.ndarray
    price: np.ndarray
    export_price: np.ndarray
    carbon: np.ndarray
    gain: np.ndarray
    outdoor_temperature: np.ndarray
    clock_hour: np.ndarray
    weekend: np.ndarray
    battery_limit: np.ndarray
    ev_session: np.ndarray
    ev_required: np.ndarray
    ev_end: np.ndarray
    job: np.ndarray
    job_required: np.ndarray
    job_end: np.ndarray

    @property
    def n(self) -> int:
        return len(self.load)


def _sample_sessions(clock_hour, weekend, rng, *, probability, sample, max_energy_per_hour):
    """One session a day at most: (pending index per step, required kWh, end step) for a whole episode.

    ``sample(rng, weekend) -> (arrival hour, stay hours, energy kWh)``; a session that arrives while the
    previous one is still pending is dropped, and energy is capped at what the stay can deliver.
    """
    n = len(clock_hour)
    pending = np.full(n, -1, dtype=np.int64)
    required, ends = [], []
    day_starts = np.flatnonzero(clock_hour == 0)
    if n and clock_hour[0] != 0:
        day_starts = np.concatenate([[-int(clock_hour[0])], day_starts])  # the partial first day
    busy_until = 0
    for day_start in day_starts:
        day_weekend = bool(weekend[max(day_start, 0)])
        arrival_hour, stay, energy = sample(rng, day_weekend)
        if rng.random() >= probability:
            continue
        start = int(day_start + math.floor(arrival_hour))
        end = min(n, start + max(1, round(stay)))
        if start < max(busy_until, 0) or start >= n:
            continue
        pending[start:end] = len(required)
        required.append(min(energy, max_energy_per_hour * (end - start)))
        ends.append(end)
        busy_until = end
    return pending, np.array(required, dtype=np.float64), np.array(ends, dtype=np.int64)


class BuildingEnergyEnv(gym.Env):
    """One building on real data (gymnasium API); see the module docstring for the model and the actions."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        config: BuildingConfig | None = None,
        *,
        data: BuildingData | None = None,
        day_ahead: np.ndarray | None = None,
        **overrides,
    ):
        """``config`` fields can also be given as keyword overrides; ``data`` / ``day_ahead`` (EUR/kWh, one per
        data hour) replace the files named in the config, for data already in memory."""
        config = (config or BuildingConfig()).replace(**overrides) if overrides else (config or BuildingConfig())
        self.config = config
        self.data = data if data is not None else base.building_data(config.building, config.data_dir)
        self.n_hours = self.data.n_hours  # the data the episodes (and the split) are drawn from
        if day_ahead is None:
            day_ahead = base.day_ahead_prices(config.price_file).window(config.price_start, self.data.n_hours)
        if len(day_ahead) != self.data.n_hours:
            raise ValueError(f"day_ahead must have one price per data hour ({self.data.n_hours}), got {len(day_ahead)}")
        self.day_ahead = np.asarray(day_ahead, dtype=np.float64)
        if not np.all(np.isfinite(self.day_ahead)):
            raise ValueError("day_ahead holds non-finite values (NaN or inf)")
        base.check_window(config, self.data.n_hours, self.data.name)
        self.ev_statistics = load_ev_statistics() if config.ev else None
        devices_on = [
            ("battery", -1.0, config.battery_kwh > 0),
            ("hvac", -1.0, config.hvac),
            ("ev", 0.0, config.ev),
            ("appliance", 0.0, config.appliance),
        ]
        self.action_names = tuple(name for name, _, on in devices_on if on)
        if not self.action_names:
            raise ValueError("at least one of battery_kwh > 0, hvac, ev, appliance must be enabled")
        self._low = np.array([low for _, low, on in devices_on if on], dtype=np.float32)
        self._high = np.ones(len(self.action_names), dtype=np.float32)
        if config.discrete_levels:
            self.action_space = gym.spaces.MultiDiscrete([config.discrete_levels] * len(self.action_names))
        else:
            self.action_space = gym.spaces.Box(self._low, self._high, dtype=np.float32)
        self.observation_names = (
            "hour_sin", "hour_cos", "weekend", "load", "pv", "price", "price_next_1", "price_next_2", "price_next_3",
            "export_price", "carbon", "outdoor_temperature", "thermal_gain", "soc", "temperature_deviation",
            "ev_connected", "ev_remaining", "ev_hours_left", "appliance_pending", "appliance_remaining",
            "appliance_hours_left",
        )  # fmt: skip
        if config.price_memory_hours:
            # Whether a price is cheap is relative: the rules compare it with the mean of the last 24 observed
            # prices (evosparse.envs.policies.PriceMemory); without this an agent sees only 4 prices at once.
            self.observation_names += ("price_mean_past",)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (len(self.observation_names),), dtype=np.float32)
        self.episode: BuildingEpisode | None = None
        self.clipped_actions = 0

    # ---- episode -------------------------------------------------------------------------------------
    def _draw_episode(self, rng: np.random.Generator) -> BuildingEpisode:
        config, data = self.config, self.data
        n = config.episode_hours
        start = self.first_hour = base.episode_start(config, data.n_hours, rng)
        window = slice(start, start + n)
        day_ahead_price = self.day_ahead[window] + config.network_charge
        tariff = data.tariff[window]
        price = base.import_price(config, self.day_ahead[window], tariff)
        load = data.load[window].copy()
        battery_limit = np.full(n, config.battery_kw if config.battery_kwh > 0 else 0.0)
        for change in config.changes:
            after = slice(min(change.hour, n), n)
            if change.kind == "tariff_switch":
                price[after] = (tariff if config.price_signal == "day_ahead" else day_ahead_price)[after]
            elif change.kind == "battery_failure":
                battery_limit[after] = 0.0
            else:  # occupant: a new pattern of use from this hour on
                shifted = np.roll(data.load, change.shift_hours)[window]
                load[after] = change.scale * shifted[after]
        clock_hour = base.clock_hours(data, window)
        weekend = data.day_type[window] >= 6
        gain = devices.thermal_gain(
            data.outdoor_temperature[window],
            data.irradiance[window],
            set_point=config.set_point,
            conductance=config.conductance,
            solar_aperture=config.solar_aperture,
        )
        if config.ev:
            statistics = self.ev_statistics
            ev = _sample_sessions(
                clock_hour,
                weekend,
                rng,
                probability=config.ev_daily_probability,
                sample=lambda r, w: statistics.sample_session(r, weekend=w),
                max_energy_per_hour=config.ev_kw * config.ev_efficiency,
            )
            ev = (ev[0], np.minimum(ev[1], config.ev_battery_kwh), ev[2])
        else:
            ev = (np.full(n, -1), np.zeros(0), np.zeros(0, dtype=np.int64))
        if config.appliance:
            window_hours = config.appliance_window_hours
            job = _sample_sessions(
                clock_hour,
                weekend,
                rng,
                probability=1.0,
                sample=lambda r, w: (19 + 4 * r.random(), window_hours, config.appliance_kwh),
                max_energy_per_hour=config.appliance_kw,
            )
        else:
            job = (np.full(n, -1), np.zeros(0), np.zeros(0, dtype=np.int64))
        return BuildingEpisode(
            load=load, pv=data.solar[window] * config.pv_kw, price=price,
            export_price=base.export_price(config, price), carbon=data.carbon[window], gain=gain,
            outdoor_temperature=data.outdoor_temperature[window], clock_hour=clock_hour, weekend=weekend,
            battery_limit=battery_limit, ev_session=ev[0], ev_required=ev[1], ev_end=ev[2], job=job[0],
            job_required=job[1], job_end=job[2],
        )  # fmt: skip

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._draw_state = copy.deepcopy(self.np_random.bit_generator.state)  # the episode is drawn from this
        self._start_episode()
        return self._observation(), {}

    def _start_episode(self) -> None:
        """Draw the episode's series from ``self.np_random`` and set the devices to their initial state."""
        config = self.config
        self.episode = episode = self._draw_episode(self.np_random)
        # Python lists: indexing them and float arithmetic is several times faster than numpy scalars.
        self._series = {name: getattr(episode, name).tolist() for name in (
            "load", "pv", "price", "export_price", "carbon", "gain", "outdoor_temperature", "clock_hour", "weekend",
            "battery_limit", "ev_session", "job")}  # fmt: skip
        self._price_padded = self._series["price"] + [self._series["price"][-1]] * 3
        self._price_cumsum = np.concatenate([[0.0], np.cumsum(episode.price)]).tolist()
        self._t = 0
        self._soc = config.initial_soc * config.battery_kwh
        self._deviation = 0.0
        self._ev_remaining = episode.ev_required.tolist()
        self._job_remaining = episode.job_required.tolist()
        self._pending_reward = 0.0
        self.clipped_actions = 0
        n = episode.n
        self.log = {name: np.zeros(n) for name in LOG_NAMES}

    # ---- resumable state (read by the RL agents' checkpoints, evosparse.rl.envs) --------------------------------
    def get_resume_state(self) -> dict:
        """The episode in progress as JSON data: the generator state its series were drawn from (they are drawn
        again on resume, not stored), the devices' state and the log so far."""
        if self.episode is None:
            return {"draw_state": None}
        t = self._t
        return {
            "draw_state": self._draw_state, "t": t, "soc": self._soc, "deviation": self._deviation,
            "ev_remaining": list(self._ev_remaining), "job_remaining": list(self._job_remaining),
            "pending_reward": self._pending_reward, "clipped_actions": self.clipped_actions,
            "log": {name: values[:t].tolist() for name, values in self.log.items()},
        }  # fmt: skip

    def set_resume_state(self, state: dict) -> None:
        """Continue the episode of :meth:`get_resume_state` (on an environment with the same config)."""
        if state["draw_state"] is None:
            return
        current = copy.deepcopy(self.np_random.bit_generator.state)
        self.np_random.bit_generator.state, self._draw_state = state["draw_state"], state["draw_state"]
        self._start_episode()
        self.np_random.bit_generator.state = current
        self._t, self._soc, self._deviation = int(state["t"]), float(state["soc"]), float(state["deviation"])
        self._ev_remaining, self._job_remaining = list(state["ev_remaining"]), list(state["job_remaining"])
        self._pending_reward, self.clipped_actions = float(state["pending_reward"]), int(state["clipped_actions"])
        for name, values in state["log"].items():
            self.log[name][: len(values)] = values

    def _observation(self) -> np.ndarray:
        series, t, config = self._series, self._t, self.config
        if t >= self.episode.n:  # after the last step: repeat the last hour's exogenous values
            t = self.episode.n - 1
        hour = series["clock_hour"][t]
        session, job = series["ev_session"][t], series["job"][t]
        ev_left = (int(self.episode.ev_end[session]) - t) if session >= 0 else 0
        job_left = (int(self.episode.job_end[job]) - t) if job >= 0 else 0
        prices = self._price_padded
        extra = []
        if config.price_memory_hours:  # prices observed from the episode start on, at most the last h hours
            first = max(0, t + 1 - config.price_memory_hours)
            extra.append((self._price_cumsum[t + 1] - self._price_cumsum[first]) / (t + 1 - first))
        return np.array([
            math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24), float(series["weekend"][t]),
            series["load"][t], series["pv"][t], prices[t], prices[t + 1], prices[t + 2], prices[t + 3],
            series["export_price"][t], series["carbon"][t], series["outdoor_temperature"][t], series["gain"][t],
            self._soc / config.battery_kwh if config.battery_kwh > 0 else 0.0, self._deviation,
            float(session >= 0), self._ev_remaining[session] if session >= 0 else 0.0, ev_left,
            float(job >= 0), self._job_remaining[job] if job >= 0 else 0.0, job_left, *extra,
        ], dtype=np.float32)  # fmt: skip

    def _fractions(self, action) -> list[float]:
        """Device fractions from an action; NaN is an error, out-of-range values are clipped and counted."""
        if self.config.discrete_levels:
            levels = np.asarray(action)
            if levels.shape != (len(self.action_names),) or not self.action_space.contains(levels.astype(np.int64)):
                raise ValueError(
                    f"action must be {len(self.action_names)} integers in [0, "
                    f"{self.config.discrete_levels - 1}], got {action!r}"
                )
            return (self._low + (self._high - self._low) * levels / (self.config.discrete_levels - 1)).tolist()
        clipped, n_clipped = base.check_action(action, self._low, self._high, self.action_names)
        self.clipped_actions += n_clipped
        return clipped.tolist()

    # ---- dynamics ------------------------------------------------------------------------------------
    def hvac_fraction_for_target(self, target: float) -> float:
        """The heat pump's power fraction (as ``hvac_action="power"`` takes it) that brings the zone to
        ``target * comfort_band`` degrees from the set point by the end of this hour, clipped to [-1, 1].

        This is the thermostat of ``hvac_action="target"``: a building management system holds a set point
        with the zone's own controller, and the rules (:mod:`evosparse.envs.policies`) use the same one.
        """
        config = self.config
        if config.hvac_kw <= 0:
            return 0.0
        power = devices.thermostat_power(
            self._deviation, self._series["gain"][self._t], target * config.comfort_band, cop=config.cop,
            thermal_mass=config.thermal_mass, loss=config.conductance / config.thermal_mass,
        )  # fmt: skip
        return min(max(power / config.hvac_kw, -1.0), 1.0)

    def step(self, action):
        base.require_running(self._t, self.config.episode_hours, self.episode)
        config, series, t, episode = self.config, self._series, self._t, self.episode
        fractions = dict(zip(self.action_names, self._fractions(action)))
        battery = hvac = ev = appliance = comfort = unmet = 0.0
        if "battery" in fractions:
            limit = series["battery_limit"][t]
            self._soc, battery = devices.battery_step_scalar(
                self._soc,
                fractions["battery"] * limit,
                config.battery_kwh,
                limit,
                config.charge_efficiency,
                config.discharge_efficiency,
                1.0,
            )
        if "hvac" in fractions:
            if config.hvac_action == "target":
                fractions["hvac"] = self.hvac_fraction_for_target(fractions["hvac"])
            hvac_power = fractions["hvac"] * config.hvac_kw
            hvac = abs(hvac_power)
            self._deviation = devices.thermal_step(
                self._deviation,
                hvac_power,
                series["gain"][t],
                cop=config.cop,
                thermal_mass=config.thermal_mass,
                loss=config.conductance / config.thermal_mass,
                hours=1.0,
            )
            comfort = max(self._deviation - config.comfort_band, 0.0) + max(-config.comfort_band - self._deviation, 0.0)
        session = series["ev_session"][t]
        if "ev" in fractions and session >= 0:
            remaining = self._ev_remaining[session]
            ev = min(fractions["ev"] * config.ev_kw, remaining / config.ev_efficiency)
            self._ev_remaining[session] = remaining = max(remaining - config.ev_efficiency * ev, 0.0)
            if t + 1 == episode.ev_end[session]:
                unmet += remaining
        job = series["job"][t]
        if "appliance" in fractions and job >= 0:
            remaining = self._job_remaining[job]
            appliance = min(fractions["appliance"] * config.appliance_kw, remaining)
            self._job_remaining[job] = remaining = max(remaining - appliance, 0.0)
            if t + 1 == episode.job_end[job]:
                unmet += remaining
        # Energy balance at the meter (one-hour steps, so kW and kWh coincide).
        net = series["load"][t] - series["pv"][t] + battery + hvac + ev + appliance
        grid_import, grid_export = max(net, 0.0), max(-net, 0.0)
        cost = grid_import * series["price"][t] - grid_export * series["export_price"][t]
        cost += config.degradation_cost * abs(battery)
        penalty = config.comfort_penalty * comfort + config.unmet_penalty * unmet
        reward = -(cost + penalty)

        log = self.log
        for name, value in (
            ("load", series["load"][t]),
            ("pv", series["pv"][t]),
            ("battery", battery),
            ("hvac", hvac),
            ("ev", ev),
            ("appliance", appliance),
            ("grid_import", grid_import),
            ("grid_export", grid_export),
            ("soc", self._soc),
            ("price", series["price"][t]),
            ("export_price", series["export_price"][t]),
            ("carbon", series["carbon"][t]),
            ("cost", cost),
            ("comfort_violation", comfort),
            ("unmet", unmet),
            ("reward", reward),
            ("temperature_deviation", self._deviation),
        ):
            log[name][t] = value
        self._t = t = t + 1
        truncated = t >= episode.n
        if config.reward_delay == "daily":  # settle the day's reward at its last hour (or the episode's end)
            self._pending_reward += reward
            if truncated or series["clock_hour"][t] == 0:
                reward, self._pending_reward = self._pending_reward, 0.0
            else:
                reward = 0.0
        info = {
            "grid_import": grid_import,
            "grid_export": grid_export,
            "net": net,
            "cost": cost,
            "penalty": penalty,
            "battery": battery,
            "soc": self._soc,
            "clipped_actions": self.clipped_actions,
        }
        return self._observation(), float(reward), False, truncated, info
