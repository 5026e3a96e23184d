"""RBM runs: exact resume, the run folder's rules, the CLI (train, resume, plot samples) and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evosparse.cli import main
from evosparse.rbm import RBMConfig, load_run, train_rbm
from evosparse.rbm.run import load_data
from tests.conftest import require_file

pytestmark = pytest.mark.usefixtures("one_thread")

# digits: bundled with scikit-learn, pixels scaled into [0, 1]; a run of a fraction of a second.
SMALL = {"dataset": "digits", "hidden": 16, "epsilon": 2.0, "batch_size": 50, "epochs": 4, "seed": 5}
TIMINGS = ("train_seconds", "eval_seconds", "topology_seconds")


def without_timings(rows):
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


@pytest.mark.parametrize("topology", ["set", "xbm"])
def test_resume_is_exact(tmp_path, topology):
    settings = {**SMALL, "topology": topology, "persistent": True, "momentum": 0.5, "cd_steps": 2}
    whole = train_rbm(RBMConfig(**settings, out_dir=str(tmp_path / "whole")), log=None)
    first = train_rbm(RBMConfig(**settings, out_dir=str(tmp_path / "split")), log=None,
                      on_epoch_end=lambda epoch, row: epoch < 2)  # fmt: skip
    assert len(first.history) == 2 and not first.summary["finished"]
    rest = train_rbm(RBMConfig(out_dir=str(tmp_path / "split")), resume=True, log=None)
    assert rest.summary["finished"] and rest.summary["epochs"] == 4
    np.testing.assert_array_equal(rest.rbm.pattern.keys(), whole.rbm.pattern.keys())
    np.testing.assert_array_equal(rest.rbm.weights, whole.rbm.weights)
    np.testing.assert_array_equal(rest.rbm.hidden_bias, whole.rbm.hidden_bias)
    assert without_timings(rest.history) == without_timings(whole.history)
    if topology == "set":  # the last epoch only removes
        assert [row["nnz"] for row in whole.history][:3] == [whole.history[0]["nnz"]] * 3
        assert whole.history[-1]["nnz"] < whole.history[0]["nnz"]


def test_run_folder_rules(tmp_path):
    config = RBMConfig(**{**SMALL, "epochs": 1}, topology="fixprob", out_dir=str(tmp_path / "run"))
    train_rbm(config, log=None)
    with pytest.raises(ValueError, match="already holds a run"):
        train_rbm(config, log=None)
    with pytest.raises(ValueError, match="already finished its 1 epochs"):
        train_rbm(config, resume=True, log=None)
    with pytest.raises(ValueError, match=r"you asked for lr=0.5 \(saved: 0.1\)"):
        train_rbm(config, resume=True, changes={"lr": 0.5}, log=None)
    again = train_rbm(config, overwrite=True, log=None)
    assert again.summary["finished"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="nothing to resume"):
        train_rbm(RBMConfig(out_dir=str(tmp_path / "empty")), resume=True, log=None)


def test_bernoulli_refuses_standardised_data():
    require_file("scikit_feature/colon.mat")
    from tests.conftest import shared_data_path

    config = RBMConfig(dataset="colon", data_dir=str(shared_data_path()), download=False)
    with pytest.raises(ValueError, match=r"visible='bernoulli' needs data in \[0, 1\].*use --visible gaussian"):
        load_data(config)
    assert load_data(config.replace(visible="gaussian")).x_train.shape[1] == 2000


def test_binarised_subset_of_the_training_set():
    config = RBMConfig(dataset="digits", binarize=True, train_samples=300, data_seed=3)
    data, full = load_data(config), load_data(RBMConfig(dataset="digits", data_seed=3))
    assert data.x_train.shape == (300, 64) and data.x_test.shape == full.x_test.shape
    assert set(np.unique(data.x_train)) | set(np.unique(data.x_test)) == {0.0, 1.0}
    np.testing.assert_array_equal(data.x_test, (full.x_test > 0.5).astype(np.float32))
    # The subset: distinct training samples, thresholded; the same seed draws the same subset, another seed not.
    rows = {row.tobytes() for row in (full.x_train > 0.5).astype(np.float32)}
    assert all(row.tobytes() in rows for row in data.x_train)
    np.testing.assert_array_equal(load_data(config).x_train, data.x_train)
    assert not np.array_equal(load_data(config.replace(data_seed=4)).x_train, data.x_train)
    with pytest.raises(ValueError, match=r"train_samples must be at most the \d+ training samples of digits, got 9999"):
        load_data(RBMConfig(dataset="digits", train_samples=9999))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"binarize": True, "visible": "gaussian"}, "binarize=true makes binary data for visible='bernoulli'"),
        ({"train_samples": -1}, "train_samples must be an integer >= 0, got -1"),
        ({"topology": "ring"}, "topology must be one of dense, fixprob, set, xbm; got 'ring'"),
        ({"zeta": 1.0}, r"zeta must be in \[0, 1\), got 1.0"),
        ({"hidden": 0}, "hidden must be an integer >= 1, got 0"),
        ({"visible": "poisson"}, "visible must be one of bernoulli, gaussian; got 'poisson'"),
        ({"ais_runs": 1}, "ais_runs must be 0"),
        ({"dataset": "nope"}, "dataset must be one of"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\), got 1.0"),
        ({"lrr": 0.1}, "unknown key"),
    ],
)
def test_bad_config(settings, message):
    with pytest.raises(ValueError, match=message):
        RBMConfig.from_dict(settings)


def test_config_round_trips():
    config = RBMConfig(topology="xbm", hidden=500, persistent=True)
    assert RBMConfig.from_toml(config.to_toml()) == config
    assert RBMConfig.from_json(config.to_json()) == config


def test_cli_train_resume_and_plot(tmp_path, capsys):
    out = tmp_path / "cli"
    flags = ["--dataset", "digits", "--hidden", "12", "--epsilon", "2", "--batch-size", "50", "--seed", "1",
             "--topology", "set", "--quiet", "--out-dir", str(out)]  # fmt: skip
    assert main(["rbm", "train", *flags, "--epochs", "2"]) == 0
    assert "set RBM after 2 epochs" in capsys.readouterr().out
    assert main(["rbm", "train", "--out-dir", str(out), "--resume"]) == 2
    assert "already finished its 2 epochs" in capsys.readouterr().err
    assert main(["rbm", "train", *flags, "--epochs", "2", "--zeta", "1.5"]) == 2
    assert "zeta must be in [0, 1), got 1.5" in capsys.readouterr().err
    assert main(["plot", "samples", str(out), "--steps", "3", "--n", "4"]) == 0
    assert (out / "samples.png").stat().st_size > 0 and (out / "filters.png").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    config, rbm, state = load_run(out)
    assert summary["nnz"] == rbm.nnz and config.hidden == 12 and state["epoch"] == 2
    assert main(["rbm", "train", "--print-config", "--topology", "xbm"]) == 0
    assert 'topology = "xbm"' in capsys.readouterr().out


def test_coil20_reference_shapes():
    require_file("coil20/COIL20.mat")
    from tests.conftest import shared_data_path

    data = load_data(RBMConfig(data_dir=str(shared_data_path()), download=False))
    assert data.x_train.shape == (960, 1024) and data.x_test.shape == (480, 1024)
    assert data.feature_shape == (32, 32) and 0 <= data.x_train.min() and data.x_train.max() <= 1


def test_cli_bad_input(tmp_path, capsys):
    assert main(["plot", "samples", str(tmp_path)]) == 2
    assert "checkpoint.npz" in capsys.readouterr().err
    assert main(["rbm", "train", "--resume"]) == 2
    assert "--resume needs --out-dir" in capsys.readouterr().err
    assert main(["rbm", "train", "--dataset", "digits", "--hidden", "4", "--epochs", "1", "--quiet",
                 "--out-dir", str(tmp_path / "x"), "--resume", "--overwrite"]) == 2  # fmt: skip
    assert "give one of them" in capsys.readouterr().err
