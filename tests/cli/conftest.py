"""Fixtures of the command-line tests: run ``evosparse`` in-process and capture what it prints."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from evosparse.cli import main


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """``cli("train", "--epochs", "2")`` -> Outcome(exit code, stdout, stderr); argparse exits are caught."""

    def run(*argv: str) -> Outcome:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


# A run of a fraction of a second: flags for `evosparse train`.
SMALL_RUN = ("--hidden", "32,32", "--epsilon", "5", "--epochs", "3", "--batch-size", "64", "--dropout", "0.2",
             "--decay", "constant", "--stop-after", "none", "--seed", "3", "--quiet")  # fmt: skip


@pytest.fixture
def small_run():
    return SMALL_RUN


@pytest.fixture(autouse=True, scope="module")
def _tiny_models_use_one_thread(one_thread):
    yield
