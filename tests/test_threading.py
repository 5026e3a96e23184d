"""Thread defaults (evosparse._threading): the wait policy set at import, EVOSPARSE_THREADS, and that the
thread count never changes a run's numbers."""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import pytest
import torch
from helpers import assert_same_run

from evosparse._threading import (
    DEFAULT_ENVIRONMENT,
    WAIT_SETTINGS,
    configure_openmp,
    threads_from_environment,
)


def test_configure_sets_the_default_only_when_the_user_chose_nothing():
    environ = {"PATH": "/bin"}
    assert configure_openmp(environ) == DEFAULT_ENVIRONMENT
    assert environ == {"PATH": "/bin", **DEFAULT_ENVIRONMENT}
    for name in WAIT_SETTINGS:
        mine = {name: "1"}
        assert configure_openmp(mine) == {} and mine == {name: "1"}


def test_importing_evosparse_sets_the_wait_policy_before_torch_starts():
    env = {k: v for k, v in os.environ.items() if k not in WAIT_SETTINGS}
    code = "import evosparse, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == DEFAULT_ENVIRONMENT["OMP_WAIT_POLICY"]


def test_importing_evosparse_leaves_numbas_pool_alone():
    # A pool twice the cores was tried and dropped (evosparse._threading): Numba's default, one thread per core.
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    code = (
        "import evosparse, numba, numpy as np, os; from evosparse.sparse import kernels; "
        "out = np.empty((1, 2), np.float32); "
        "kernels.spmm(np.array([0, 1]), np.array([0], np.int32), np.ones(1, np.float32), "
        "np.ones((1, 2), np.float32), np.ones(1, np.float32), out); assert (out == 2).all(); "
        "print(os.environ.get('NUMBA_NUM_THREADS'), numba.config.NUMBA_NUM_THREADS == os.cpu_count())"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["None", "True"]


# The command in a fresh process (Numba fixes the threading layer per process), on two threads; prints the
# layer its kernels ran on.
_COMMAND = (
    "import sys, numba; from evosparse.cli.main import main; "
    "code = main(sys.argv[1:]); print(numba.threading_layer()); sys.exit(code)"
)


def _train_on_layer(out_dir, layer: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "EVOSPARSE_THREADS"}
    env["NUMBA_THREADING_LAYER"] = layer
    argv = ["train", "--dataset", "digits", "--hidden", "256,256", "--epsilon", "10", "--epochs", "2"]
    argv += ["--threads", "2", "--seed", "3", "--quiet", "--out-dir", str(out_dir)]
    result = subprocess.run(
        [sys.executable, "-c", _COMMAND, *argv], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()[-1]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 cores for parallel kernels")
def test_numbas_threading_layers_give_the_same_numbers(tmp_path):
    """NUMBA_THREADING_LAYER=workqueue is a documented choice for busy machines (README): same run, same bits."""
    from evosparse.train import load_checkpoint

    assert _train_on_layer(tmp_path / "workqueue", "workqueue") == "workqueue"
    assert _train_on_layer(tmp_path / "omp", "omp") == "omp"
    runs = [load_checkpoint(tmp_path / name / "checkpoint.pt")["trainer"] for name in ("workqueue", "omp")]
    assert_same_run(*runs)


def test_evosparse_threads_variable():
    assert threads_from_environment({}) is None and threads_from_environment({"EVOSPARSE_THREADS": " "}) is None
    assert threads_from_environment({"EVOSPARSE_THREADS": "2"}) == 2
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ValueError, match=rf"EVOSPARSE_THREADS must be a positive integer .*got '{bad}'"):
            threads_from_environment({"EVOSPARSE_THREADS": bad})


def test_choose_threads_reads_the_variable_after_the_flag(monkeypatch):
    from evosparse.train import TrainConfig
    from evosparse.train.run import choose_threads

    model = torch.nn.Linear(2, 2)
    monkeypatch.setenv("EVOSPARSE_THREADS", "1")
    assert choose_threads(TrainConfig(), model) == 1
    assert choose_threads(TrainConfig.from_dict({"threads": 2}), model) == 2  # the flag wins
    monkeypatch.setenv("EVOSPARSE_THREADS", "64")
    assert choose_threads(TrainConfig(), model) == (os.cpu_count() or 1)  # capped to the cores
    monkeypatch.setenv("EVOSPARSE_THREADS", "many")
    with pytest.raises(ValueError, match="EVOSPARSE_THREADS must be a positive integer"):
        choose_threads(TrainConfig(), model)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 cores to compare 1 and 2 threads")
def test_one_or_two_threads_give_bit_identical_runs(tmp_path):
    """Every kernel gives each output element to one thread, which sums in the stored order: the thread
    count changes who computes a row, never the order of its additions. Torch's own ops at these sizes
    are below its parallel grain, so the whole run is bit for bit the same."""
    from evosparse.data import load_dataset
    from evosparse.train import TrainConfig, load_checkpoint, train

    digits = load_dataset("digits")
    base = dict(hidden=(128, 128), epsilon=10, epochs=2, batch_size=64, seed=1, dropout=0.1)
    before = (torch.get_num_threads(), numba.get_num_threads())
    try:
        for threads in (1, 2):
            config = TrainConfig.from_dict({**base, "threads": threads, "out_dir": str(tmp_path / f"t{threads}")})
            train(config, dataset=digits, progress=False, log=None)
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
    one, two = (load_checkpoint(tmp_path / f"t{n}" / "checkpoint.pt")["trainer"] for n in (1, 2))
    assert_same_run(one, two)
