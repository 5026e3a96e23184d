"""``evosparse train / info / bench``: help, outputs, files, resume, consistency with the library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evosparse.nn import SparseLinear
from evosparse.train import TrainConfig, load_checkpoint

COMMANDS = [(), ("train",), ("info",), ("bench",), ("compare",), ("plot",), ("plot", "degrees")]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "top" for c in COMMANDS])
def test_help(cli, command):
    outcome = cli(*command, "--help")
    assert outcome.code == 0 and outcome.err == ""
    assert outcome.out.startswith(f"usage: evosparse{''.join(' ' + c for c in command)}")


def test_train_help_lists_every_config_field(cli):
    out = cli("train", "--help").out
    for flag in ("--config", "--resume", "--overwrite", "--out-dir", "--quiet", "--epsilon", "--zeta", "--rule",
                 "--update-every", "--update-unit", "--decay", "--stop-after", "--nesterov", "--weight-decay",
                 "--threads", "--backend", "--no-download"):  # fmt: skip
        assert flag in out


def test_console_script_runs(tmp_path):
    # The installed entry point, in a real process: help works and bad input exits 2 without a traceback.
    console_script = Path(sys.executable).parent / "evosparse"
    script = (
        [str(console_script)]
        if console_script.is_file()
        else [sys.executable, "-c", "import sys; from evosparse.cli import main; sys.exit(main())"]
    )
    helped = subprocess.run([*script, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "train" in helped.stdout
    bad = subprocess.run([*script, "train", "--zeta", "1.2"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr == "error: zeta must be in [0, 1), got 1.2\n"
    assert not (tmp_path / "runs").exists()


def test_train_small_run_writes_history_checkpoint_config(cli, small_run, tmp_path):
    out_dir = tmp_path / "run"
    outcome = cli("train", *small_run, "--out-dir", out_dir)
    assert outcome.code == 0, outcome.err
    assert "final test accuracy" in outcome.out and f"results in {out_dir}" in outcome.out
    assert "epoch 1/3" not in outcome.out  # --quiet: no per-epoch lines
    history = json.loads((out_dir / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert (out_dir / "history.csv").read_text().startswith("epoch,step,lr,train_loss,train_accuracy")
    assert history[-1]["test_accuracy"] > 0.5
    config = TrainConfig.from_file(out_dir / "config.toml")
    assert (config.model.hidden, config.run.epochs, config.topology.stop_after, config.run.out_dir) == (
        (32, 32),
        3,
        None,
        str(out_dir),
    )
    assert load_checkpoint(out_dir / "checkpoint.pt")["finished"]


def test_train_prints_a_line_per_epoch(cli, small_run, tmp_path):
    flags = [f for f in small_run if f != "--quiet"]
    outcome = cli("train", *flags, "--epochs", "2", "--out-dir", tmp_path / "run")
    assert outcome.code == 0
    lines = outcome.out.splitlines()
    assert lines[0].startswith("epoch 1/2 | train loss") and "test loss" in lines[0] and "nnz" in lines[0]
    assert lines[1].startswith("epoch 2/2")


def test_config_file_and_flags(cli, small_run, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('hidden = [16]\nlr = 0.2\nmodel = "dense"\n')
    outcome = cli("train", "--config", path, "--lr", "0.1", "--print-config")
    assert outcome.code == 0
    config = TrainConfig.from_toml(outcome.out)
    # The file beats the defaults, the flag beats the file.
    assert (config.model.hidden, config.model.kind, config.optimizer.lr) == ((16,), "dense", 0.1)
    assert config.run.epochs == TrainConfig().run.epochs


def test_resume_continues_bit_identically(cli, small_run, tmp_path):
    from evosparse.train import Callback, train

    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert cli("train", *small_run, "--out-dir", straight).code == 0

    class StopAfterOne(Callback):
        def _on_epoch_end(self):
            return False

    base = TrainConfig.from_file(straight / "config.toml")
    train(base.replace(out_dir=str(interrupted)), progress=False, log=None, callbacks=[StopAfterOne()])
    outcome = cli("train", "--resume", "--out-dir", interrupted, "--quiet")
    assert outcome.code == 0, outcome.err
    a = load_checkpoint(straight / "checkpoint.pt")["trainer"]
    b = load_checkpoint(interrupted / "checkpoint.pt")["trainer"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    strip = lambda rows: [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in rows]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])


def test_overwrite_flag(cli, small_run, tmp_path):
    out_dir = tmp_path / "run"
    assert cli("train", *small_run, "--out-dir", out_dir).code == 0
    outcome = cli("train", *small_run, "--epochs", "1", "--out-dir", out_dir, "--overwrite")
    assert outcome.code == 0
    assert len(json.loads((out_dir / "history.json").read_text())) == 1


def test_default_out_dir(cli, small_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("train", *small_run, "--epochs", "1").code == 0
    assert cli("train", *small_run, "--epochs", "1").code == 0  # a second run gets a new folder
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["digits-sparse-s3", "digits-sparse-s3-2"]


# ---- info ------------------------------------------------------------------------------------------------
def test_info_numbers_match_sparse_linear(cli):
    outcome = cli("info", "--layers", "784,1000,1000,1000,10", "--epsilon", "20", "--json")
    assert outcome.code == 0
    info = json.loads(outcome.out)
    rng = np.random.default_rng(0)
    sizes = [784, 1000, 1000, 1000, 10]
    for row, (n_in, n_out) in zip(info["per_layer"], zip(sizes[:-1], sizes[1:])):
        layer = SparseLinear(n_in, n_out, epsilon=20, seed=rng)
        memory = layer.memory_bytes()
        assert (row["n_in"], row["n_out"], row["connections"]) == (n_in, n_out, layer.nnz)
        assert row["density"] == pytest.approx(layer.density)
        assert (row["bytes"], row["dense_bytes"]) == (memory["total"], memory["dense"])
    assert info["total"]["connections"] == sum(row["connections"] for row in info["per_layer"])
    assert info["total"]["dense_connections"] == 784 * 1000 + 2 * 1000 * 1000 + 1000 * 10
    assert info["total"]["neurons"] == sum(sizes)
    # SET paper, MNIST: epsilon 20 keeps about 4% of the first layer (784 x 1000).
    assert info["per_layer"][0]["density"] == pytest.approx(20 * (784 + 1000) / (784 * 1000), rel=1e-3)


def test_info_table(cli):
    outcome = cli("info", "--layers", "784,1000,10")
    assert outcome.code == 0
    lines = outcome.out.splitlines()
    assert lines[0].startswith("SET-MLP 784-1000-10 (1,794 neurons), epsilon 20")
    assert lines[2].split()[:5] == ["1", "784", "->", "1000", "35,680"]
    assert lines[4].startswith("total") and "less memory than the dense MLP" in lines[5]


def test_info_from_dataset_and_hidden(cli):
    info = json.loads(cli("info", "--dataset", "digits", "--hidden", "100", "--json").out)
    assert info["layers"] == [64, 100, 10]
    default = json.loads(cli("info", "--json").out)
    assert default["layers"] == [64, *TrainConfig().model.hidden, 10]


# ---- bench -----------------------------------------------------------------------------------------------
def bench_results(out: str) -> list[dict]:
    """The JSON list ``--json`` prints after the tables."""
    return json.loads(out[out.index("\n[\n") + 1 :])


def test_bench_quick_runs_the_real_benchmark(cli):
    from evosparse.bench.kernels import OPS, QUICK_SIZES

    outcome = cli("bench", "--quick", "--threads", "1", "--json")
    assert outcome.code == 0, outcome.err
    assert f"== {QUICK_SIZES[0].label}" in outcome.out and "Summary (GF/s, medians):" in outcome.out
    results = bench_results(outcome.out)
    assert {row["size"] for row in results} == {QUICK_SIZES[0].label}  # the one quick size
    assert {row["threads"] for row in results} == {1}
    assert {"ours", "dense", "torch.sparse", "scipy"} <= {row["impl"] for row in results}
    ours = {row["op"]: row for row in results if row["impl"] == "ours"}
    assert set(ours) == set(OPS) and all(row["ms"] > 0 and row["gflops"] > 0 for row in ours.values())
    assert all(row["nnz"] == round(QUICK_SIZES[0].density * 1000 * 1000) for row in results)


def test_bench_passes_thread_counts_and_repeats_through(cli):
    outcome = cli("bench", "--quick", "--threads", "1,2", "--repeats", "2", "--json")
    assert outcome.code == 0, outcome.err
    assert sorted({row["threads"] for row in bench_results(outcome.out)}) == [1, 2]
    assert cli("bench", "--quick", "--repeats", "0").code == 2


def test_interrupted_run_says_how_to_resume_and_resumes(cli, small_run, tmp_path, monkeypatch):
    from evosparse.train.loop import Trainer

    out_dir = tmp_path / "run"
    original = Trainer._train_epoch

    def interrupted_in_epoch_two(self):
        if self.epoch == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of epoch 2
        return original(self)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted_in_epoch_two)
    outcome = cli("train", *small_run, "--out-dir", out_dir)
    assert outcome.code == 130
    assert f"evosparse train --resume --out-dir {out_dir}" in outcome.err and "Traceback" not in outcome.err
    assert load_checkpoint(out_dir / "checkpoint.pt")["trainer"]["epoch"] == 1
    monkeypatch.undo()
    outcome = cli("train", "--resume", "--out-dir", out_dir, "--quiet")
    assert outcome.code == 0 and "after 3 epochs" in outcome.out


def test_run_interrupted_before_its_first_checkpoint(cli, small_run, tmp_path, monkeypatch):
    from evosparse.train.loop import Trainer

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    out_dir = tmp_path / "run"
    assert cli("train", *small_run, "--out-dir", out_dir).code == 130
    monkeypatch.undo()
    outcome = cli("train", "--resume", "--out-dir", out_dir)
    assert outcome.code == 2 and "stopped before its first checkpoint" in outcome.err and "--overwrite" in outcome.err
    assert cli("train", *small_run, "--out-dir", out_dir, "--overwrite").code == 0
