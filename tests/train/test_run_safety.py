"""Bad input for training runs (issue 10): damaged and hostile checkpoints, changed data, divergence, a
full disk, concurrent runs, and kill -9 + resume."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import torch
from hostile import flipped, positions, torch_payload_bytes

from evosparse.io import FolderLock, RunFolderError, WriteError
from evosparse.train import CheckpointError, DivergenceError, load_checkpoint, resume
from evosparse.train import train as train_run
from evosparse.train.callbacks import Callback


class StopAfter(Callback):
    """Stops training after ``epochs`` epochs: an interruption at an epoch boundary."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def _on_epoch_end(self):
        return self.trainer.epoch < self.epochs


def quiet(**kwargs):
    return {"progress": False, "log": None, **kwargs}


# ---- the checkpoint file -------------------------------------------------------------------------------------
def test_byte_flipped_checkpoint_is_refused(digits, small_config):
    train_run(small_config.replace(epochs=1), dataset=digits, **quiet())
    path = small_config.run.out_dir + "/checkpoint.pt"
    good = open(path, "rb").read()
    original = load_checkpoint(path)
    refused = 0
    spots = positions(len(good), 30)
    for position in spots:
        with open(path, "wb") as file:
            file.write(flipped(good, position))
        try:
            loaded = load_checkpoint(path)
        except CheckpointError as error:
            assert "\n" not in str(error) and path in str(error)
            refused += 1
        else:  # an unused zip header field: the content is exactly what was saved (the checksum says so)
            assert loaded["sha256"] == original["sha256"]
    assert refused >= len(spots) // 2


def test_checkpoint_with_changed_weights_fails_its_checksum(digits, small_config):
    train_run(small_config.replace(epochs=1), dataset=digits, **quiet())
    path = small_config.run.out_dir + "/checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    first = next(key for key, value in payload["trainer"]["model"].items() if value.is_floating_point())
    payload["trainer"]["model"][first][0] += 1.0  # what a flipped bit inside a tensor does
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="fails its SHA-256 checksum"):
        resume(small_config.run.out_dir, dataset=digits, **quiet())


def test_crafted_checkpoint_never_runs_code(tmp_path, digits, small_config):
    marker = tmp_path / "pwned"
    train_run(small_config, dataset=digits, **quiet(callbacks=[StopAfter(1)]))
    path = small_config.run.out_dir + "/checkpoint.pt"
    with open(path, "wb") as file:
        file.write(torch_payload_bytes(marker))
    with pytest.raises(CheckpointError, match="never loads"):
        resume(small_config.run.out_dir, dataset=digits, **quiet())
    assert not marker.exists()


def test_checkpoint_without_checksum_is_refused(tmp_path):
    torch.save({"format": "evosparse-checkpoint", "version": 1, "config": {}, "trainer": {}, "finished": False},
               tmp_path / "checkpoint.pt")  # fmt: skip
    with pytest.raises(CheckpointError, match="has no checksum"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_disk_full_while_checkpointing_keeps_the_last_checkpoint(digits, small_config, monkeypatch):
    import evosparse.train.checkpoint as checkpoint_module

    real_save, calls = torch.save, []

    def fills_the_disk(obj, file, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the checkpoint of epoch 2
            file.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", fills_the_disk)
    with pytest.raises(WriteError, match=r"could not write .*checkpoint.pt: the disk is full") as caught:
        train_run(small_config, dataset=digits, **quiet())
    assert "\n" not in str(caught.value)
    monkeypatch.undo()
    assert load_checkpoint(small_config.run.out_dir + "/checkpoint.pt")["trainer"]["epoch"] == 1


def test_disk_full_is_one_line_on_the_command_line(tmp_path, capsys, monkeypatch):
    import evosparse.train.checkpoint as checkpoint_module
    from evosparse.cli.main import main

    def full(obj, file, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", full)
    code = main(["train", "--hidden", "16", "--epochs", "1", "--quiet", "--out-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: could not write") and "disk is full" in err
    assert err.count("\n") == 1 and "Traceback" not in err


# ---- data ----------------------------------------------------------------------------------------------------
class Changed:
    """The digits data set with one training value changed: other data under the same name."""

    def __init__(self, dataset) -> None:
        for name in ("y_train", "x_test", "y_test", "n_classes"):
            setattr(self, name, getattr(dataset, name))
        self.x_train = np.array(dataset.x_train, copy=True)
        self.x_train[0, 0] += 1.0


def test_resume_on_other_data_is_refused_or_loudly_accepted(digits, small_config):
    train_run(small_config, dataset=digits, **quiet(callbacks=[StopAfter(1)]))
    with pytest.raises(RunFolderError, match=r"the data changed since the run .* \(x_train differ"):
        resume(small_config.run.out_dir, dataset=Changed(digits), **quiet())
    lines = []
    result = resume(small_config.run.out_dir, dataset=Changed(digits), progress=False, log=lines.append,
                    accept_data_change=True)  # fmt: skip
    assert result.trainer.epoch == small_config.run.epochs
    assert lines[0].startswith("warning: the data changed")


def test_manifest_records_config_and_data(digits, small_config):
    from evosparse.io import read_manifest
    from evosparse.train.run import data_digests, load_tensors

    train_run(small_config.replace(epochs=1), dataset=digits, **quiet())
    manifest = read_manifest(small_config.run.out_dir)
    assert manifest["kind"] == "train"
    assert manifest["config"] == small_config.replace(epochs=1).to_dict()
    assert manifest["data"] == data_digests(load_tensors(small_config, digits))


# ---- divergence ----------------------------------------------------------------------------------------------
def test_huge_learning_rate_stops_with_epoch_step_and_advice(digits, small_config):
    with pytest.raises(DivergenceError, match=r"diverged at epoch 1, step \d+: .*lower the learning rate \(--lr, "
                       r"now 1e\+30\).*no checkpoint was written") as caught:  # fmt: skip
        train_run(small_config.replace(lr=1e30), dataset=digits, **quiet())
    assert "\n" not in str(caught.value)


class Poison(Callback):
    """Sets one weight to NaN during ``epoch`` (after its steps): what an overflow in an update would do."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def _on_step_end(self) -> bool:
        if self.trainer.epoch == self.epoch:
            with torch.no_grad():
                next(p for p in self.trainer.model.parameters() if p.is_floating_point()).view(-1)[0] = float("nan")
        return True


def test_divergence_leaves_the_last_good_checkpoint(digits, small_config):
    with pytest.raises(DivergenceError, match=r"diverged at epoch 3, step \d+: .*still holds epoch 2, the last good"):
        train_run(small_config, dataset=digits, **quiet(callbacks=[Poison(3)]))
    checkpoint = load_checkpoint(small_config.run.out_dir + "/checkpoint.pt")
    assert checkpoint["trainer"]["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in checkpoint["trainer"]["model"].values() if v.is_floating_point())
    assert len(json.loads(open(small_config.run.out_dir + "/history.json").read())) == 2


def test_divergence_is_exit_code_2_on_the_command_line(tmp_path, capsys):
    from evosparse.cli.main import main

    code = main(["train", "--hidden", "16", "--epochs", "2", "--lr", "1e30", "--quiet", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: training diverged at epoch 1, step") and "--lr" in err


# ---- concurrent runs -----------------------------------------------------------------------------------------
def test_a_run_into_a_folder_in_use_fails_at_once(digits, small_config):
    folder = small_config.run.out_dir
    import os

    os.makedirs(folder)
    with FolderLock(folder):  # as another evosparse process would hold it
        with pytest.raises(RunFolderError, match=r"in use by another evosparse run \(process \d+\)"):
            train_run(small_config, dataset=digits, **quiet())
    assert os.listdir(folder) == []


RACE = """
import sys, time
from pathlib import Path
from evosparse.cli.main import main
Path(sys.argv[2], sys.argv[1]).touch()
while len(list(Path(sys.argv[2]).iterdir())) < 2:
    time.sleep(0.001)
sys.exit(main(["train", "--hidden", "16", "--epochs", "3", "--quiet", "--seed", sys.argv[1], "--out-dir", sys.argv[3]]))
"""


@pytest.mark.slow
def test_two_train_commands_into_one_new_folder_exactly_one_wins(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    barrier, out = tmp_path / "barrier", tmp_path / "run"
    barrier.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, seed, str(barrier), str(out)],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for seed in ("1", "2")
    ]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in processes]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert loser.count("\n") == 1 and ("in use by another evosparse run" in loser or "already holds a run" in loser)
    winner_seed = ("1", "2")[[code for code, _ in results].index(0)]
    assert load_checkpoint(out / "checkpoint.pt")["config"]["run"]["seed"] == int(winner_seed)


# ---- kill -9 and resume --------------------------------------------------------------------------------------
KILL_RUN = ["train", "--hidden", "64,64", "--epochs", "8", "--seed", "5", "--quiet", "--threads", "1"]


@pytest.mark.slow
def test_kill_9_and_resume_gives_the_uninterrupted_result(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    code = "import sys; from evosparse.cli.main import main; sys.exit(main(sys.argv[1:]))"
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", code, *KILL_RUN, "--out-dir", str(out)], env=env)
    deadline = time.monotonic() + 600
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        try:
            if load_checkpoint(out / "checkpoint.pt")["trainer"]["epoch"] >= 2:
                break
        except CheckpointError:
            pass
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert subprocess.run([sys.executable, "-c", code, "train", "--resume", "--quiet", "--out-dir", str(out)],
                          env=env).returncode == 0  # fmt: skip
    straight = tmp_path / "straight"
    assert subprocess.run([sys.executable, "-c", code, *KILL_RUN, "--out-dir", str(straight)], env=env).returncode == 0
    resumed, uninterrupted = load_checkpoint(out / "checkpoint.pt"), load_checkpoint(straight / "checkpoint.pt")
    assert resumed["trainer"]["epoch"] == uninterrupted["trainer"]["epoch"] == 8
    for key, value in uninterrupted["trainer"]["model"].items():
        assert torch.equal(value, resumed["trainer"]["model"][key]), key

    def without_timings(rows):
        return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in rows]

    assert without_timings(resumed["trainer"]["history"]) == without_timings(uninterrupted["trainer"]["history"])
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == list(range(1, 9))


def test_interrupted_overwrite_never_resumes_the_old_run(digits, small_config, monkeypatch):
    from pathlib import Path

    train_run(small_config, dataset=digits, **quiet(callbacks=[StopAfter(1)]))
    real_unlink = Path.unlink

    def killed(self, *args, **kwargs):
        if self.name == "checkpoint.pt":
            raise KeyboardInterrupt  # after the new run.json, before the old checkpoint is gone
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        train_run(small_config.replace(lr=0.3), dataset=digits, overwrite=True, **quiet())
    monkeypatch.undo()
    with pytest.raises(RunFolderError, match="belongs to another run"):
        resume(small_config.run.out_dir, dataset=digits, **quiet())
