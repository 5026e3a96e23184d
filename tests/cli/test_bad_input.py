"""The CLI's single error path and the bad inputs of issue 10 that it documents: one test per error."""

from __future__ import annotations

import argparse
import errno
import json
import time
import tracemalloc

import pytest
from cli.test_errors import assert_clean_error

from evosparse.cli._flags import CommandError, run_command
from evosparse.cli.main import build_parser


# ---- the error path itself -------------------------------------------------------------------------------
def _raising(error: BaseException):
    def handler(args):
        raise error

    return handler


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (CommandError("--resume needs --out-dir"), "error: --resume needs --out-dir"),
        (ValueError("zeta must be in [0, 1),\n got 1.2"), "error: zeta must be in [0, 1), got 1.2"),
        (FileNotFoundError("cannot read config file x.toml"), "error: cannot read config file x.toml"),
        (OSError(errno.ENOSPC, "No space left on device"), "error: [Errno 28] No space left on device"),
        (PermissionError(errno.EACCES, "Permission denied"), "error: [Errno 13] Permission denied"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "error: a file is not UTF-8 text"),
    ],
    ids=["command", "value", "missing file", "disk full", "permission", "not utf-8"],
)
def test_library_errors_become_one_line_and_exit_2(capsys, monkeypatch, error, line):
    monkeypatch.delenv("EVOSPARSE_DEBUG", raising=False)
    assert run_command(_raising(error), argparse.Namespace()) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(line) and captured.err.count("\n") == 1


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("EVOSPARSE_DEBUG", "1")
    with pytest.raises(ValueError, match="bad"):
        run_command(_raising(ValueError("bad")), argparse.Namespace())


def test_a_bug_is_not_hidden_as_bad_input(monkeypatch):
    monkeypatch.delenv("EVOSPARSE_DEBUG", raising=False)
    with pytest.raises(ZeroDivisionError):
        run_command(_raising(ZeroDivisionError("a bug")), argparse.Namespace())


def test_interrupt_says_how_to_resume(capsys):
    args = argparse.Namespace(out_dir="runs/x", command="train")
    assert run_command(_raising(KeyboardInterrupt()), args) == 130
    assert "evosparse train --resume --out-dir runs/x" in capsys.readouterr().err


def test_every_command_goes_through_the_error_path(cli, tmp_path):
    """One bad input per command (train, info, bench, compare, plot, neat, grid): one line, exit 2."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - the registered commands
    bad = {
        "train": ["train", "--zeta", "2"],
        "info": ["info", "--layers", "5"],
        "bench": ["bench", "--threads", "0"],
        "compare": ["compare", "--out-dir", tmp_path / "c", "--densities", "2"],
        "plot": ["plot", "degrees", tmp_path / "absent"],
        "neat": ["neat", "run", "--task", "tetris"],
        "grid": ["grid", "run", "building", "--days", "0"],
    }
    for name in commands:  # a command added later is at least checked with an unknown flag
        assert_clean_error(cli(*bad.get(name, [name, "--no-such-flag"])))


# ---- issue 10, item 7 and parts of 6 -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags",
    [["--strategy", "rigl"], ["--density", "0.1"], ["--strategy", "set", "--density", "0.1"]],
    ids=["strategy", "density", "both"],
)
def test_dense_model_refuses_sparse_settings(cli, tmp_path, monkeypatch, flags):
    monkeypatch.chdir(tmp_path)
    assert_clean_error(cli("train", "--model", "dense", *flags), "has no effect with --model dense", flags[0])
    assert list(tmp_path.iterdir()) == []


def test_dense_model_refuses_sparse_settings_from_a_config_file(cli, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[topology]\nstrategy = 'rigl'\n")
    assert_clean_error(cli("train", "--config", path, "--model", "dense"), "--strategy has no effect")


def test_empty_densities(cli, tmp_path):
    assert_clean_error(cli("compare", "--out-dir", tmp_path / "c", "--densities", ""), "argument --densities")
    assert_clean_error(cli("compare", "--out-dir", tmp_path / "c", "--strategies", ""), "argument --strategies")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["train", "--seed", "-1"], "seed must be an integer >= 0, got -1"),
        (["compare", "--seeds", "-1", "--out-dir", "OUT"], "seed must be an integer >= 0, got -1"),
        (["neat", "run", "--task", "xor", "--seed", "-1"], "argument --seed: a seed must be an integer >= 0"),
        (["grid", "run", "building", "--seed", "-1"], "argument --seed: a seed must be an integer >= 0"),
    ],
    ids=["train", "compare", "neat", "grid"],
)
def test_negative_seed_names_the_field(cli, tmp_path, argv, fragment):
    argv = [str(tmp_path / "c") if a == "OUT" else a for a in argv]
    assert_clean_error(cli(*argv), fragment)


@pytest.mark.parametrize("text", ["16,,16", ",16", "16,", "16, ,16"])
def test_hidden_with_an_empty_item(cli, text):
    assert_clean_error(cli("train", "--hidden", text), "argument --hidden", "comma-separated integers")


def test_threads_are_capped_to_the_cores(cli, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    outcome = cli("train", "--threads", "1000", "--print-config")
    assert outcome.code == 0 and "threads = 2\n" in outcome.out
    assert "--threads 1000 is more than this machine's 2 cores; used 2" in outcome.err
    outcome = cli("train", "--threads", "2", "--print-config")
    assert "threads = 2\n" in outcome.out and outcome.err == ""


def test_info_of_a_huge_network_is_computed_not_built(cli):
    tracemalloc.start()
    start = time.perf_counter()
    outcome = cli("info", "--layers", "1000000000,1000000000,10", "--epsilon", "1", "--json")
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert outcome.code == 0 and seconds < 5 and peak < 50 * 2**20  # the layers would need 70 GiB
    info = json.loads(outcome.out)
    assert info["per_layer"][0]["connections"] == 2_000_000_000  # epsilon (n_in + n_out) = 1 * 2e9
    assert info["total"]["neurons"] == 2_000_000_010


def test_config_file_that_is_not_utf8_names_the_file(cli, tmp_path):
    path = tmp_path / "run.toml"
    path.write_bytes(b"lr = 0.1  # caf\xe9\n")
    assert_clean_error(cli("train", "--config", path), str(path), "not UTF-8 text (byte 0xe9 at offset 15)")


def test_text_where_a_number_is_expected_names_file_and_field(cli, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[optimizer]\nlr = "fast"\n')
    assert_clean_error(cli("train", "--config", path), f"{path}: lr must be a finite number > 0, got 'fast'")


def test_a_setting_given_twice_in_one_file(cli, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("lr = 0.2\n[optimizer]\nlr = 0.1\n")
    assert_clean_error(cli("train", "--config", path), "sets lr twice")


def test_flat_and_sectioned_config_files_give_the_same_run(cli, tmp_path):
    flat, nested = tmp_path / "flat.toml", tmp_path / "nested.toml"
    flat.write_text('lr = 0.2\nhidden = [16]\nmodel = "dense"\nepochs = 3\n')
    nested.write_text('[model]\nkind = "dense"\nhidden = [16]\n[optimizer]\nlr = 0.2\n[run]\nepochs = 3\n')
    printed = [cli("train", "--config", path, "--print-config").out for path in (flat, nested)]
    assert printed[0] == printed[1] and "[model]" in printed[0] and 'kind = "dense"' in printed[0]


# ---- --accept-data-change --------------------------------------------------------------------------------
def test_accept_data_change_only_goes_with_resume(cli, small_run, tmp_path):
    outcome = cli("train", *small_run, "--out-dir", tmp_path / "run", "--accept-data-change")
    assert_clean_error(outcome, "--accept-data-change goes with --resume")
    assert not (tmp_path / "run").exists()


def test_accept_data_change_reaches_resume(cli, small_run, tmp_path):
    # An interrupted run (stopped after epoch 1 of 3) resumed through the CLI with the flag: same data, so no
    # warning, and the run finishes (exit 0) -- the flag reaches `resume` and changes nothing else.
    from train.test_checkpoint import StopAfter

    from evosparse.cli.main import build_parser, train_changes
    from evosparse.train import TrainConfig
    from evosparse.train import train as train_run

    args = build_parser().parse_args(["train", *small_run, "--out-dir", str(tmp_path / "run")])
    config = TrainConfig.from_dict(train_changes(args), source="test")
    train_run(config, progress=False, log=None, callbacks=[StopAfter(1)])
    outcome = cli("train", "--resume", "--out-dir", tmp_path / "run", "--accept-data-change", "--quiet")
    assert outcome.code == 0, outcome.err
    assert "warning" not in outcome.err
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 1 + 3  # header + 3 epochs
