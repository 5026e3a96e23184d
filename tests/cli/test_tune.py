"""``evosparse tune`` end to end on a local Ray (ASHA stops weak trials; best.toml trains), and its bad input."""

from __future__ import annotations

import csv
import json
import sys

import pytest

TINY = ("--hidden", "24,24", "--epsilon", "5", "--batch-size", "64", "--decay", "constant", "--stop-after", "none")


def test_asha_stops_weak_trials_and_the_best_recipe_trains(cli, tmp_path, ray_cluster):
    recipe = tmp_path / "recipe.toml"
    # Two learning rates, each twice: 1e-5 learns nothing in 3 epochs, so ASHA (keep the best half at
    # epochs 1 and 2) must stop the trials of 1e-5 that reach a rung after a trial of 0.05 did.
    recipe.write_text(
        '[run]\nepochs = 3\n[tune]\nsamples = 2\nreduction_factor = 2\n[tune.search]\nlr = "grid(0.05, 0.00001)"\n'
    )
    out = tmp_path / "search"
    result = cli("tune", recipe, "--out-dir", out, "--search", "momentum=choice(0.9)", *TINY)
    assert result.code == 0, result.err
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 4 and sorted(r["lr"] for r in rows) == ["0.05", "0.05", "1e-05", "1e-05"]
    stopped = [r for r in rows if r["stopped_early"] == "True"]
    assert stopped and all(
        r["lr"] == "1e-05" and int(r["epochs"]) < 3 and r["status"] == "stopped early" for r in stopped
    )
    for row in rows:
        history = json.loads((out / "trials" / row["trial"] / "history.json").read_text())
        assert len(history) == int(row["epochs"]) and max(h["test_accuracy"] for h in history) == float(
            row["best_test_accuracy"]
        )
    summary = json.loads((out / "tune.json").read_text())
    assert summary["trials"] == 4 and summary["stopped_early"] == len(stopped)
    assert summary["best"]["values"] == {"lr": 0.05, "momentum": 0.9}
    assert f"{len(stopped)} stopped early by asha" in result.out

    best = (out / "best.toml").read_text()
    assert "lr = 0.05" in best and "epochs = 3" in best
    trained = cli("train", "--config", out / "best.toml", "--out-dir", tmp_path / "best", "--epochs", "1", "--quiet")
    assert trained.code == 0, trained.err
    assert json.loads((tmp_path / "best" / "summary.json").read_text())["epochs"] == 1

    again = cli("tune", recipe, "--out-dir", out)
    assert again.code == 2 and "already holds a run (a tune run" in again.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--search", "lr=normal(0,1)"), "error: --search 'lr=normal(0,1)': unknown form 'normal'; allowed forms:"),
        (("--search", "batch_size=uniform(8,64)"), "batch_size is an integer setting; use randint(a,b), choice"),
        ((), "nothing to search: give --search NAME=FORM(...)"),
        (("--search", "lr=log(1e-3,1e-1)", "--samples", "0"), "samples must be an integer >= 1, got 0"),
        (("--search", "lr=log(1e-3,1e-1)", "--grace-period", "5"), "grace_period must be in [1, epochs=3], got 5"),
        (("--search", "lr=log(1e-3,1e-1)", "--reduction-factor", "1"), "reduction_factor must be > 1, got 1.0"),
        (("--search", "lr=log(1e-3,1e-1)", "--scheduler", "pbt"), "argument --scheduler: invalid choice: 'pbt'"),
        (("--search", "lr=log(1e-3,1e-1)", "--jobs", "0"), "--jobs must be >= 1, got 0"),
        (("--search", "lr=log(1e-3,1e-1)", "--jobs", "2", "--ray", "auto"), "--jobs sizes the local Ray"),
        (("--search", "lr=log(1e-3,1e-1)", "--threads", "2"), "unrecognized arguments: --threads"),
    ],
)
def test_tune_bad_input(cli, tmp_path, argv, message):
    result = cli("tune", "--out-dir", tmp_path / "x", "--epochs", "3", *argv)
    assert result.code == 2 and message in result.err and result.err.startswith("error:"), result.err
    assert not (tmp_path / "x").exists()


def test_tune_without_ray_names_the_extra(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where Ray is not installed
    result = cli("tune", "--out-dir", tmp_path / "x", "--search", "lr=log(1e-3,1e-1)")
    assert (
        result.code == 2
        and result.err == "error: tune needs Ray, which is not installed: pip install 'evosparse[ray]'\n"
    )
