"""Checkpoints and whole runs: bit-identical resume, atomic writes, clear errors, no overwritten results."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evosparse.train import Callback, CheckpointError, RunError, TrainConfig, load_checkpoint, resume, save_checkpoint
from evosparse.train import run as run_module
from evosparse.train import train as train_run


class StopAfter(Callback):
    """Stops training after ``epochs`` epochs: an interruption at an epoch boundary."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def _on_epoch_end(self):
        return self.trainer.epoch < self.epochs


def model_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {key: value.detach().cpu().numpy().copy() for key, value in model.state_dict().items()}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[np.ndarray]:
    state = optimizer.state_dict()["state"]
    return [value.numpy().copy() for index in sorted(state) for _, value in sorted(state[index].items())]


def assert_identical_runs(straight, resumed) -> None:
    a, b = model_state(straight.model), model_state(resumed.model)
    assert a.keys() == b.keys() and any(key.endswith(".indptr") for key in a)  # topology is compared too
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for x, y in zip(optimizer_tensors(straight.trainer.optimizer), optimizer_tensors(resumed.trainer.optimizer)):
        np.testing.assert_array_equal(x, y)
    assert straight.history.without_timings() == resumed.history.without_timings()
    assert torch.equal(straight.model.generator.get_state(), resumed.model.generator.get_state())


RESUME_CASES = {
    "sgd-epoch-rewiring": {},
    "adam-step-rewiring-srelu": {"optimizer": "adam", "lr": 0.003, "update_unit": "step", "update_every": 7,
                                 "activation": "srelu"},
    "cosine-allrelu-nesterov": {"decay": "cosine", "stop_after": 4, "activation": "allrelu", "nesterov": True},
    # Every topology strategy: the interruption falls before, between or after conversions and prunings.
    "rigl-steps": {"strategy": "rigl", "update_unit": "step", "update_every": 7},
    "static": {"strategy": "static"},
    "snip-global": {"strategy": "snip", "scope": "global", "saliency_samples": 300},
    "neuron-srelu-shrinks": {"strategy": "neuron", "activation": "srelu", "prune_start": 1, "prune_end": 3,
                             "prune_cycles": 2, "neuron_fraction": 0.25},
    "magnitude-pruned-before-stop": {"strategy": "magnitude", "prune_start": 1},
    "obd-pruned-after-resume": {"strategy": "obd", "prune_start": 3, "saliency_samples": 200, "activation": "allrelu"},
    "imp-rewind-to-init": {"strategy": "imp", "prune_start": 1, "prune_end": 3, "prune_cycles": 3, "rewind_epoch": 0},
    "gmp-steps-adam": {"strategy": "gmp", "update_unit": "step", "update_every": 5, "prune_start": 3, "prune_end": 60,
                       "optimizer": "adam", "lr": 0.003},
    "l1-global": {"strategy": "l1", "l1": 0.01, "prune_start": 2, "scope": "global"},
    # The readout's own learning rate (a second parameter group), rebuilt from the recipe on resume.
    "output-lr-group": {"output_lr_fan_in": 4},
}  # fmt: skip


@pytest.mark.parametrize("changes", RESUME_CASES.values(), ids=RESUME_CASES.keys())
def test_resume_is_bit_identical_to_an_uninterrupted_run(digits, small_config, tmp_path, changes):
    # SET rewires every epoch (or every 7 steps) and dropout is on: every generator matters.
    config = small_config.replace(epochs=4, dropout=0.3, **changes)
    straight = train_run(config.replace(out_dir=str(tmp_path / "straight")), dataset=digits, progress=False, log=None)

    interrupted_dir = tmp_path / "interrupted"
    first = train_run(
        config.replace(out_dir=str(interrupted_dir)), dataset=digits, progress=False, log=None, callbacks=[StopAfter(2)]
    )
    assert first.trainer.epoch == 2 and not first.summary["finished"]
    assert load_checkpoint(interrupted_dir / "checkpoint.pt")["trainer"]["epoch"] == 2
    resumed = resume(interrupted_dir, dataset=digits, progress=False, log=None)

    assert resumed.trainer.epoch == 4 and resumed.summary["finished"]
    assert_identical_runs(straight, resumed)
    # The files agree too (timings aside).
    saved = [json.loads((d / "history.json").read_text()) for d in (tmp_path / "straight", interrupted_dir)]
    strip = [[{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in rows] for rows in saved]
    assert strip[0] == strip[1] and len(strip[0]) == 4


def test_resume_of_a_row_blocked_fused_run_is_bit_identical(digits, small_config, tmp_path, monkeypatch):
    """block_rows: the layout travels with the checkpoint (momentum saved in it), rewiring runs in CSR order."""
    from evosparse.nn import mlp

    monkeypatch.setattr(mlp, "WIDE_INPUTS", 1)  # digits' layers are narrow: block them all
    config = small_config.replace(epochs=3, block_rows=8, fused_step=True, batch_size=4)
    straight = train_run(config.replace(out_dir=str(tmp_path / "straight")), dataset=digits, progress=False, log=None)
    assert all(layer.pattern.block_rows == 8 for layer in straight.model.sparse_layers())
    interrupted_dir = tmp_path / "interrupted"
    train_run(
        config.replace(out_dir=str(interrupted_dir)), dataset=digits, progress=False, log=None, callbacks=[StopAfter(1)]
    )
    from evosparse.nn import linear

    def no_draw(*args, **kwargs):
        raise AssertionError("a resume must not draw a random pattern: the checkpoint holds the connections")

    with monkeypatch.context() as patch:  # the layers are built empty and take the checkpoint's connections
        patch.setattr(linear, "erdos_renyi_pattern", no_draw)
        resumed = resume(interrupted_dir, dataset=digits, progress=False, log=None)
    assert_identical_runs(straight, resumed)
    csr = train_run(
        config.replace(block_rows=1, out_dir=str(tmp_path / "csr")), dataset=digits, progress=False, log=None
    )
    for column in ("train_loss", "test_accuracy"):  # the same run in CSR order, to rounding
        np.testing.assert_allclose(straight.history.column(column), csr.history.column(column), rtol=1e-4)


def test_run_writes_its_files_and_config(digits, small_config):
    result = train_run(small_config.replace(epochs=2), dataset=digits, progress=False, log=None)
    folder = result.out_dir
    assert sorted(p.name for p in folder.iterdir()) == sorted(run_module.RUN_FILES)
    assert TrainConfig.from_file(folder / "config.toml") == small_config.replace(epochs=2)
    assert len((folder / "history.csv").read_text().splitlines()) == 3
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["finished"] and 0.1 < summary["final_test_accuracy"] <= 1
    checkpoint = load_checkpoint(folder / "checkpoint.pt")
    assert checkpoint["finished"] and checkpoint["config"] == small_config.replace(epochs=2).to_dict()
    assert not list(folder.glob(".*.tmp"))  # no temporary file left behind


def test_default_folder_is_numbered_never_reused(digits, small_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = small_config.replace(out_dir=None, epochs=1)
    first = train_run(config, dataset=digits, progress=False, log=None)
    second = train_run(config, dataset=digits, progress=False, log=None)
    assert first.out_dir.as_posix() == "runs/digits-sparse-s3"
    assert second.out_dir.as_posix() == "runs/digits-sparse-s3-2"


def test_new_run_refuses_a_folder_holding_a_run(digits, small_config):
    train_run(small_config.replace(epochs=1), dataset=digits, progress=False, log=None)
    folder = small_config.run.out_dir
    before = {p.name: p.read_bytes() for p in sorted(run_module.Path(folder).iterdir())}
    with pytest.raises(RunError, match="already holds a run .*--resume.*--overwrite.*another --out-dir"):
        train_run(small_config.replace(epochs=2, lr=0.1), dataset=digits, progress=False, log=None)
    assert {p.name: p.read_bytes() for p in sorted(run_module.Path(folder).iterdir())} == before


def test_overwrite_replaces_the_earlier_run(digits, small_config):
    train_run(small_config.replace(epochs=2), dataset=digits, progress=False, log=None)
    result = train_run(small_config.replace(epochs=1), dataset=digits, progress=False, log=None, overwrite=True)
    assert len(result.history) == 1
    assert len(json.loads((result.out_dir / "history.json").read_text())) == 1


def test_bad_dataset_writes_nothing(small_config, tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'nope'; choose one of .*digits"):
        train_run(small_config.replace(dataset="nope"), progress=False, log=None)
    assert not (tmp_path / "run").exists()


def test_resume_refuses_changed_settings_and_finished_runs(digits, small_config):
    folder = small_config.run.out_dir
    train_run(small_config, dataset=digits, progress=False, log=None, callbacks=[StopAfter(1)])
    with pytest.raises(RunError, match=r"lr=0.5 \(saved: 0.05\).*drop those options"):
        resume(folder, changes={"lr": 0.5}, dataset=digits, progress=False, log=None)
    # Saved values repeated, and settings that do not change the numbers, are fine.
    result = resume(folder, changes={"lr": 0.05, "threads": 1}, dataset=digits, progress=False, log=None)
    assert result.trainer.epoch == small_config.run.epochs
    with pytest.raises(RunError, match="already finished its 4 epochs; nothing to resume"):
        resume(folder, dataset=digits, progress=False, log=None)


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*start a new run"):
        resume(tmp_path, progress=False, log=None)


# ---- the checkpoint file ----------------------------------------------------------------------------------
def write_checkpoint(path, epoch=1):
    return save_checkpoint(path, config={"epochs": 3}, trainer={"epoch": epoch}, finished=False)


def test_checkpoint_round_trip(tmp_path):
    path = write_checkpoint(tmp_path / "checkpoint.pt")
    assert load_checkpoint(path)["trainer"] == {"epoch": 1}


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "checkpoint.pt", epoch=1)
    good = path.read_bytes()

    def broken_save(obj, file, *args, **kwargs):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_checkpoint(path, epoch=2)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # the temporary file is gone
    monkeypatch.undo()
    assert load_checkpoint(path)["trainer"]["epoch"] == 1


def test_interrupted_first_write_leaves_nothing(tmp_path, monkeypatch):
    def interrupted_save(obj, file, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(tmp_path / "checkpoint.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) // 2], "corrupt or truncated"),
        (lambda data: b"", "corrupt or truncated"),
        (lambda data: b"not a checkpoint at all" * 10, "corrupt or truncated"),
    ],
    ids=["truncated", "empty", "garbage"],
)
def test_damaged_checkpoint_gives_a_clear_error(tmp_path, damage, message):
    path = write_checkpoint(tmp_path / "checkpoint.pt")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is {message} .*--overwrite"):
        load_checkpoint(path)


def test_foreign_or_incomplete_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="is not an evosparse checkpoint"):
        load_checkpoint(path)
    torch.save({"format": "evosparse-checkpoint", "version": 1, "config": {}}, path)
    with pytest.raises(CheckpointError, match="lacks trainer, finished"):
        load_checkpoint(path)
    torch.save({"format": "evosparse-checkpoint", "version": 99, "config": {}, "trainer": {}, "finished": 0}, path)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(path)


def test_checkpoint_of_another_model_cannot_be_resumed(digits, small_config):
    folder = run_module.Path(small_config.run.out_dir)
    train_run(small_config, dataset=digits, progress=False, log=None, callbacks=[StopAfter(1)])
    checkpoint = load_checkpoint(folder / "checkpoint.pt")
    checkpoint["config"]["model"]["hidden"] = [16, 16]  # the saved weights no longer fit the config
    save_checkpoint(
        folder / "checkpoint.pt",
        config=checkpoint["config"],
        trainer=checkpoint["trainer"],
        finished=False,
        run_id=checkpoint["run_id"],
    )
    with pytest.raises(CheckpointError, match="does not match the model of its own config"):
        resume(folder, dataset=digits, progress=False, log=None)
