"""Bad data files and bad ``grid run`` inputs: one clear error naming the file / field, never a traceback.

One test per documented error of :func:`evosparse.envs.data.read_table` and the loaders built on it, then
the same files through ``evosparse grid run`` (exit 2, one ``error:`` line), then checks that run before
the first episode.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from evosparse.cli.main import main
from evosparse.envs.building import BuildingEnergyEnv
from evosparse.envs.data import load_citylearn_building, load_day_ahead_prices, load_ev_statistics, read_table

PRICE_HEADER = "Datetime (UTC),Price (EUR/MWhe)\n"


def write_citylearn(folder, n_hours: int = 48, *, load=None, building: int = 9):
    """A CityLearn-layout folder of ``n_hours`` rows (``load`` overrides the load column's cells)."""
    folder.mkdir(exist_ok=True)
    loads = load if load is not None else [f"{0.5 + (h % 5) / 10}" for h in range(n_hours)]
    rows = ["month,hour,day_type,non_shiftable_load,solar_generation"] + [
        f"1,{h % 24 + 1},{h // 24 % 7 + 1},{loads[h]},{max(0, 300 - 30 * abs(h % 24 - 12))}" for h in range(n_hours)
    ]
    (folder / f"Building_{building}.csv").write_text("\n".join(rows) + "\n")
    (folder / "pricing.csv").write_text("electricity_pricing\n" + "0.3\n" * n_hours)
    (folder / "carbon_intensity.csv").write_text("carbon_intensity\n" + "0.2\n" * n_hours)
    (folder / "weather.csv").write_text(
        "outdoor_dry_bulb_temperature,direct_solar_irradiance,diffuse_solar_irradiance\n" + "20,100,50\n" * n_hours
    )
    return folder


def write_prices(path, prices, start_hour: int = 0):
    """A Dutch-layout price file (EUR/MWh cells as given) from 2023-08-01 00:00 + ``start_hour``."""
    times = np.datetime64("2023-08-01T00") + np.arange(start_hour, start_hour + len(prices)).astype("timedelta64[h]")
    lines = [f"{str(t).replace('T', ' ')}:00:00,{p}" for t, p in zip(times, prices)]
    path.write_text(PRICE_HEADER + "\n".join(lines) + "\n")
    return path


# ---- the loader --------------------------------------------------------------------------------------------
def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: the file is empty"):
        read_table(tmp_path / "empty.csv", ("a",))


def test_header_only_has_no_rows(tmp_path):
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"header\.csv: 0 data row\(s\), at least 1 needed"):
        read_table(tmp_path / "header.csv", ("a",))


def test_short_row_names_the_line_and_column(tmp_path):
    (tmp_path / "short.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(ValueError, match=r"short\.csv, line 3: 1 field\(s\), but column 'b' is field 2"):
        read_table(tmp_path / "short.csv", ("a", "b"))


def test_non_utf8_file(tmp_path):
    (tmp_path / "latin.csv").write_bytes("a\n\xe9t\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.csv: not UTF-8 text"):
        read_table(tmp_path / "latin.csv", ("a",))


def test_corrupt_gzip(tmp_path):
    (tmp_path / "broken.csv.gz").write_bytes(gzip.compress(b"a\n1\n2\n" * 100)[:20])
    with pytest.raises(ValueError, match=r"broken\.csv\.gz: not a readable CSV file"):
        read_table(tmp_path / "broken.csv", ("a",))
    (tmp_path / "fake.csv.gz").write_bytes(b"a\n1\n")
    with pytest.raises(ValueError, match=r"fake\.csv\.gz: not a readable CSV file"):
        read_table(tmp_path / "fake.csv.gz", ("a",))


@pytest.mark.parametrize(
    "cell, message",
    [
        ("abc", r"'abc' is not a number"),
        ("nan", r"nan is not a finite number"),
        ("inf", r"inf is not a finite number"),
        ("1e300", r"1e300 is outside \[-1e\+06, 1e\+06\]"),
    ],
)
def test_bad_numbers_name_file_line_and_column(tmp_path, cell, message):
    folder = write_citylearn(tmp_path / "data", load=["1.0"] * 5 + [cell] + ["1.0"] * 42)
    with pytest.raises(ValueError, match=r"Building_9\.csv, line 7, column 'non_shiftable_load': " + message):
        load_citylearn_building(9, folder)


def test_out_of_range_hour(tmp_path):
    folder = write_citylearn(tmp_path / "data")
    text = (folder / "Building_9.csv").read_text().replace("\n1,3,", "\n1,25,", 1)
    (folder / "Building_9.csv").write_text(text)
    with pytest.raises(ValueError, match=r"line 4, column 'hour': 25 is outside \[1, 24\]"):
        load_citylearn_building(9, folder)


def test_weather_shorter_than_the_building(tmp_path):
    folder = write_citylearn(tmp_path / "data")
    (folder / "weather.csv").write_text(
        "outdoor_dry_bulb_temperature,direct_solar_irradiance,diffuse_solar_irradiance\n" + "20,100,50\n" * 47
    )
    with pytest.raises(ValueError, match=r"weather\.csv: 47 data row\(s\), at least 48 needed"):
        load_citylearn_building(9, folder)


@pytest.mark.parametrize(
    "cell, message",
    [("abc", r"'abc' is not a number"), ("inf", "not a finite number"), ("1e300", r"\(x 0.001\) is outside")],
)
def test_bad_prices(tmp_path, cell, message):
    path = write_prices(tmp_path / "prices.csv", ["80"] * 3 + [cell] + ["80"] * 3)
    with pytest.raises(ValueError, match=r"prices\.csv, line 5, column 'Price \(EUR/MWhe\)': .*" + message):
        load_day_ahead_prices(path)


def test_bad_price_date(tmp_path):
    (tmp_path / "prices.csv").write_text(PRICE_HEADER + "2023-08-01 00:00:00,80\nyesterday,80\n")
    with pytest.raises(ValueError, match=r"prices\.csv, line 3, column 'Datetime \(UTC\)': unrecognised date"):
        load_day_ahead_prices(tmp_path / "prices.csv")


def test_empty_price_file(tmp_path):
    (tmp_path / "prices.csv").write_text("")
    with pytest.raises(ValueError, match=r"prices\.csv: the file is empty"):
        load_day_ahead_prices(tmp_path / "prices.csv")
    (tmp_path / "prices.csv").write_text(PRICE_HEADER)
    with pytest.raises(ValueError, match=r"prices\.csv: no prices found"):
        load_day_ahead_prices(tmp_path / "prices.csv")


def test_ev_weights_must_have_a_positive_one(tmp_path):
    for name in ("arrival", "arrival-weekend", "connection-time", "energy-demand"):
        (tmp_path / f"distribution-of-{name}.csv").write_text("private,public\n0,0\n0,0\n")
    with pytest.raises(ValueError, match=r"distribution-of-arrival\.csv: column 'private' has no positive weight"):
        load_ev_statistics(tmp_path)


def test_in_memory_data_must_be_finite(tmp_path):
    data = load_citylearn_building(9, write_citylearn(tmp_path / "data"))
    prices = np.full(data.n_hours, 0.1)
    prices[3] = np.nan
    with pytest.raises(ValueError, match="day_ahead holds non-finite values"):
        BuildingEnergyEnv(data=data, day_ahead=prices, episode_hours=24)


def test_episode_longer_than_the_data_names_the_file(tmp_path):
    folder = write_citylearn(tmp_path / "data", n_hours=20)
    data = load_citylearn_building(9, folder)
    with pytest.raises(ValueError, match=r"start_hour \+ episode_hours must be <= 20 \(the hours of .*Building_9\.csv"):
        BuildingEnergyEnv(data=data, day_ahead=np.full(20, 0.1), episode_hours=24)


# ---- through the command line ------------------------------------------------------------------------------
def run_cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main(["grid", "run", *argv])
    except SystemExit as exit_:  # argparse's own errors (a flag's type)
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize(
    "rows, fragments",
    [
        (0, ("Building_9.csv", "0 data row(s)")),
        (20, ("start_hour + episode_hours must be <= 20", "Building_9.csv")),
    ],
)
def test_grid_run_on_an_empty_or_short_citylearn_folder(tmp_path, capsys, rows, fragments):
    folder = write_citylearn(tmp_path / "data", n_hours=rows)
    prices = write_prices(tmp_path / "prices.csv", ["80"] * 48)
    code, _, err = run_cli(
        capsys, "building", "--data-dir", str(folder), "--building", "9", "--price-file", str(prices),
        "--start-day", "0", "--days", "1",
    )  # fmt: skip
    assert_one_line_error(code, err, *fragments)


def test_grid_run_with_nan_building_data_and_the_optimum(tmp_path, capsys):
    folder = write_citylearn(tmp_path / "data", load=["nan"] + ["1"] * 47)
    prices = write_prices(tmp_path / "prices.csv", ["80"] * 48)
    code, _, err = run_cli(
        capsys, "building", "--data-dir", str(folder), "--building", "9", "--price-file", str(prices),
        "--start-day", "0", "--days", "1", "--controller", "optimal",
    )  # fmt: skip
    assert_one_line_error(code, err, "Building_9.csv, line 2, column 'non_shiftable_load': nan")


@pytest.mark.parametrize("cell", ["inf", "1e300", "expensive", "-inf"])
def test_grid_run_with_bad_prices(tmp_path, capsys, cell):
    prices = write_prices(tmp_path / "prices.csv", ["80"] * 30 + [cell] + ["80"] * 30)
    code, _, err = run_cli(capsys, "market", "--price-file", str(prices), "--days", "1", "--start-day", "0")
    assert_one_line_error(code, err, "prices.csv, line 32")


def test_grid_run_with_an_empty_or_short_price_file(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    code, _, err = run_cli(capsys, "building", "--price-file", str(tmp_path / "empty.csv"), "--days", "1")
    assert_one_line_error(code, err, "empty.csv: the file is empty")
    short = write_prices(tmp_path / "short.csv", ["80"] * 30)
    code, _, err = run_cli(capsys, "building", "--price-file", str(short), "--days", "1")
    assert_one_line_error(code, err, "price window", "short.csv")
    code, _, err = run_cli(capsys, "market", "--price-file", str(short), "--days", "2", "--start-day", "0")
    assert_one_line_error(code, err, "start_hour + episode_hours must be <= 30", "short.csv")


def test_grid_run_with_a_non_utf8_file(tmp_path, capsys):
    (tmp_path / "prices.csv").write_bytes(PRICE_HEADER.encode() + "2023-08-01 00:00:00,80 \u20ac\n".encode("cp1252"))
    code, _, err = run_cli(capsys, "market", "--price-file", str(tmp_path / "prices.csv"), "--days", "1")
    assert_one_line_error(code, err, "prices.csv: not UTF-8 text")


def test_grid_run_with_a_missing_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, "market", "--price-file", str(tmp_path / "nowhere.csv"), "--days", "1")
    assert_one_line_error(code, err, "nowhere.csv")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--plot", "week.txt"], "--plot must name a .png file"),
        (["--plot", "no/such/folder/week.png"], "--plot: the folder"),
        (["--plot-week", "5", "--days", "7"], "--plot-week must be in [0, 0]"),
        (["--plot-week", "-1"], "--plot-week must be >= 0"),
    ],
)
def test_plot_flags_are_checked_before_any_episode(tmp_path, capsys, monkeypatch, argv, fragment):
    import evosparse.envs.controllers as controllers

    def no_episode(*args, **kwargs):
        raise AssertionError("an episode ran before the plot flags were checked")

    monkeypatch.setattr(controllers, "compare_controllers", no_episode)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "building", *argv)
    assert_one_line_error(code, err, fragment)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--set", "battery_kwh=-1"], "battery_kwh must be"),
        (["--set", "charge_efficiency=1.5"], "charge_efficiency must be"),
        (["--set", "comfort_band=nan"], "comfort_band must be"),
        (["--set", "battery_kwg=3"], "did you mean 'battery_kw'"),
        (["--set", "battery_kwh"], "--set takes FIELD=VALUE"),
        (["--seed", "-1"], "argument --seed: a seed must be an integer >= 0, got '-1'"),
        (["--n-buildings", "5"], "--n-buildings does not apply to the building environment"),
        (["--controller", "rule:x"], "controller 'rule' takes no argument"),
        (["--controller", "smart:x"], "--controller must be one or more of"),
    ],
)
def test_grid_inputs_are_checked(capsys, argv, fragment):
    code, _, err = run_cli(capsys, "building", "--days", "1", *argv)
    assert_one_line_error(code, err, fragment)


def test_unknown_environment(capsys):
    code, _, err = run_cli(capsys, "powerplant")
    assert_one_line_error(code, err, "ENV must be one of building, microgrid, market, community")
