"""Bad input: one line ``error: ...`` on stderr saying what to do, exit code 2, no traceback, nothing overwritten."""

from __future__ import annotations

import pytest


def assert_clean_error(outcome, *fragments: str) -> None:
    assert outcome.code == 2
    assert "Traceback" not in outcome.err and outcome.out == ""
    lines = outcome.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


TRAIN_ERRORS = {
    "epsilon zero": (["--epsilon", "0"], ["epsilon must be a finite number > 0, got 0.0"]),
    "epsilon negative": (["--epsilon", "-20"], ["epsilon must be a finite number > 0, got -20.0"]),
    "zeta above": (["--zeta", "1.2"], ["zeta must be in [0, 1), got 1.2"]),
    "zeta one": (["--zeta", "1"], ["zeta must be in [0, 1), got 1.0"]),
    "zeta negative": (["--zeta", "-0.1"], ["zeta must be in [0, 1), got -0.1"]),
    "unknown dataset": (["--dataset", "imagenet"], ["unknown dataset 'imagenet'; choose one of", "mnist"]),
    "hidden zero": (["--hidden", "64,0"], ["hidden must be one or more positive integers", "[64, 0]"]),
    "hidden negative": (["--hidden", "-5"], ["hidden must be one or more positive integers"]),
    "hidden text": (["--hidden", "wide"], ["argument --hidden", "comma-separated integers such as 256,256", "--help"]),
    "hidden empty": (["--hidden", ""], ["hidden must be one or more positive integers"]),
    "epochs text": (["--epochs", "ten"], ["argument --epochs: invalid int value: 'ten'"]),
    "epochs zero": (["--epochs", "0"], ["epochs must be an integer >= 1, got 0"]),
    "lr negative": (["--lr", "-1"], ["lr must be a finite number > 0, got -1.0"]),
    "dropout one": (["--dropout", "1"], ["dropout must be in [0, 1), got 1.0"]),
    "model": (["--model", "cnn"], ["model must be one of sparse, dense; got 'cnn'"]),
    "cosine without end": (["--decay", "cosine", "--stop-after", "none"], ["decay='cosine' needs stop_after"]),
    "unknown flag": (["--learning-rate", "0.1"], ["unrecognized arguments: --learning-rate 0.1"]),
    "resume and overwrite": (["--resume", "--overwrite"], ["give one of them"]),
    "resume without folder": (["--resume"], ["--resume needs --out-dir"]),
}


@pytest.mark.parametrize(("flags", "fragments"), TRAIN_ERRORS.values(), ids=TRAIN_ERRORS.keys())
def test_train_bad_input(cli, tmp_path, monkeypatch, flags, fragments):
    monkeypatch.chdir(tmp_path)
    assert_clean_error(cli("train", *flags), *fragments)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_missing_data_files(cli, tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    outcome = cli("train", "--dataset", "mnist", "--data-dir", empty, "--no-download", "--out-dir", tmp_path / "run")
    assert_clean_error(outcome, "mnist/train-images-idx3-ubyte.gz not found", "--data-dir")
    assert not (tmp_path / "run").exists()


def test_unknown_config_key(cli, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("lr = 0.1\nzetta = 0.2\n")
    assert_clean_error(cli("train", "--config", path), "unknown key(s)", "'zetta' (did you mean 'zeta'?)", "valid keys")


def test_bad_config_value_and_syntax(cli, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("zeta = 1.5\n")
    assert_clean_error(cli("train", "--config", path), "zeta must be in [0, 1), got 1.5")
    path.write_text("zeta = \n")
    assert_clean_error(cli("train", "--config", path), "is not valid TOML")
    assert_clean_error(cli("train", "--config", tmp_path / "absent.toml"), "cannot read config file")


def test_no_overwrite_of_an_earlier_run(cli, small_run, tmp_path):
    out_dir = tmp_path / "run"
    assert cli("train", *small_run, "--out-dir", out_dir).code == 0
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    outcome = cli("train", *small_run, "--lr", "0.3", "--out-dir", out_dir)
    assert_clean_error(outcome, f"{out_dir} already holds a run", "--resume", "--overwrite", "another --out-dir")
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint(cli, small_run, tmp_path, damage):
    out_dir = tmp_path / "run"
    assert cli("train", *small_run, "--epochs", "1", "--out-dir", out_dir).code == 0
    checkpoint = out_dir / "checkpoint.pt"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"\x00garbage" * 100)
    outcome = cli("train", "--resume", "--out-dir", out_dir)
    assert_clean_error(outcome, f"checkpoint {checkpoint} is corrupt or truncated", "--overwrite")


def test_resume_errors(cli, small_run, tmp_path):
    out_dir = tmp_path / "run"
    assert_clean_error(cli("train", "--resume", "--out-dir", out_dir), "no checkpoint at", "without --resume")
    assert cli("train", *small_run, "--out-dir", out_dir).code == 0
    assert_clean_error(cli("train", "--resume", "--out-dir", out_dir), "already finished its 3 epochs")
    assert_clean_error(
        cli("train", "--resume", "--out-dir", out_dir, "--zeta", "0.5"), "zeta=0.5 (saved: 0.3)", "drop those options"
    )


INFO_ERRORS = {
    "epsilon zero": (["--epsilon", "0"], ["epsilon must be a finite number > 0"]),
    "layers too few": (["--layers", "784"], ["--layers needs two or more positive sizes"]),
    "layers zero": (["--layers", "784,0,10"], ["--layers needs two or more positive sizes", "[784, 0, 10]"]),
    "layers text": (["--layers", "a,b"], ["argument --layers"]),
    "hidden zero": (["--hidden", "0"], ["hidden must be one or more positive integers"]),
    "layers and hidden": (["--layers", "4,2", "--hidden", "3"], ["drop --hidden / --dataset"]),
    "unknown dataset": (["--dataset", "imagenet"], ["imagenet"]),
}


@pytest.mark.parametrize(("flags", "fragments"), INFO_ERRORS.values(), ids=INFO_ERRORS.keys())
def test_info_bad_input(cli, flags, fragments):
    assert_clean_error(cli("info", *flags), *fragments)


def test_info_missing_data_files(cli, tmp_path):
    outcome = cli("info", "--dataset", "mnist", "--data-dir", tmp_path)
    assert_clean_error(outcome, "not found", "--layers")


def test_bench_errors(cli):
    assert_clean_error(cli("bench", "--threads", "0"), "--threads needs positive counts")
    assert_clean_error(cli("bench", "--repeats", "x"), "argument --repeats")


def test_no_command(cli):
    assert_clean_error(cli(), "the following arguments are required: COMMAND")
    assert_clean_error(cli("fly"), "invalid choice: 'fly'")
