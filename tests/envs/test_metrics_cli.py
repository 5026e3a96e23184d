"""KPIs against hand-worked numbers, the gap-closed share, the ``grid run`` command and its plot."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from evosparse.cli import grid
from evosparse.envs.metrics import episode_metrics, format_table, gap_closed


def test_metrics_on_a_hand_worked_day():
    # two days of 24 hours: import 1 kWh every hour except 3 kWh at hour 5 of day 2; 2 kWh exported at noon
    grid_import = np.ones(48)
    grid_import[29] = 3.0
    grid_export = np.zeros(48)
    grid_export[12] = 2.0
    grid_import[12] = 0.0
    log = {
        "grid_import": grid_import,
        "grid_export": grid_export,
        "reward": -np.full(48, 0.5),
        "cost": np.full(48, 0.4),
        "pv": np.full(48, 0.25),
        "carbon": np.full(48, 0.1),
        "comfort_violation": np.zeros(48),
        "unmet": np.zeros(48),
    }
    metrics = episode_metrics(log)
    assert metrics["total_cost"] == pytest.approx(24.0)
    assert metrics["energy_cost"] == pytest.approx(19.2)
    assert metrics["peak"] == 3.0
    assert metrics["daily_peak"] == pytest.approx((1.0 + 3.0) / 2)
    # net: 1, ..., 1, -2 (hour 12), 1, ..., 3 (hour 29), 1 ...: ramps |(-2)-1| twice, |3-1| twice
    assert metrics["ramping"] == pytest.approx(3 + 3 + 2 + 2)
    assert metrics["load_factor"] == pytest.approx(grid_import.mean() / 3.0)
    assert metrics["self_consumption"] == pytest.approx(1 - 2.0 / 12.0)
    assert metrics["carbon"] == pytest.approx(0.1 * grid_import.sum())


def test_gap_closed():
    assert gap_closed(80.0, no_control=100.0, optimum=60.0) == pytest.approx(0.5)
    assert gap_closed(110.0, no_control=100.0, optimum=60.0) == pytest.approx(-0.25)
    assert math.isnan(gap_closed(5.0, no_control=5.0, optimum=5.0))
    table = format_table({"none": {"total_cost": 1.0}, "rule": {"total_cost": 0.5, "gap_closed": math.nan}})
    assert "total_cost" in table and "rule" in table.splitlines()[-1]


def _parser():
    parser = argparse.ArgumentParser(prog="evosparse")
    grid.register(parser.add_subparsers(dest="command", required=True), argparse.ArgumentParser)
    return parser


def test_grid_run_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "week.png"
    args = _parser().parse_args(
        [
            "grid",
            "run",
            "building",
            "--days",
            "7",
            "--start-day",
            "100",
            "--controller",
            "none,rule,optimal",
            "--plot",
            str(plot),
        ]
    )
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("controller"))
    assert "gap_closed" in header
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in ("none", "rule", "optimal")}
    assert set(rows) == {"none", "rule", "optimal"}
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_grid_run_json_gap_closed_is_one_for_the_optimum(capsys):
    args = _parser().parse_args(["grid", "run", "market", "--days", "3", "--json"])
    assert args.handler(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["optimal"]["gap_closed"] == pytest.approx(1.0)
    assert result["metrics"]["none"]["gap_closed"] == pytest.approx(0.0)
    assert result["metrics"]["rule"]["total_cost"] >= result["metrics"]["optimal"]["total_cost"] - 1e-9


@pytest.mark.parametrize(
    "env, argv, message",
    [
        ("building", ["--controller", "smart"], "--controller must be one or more of none,rule,optimal,random"),
        ("building", ["--days", "400"], "--start-day + --days must fit"),
        ("community", ["--n-buildings", "0"], "--n-buildings must be >= 1"),
        ("market", ["--steps-per-hour", "2"], "--steps-per-hour must be 1 or 4"),
        ("building", ["--plot-week", "-1"], "--plot-week must be >= 0"),
        ("community", ["--n-buildings", "1000"], "--controller optimal solves one LP over --n-buildings"),
    ],
)
def test_grid_run_bad_input_names_the_argument(env, argv, message):
    args = _parser().parse_args(["grid", "run", env, *argv])
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        args.handler(args)


def test_plot_week_out_of_range(tmp_path):
    pytest.importorskip("matplotlib")
    from evosparse.envs.plot import plot_week

    log = {"reward": np.zeros(48), "price": np.zeros(48), "grid_import": np.zeros(48), "grid_export": np.zeros(48)}
    with pytest.raises(ValueError, match=r"week must be in \[0, 0\]"):
        plot_week(log, tmp_path / "x.png", week=1)
