"""Forecasting: windows by hand, baselines on synthetic series with known answers, the comparison end to end
on a bundled CityLearn building, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_file

from evosparse.rbm.forecast import (
    FORECASTERS,
    LSTM,
    MLP,
    EnergySeries,
    ForecastConfig,
    Persistence,
    Ridge,
    SeasonalNaive,
    horizon_errors,
    load_energy_series,
    make_windows,
    run_forecast,
    split_hours,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_windows_by_hand():
    series = EnergySeries.hourly("ramp", np.arange(10.0), first_hour=22, first_day=6)
    w = make_windows(series, n_past=3, horizon=2, start=1, stop=9)
    # hours 1..8: origins 3..6; the first window reads hours 1, 2, 3 and forecasts 4, 5
    np.testing.assert_array_equal(w.history, [[1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 6]])
    np.testing.assert_array_equal(w.target, [[4, 5], [5, 6], [6, 7], [7, 8]])
    # hour 4 of a series starting at 22:00 on day 6 is 02:00 on day (6 + 1) % 7 = 0
    assert w.context.shape == (4, 24 + 7)
    assert np.argmax(w.context[0, :24]) == 2 and np.argmax(w.context[0, 24:]) == 0
    assert np.all(w.context.sum(axis=1) == 2)


def test_baselines_with_known_answers():
    hours = np.arange(24 * 30)
    daily = EnergySeries.hourly("daily", 5.0 + np.sin(2 * np.pi * hours / 24) + (hours % 24 == 7))
    w = make_windows(daily, n_past=24, horizon=24)
    assert np.max(np.abs(SeasonalNaive(24).predict(w) - w.target)) < 1e-12  # a 24 h cycle repeats exactly
    constant = make_windows(EnergySeries.hourly("flat", np.full(100, 3.0)), n_past=4, horizon=5)
    assert np.all(Persistence().predict(constant) == constant.target)
    # a sinusoid obeys x[t] = 2 cos(w) x[t-1] - x[t-2] exactly: ridge (alpha picked on validation) finds it
    x = np.sin(2 * np.pi * np.arange(600) / 17 + 0.3)
    ar = EnergySeries.hourly("ar2", x)
    train, val = make_windows(ar, 4, 3, 0, 400), make_windows(ar, 4, 3, 400, 600)
    ridge = Ridge().fit(train, val)
    assert ridge.alpha_ == 1e-3
    assert np.max(np.abs(ridge.predict(val) - val.target)) < 1e-2


def test_horizon_errors_by_hand():
    errors = horizon_errors(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [3.0, 1.0]]))
    # column 0: errors 1, 0 -> RMSE sqrt(1/2), MAE 1/2; column 1: errors 0, 3 -> RMSE sqrt(9/2), MAE 3/2
    np.testing.assert_allclose(errors["rmse"], [np.sqrt(0.5), np.sqrt(4.5)])
    np.testing.assert_allclose(errors["mae"], [0.5, 1.5])


@pytest.mark.parametrize("network", [MLP, LSTM])
def test_torch_baselines_learn_and_are_seeded(network):
    hours = np.arange(24 * 20)
    series = EnergySeries.hourly("daily", np.sin(2 * np.pi * hours / 24))
    train, val = make_windows(series, 24, 6, 0, 360), make_windows(series, 24, 6, 360, 480)
    runs = [network(hidden=16, epochs=15, lr=1e-2, batch_size=32, seed=3).fit(train, val) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].predict(val), runs[1].predict(val))
    assert np.sqrt(np.mean((runs[0].predict(val) - val.target) ** 2)) < 0.25  # the signal's RMS is 0.71


def test_comparison_on_a_bundled_building():
    series = load_energy_series("citylearn:1")
    short = EnergySeries(series.name, series.load[:1500], series.hour[:1500], series.day[:1500], series.n_days)
    config = ForecastConfig(
        models=("persistence", "seasonal", "ridge", "crbm-set", "fcrbm"),
        horizon=6,
        nn_epochs=2,
        rbm={"epochs": 2, "n_hidden": 8, "n_factors": 4},
    )
    result = run_forecast(config, short)
    assert result["series"] == "citylearn:1"
    assert list(result["forecasters"]) == list(config.models)
    for name, entry in result["forecasters"].items():
        assert len(entry["rmse"]) == 6 and len(entry["mae"]) == 6, name
        assert all(np.isfinite(entry["rmse"])) and all(r >= m for r, m in zip(entry["rmse"], entry["mae"]))
    assert result["forecasters"]["persistence"]["n_parameters"] == 0
    assert 0 < result["forecasters"]["crbm-set"]["n_parameters"]
    # ridge on the past day and the calendar beats repeating the last hour at 6 hours ahead
    assert result["forecasters"]["ridge"]["rmse"][-1] < result["forecasters"]["persistence"]["rmse"][-1]


def test_pymgrid_series_loads():
    path = require_file("energy/pymgrid/load/RefBldgHospitalNew2004_7.1_5.0_3C_USA_CA_SAN_FRANCISCO.csv")
    series = load_energy_series("pymgrid:hospital", path.parent.parent)
    assert series.load.shape == (8760,) and series.load.min() > 0 and series.n_days == 7


def test_split_is_chronological():
    assert split_hours(1000, ForecastConfig(val_fraction=0.1, test_fraction=0.2)) == (700, 800)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="series must be citylearn:N or pymgrid:NAME, got 'building:1'"):
        load_energy_series("building:1")
    with pytest.raises(ValueError, match="series pymgrid:NAME needs NAME in restaurant"):
        load_energy_series("pymgrid:castle", "/tmp")
    with pytest.raises(ValueError, match="pymgrid series need data_dir"):
        load_energy_series("pymgrid:hotel")
    with pytest.raises(ValueError, match="building must be one of"):
        load_energy_series("citylearn:9")
    with pytest.raises(ValueError, match="hold no window of n_past=24 \\+ horizon=24 hours"):
        make_windows(EnergySeries.hourly("short", np.ones(40)), 24, 24)
    with pytest.raises(ValueError, match="horizon must be a positive integer, got 0"):
        make_windows(EnergySeries.hourly("short", np.ones(40)), 2, 0)
    with pytest.raises(ValueError, match="models must be a non-empty list of persistence"):
        ForecastConfig(models=("prophet",))
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction must be < 0.9"):
        ForecastConfig(val_fraction=0.5, test_fraction=0.45)
    with pytest.raises(ValueError, match="seasonal needs horizon <= season <= n_past"):
        ForecastConfig(n_past=12)
    with pytest.raises(ValueError, match="load holds non-finite values"):
        EnergySeries.hourly("bad", np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="prediction shape"):
        horizon_errors(np.zeros((2, 3)), np.zeros((2, 2)))
    assert "fcrbm-set" in FORECASTERS and "crbm-fixprob" in FORECASTERS
