"""``evosparse train --data FILE``: your own data through the same run machinery as a registered data set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evosparse.io.digest import file_sha256


def own_npz(path, *, n=600, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    np.savez(path, x=rng.normal(size=(n, features)) + 3 * y[:, None], y=y)
    return path


def test_train_on_a_npz_file_records_path_and_sha256(cli, small_run, tmp_path):
    data = own_npz(tmp_path / "mine.npz")
    out = tmp_path / "run"
    result = cli("train", "--data", data, *small_run, "--out-dir", out)
    assert result.code == 0, result.err
    manifest = json.loads((out / "run.json").read_text())["data"]  # the checksummed envelope's content
    assert manifest["data_file"] == str(data.resolve())
    assert manifest["data"]["file_sha256"] == file_sha256(data)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["final_test_accuracy"] > 0.5  # 3 well separated classes
    config = (out / "config.toml").read_text()
    assert f'file = "{data}"' in config


def test_train_on_a_csv_with_a_named_label_column(cli, small_run, tmp_path):
    rng = np.random.default_rng(1)
    lines = ["kind,a,b"] + [f"{'xy'[i % 2]},{rng.normal() + i % 2},{rng.normal()}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    result = cli(
        "train", "--data", tmp_path / "t.csv", "--label-column", "kind", *small_run, "--out-dir", tmp_path / "r"
    )
    assert result.code == 0, result.err


def test_default_out_dir_is_named_after_the_file(cli, small_run, tmp_path, monkeypatch):
    data = own_npz(tmp_path / "cells.npz")
    monkeypatch.chdir(tmp_path)
    assert cli("train", "--data", data, *small_run).code == 0
    assert (tmp_path / "runs" / "cells-sparse-s3" / "summary.json").exists()


def interrupted_run(cli, small_run, data, out, monkeypatch):
    """A --data run stopped by Ctrl-C in epoch 2 (its checkpoint holds epoch 1)."""
    from evosparse.train.loop import Trainer

    original = Trainer._train_epoch

    def interrupted_in_epoch_two(self):
        if self.epoch == 2:
            raise KeyboardInterrupt
        return original(self)

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_train_epoch", interrupted_in_epoch_two)
        assert cli("train", "--data", data, *small_run, "--out-dir", out).code == 130


def test_resume_checks_the_file_is_unchanged(cli, small_run, tmp_path, monkeypatch):
    data = own_npz(tmp_path / "mine.npz")
    out = tmp_path / "run"
    interrupted_run(cli, small_run, data, out, monkeypatch)
    own_npz(data, seed=5)  # same shape, other numbers
    result = cli("train", "--resume", "--out-dir", out)
    assert result.code == 2
    assert "the data file" in result.err and "changed since the run" in result.err and "SHA-256" in result.err
    data.unlink()
    result = cli("train", "--resume", "--out-dir", out)
    assert result.code == 2 and "which is gone; give its new place with --data FILE" in result.err


def test_resume_with_the_file_moved(cli, small_run, tmp_path, monkeypatch):
    """The checksum, not the path, identifies the data: a moved file with the same bytes resumes."""
    data = own_npz(tmp_path / "mine.npz")
    out = tmp_path / "run"
    interrupted_run(cli, small_run, data, out, monkeypatch)
    moved = tmp_path / "elsewhere.npz"
    data.rename(moved)
    result = cli("train", "--resume", "--out-dir", out, "--data", moved, "--quiet")
    assert result.code == 0, result.err
    assert json.loads((out / "summary.json").read_text())["epochs"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--data", "x.xlsx"), "data file must end in one of .npz, .csv"),
        (("--data", "missing.npz"), "data file missing.npz does not exist"),
        (("--label-column", "y"), "label_column ('y') applies to a --data table"),
        (("--data", "d.npz", "--dataset", "digits"), "--data FILE trains on your own file and --dataset NAME"),
    ],
)
def test_bad_data_flags_are_one_line_errors(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    own_npz(tmp_path / "d.npz")
    result = cli("train", *args, "--epochs", "1", "--quiet")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # a bad data file writes nothing


def test_nan_in_the_file_is_an_error_before_any_folder(cli, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    x[11, 3] = np.nan
    np.savez(tmp_path / "bad.npz", x=x, y=np.arange(30) % 2)
    result = cli("train", "--data", tmp_path / "bad.npz", "--epochs", "1", "--out-dir", tmp_path / "run")
    assert result.code == 2 and "bad.npz (features): row 12, column 4 is nan" in result.err
    assert not (tmp_path / "run").exists()


def test_compare_trains_on_the_data_file(cli, tmp_path):
    """compare reads --data too (not the default registered data set)."""
    import csv

    data = own_npz(tmp_path / "mine.npz", features=5)
    out = tmp_path / "cmp"
    result = cli("compare", "--data", data, "--strategies", "set", "--densities", "0.3", "--seeds", "0",
                 "--hidden", "16", "--epochs", "1", "--batch-size", "64", "--out-dir", out)  # fmt: skip
    assert result.code == 0, result.err
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {row["strategy"] for row in rows} == {"dense", "set"}
    run = next(p for p in out.rglob("config.toml"))
    assert f'file = "{data}"' in run.read_text()
    model = next(p for p in out.rglob("checkpoint.pt"))
    from evosparse.train import load_checkpoint

    weights = load_checkpoint(model)["trainer"]["model"]
    assert any(tensor.shape[-1] == 5 for tensor in weights.values())  # 5 input features: the file's, not digits' 64
