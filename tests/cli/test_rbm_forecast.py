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


def without_fit_times(results):
    return {name: {k: v for k, v in entry.items() if k != "fit_seconds"} for name, entry in results.items()}


def test_an_interrupted_forecast_resumes_exactly(cli, tmp_path, monkeypatch):
    import evosparse.rbm.forecast as forecast

    flags = ("--models", "ridge,crbm-set,mlp", "--horizon", "6", "--epochs", "1", "--n-hidden", "8", "--nn-epochs",
             "1", "--nn-hidden", "8", "--quiet")  # fmt: skip
    whole = cli("rbm", "forecast", *flags, "--out-dir", tmp_path / "whole")
    assert whole.code == 0, whole.err
    # A crash while the third forecaster fits (a kill would stop the process the same way: after results.json).
    build = forecast.build_forecaster

    def crash_at_mlp(name, config):
        if name == "mlp":
            raise KeyboardInterrupt
        return build(name, config)

    monkeypatch.setattr(forecast, "build_forecaster", crash_at_mlp)
    interrupted = cli("rbm", "forecast", *flags, "--out-dir", tmp_path / "split")
    assert interrupted.code == 130 and "evosparse rbm forecast --resume --out-dir" in interrupted.err
    partial = json.loads((tmp_path / "split" / "results.json").read_text())
    assert list(partial["forecasters"]) == ["ridge", "crbm-set"] and not partial["finished"]
    monkeypatch.setattr(forecast, "build_forecaster", build)
    refused = cli("rbm", "forecast", "--out-dir", tmp_path / "split", "--resume", "--epochs", "3", "--quiet")
    assert refused.code == 2 and "you asked for epochs=3 (saved: 1)" in refused.err
    resumed = cli("rbm", "forecast", "--out-dir", tmp_path / "split", "--resume", "--quiet")
    assert resumed.code == 0, resumed.err
    expected = json.loads((tmp_path / "whole" / "results.json").read_text())
    got = json.loads((tmp_path / "split" / "results.json").read_text())
    assert got["finished"] and list(got["forecasters"]) == ["ridge", "crbm-set", "mlp"]
    assert without_fit_times(got["forecasters"]) == without_fit_times(expected["forecasters"])
    assert partial["forecasters"]["crbm-set"]["fit_seconds"] == got["forecasters"]["crbm-set"]["fit_seconds"]
    again = cli("rbm", "forecast", "--out-dir", tmp_path / "split", "--resume", "--quiet")
    assert again.code == 2 and "already finished; nothing to resume" in again.err
    assert cli("rbm", "forecast", "--resume", "--quiet").code == 2


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
