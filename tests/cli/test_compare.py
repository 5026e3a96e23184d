"""`evosparse compare` and `evosparse plot degrees` end to end on the bundled digits data."""

from __future__ import annotations

import csv

import pytest

SMALL = ("--hidden", "24,24", "--epochs", "4", "--batch-size", "64", "--prune-start", "1", "--prune-end", "3",
         "--prune-cycles", "3", "--stop-after", "3", "--saliency-samples", "200", "--quiet")  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread):
    yield


def test_compare_writes_table_plots_and_reuses_finished_runs(cli, tmp_path, monkeypatch):
    out = tmp_path / "cmp"
    result = cli("compare", "--strategies", "set,gmp,snip", "--densities", "0.1", "--seeds", "0,1", "--out-dir", out,
                 *SMALL)  # fmt: skip
    assert result.code == 0, result.err
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted((r["strategy"], r["seed"]) for r in rows) == sorted(
        [(s, str(seed)) for s in ("dense", "set", "gmp", "snip") for seed in (0, 1)]
    )
    for row in rows:
        expected = 1.0 if row["strategy"] == "dense" else 0.1
        assert abs(float(row["density"]) - expected) < 2e-3, row
        assert 0.2 < float(row["final_test_accuracy"]) <= 1  # above chance (0.1) after 4 short epochs
    # Methods that start dense pay for it in training FLOPs; at equal density, inference costs the same.
    by = {(r["strategy"], r["seed"]): r for r in rows}
    assert float(by[("gmp", "0")]["train_flops"]) > float(by[("set", "0")]["train_flops"])
    assert by[("gmp", "0")]["inference_flops"] == by[("set", "0")]["inference_flops"]
    table = (out / "table.md").read_text()
    assert "| 0.1 | gmp | 2 |" in table and "| 1 | dense | 2 |" in table and table == result.out
    assert (out / "accuracy_vs_density.png").stat().st_size > 0 and (out / "accuracy_vs_flops.png").exists()

    # A second call finds every run finished and trains nothing.
    from evosparse.train import run as run_module

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(run_module, "train", no_training)
    again = cli("compare", "--strategies", "set,gmp,snip", "--densities", "0.1", "--seeds", "0,1", "--out-dir", out,
                *SMALL)  # fmt: skip
    assert again.code == 0, again.err and again.out == table


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--strategies", "lottery"), "strategies: 'lottery' is not one of"),
        (("--densities", "0,0.1"), "densities must be in (0, 1], got 0.0"),
        (("--densities", "a"), "expected comma-separated numbers"),
        (("--jobs", "0"), "jobs must be >= 1, got 0"),
        (("--retries", "2"), "--retries applies to runs on Ray; add --ray [ADDRESS], or drop --retries"),
    ],
)
def test_compare_bad_input(cli, tmp_path, argv, message):
    result = cli("compare", "--out-dir", tmp_path / "x", *argv)
    assert result.code == 2 and message in result.err and result.err.startswith("error:")


def test_compare_config_file_may_not_set_per_run_fields(cli, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('strategy = "set"\n')
    result = cli("compare", "--out-dir", tmp_path / "x", "--config", recipe)
    assert result.code == 2 and "strategy is set per run by compare" in result.err


def test_plot_degrees_of_a_run(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("train", "--hidden", "16", "--epochs", "3", "--out-dir", run, "--quiet").code == 0
    result = cli("plot", "degrees", run, "--image-shape", "8,8")
    assert result.code == 0, result.err
    for name in ("input_degrees.png", "degree_distribution.png", "connectivity_over_time.png"):
        assert (run / name).stat().st_size > 0, name
    missing = cli("plot", "degrees", tmp_path)
    assert missing.code == 2 and "connectivity.npz not found" in missing.err
