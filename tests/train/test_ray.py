"""Training on Ray, for real on a local Ray of 2 CPUs (one per module): ``compare`` gives the table of the
local backend, and a sweep whose worker is killed loses no run; ``tune`` with ASHA stops weak trials early and
writes a best recipe that ``evosparse train`` trains.

The kill is real: the test reads the worker's pid from the lock file of the run it trains
(``.evosparse.lock``) and sends it SIGKILL after the run's first checkpoint.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from evosparse.train import TrainConfig
from evosparse.train.compare import compare
from evosparse.train.ray_backend import RunsFailedError, run_tasks

# Numbers that must agree between backends: everything in a row but the time and the folder.
SAME = ("strategy", "target_density", "seed", "final_test_accuracy", "best_test_accuracy", "density", "nnz",
        "train_flops", "inference_flops")  # fmt: skip


def recipe() -> TrainConfig:
    return TrainConfig.from_dict(
        dict(hidden=(24, 24), epsilon=5, epochs=8, batch_size=64, decay="constant", stop_after=None, threads=1)
    )


def numbers(rows) -> list[tuple]:
    return sorted(tuple(row[name] for name in SAME) for row in rows)


def kill_after_first_checkpoint(run: Path) -> threading.Thread:
    """Kill, with SIGKILL, the process training ``run`` once its first checkpoint is written."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if (run / "checkpoint.pt").exists():
                    pid = int((run / ".evosparse.lock").read_text().split()[0])
                    assert pid != os.getpid()
                    os.kill(pid, signal.SIGKILL)
                    return
            except (OSError, ValueError, IndexError):
                pass  # the lock file is being written: look again
            time.sleep(0.002)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def trained_epochs(run: Path) -> int:
    return len(json.loads((run / "history.json").read_text()))


def fails_on_two(value: int) -> int:
    if value == 2:
        raise ValueError("two is not allowed")
    return value * 10


def test_run_tasks_collects_the_others_before_reporting_a_failure(ray_cluster):
    results: list[int] = []
    with pytest.raises(RunsFailedError, match=r"1 of 4 tasks failed \(first: \(2,\): ValueError: two is not allowed\)"):
        run_tasks(fails_on_two, [(1,), (2,), (3,), (4,)], results.append)
    assert sorted(results) == [10, 30, 40]
    with pytest.raises(ValueError, match="retries must be an integer >= 0, got -1"):
        run_tasks(fails_on_two, [(1,)], results.append, retries=-1)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_ray_gives_the_local_table_and_a_killed_run_is_resumed(ray_cluster, tmp_path):
    base = recipe()
    local = compare(base, ["set"], [0.1], [0, 1], tmp_path / "local", plots=False, log=None)

    out = tmp_path / "ray"
    watcher = kill_after_first_checkpoint(out / "set-d0.1-s1")
    with pytest.raises(RunsFailedError, match=r"1 of 4 runs did not finish \(set-d0.1-s1; first: .*run the same"):
        compare(base, ["set"], [0.1], [0, 1], out, plots=False, log=None, ray=True, retries=0)
    watcher.join()
    # The three runs that finished are in results.csv; the killed one stopped after a checkpoint, unfinished.
    assert (out / "results.csv").read_text().count("\n") == 1 + 3
    assert 1 <= trained_epochs(out / "set-d0.1-s1") < 8

    rows = compare(base, ["set"], [0.1], [0, 1], out, plots=False, log=None, ray=True)
    notes = {Path(row["out_dir"]).name: row["note"] for row in rows}
    assert notes == {"dense-s0": "reused", "dense-s1": "reused", "set-d0.1-s0": "reused", "set-d0.1-s1": "resumed"}
    assert numbers(rows) == numbers(local)  # the resumed run ends exactly where an uninterrupted one does
    table = [line.split("|")[:7] + line.split("|")[8:] for line in (out / "table.md").read_text().splitlines()]
    compare(base, ["set"], [0.1], [0, 1], tmp_path / "local", plots=False, log=None)  # rewrites its reports
    local_table = (tmp_path / "local" / "table.md").read_text().splitlines()
    assert table == [line.split("|")[:7] + line.split("|")[8:] for line in local_table]  # all but the seconds


@pytest.mark.slow  # a worker restart costs ~10 s; the default run kills a worker in the test above
def test_ray_restarts_a_run_whose_worker_died_and_it_resumes(ray_cluster, tmp_path):
    out = tmp_path / "ray"
    watcher = kill_after_first_checkpoint(out / "set-d0.1-s0")
    rows = compare(recipe(), ["set"], [0.1], [0], out, dense=False, plots=False, log=None, ray=True, retries=1)
    watcher.join()
    assert [row["note"] for row in rows] == ["resumed"] and trained_epochs(out / "set-d0.1-s0") == 8


def test_without_ray_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where Ray is not installed
    with pytest.raises(
        ImportError, match=r"compare --ray needs Ray: pip install 'evosparse\[ray\]' \(Ray is not installed\)"
    ):
        compare(recipe(), ["set"], [0.1], [0], tmp_path / "x", plots=False, log=None, ray=True)
    assert not (tmp_path / "x").exists()


def cli(capsys, *argv) -> tuple[int, str, str]:
    """``evosparse ARGV`` in this process: (exit code, stdout, stderr)."""
    from evosparse.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


TINY = ("--hidden", "24,24", "--epsilon", "5", "--batch-size", "64", "--decay", "constant", "--stop-after", "none")


def test_tune_asha_stops_weak_trials_and_the_best_recipe_trains(tmp_path, ray_cluster, capsys):
    recipe = tmp_path / "recipe.toml"
    # Three trials, two CPUs: the two of lr 0.05 start first and tie (same seed); the one of lr 1e-5 (it
    # learns nothing in 3 epochs) starts when one of them ended, so both recorded their epoch-1 accuracy:
    # ASHA (keep the best half at epochs 1 and 2) must stop it at epoch 1.
    recipe.write_text(
        '[run]\nepochs = 3\n[tune]\nsamples = 1\nreduction_factor = 2\n[tune.search]\nlr = "grid(0.05, 0.05, 1e-5)"\n'
    )
    out = tmp_path / "search"
    code, printed, errors = cli(capsys, "tune", recipe, "--out-dir", out, "--search", "momentum=choice(0.9)", *TINY)
    assert code == 0, errors
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [(r["lr"], r["status"], r["epochs"], r["stopped_early"]) for r in rows] == [
        ("0.05", "finished", "3", "False"), ("0.05", "finished", "3", "False"), ("1e-05", "stopped early", "1", "True")
    ]  # fmt: skip
    for row in rows:
        history = json.loads((out / "trials" / row["trial"] / "history.json").read_text())
        assert len(history) == int(row["epochs"])
        assert max(h["test_accuracy"] for h in history) == float(row["best_test_accuracy"])
    summary = json.loads((out / "tune.json").read_text())
    assert summary["trials"] == 3 and summary["stopped_early"] == 1
    assert summary["best"]["values"] == {"lr": 0.05, "momentum": 0.9}
    assert "3 trials, 1 stopped early by asha" in printed

    best = (out / "best.toml").read_text()
    assert "lr = 0.05" in best and "epochs = 3" in best and "hidden = [24, 24]" in best
    code, _, errors = cli(capsys, "train", "--config", out / "best.toml", "--out-dir", tmp_path / "best", "--quiet")
    assert code == 0, errors
    assert json.loads((tmp_path / "best" / "summary.json").read_text())["epochs"] == 3

    code, _, errors = cli(capsys, "tune", recipe, "--out-dir", out)
    assert code == 2 and "already holds a run (a tune run" in errors
