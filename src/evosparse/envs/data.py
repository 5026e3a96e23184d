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
import dataclasses
import datetime as dt
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BUNDLED = Path(__file__).resolve().parent / "bundled"
BUNDLED_BUILDINGS = (1, 2, 3)
# Every number read is checked: finite, and within a range wide enough for any real building or market
# (|x| <= 1e6; prices |p| <= 100 EUR/kWh, 25x the EU day-ahead cap of 4 EUR/kWh), so a unit mix-up or a
# corrupt cell is an error naming the file, line and column, not an overflow in the optimum's solver.
LIMIT = 1e6
PRICE_LIMIT = 100.0  # currency per kWh


def _resolve(path: str | Path) -> Path:
    """``path``, or ``path.gz`` when only the gzipped file exists; FileNotFoundError naming it otherwise."""
    path = Path(path)
    if not path.is_file() and path.with_name(path.name + ".gz").is_file():
        path = path.with_name(path.name + ".gz")
    if not path.is_file():
        raise FileNotFoundError(f"energy data file not found: {path}")
    return path


def _open_text(path: Path) -> io.TextIOBase:
    """A text handle; utf-8-sig drops the byte-order mark some files carry."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


@dataclass(frozen=True)
class Table:
    """Named columns of a CSV file as strings, with the file line of each row for error messages."""

    path: Path
    header: list[str]
    columns: dict[str, list[str]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.lines)

    def numbers(self, name: str, *, low: float = -LIMIT, high: float = LIMIT, scale: float = 1.0) -> np.ndarray:
        """Column ``name`` as float64 times ``scale``; a cell that is not a number in [low, high] (after the
        scale) is a ValueError naming the file, the line and the column."""
        cells = self.columns[name]
        try:
            values = np.array([float(cell) for cell in cells], dtype=np.float64) * scale
        except ValueError:
            row = next(row for row, cell in enumerate(cells) if not _is_number(cell))
            raise ValueError(f"{self._where(row, name)}: {cells[row]!r} is not a number") from None
        bad = np.flatnonzero(~np.isfinite(values) | (values < low) | (values > high))
        if len(bad):
            row = int(bad[0])
            what = "is not a finite number" if not np.isfinite(values[row]) else f"is outside [{low:g}, {high:g}]"
            unit = f" (x {scale:g})" if scale != 1.0 else ""
            raise ValueError(f"{self._where(row, name)}: {cells[row]}{unit} {what}")
        return values

    def _where(self, row: int, name: str) -> str:
        return f"{self.path}, line {self.lines[row]}, column {name!r}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_table(path: str | Path, required: tuple[str, ...] | None = None, *, min_rows: int = 1) -> Table:
    """The ``required`` columns (None: all) of a CSV (or ``.csv.gz``) file, checked: it exists, is UTF-8 text,
    has a header with every required column, rows long enough to hold them, and at least ``min_rows`` rows
    (blank lines skipped). Every problem is a ValueError (FileNotFoundError for a missing file) naming the file."""
    path = _resolve(path)
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                expected = f" with the columns {list(required)}" if required else ""
                raise ValueError(f"{path}: the file is empty; expected a CSV header{expected}")
            header = [name.strip() for name in header]
            required = tuple(header) if required is None else required
            missing = [name for name in required if name not in header]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing}; the file has {header}")
            index = [header.index(name) for name in required]
            columns: dict[str, list[str]] = {name: [] for name in required}
            lines = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) <= max(index):
                    name, position = max(zip(required, index), key=lambda pair: pair[1])
                    raise ValueError(
                        f"{path}, line {reader.line_num}: {len(row)} field(s), but column {name!r} is field "
                        f"{position + 1} of the header"
                    )
                for name, position in zip(required, index):
                    columns[name].append(row[position].strip())
                lines.append(reader.line_num)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except (gzip.BadGzipFile, EOFError, zlib.error, csv.Error) as error:
        raise ValueError(f"{path}: not a readable CSV file ({error})") from None
    if len(lines) < min_rows:
        raise ValueError(f"{path}: {len(lines)} data row(s), at least {min_rows} needed")
    return Table(path=path, header=header, columns=columns, lines=lines)


# ---- CityLearn buildings ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildingData:
    """One building's hourly exogenous series, all of length ``n_hours`` (checked: equal lengths, finite).

    ``load`` is the non-shiftable load (kWh per hour); ``solar`` the PV output per kW installed (kWh/kW,
    CityLearn gives W/kW); ``tariff`` the CityLearn time-of-use price ($/kWh); ``carbon`` kgCO2/kWh.
    """

    name: str  # where the data came from (the building file)
    month: np.ndarray
    hour: np.ndarray  # 1..24 as in CityLearn
    day_type: np.ndarray  # 1..7 (Monday..Sunday), 8 = holiday
    load: np.ndarray
    solar: np.ndarray
    tariff: np.ndarray
    carbon: np.ndarray
    outdoor_temperature: np.ndarray
    irradiance: np.ndarray  # direct + diffuse, W/m2

    def __post_init__(self):
        for field in dataclasses.fields(self)[1:]:
            series = getattr(self, field.name)
            if np.shape(series) != (self.n_hours,):
                raise ValueError(f"{self.name}: {field.name} has shape {np.shape(series)}, expected ({self.n_hours},)")
            if not np.all(np.isfinite(series)):
                raise ValueError(f"{self.name}: {field.name} holds non-finite values (NaN or inf)")

    @property
    def n_hours(self) -> int:
        return len(self.load)


def load_citylearn_building(building: int = 1, directory: str | Path | None = None) -> BuildingData:
    """Building ``building`` of the CityLearn 2022 data set, read from ``directory`` (default: bundled subset).

    ``directory`` holds ``Building_<n>.csv``, ``pricing.csv``, ``carbon_intensity.csv`` and ``weather.csv``
    (optionally gzipped) with CityLearn's column names; extra columns are ignored. The other files must have
    at least as many rows as the building file (their extra rows are ignored).
    """
    folder = Path(directory) if directory is not None else BUNDLED / "citylearn_2022"
    if directory is None and building not in BUNDLED_BUILDINGS:
        raise ValueError(f"building must be one of {BUNDLED_BUILDINGS} in the bundled subset, got {building}")
    table = read_table(
        folder / f"Building_{building}.csv", ("month", "hour", "day_type", "non_shiftable_load", "solar_generation")
    )
    n_hours = len(table)
    pricing = read_table(folder / "pricing.csv", ("electricity_pricing",), min_rows=n_hours)
    carbon = read_table(folder / "carbon_intensity.csv", ("carbon_intensity",), min_rows=n_hours)
    weather = read_table(
        folder / "weather.csv",
        ("outdoor_dry_bulb_temperature", "direct_solar_irradiance", "diffuse_solar_irradiance"),
        min_rows=n_hours,
    )
    irradiance = weather.numbers("direct_solar_irradiance") + weather.numbers("diffuse_solar_irradiance")
    return BuildingData(
        name=str(table.path),
        month=table.numbers("month", low=1, high=12).astype(np.int64),
        hour=table.numbers("hour", low=1, high=24).astype(np.int64),
        day_type=table.numbers("day_type", low=1, high=8).astype(np.int64),
        load=table.numbers("non_shiftable_load"),
        solar=table.numbers("solar_generation") / 1000.0,  # W per kW of PV -> kWh per kW over one hour
        tariff=pricing.numbers("electricity_pricing", low=-PRICE_LIMIT, high=PRICE_LIMIT)[:n_hours],
        carbon=carbon.numbers("carbon_intensity")[:n_hours],
        outdoor_temperature=weather.numbers("outdoor_dry_bulb_temperature", low=-100, high=100)[:n_hours],
        irradiance=irradiance[:n_hours],
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
    hour's price, so the result is on a regular hourly grid. Default: the bundled Dutch subset. A date that
    cannot be read or a price that is not a number in [-100, 100] EUR/kWh is an error naming the line.
    """
    path = Path(path) if path is not None else BUNDLED / "entsoe_nl" / "day_ahead_nl_2023-08_2024-07.csv"
    table = read_table(path, min_rows=0)  # the header decides the layout; no rows is "no prices" below
    if "Price (EUR/MWhe)" in table.header:
        time_column, price_column, scale = "Datetime (UTC)", "Price (EUR/MWhe)", 1e-3
    elif "DAM_price" in table.header:
        time_column, price_column, scale = "time", "DAM_price", 1.0
    else:
        raise ValueError(
            f"{table.path}: expected columns 'Datetime (UTC)','Price (EUR/MWhe)' or 'time','DAM_price', "
            f"got {table.header}"
        )
    if time_column not in table.header:
        raise ValueError(f"{table.path}: missing column(s) [{time_column!r}]; the file has {table.header}")
    # the Dutch file has one row with no date; empty prices are filled forward below
    kept = [
        row
        for row, (time_text, price_text) in enumerate(zip(table.columns[time_column], table.columns[price_column]))
        if time_text and price_text
    ]
    if not kept:
        raise ValueError(f"{table.path}: no prices found")
    priced = Table(
        path=table.path,
        header=table.header,
        columns={name: [table.columns[name][row] for row in kept] for name in (time_column, price_column)},
        lines=[table.lines[row] for row in kept],
    )
    price_array = priced.numbers(price_column, low=-PRICE_LIMIT, high=PRICE_LIMIT, scale=scale)
    hours = []
    for row, text in enumerate(priced.columns[time_column]):
        try:
            hours.append(np.datetime64(_parse_time(text), "h"))
        except ValueError as error:
            raise ValueError(f"{priced._where(row, time_column)}: {error}") from None
    hours_array = np.array(hours)
    order = np.argsort(hours_array, kind="stable")
    hours_array, price_array = hours_array[order], price_array[order]
    offsets = (hours_array - hours_array[0]).astype(np.int64)
    grid = np.full(offsets[-1] + 1, np.nan)
    first_seen = np.unique(offsets, return_index=True)[1]  # duplicates (clock changes): keep the first
    grid[offsets[first_seen]] = price_array[first_seen]
    filled = np.maximum.accumulate(np.where(np.isnan(grid), 0, np.arange(len(grid))))  # forward fill
    grid = grid[filled]
    times_grid = hours_array[0] + np.arange(len(grid)).astype("timedelta64[h]")
    return PriceSeries(name=str(table.path), times=times_grid, price=grid)


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

    def column(name: str, column_name: str, *, probabilities: bool = False) -> np.ndarray:
        table = read_table(folder / name, (column_name,))
        values = table.numbers(column_name, low=0.0)
        if probabilities:
            if values.sum() <= 0:
                raise ValueError(f"{table.path}: column {column_name!r} has no positive weight")
            return values / values.sum()
        return values

    return EvStatistics(
        arrival_weekday=column("distribution-of-arrival.csv", location, probabilities=True),
        arrival_weekend=column("distribution-of-arrival-weekend.csv", weekend_location, probabilities=True),
        connection_hours=column("distribution-of-connection-time.csv", location),
        energy_kwh=column("distribution-of-energy-demand.csv", location),
    )


# ---- pymgrid loads --------------------------------------------------------------------------------------
def load_pymgrid_load(path: str | Path) -> np.ndarray:
    """Hourly load (kW) of one pymgrid building file (``load/<RefBldg...>.csv``: one column, a header).

    pymgrid ships the US DOE commercial reference buildings' TMY3 profiles, 8760 hours each; the first
    column is read whatever its header, every cell checked (a finite number in [0, 1e6]).
    """
    table = read_table(path, min_rows=1)
    return table.numbers(table.header[0], low=0.0)
