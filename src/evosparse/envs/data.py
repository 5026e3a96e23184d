"""Real energy data for the smart-grid environments: buildings, prices, EV charging statistics.

Three sources, each read from the published file layout so a user's own CSV with the same columns works:

* CityLearn Challenge 2022 (MIT): ``Building_N.csv`` (``non_shiftable_load`` kWh, ``solar_generation`` W per kW
  of PV), ``pricing.csv`` (``electricity_pricing``), ``carbon_intensity.csv``, ``weather.csv``; one year hourly.
* ENTSO-E day-ahead prices: the EV2Gym Dutch file (``Datetime (UTC)``, ``Price (EUR/MWhe)``, ISO dates until
  September 2023 then dd/mm/yyyy) or the Belgian ``time,DAM_price`` file (EUR/kWh, ``01jan2022 00:00:00``).
* ElaadNL charging statistics via EV2Gym (MIT): arrival-time weights per quarter hour, and quantile tables
  of connection time (hours) and energy demand (kWh).

With no path the small subset bundled in ``evosparse/envs/bundled`` is read (see its README for provenance).
Only numpy and the standard library are used: no pandas.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BUNDLED = Path(__file__).resolve().parent / "bundled"
BUNDLED_BUILDINGS = (1, 2, 3)


def _open_text(path: Path) -> io.TextIOBase:
    """A text handle on ``path`` or ``path.gz``; utf-8-sig drops the byte-order mark some files carry."""
    path = Path(path)
    if not path.is_file() and path.with_name(path.name + ".gz").is_file():
        path = path.with_name(path.name + ".gz")
    if not path.is_file():
        raise FileNotFoundError(f"energy data file not found: {path}")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_columns(path: Path, required: tuple[str, ...]) -> dict[str, list[str]]:
    """The named columns of a CSV as lists of strings; a missing column is an error naming the file."""
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader)]
        missing = [name for name in required if name not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; the file has {header}")
        index = [header.index(name) for name in required]
        columns: dict[str, list[str]] = {name: [] for name in required}
        for row in reader:
            if not row:
                continue
            for name, position in zip(required, index):
                columns[name].append(row[position].strip())
    return columns


def _floats(values: list[str], *, path: Path, column: str) -> np.ndarray:
    try:
        return np.array([float(value) for value in values], dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"{path}: column {column!r} must hold numbers ({error})") from None


# ---- CityLearn buildings ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildingData:
    """One building's hourly exogenous series, all of length ``n_hours``.

    ``load`` is the non-shiftable load (kWh per hour); ``solar`` the PV output per kW installed (kWh/kW,
    CityLearn gives W/kW); ``tariff`` the CityLearn time-of-use price ($/kWh); ``carbon`` kgCO2/kWh.
    """

    name: str
    month: np.ndarray
    hour: np.ndarray  # 1..24 as in CityLearn
    day_type: np.ndarray  # 1..7 (Monday..Sunday), 8 = holiday
    load: np.ndarray
    solar: np.ndarray
    tariff: np.ndarray
    carbon: np.ndarray
    outdoor_temperature: np.ndarray
    irradiance: np.ndarray  # direct + diffuse, W/m2

    @property
    def n_hours(self) -> int:
        return len(self.load)


def load_citylearn_building(building: int = 1, directory: str | Path | None = None) -> BuildingData:
    """Building ``building`` of the CityLearn 2022 data set, read from ``directory`` (default: bundled subset).

    ``directory`` holds ``Building_<n>.csv``, ``pricing.csv``, ``carbon_intensity.csv`` and ``weather.csv``
    (optionally gzipped) with CityLearn's column names; extra columns are ignored.
    """
    folder = Path(directory) if directory is not None else BUNDLED / "citylearn_2022"
    if directory is None and building not in BUNDLED_BUILDINGS:
        raise ValueError(f"building must be one of {BUNDLED_BUILDINGS} in the bundled subset, got {building}")
    building_file = folder / f"Building_{building}.csv"
    columns = read_columns(building_file, ("month", "hour", "day_type", "non_shiftable_load", "solar_generation"))
    values = {name: _floats(column, path=building_file, column=name) for name, column in columns.items()}
    tariff = _floats(
        read_columns(folder / "pricing.csv", ("electricity_pricing",))["electricity_pricing"],
        path=folder / "pricing.csv",
        column="electricity_pricing",
    )
    carbon = _floats(
        read_columns(folder / "carbon_intensity.csv", ("carbon_intensity",))["carbon_intensity"],
        path=folder / "carbon_intensity.csv",
        column="carbon_intensity",
    )
    weather_names = ("outdoor_dry_bulb_temperature", "direct_solar_irradiance", "diffuse_solar_irradiance")
    weather = read_columns(folder / "weather.csv", weather_names)
    weather_values = {name: _floats(weather[name], path=folder / "weather.csv", column=name) for name in weather_names}
    n_hours = len(values["non_shiftable_load"])
    for name, series in (
        ("pricing", tariff),
        ("carbon_intensity", carbon),
        ("weather", weather_values[weather_names[0]]),
    ):
        if len(series) < n_hours:
            raise ValueError(f"{folder}: {name}.csv has {len(series)} rows, fewer than the building's {n_hours}")
    return BuildingData(
        name=f"Building_{building}",
        month=values["month"].astype(np.int64),
        hour=values["hour"].astype(np.int64),
        day_type=values["day_type"].astype(np.int64),
        load=values["non_shiftable_load"],
        solar=values["solar_generation"] / 1000.0,  # W per kW of PV -> kWh per kW over one hour
        tariff=tariff[:n_hours],
        carbon=carbon[:n_hours],
        outdoor_temperature=weather_values["outdoor_dry_bulb_temperature"][:n_hours],
        irradiance=(weather_values["direct_solar_irradiance"] + weather_values["diffuse_solar_irradiance"])[:n_hours],
    )


# ---- day-ahead prices ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceSeries:
    """Hourly prices in EUR/kWh on a gap-free hourly UTC-or-local grid (``times`` are numpy datetime64[h])."""

    name: str
    times: np.ndarray
    price: np.ndarray

    def window(self, start: str, n_hours: int) -> np.ndarray:
        """``n_hours`` prices from ``start`` (an ISO date such as ``2023-08-01``)."""
        first = int((np.datetime64(start, "h") - self.times[0]).astype(np.int64))
        if first < 0 or first + n_hours > len(self.price):
            raise ValueError(
                f"price window start={start!r} n_hours={n_hours} is outside {self.name} "
                f"({self.times[0]} .. {self.times[-1]})"
            )
        return self.price[first : first + n_hours]


def _parse_time(text: str) -> dt.datetime:
    for layout in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d%b%Y %H:%M:%S"):
        try:
            return dt.datetime.strptime(text, layout)
        except ValueError:
            continue
    raise ValueError(f"unrecognised date {text!r}")


def load_day_ahead_prices(path: str | Path | None = None) -> PriceSeries:
    """Hourly day-ahead prices in EUR/kWh from an EV2Gym/ENTSO-E Dutch file or the Belgian ``DAM_prices.csv``.

    Duplicated hours keep the first value, missing hours (and empty prices) are filled with the previous
    hour's price, so the result is on a regular hourly grid. Default: the bundled Dutch subset.
    """
    path = Path(path) if path is not None else BUNDLED / "entsoe_nl" / "day_ahead_nl_2023-08_2024-07.csv"
    with _open_text(path) as handle:
        header = [name.strip() for name in next(csv.reader(handle))]
    if "Price (EUR/MWhe)" in header:
        columns = read_columns(path, ("Datetime (UTC)", "Price (EUR/MWhe)"))
        times, raw, scale = columns["Datetime (UTC)"], columns["Price (EUR/MWhe)"], 1e-3
    elif "DAM_price" in header:
        columns = read_columns(path, ("time", "DAM_price"))
        times, raw, scale = columns["time"], columns["DAM_price"], 1.0
    else:
        raise ValueError(
            f"{path}: expected columns 'Datetime (UTC)','Price (EUR/MWhe)' or 'time','DAM_price', got {header}"
        )
    hours, prices = [], []
    for time_text, price_text in zip(times, raw):
        if price_text == "" or time_text == "":  # the Dutch file has one row with no date
            continue
        hours.append(np.datetime64(_parse_time(time_text), "h"))
        prices.append(float(price_text) * scale)
    if not hours:
        raise ValueError(f"{path}: no prices found")
    hours_array = np.array(hours)
    order = np.argsort(hours_array, kind="stable")
    hours_array, price_array = hours_array[order], np.array(prices)[order]
    offsets = (hours_array - hours_array[0]).astype(np.int64)
    grid = np.full(offsets[-1] + 1, np.nan)
    first_seen = np.unique(offsets, return_index=True)[1]  # duplicates (clock changes): keep the first
    grid[offsets[first_seen]] = price_array[first_seen]
    filled = np.maximum.accumulate(np.where(np.isnan(grid), 0, np.arange(len(grid))))  # forward fill
    grid = grid[filled]
    times_grid = hours_array[0] + np.arange(len(grid)).astype("timedelta64[h]")
    return PriceSeries(name=path.name, times=times_grid, price=grid)


# ---- EV charging statistics ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EvStatistics:
    """ElaadNL charging statistics for one location type (``private`` = home charging by default).

    ``arrival_weekday`` / ``arrival_weekend``: probability of an arrival in each of the 96 quarter hours.
    ``connection_hours`` / ``energy_kwh``: value exceeded by ``q`` % of sessions, for q = 0..n-1 (EV2Gym's
    quantile tables), sampled by inverse-CDF interpolation.
    """

    arrival_weekday: np.ndarray
    arrival_weekend: np.ndarray
    connection_hours: np.ndarray
    energy_kwh: np.ndarray

    def sample_session(self, rng: np.random.Generator, *, weekend: bool) -> tuple[float, float, float]:
        """(arrival hour in [0, 24), connection hours, energy kWh) of one charging session."""
        weights = self.arrival_weekend if weekend else self.arrival_weekday
        quarter = rng.choice(len(weights), p=weights)
        arrival = (quarter + rng.random()) * 24.0 / len(weights)
        percentiles = np.arange(len(self.connection_hours), dtype=np.float64)
        stay = float(np.interp(rng.uniform(0, percentiles[-1]), percentiles, self.connection_hours))
        percentiles = np.arange(len(self.energy_kwh), dtype=np.float64)
        energy = float(np.interp(rng.uniform(0, percentiles[-1]), percentiles, self.energy_kwh))
        return arrival, stay, energy


def load_ev_statistics(directory: str | Path | None = None, location: str = "private") -> EvStatistics:
    """ElaadNL statistics from EV2Gym's ``distribution-of-*.csv`` files in ``directory`` (default: bundled)."""
    folder = Path(directory) if directory is not None else BUNDLED / "elaad"
    allowed = ("private", "public", "workplace")
    if location not in allowed:
        raise ValueError(f"location must be one of {allowed}, got {location!r}")
    weekend_location = location if location != "workplace" else "public"  # the weekend file has no workplace
    weekday = read_columns(folder / "distribution-of-arrival.csv", (location,))[location]
    weekend = read_columns(folder / "distribution-of-arrival-weekend.csv", (weekend_location,))[weekend_location]
    stay = read_columns(folder / "distribution-of-connection-time.csv", (location,))[location]
    energy = read_columns(folder / "distribution-of-energy-demand.csv", (location,))[location]

    def probabilities(values: list[str], name: str) -> np.ndarray:
        weights = np.clip(_floats(values, path=folder / name, column=location), 0, None)
        return weights / weights.sum()

    return EvStatistics(
        arrival_weekday=probabilities(weekday, "distribution-of-arrival.csv"),
        arrival_weekend=probabilities(weekend, "distribution-of-arrival-weekend.csv"),
        connection_hours=_floats(stay, path=folder / "distribution-of-connection-time.csv", column=location),
        energy_kwh=_floats(energy, path=folder / "distribution-of-energy-demand.csv", column=location),
    )
