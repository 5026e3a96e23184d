"""``evosparse rbm forecast``: the table, the run folder's files, and bad input as one line with exit code 2."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = ("--models", "persistence,seasonal,ridge,fcrbm-set", "--horizon", "6", "--epochs", "1", "--n-hidden", "8",
        "--n-factors", "4", "--quiet")  # fmt: skip


def test_forecast_prints_the_table_and_writes_the_run_folder(cli, tmp_path):
    out = tmp_path / "run"
    outcome = cli("rbm", "forecast", *FAST, "--out-dir", out)
    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    assert lines[0].startswith("citylearn:1: test windows")
    assert lines[1].split()[:4] == ["forecaster", "RMSE", "h1", "RMSE"]
    assert [line.split()[0] for line in lines[2:]] == ["persistence", "seasonal", "ridge", "fcrbm-set"]
    results = json.loads((out / "results.json").read_text())
    assert len(results["forecasters"]["fcrbm-set"]["rmse"]) == 6
    assert "n_factors = 4" in (out / "config.toml").read_text()
    again = cli("rbm", "forecast", *FAST, "--out-dir", out)  # an earlier run is never replaced silently
    assert again.code == 2 and again.err.startswith("error: ") and again.err.count("\n") == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--models", "prophet"), "error: models must be a non-empty list of persistence"),
        (("--zeta", "1.5"), "error: zeta must be in [0, 1), got 1.5"),
        (("--series", "citylearn:x"), "error: series must be citylearn:N with N a building number"),
        (("--n-past", "12"), "error: seasonal needs horizon <= season <= n_past"),
        (("--threads", "0"), "error: --threads must be >= 1, got 0"),
    ],
)
def test_bad_input_is_one_line(cli, flags, message):
    outcome = cli("rbm", "forecast", "--quiet", *flags)
    assert outcome.code == 2
    assert outcome.err.startswith(message) and outcome.err.count("\n") == 1
