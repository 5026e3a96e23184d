"""Fuzzing the flags of ``evosparse train``, ``info`` and ``compare`` and the ``--config`` file (hypothesis).

Whatever the values, the outcome is success or exit code 2 with exactly one ``error: ...`` line on stderr,
never a traceback. The default run keeps a few examples of each; ``-m slow`` runs many more.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evosparse._config import toml_value
from evosparse.cli.main import build_parser
from evosparse.train.config import TrainConfig

# Values a user (or a script gone wrong) might type: small numbers (so a run that succeeds stays tiny),
# edge cases, lists with holes, and any short text.
VALUES = st.one_of(
    st.integers(-3, 6).map(str),
    st.sampled_from(
        [
            "0",
            "-1",
            "1e30",
            "-1e30",
            "nan",
            "inf",
            "-inf",
            "0.5",
            "1.0",
            "1.5",
            "1e-30",
            "none",
            "",
            ",",
            "1,,2",
            "3,4",
            "2,3,4",
            "true",
            "sparse",
            "dense",
            "set",
            "rigl",
            "imp",
            "gmp",
            "obd",
            "snip",
            "digits",
            "x" * 300,
        ]
    ),  # fmt: skip
    st.text(max_size=10),
)
# Flags that would write outside the temporary folder or start worker processes are set by the base flags.
NOT_FUZZED = {"--out-dir", "--help", "--jobs", "--download", "--no-download"}


def _options(command: str) -> list[tuple[str, bool]]:
    """(flag, takes a value) of every option of ``evosparse COMMAND``."""
    subparsers = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    options = []
    for action in subparsers[command]._actions:  # noqa: SLF001
        for flag in action.option_strings:
            if flag.startswith("--") and flag not in NOT_FUZZED:
                options.append((flag, action.nargs != 0))
    return options


def _argv(command: str, draw) -> list[str]:
    chosen = draw(st.lists(st.sampled_from(_options(command)), min_size=1, max_size=3, unique=True))
    argv = []
    for flag, takes_value in chosen:
        argv.append(flag)
        if takes_value:
            argv.append(draw(VALUES))
    return argv


def assert_success_or_one_error_line(outcome, argv) -> None:
    assert "Traceback" not in outcome.err, (argv, outcome.err)
    if outcome.code != 0:
        lines = outcome.err.splitlines()
        assert outcome.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (argv, outcome)


def _in_temporary_folder(run):
    folder = Path(tempfile.mkdtemp(prefix="evosparse-fuzz-"))
    try:
        return run(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MANY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _fuzz_train_flags(cli, data):
    """Any flags, with --print-config: everything up to the validated config, nothing trained or written."""
    argv = ["train", *_argv("train", data.draw), "--print-config"]
    assert_success_or_one_error_line(cli(*argv), argv)


def _fuzz_train_runs(cli, data):
    """Any flags over a run of a fraction of a second, trained for real in a temporary folder."""

    def run(folder):
        base = ["--hidden", "8", "--epochs", "1", "--batch-size", "256", "--no-download", "--quiet"]
        argv = ["train", *base, *_argv("train", data.draw), "--out-dir", str(folder / "run")]
        assert_success_or_one_error_line(cli(*argv), argv)

    _in_temporary_folder(run)


def _fuzz_info(cli, data):
    argv = ["info", *_argv("info", data.draw)]
    assert_success_or_one_error_line(cli(*argv), argv)


def _fuzz_compare(cli, data):
    def run(folder):
        base = ["--strategies", "set", "--densities", "0.5", "--seeds", "0", "--no-dense", "--epochs", "1",
                "--hidden", "8", "--batch-size", "256", "--no-download", "--quiet"]  # fmt: skip
        argv = ["compare", *base, *_argv("compare", data.draw), "--out-dir", str(folder / "compare")]
        assert_success_or_one_error_line(cli(*argv), argv)

    _in_temporary_folder(run)


# A config file: any settings (by flat name or in their section's table) with any values, or any bytes.
_NAMES = st.sampled_from([*TrainConfig.flat_names(), "data", "model", "topology", "optimizer", "lr_", "zetta"])
_TOML_VALUES = st.one_of(
    st.integers(-5, 10**6), st.floats(allow_nan=True), st.booleans(), st.text(max_size=8),
    st.lists(st.integers(-2, 50), max_size=3),
)  # fmt: skip


@st.composite
def config_files(draw) -> bytes:
    kind = draw(st.sampled_from(["flat", "tables", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=60))
    values = draw(st.dictionaries(_NAMES, _TOML_VALUES, max_size=4))
    lines = [f"{name} = {toml_value(value)}" for name, value in values.items() if not isinstance(value, float)]
    lines += [f"{name} = {value!r}".replace("nan", "nan") for name, value in values.items() if isinstance(value, float)]
    if kind == "tables":
        leaves = {leaf.flat: leaf.path[0] for leaf in TrainConfig.leaves()}
        section = draw(st.sampled_from(sorted(set(leaves.values()))))
        lines.insert(0, f"[{section}]")
    return "\n".join(lines).encode()


def _fuzz_config_file(cli, content):
    def run(folder):
        path = folder / "run.toml"
        path.write_bytes(content)
        argv = ["train", "--config", str(path), "--print-config"]
        assert_success_or_one_error_line(cli(*argv), argv)

    _in_temporary_folder(run)


@FEW
@given(data=st.data())
def test_fuzz_train_flags(cli, data):
    _fuzz_train_flags(cli, data)


@settings(FEW, max_examples=5)
@given(data=st.data())
def test_fuzz_train_runs(cli, data):
    _fuzz_train_runs(cli, data)


@FEW
@given(data=st.data())
def test_fuzz_info(cli, data):
    _fuzz_info(cli, data)


@settings(FEW, max_examples=3)
@given(data=st.data())
def test_fuzz_compare(cli, data):
    _fuzz_compare(cli, data)


@FEW
@given(content=config_files())
def test_fuzz_config_file(cli, content):
    _fuzz_config_file(cli, content)


@pytest.mark.slow
@MANY
@given(data=st.data())
def test_fuzz_train_flags_many(cli, data):
    _fuzz_train_flags(cli, data)


@pytest.mark.slow
@settings(MANY, max_examples=150)
@given(data=st.data())
def test_fuzz_train_runs_many(cli, data):
    _fuzz_train_runs(cli, data)


@pytest.mark.slow
@MANY
@given(data=st.data())
def test_fuzz_info_many(cli, data):
    _fuzz_info(cli, data)


@pytest.mark.slow
@settings(MANY, max_examples=40)
@given(data=st.data())
def test_fuzz_compare_many(cli, data):
    _fuzz_compare(cli, data)


@pytest.mark.slow
@MANY
@given(content=config_files())
def test_fuzz_config_file_many(cli, content):
    _fuzz_config_file(cli, content)
