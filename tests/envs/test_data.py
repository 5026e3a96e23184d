"""Energy data loaders: bundled subset, the full shared data (skipped when absent), user CSVs, errors."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from conftest import require_file

from evosparse.envs.data import load_citylearn_building, load_day_ahead_prices, load_ev_statistics

CITYLEARN = "energy/citylearn_challenge_2022_phase_all"


def test_bundled_building_is_one_year_of_real_hours():
    data = load_citylearn_building(1)
    assert data.n_hours == 8760
    assert data.load.min() >= 0 and data.load.mean() > 0.5
    assert 0 <= data.solar.min() and data.solar.max() <= 1.0  # kWh per kW of PV in one hour
    assert set(np.unique(data.hour)) == set(range(1, 25))
    assert set(np.unique(data.tariff)) <= {0.21, 0.22, 0.4, 0.5, 0.54}  # CityLearn 2022 time-of-use tariff


def test_bundled_prices_have_spikes_and_negative_hours():
    prices = load_day_ahead_prices()
    assert len(prices.price) == 366 * 24  # 2023-08-01 .. 2024-07-31 (a leap year), gap-free
    assert (prices.price < 0).sum() > 100 and prices.price.max() > 3 * np.median(prices.price)
    np.testing.assert_array_equal(np.diff(prices.times).astype(np.int64), 1)


def test_ev_statistics_sample_within_their_tables():
    statistics = load_ev_statistics()
    assert statistics.arrival_weekday.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    sessions = np.array([statistics.sample_session(rng, weekend=False) for _ in range(2000)])
    assert np.all((sessions[:, 0] >= 0) & (sessions[:, 0] < 24))
    assert sessions[:, 1].max() <= statistics.connection_hours.max()
    assert sessions[:, 2].min() >= statistics.energy_kwh.min()
    # home charging: most arrivals in the afternoon and evening (ElaadNL)
    assert np.mean((sessions[:, 0] >= 12) & (sessions[:, 0] < 22)) > 0.5
    with pytest.raises(ValueError, match="location must be one of"):
        load_ev_statistics(location="garage")


def test_bundled_subset_equals_the_published_files():
    path = require_file(f"{CITYLEARN}/Building_1.csv")
    full = load_citylearn_building(1, path.parent)
    bundled = load_citylearn_building(1)
    for name in ("load", "solar", "tariff", "carbon", "outdoor_temperature", "irradiance"):
        np.testing.assert_array_equal(getattr(full, name), getattr(bundled, name))


def test_full_data_loaders():
    path = require_file(f"{CITYLEARN}/Building_17.csv")
    assert load_citylearn_building(17, path.parent).n_hours == 8760
    dutch = load_day_ahead_prices(require_file("energy/ev2gym_nl/Netherlands_day-ahead-2015-2024.csv"))
    assert str(dutch.times[0]) == "2015-01-01T00" and dutch.times[-1] > np.datetime64("2024-12-31T00")
    belgian = load_day_ahead_prices(require_file("energy/entsoe_be_day_ahead/DAM_prices.csv"))
    assert belgian.price.min() < 0 and belgian.price.max() > 0.5  # the 2022 crisis and negative hours
    np.testing.assert_array_equal(dutch.window("2023-08-01", 8784), load_day_ahead_prices().price)


def test_user_csv_with_the_same_columns(tmp_path):
    rows = ["month,hour,day_type,non_shiftable_load,solar_generation"] + [
        f"1,{h % 24 + 1},1,{h / 10},{100 * h}" for h in range(48)
    ]
    (tmp_path / "Building_9.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "pricing.csv").write_text("electricity_pricing\n" + "0.3\n" * 48)
    with gzip.open(tmp_path / "carbon_intensity.csv.gz", "wt") as handle:  # gzipped files are read too
        handle.write("carbon_intensity\n" + "0.2\n" * 48)
    (tmp_path / "weather.csv").write_text(
        "outdoor_dry_bulb_temperature,direct_solar_irradiance,diffuse_solar_irradiance\n" + "20,100,50\n" * 48
    )
    data = load_citylearn_building(9, tmp_path)
    assert data.n_hours == 48 and data.load[10] == pytest.approx(1.0) and data.solar[3] == pytest.approx(0.3)
    np.testing.assert_allclose(data.irradiance, 150.0)
    (tmp_path / "prices.csv").write_text(
        "time,DAM_price\n01jan2022 00:00:00,.1\n01jan2022 02:00:00,-.05\n01jan2022 03:00:00,\n01jan2022 04:00:00,.2\n"
    )
    prices = load_day_ahead_prices(tmp_path / "prices.csv")
    np.testing.assert_allclose(prices.price, [0.1, 0.1, -0.05, -0.05, 0.2])  # gaps filled forward


def test_loader_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="Building_4.csv"):
        load_citylearn_building(4, tmp_path)
    (tmp_path / "Building_4.csv").write_text("month,hour\n1,1\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['day_type', 'non_shiftable_load'"):
        load_citylearn_building(4, tmp_path)
    (tmp_path / "odd.csv").write_text("when,cost\n")
    with pytest.raises(ValueError, match="expected columns"):
        load_day_ahead_prices(tmp_path / "odd.csv")
    with pytest.raises(ValueError, match="bundled subset"):
        load_citylearn_building(9)
