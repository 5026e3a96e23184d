"""``evosparse tune``'s bad input: one line naming the flag, nothing written (searches: tests/train/test_ray.py)."""

from __future__ import annotations

import sys

import pytest


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
        and result.err == "error: tune needs Ray: pip install 'evosparse[ray]' (Ray is not installed)\n"
    )
