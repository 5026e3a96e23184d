"""What every smart-grid environment shares: its data, its episode window, its prices and its action check.

1. ``building_data`` / ``day_ahead_prices``: the validated data files, read once per process (cached);
2. ``check_window`` at construction and ``episode_start`` at reset: the first data hour of an episode is
   ``start_hour`` within the config's ``split``, or, with ``random_start``, a whole day of the split drawn
   with the environment's seeded generator;
3. ``import_price`` / ``export_price``: the price signal of a window (day-ahead + network charge, or the
   CityLearn tariff) and the feed-in tariff capped at it, so one meter never profits from importing and
   exporting at once;
4. ``check_action``: a wrong shape or a NaN is an error naming the devices; out-of-range values are clipped
   and counted (``clipped_actions``), so a learning agent's bad habits show in the results.

Splits, for agents trained and evaluated as the yardsticks are: ``"test"`` is the held-out last
``HELD_OUT_DAYS`` (30) days of the data year (days 335-364 of the CityLearn year, ``evosparse grid run``'s
default window), ``"train"`` everything before them (the first eleven months), ``"all"`` the whole year.
Train an agent with ``split="train", random_start=True`` and evaluate it with ``split="test"``. To choose
among an agent's checkpoints without looking at the test month, ``"train"`` divides further: ``"validation"``
is its last 30 days (the eleventh month) and ``"fit"`` the rest (the first ten): fit on one, pick the
checkpoint on the other, report on ``"test"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from evosparse._config import Rule, between, is_int, one_of
from evosparse.envs.data import (
    LIMIT,
    PRICE_LIMIT,
    BuildingData,
    PriceSeries,
    load_citylearn_building,
    load_day_ahead_prices,
)

HELD_OUT_DAYS = 30
SPLITS = ("all", "train", "test", "fit", "validation")
PRICE_SIGNALS = ("day_ahead", "tariff")


# ---- the rules of the configs' fields --------------------------------------------------------------------------
# Wide enough for any real building, feeder or market, narrow enough that no product or sum overflows in the
# environment or in the optimum's solver (the data files are checked against the same limits).
def integer_between(low: int, high: int) -> Rule:
    return Rule(lambda value: is_int(value) and low <= value <= high, f"an integer in [{low}, {high}]")


SIZE = between(0, LIMIT)  # kW or kWh of a device; 0 switches it off
PRICE = between(0, PRICE_LIMIT)  # currency per kWh
PENALTY = between(0, 1e4)  # currency per kWh, per degree-hour, per start, ...
EFFICIENCY = between(0, 1, low_open=True)
FRACTION = between(0, 1)
START_HOUR = integer_between(0, 10**6)
EPISODE_HOURS = integer_between(1, 10**6)
SPLIT = one_of(SPLITS)
PRICE_SIGNAL = one_of(PRICE_SIGNALS)


def iso_date(name: str) -> Callable[[str], None]:
    """A rule: ``value`` is an ISO date (``2023-08-01``, optionally with an hour)."""

    def check(value) -> None:
        try:
            np.datetime64(value, "h")
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an ISO date such as 2023-08-01, got {value!r}") from None

    return check


def building_numbers(value) -> None:
    """A rule: one or more CityLearn building numbers."""
    if not (isinstance(value, tuple) and value and all(is_int(v) and 1 <= v <= 10**4 for v in value)):
        raise ValueError(f"buildings must be one or more building numbers in [1, 10000], got {value!r}")


@lru_cache(maxsize=8)
def building_data(building: int, data_dir: str | None) -> BuildingData:
    return load_citylearn_building(building, data_dir)


@lru_cache(maxsize=4)
def day_ahead_prices(price_file: str | None) -> PriceSeries:
    return load_day_ahead_prices(price_file)


# ---- the episode window -----------------------------------------------------------------------------------
def split_hours(n_hours: int, split: str) -> tuple[int, int]:
    """(first hour, number of hours) of ``split`` in data of ``n_hours`` hours."""
    held_out = 24 * HELD_OUT_DAYS
    if split == "all":
        return 0, n_hours
    months = 2 if split in ("fit", "validation") else 1  # the held-out months this split needs besides itself
    if n_hours <= months * held_out:
        raise ValueError(
            f"split={split!r} needs more than {months * HELD_OUT_DAYS} days of data (the last {HELD_OUT_DAYS} are "
            f"held out for testing{'' if months == 1 else f', the {HELD_OUT_DAYS} before them for validation'}), "
            f"the data has {n_hours} hours; use split='all'"
        )
    if split == "test":
        return n_hours - held_out, held_out
    if split == "validation":
        return n_hours - 2 * held_out, held_out
    return 0, n_hours - months * held_out  # train, or fit


def check_window(config, n_hours: int, source: str) -> None:
    """The config's episodes must fit in its split of the data (``source``, for the message): an error naming
    the fields, the data and its length otherwise."""
    _, length = split_hours(n_hours, config.split)
    what = f"the hours of {source}" + ("" if config.split == "all" else f" in its {config.split!r} split")
    if config.random_start:
        if config.episode_hours > length:
            raise ValueError(f"episode_hours must be <= {length} ({what}), got {config.episode_hours}")
    elif config.start_hour + config.episode_hours > length:
        raise ValueError(
            f"start_hour + episode_hours must be <= {length} ({what}), got {config.start_hour} + {config.episode_hours}"
        )


def episode_start(config, n_hours: int, rng: np.random.Generator) -> int:
    """First data hour of the next episode (``rng`` is drawn from only with ``random_start``); every
    environment keeps it as ``first_hour`` and its data length as ``n_hours``."""
    first, length = split_hours(n_hours, config.split)
    if config.random_start:  # whole days, so every episode starts at midnight as the data does
        return first + int(rng.integers(0, (length - config.episode_hours) // 24 + 1)) * 24
    return first + config.start_hour


def clock_hours(data: BuildingData, window: slice) -> np.ndarray:
    return (data.hour[window] - 1) % 24  # CityLearn's hour h covers (h-1, h]


# ---- prices -------------------------------------------------------------------------------------------------
def import_price(config, day_ahead: np.ndarray, tariff: np.ndarray) -> np.ndarray:
    """The import price of a window under ``config.price_signal`` (a new array)."""
    return day_ahead + config.network_charge if config.price_signal == "day_ahead" else tariff.copy()


def export_price(config, price: np.ndarray) -> np.ndarray:
    return np.minimum(config.feed_in_tariff, price)


# ---- actions ------------------------------------------------------------------------------------------------
def _listing(names: Sequence[str]) -> str:
    names = list(names)
    return ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:3])}, ..., {names[-1]}"


def check_action(action, low, high, names: Sequence[str]) -> tuple[np.ndarray, int]:
    """(the action clipped to ``[low, high]`` as float64, how many values were clipped); one value per name."""
    values = np.asarray(action, dtype=np.float64).reshape(-1)
    if values.shape != (len(names),):
        raise ValueError(f"action must have {len(names)} values ({_listing(names)}), got shape {np.shape(action)}")
    if np.isnan(values).any():
        bad = [name for name, value in zip(names, values) if np.isnan(value)]
        raise ValueError(f"action contains NaN for {_listing(bad)}")
    clipped = np.clip(values, low, high)
    return clipped, int(np.count_nonzero(clipped != values))


def require_running(t: int, n_steps: int, episode) -> None:
    if episode is None or t >= n_steps:
        raise RuntimeError("call reset() before step() (the episode has ended)")
