"""``compare`` reuses a run only if it recorded the same recipe, and counts a repeated value once."""

from __future__ import annotations

import json

import pytest

from evosparse.train.compare import compare, plan_runs, run_config, run_folder, run_one


def test_duplicates_count_once():
    assert plan_runs(["set", "set"], [0.1, 0.10, 0.2], [0, 0, 1]) == [
        ("dense", None, 0), ("set", 0.1, 0), ("set", 0.2, 0), ("dense", None, 1), ("set", 0.1, 1), ("set", 0.2, 1),
    ]  # fmt: skip


def one(small_config, tmp_path, **changes) -> dict:
    config = run_config(small_config.replace(**changes), "set", 0.1, 3, run_folder(tmp_path, "set", 0.1, 3))
    return run_one(config.to_dict(), "set", 0.1)


def test_a_run_of_another_recipe_is_trained_again(small_config, tmp_path, digits):
    first = one(small_config, tmp_path, epochs=2)
    assert first["note"] == "new"
    assert one(small_config, tmp_path, epochs=2)["note"] == "reused"
    again = one(small_config, tmp_path, epochs=3)
    assert again["note"].startswith("rerun: the earlier run in set-d0.1-s3 had epochs = 2 (now 3)")
    history = json.loads((tmp_path / "set-d0.1-s3" / "history.json").read_text())
    assert len(history) == 3
    assert one(small_config, tmp_path, epochs=3, threads=1)["note"] == "reused"  # threads change no numbers


def test_an_interrupted_run_of_the_same_recipe_is_resumed(small_config, tmp_path, monkeypatch):
    from evosparse.train import run as run_module
    from evosparse.train.callbacks import Callback

    class StopAfterOne(Callback):
        def _on_epoch_end(self):
            return self.trainer.epoch < 1

    real_train = run_module.train
    monkeypatch.setattr(run_module, "train", lambda *a, **k: real_train(*a, **{**k, "callbacks": [StopAfterOne()]}))
    one(small_config, tmp_path, epochs=3)  # stops after epoch 1, like a killed run
    monkeypatch.undo()
    row = one(small_config, tmp_path, epochs=3)
    assert row["note"] == "resumed"
    assert len(json.loads((tmp_path / "set-d0.1-s3" / "history.json").read_text())) == 3


def test_comparison_folder_is_a_run_folder(small_config, tmp_path):
    from evosparse.io import RunFolderError, read_manifest

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match=r"not part of a compare run \(notes.txt\)"):
        compare(small_config.replace(epochs=1), ["set"], [0.1], [0], tmp_path, plots=False, log=None)
    (tmp_path / "notes.txt").unlink()
    rows = compare(small_config.replace(epochs=1), ["set", "set"], [0.1], [0, 0], tmp_path, plots=False, log=None)
    assert [(r["strategy"], r["seed"]) for r in rows] == [("dense", 0), ("set", 0)]
    manifest = read_manifest(tmp_path)
    assert manifest["kind"] == "compare" and manifest["config"]["seeds"] == [0]


def test_a_comparison_folder_of_an_earlier_version_is_continued(small_config, tmp_path):
    from evosparse.io import read_manifest

    legacy = tmp_path / "set-d0.1-s0"  # a run folder without run.json: its recipe is unknown
    legacy.mkdir()
    (legacy / "summary.json").write_text('{"finished": true}')
    (tmp_path / "results.csv").write_text("strategy\n")
    rows = compare(small_config.replace(epochs=1), ["set"], [0.1], [0], tmp_path, dense=False, plots=False, log=None)
    assert rows[0]["note"] == "new"  # trained again, not reused
    assert read_manifest(tmp_path)["kind"] == "compare" and read_manifest(legacy)["kind"] == "train"
