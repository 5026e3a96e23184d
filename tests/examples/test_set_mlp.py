"""examples/set_mlp.py, run as a script with a tiny budget on the bundled digits data."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "set_mlp.py"


@pytest.mark.usefixtures("one_thread")
def test_set_mlp_example_follows_the_paper_recipe_on_digits(monkeypatch, capsys):
    argv = ["--dataset", "digits", "--hidden", "64,64", "--epsilon", "5", "--epochs", "3", "--max-train", "600"]
    argv += ["--batch-size", "32", "--lr", "0.05"]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv, "--json"])
    runpy.run_path(str(SCRIPT), run_name="__main__")  # the script itself, top to bottom, argparse included
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("digits: 1198 train / 599 test samples")
    history = json.loads(lines[-1])
    assert [row["epoch"] for row in history] == [1, 2, 3]
    # SET rewires after every epoch but the last, and never changes the number of connections.
    assert [row["rewired"] for row in history] == [True, True, False]
    assert len({row["nnz"] for row in history}) == 1
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_accuracy"] > 0.5  # chance: 0.1
