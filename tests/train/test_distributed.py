"""Data-parallel training (:mod:`evosparse.train.distributed`) with real torch.distributed workers (gloo, 2 processes).

The expensive part, starting the two workers, happens once per module (:func:`two_workers`): every case runs in
that one process group (:mod:`distributed_scenarios`) and the tests below check its outcome against
single-process training of the same global batches.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from evosparse.nn.dropout import SeededDropout
from evosparse.train import TrainConfig, train
from evosparse.train.distributed import (
    DistributedError,
    Replicas,
    check_threads,
    check_world_size,
    init_replicas,
    launch_local,
    shard_bounds,
)

HERE = Path(__file__).parent


def gloo_missing() -> str | None:
    """Why the two-worker tests cannot run here (None: they can)."""
    import torch.distributed as dist

    if not dist.is_available():
        return "this torch build has no torch.distributed"
    if not dist.is_gloo_available():
        return "this torch build has no gloo backend"
    return None


needs_gloo = pytest.mark.skipif(gloo_missing() is not None, reason=str(gloo_missing()))


def base_config(root: Path, name: str, **changes) -> dict:
    """A run of a second: batch 63 splits 32 + 31, and the epoch's last batch (1198 = 19 x 63 + 1) leaves rank 1
    an empty shard; rewiring every 5 steps; dropout on (the shards must draw single-process masks)."""
    values = dict(
        hidden=(32, 32), epsilon=5, zeta=0.3, decay="constant", stop_after=None, update_unit="step", update_every=5,
        dropout=0.2, lr=0.05, epochs=2, batch_size=63, seed=3, threads=1, out_dir=str(root / name),
    )  # fmt: skip
    values.update(changes)
    return values


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """Both workers' outcomes of every scenario, and the configs they ran."""
    root = tmp_path_factory.mktemp("ddp")
    configs = {
        "set": base_config(root, "set"),
        "rigl": base_config(root, "rigl", strategy="rigl"),
        "resume": base_config(root, "resume"),
        "stopped": base_config(root, "stopped"),
        "perturbed": base_config(root, "perturbed", epochs=1),
    }
    sys.path.insert(0, str(HERE))  # the spawned workers import distributed_scenarios by name
    try:
        import distributed_scenarios

        outcomes = launch_local(2, distributed_scenarios.scenarios, (str(root), configs), threads=1)
    finally:
        sys.path.remove(str(HERE))
    return root, configs, outcomes


def single_process(config: dict, digits, tmp_path: Path, name: str):
    config = TrainConfig.from_dict({**config, "out_dir": str(tmp_path / name)})
    return train(config, dataset=digits, progress=False, log=None)


def assert_close_to_single_process(state: dict, model: torch.nn.Module) -> None:
    reference = model.state_dict()
    state = {key: torch.as_tensor(value) for key, value in state.items()}
    assert state.keys() == reference.keys()
    for key, expected in reference.items():
        if expected.dtype.is_floating_point:  # two partial sums instead of one: float rounding only
            torch.testing.assert_close(state[key], expected, rtol=1e-4, atol=1e-5, msg=key)
        else:  # rows / cols: the topology after every rewiring is exactly single-process training's
            assert torch.equal(state[key], expected), key


@needs_gloo
@pytest.mark.parametrize("strategy", ["set", "rigl"])
def test_two_workers_train_the_single_process_network(two_workers, digits, tmp_path, strategy):
    _, configs, (rank0, rank1) = two_workers
    reference = single_process(configs[strategy], digits, tmp_path, strategy)
    topology = next(c for c in reference.trainer.callbacks.callbacks if hasattr(c, "strategy"))
    assert topology.strategy.n_updates >= 6  # several rewirings happened (steps 5, 10, ... of 40)
    assert_close_to_single_process(rank0[strategy]["state"], reference.model)
    # The replicas are bit for bit the same model, topology included.
    assert rank0[strategy]["digests"] == rank1[strategy]["digests"]
    for key in rank0[strategy]["state"]:
        assert (rank0[strategy]["state"][key] == rank1[strategy]["state"][key]).all(), key
    summary = rank0[strategy]["summary"]
    assert summary["world_size"] == 2
    ref_summary = reference.summary
    assert summary["final_test_accuracy"] == pytest.approx(ref_summary["final_test_accuracy"], abs=2 / 599)
    # One flat all-reduce per step: every parameter's gradient, plus the loss and the hits.
    n_parameters = sum(p.numel() for p in reference.model.parameters())
    assert summary["allreduce_bytes_per_step"] == 4 * (n_parameters + 2)
    assert (summary["rigl_gather_bytes"] > 0) == (strategy == "rigl")


@needs_gloo
def test_only_rank_0_writes_the_run_folder(two_workers):
    root, configs, (rank0, rank1) = two_workers
    assert rank1["written"] == []
    folder = Path(configs["set"]["out_dir"])
    assert {"run.json", "config.toml", "checkpoint.pt", "history.csv", "summary.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert any(path.startswith(str(folder)) for path in rank0["written"])


@needs_gloo
def test_a_distributed_run_resumes_exactly(two_workers):
    _, _, (rank0, rank1) = two_workers
    # Stopped after epoch 1 and resumed: the same replica, bit for bit, as the uninterrupted run of that config.
    assert rank0["resumed"]["digests"] == rank0["set"]["digests"]
    assert rank1["resumed"]["digests"] == rank0["set"]["digests"]
    assert rank0["resumed"]["summary"]["epochs"] == 2


@needs_gloo
def test_a_distributed_checkpoint_resumes_in_one_process(two_workers, digits, tmp_path):
    """A checkpoint does not depend on the number of workers: two workers' epoch 1, then one process's epoch 2."""
    from evosparse.train import resume

    _, configs, _ = two_workers
    finished = resume(configs["stopped"]["out_dir"], dataset=digits, progress=False, log=None)
    reference = single_process(configs["set"], digits, tmp_path, "set")
    assert finished.summary["epochs"] == 2 and "world_size" not in finished.summary
    assert_close_to_single_process(finished.model.state_dict(), reference.model)


@needs_gloo
def test_a_refused_folder_stops_every_rank(two_workers):
    _, _, (rank0, rank1) = two_workers
    assert rank0["refused"].startswith("RunFolderError") or "already holds a run" in rank0["refused"]
    assert "rank 0 stopped before training" in rank1["refused"] and "already holds a run" in rank1["refused"]


@needs_gloo
def test_the_replica_check_stops_every_rank_when_one_drifts(two_workers):
    _, _, (rank0, rank1) = two_workers
    for outcome in (rank0, rank1):
        message = outcome["perturbed"]
        assert message.startswith("ReplicaDivergenceError"), message
        assert "at step 4" in message and "rank 1's net.0.values differs from rank 0's" in message


# ---- without workers -------------------------------------------------------------------------------------------------
def test_shards_cover_the_batch_in_order_as_evenly_as_possible():
    for n in range(0, 40):
        for world_size in range(1, 6):
            bounds = [shard_bounds(n, world_size, rank) for rank in range(world_size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [stop - start for start, stop in bounds]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_dropout_of_a_shard_draws_the_single_process_masks():
    x = torch.randn(10, 7)
    full = SeededDropout(0.5, torch.Generator().manual_seed(1))
    shard = SeededDropout(0.5, torch.Generator().manual_seed(1))
    shard.row_offset = 6
    torch.testing.assert_close(shard(x[6:]), full(x)[6:], rtol=0, atol=0)


def test_without_a_torchrun_environment_the_error_says_how_to_launch(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DistributedError, match="torchrun --nproc-per-node N -m evosparse train"):
        init_replicas()


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda: check_world_size(4, 3), ["--distributed runs 4 workers", "--batch-size is 3", "1..3 workers"]),
        (lambda: check_world_size(0, 3), ["at least 1 worker"]),
        (lambda: check_threads(2, 2, cores=2), ["--threads 2 with 2 workers", "4 threads on 2 cores", "1..1"]),
        (lambda: check_threads(None, 3, cores=2), ["--distributed 3", "2 cores", "1..2"]),
    ],
)
def test_bad_distributed_settings_are_one_line_errors(call, fragments):
    with pytest.raises(DistributedError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_attach_refuses_more_workers_than_examples_per_batch(make_trainer, small_config):
    trainer = make_trainer(small_config.replace(batch_size=2))
    with pytest.raises(DistributedError, match="--batch-size is 2"):
        Replicas(rank=0, world_size=3).attach(trainer)


def test_cli_distributed_errors(tmp_path, capsys, monkeypatch):
    from evosparse.cli.main import main

    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for argv, fragment in [
        (["train", "--distributed"], "joins a torchrun job"),
        (["train", "--distributed", "0"], "--distributed needs a number of workers >= 1, got 0"),
        (["train", "--distributed", "two"], "--distributed takes a number of local workers, got 'two'"),
        (["train", "--distributed", "2", "--batch-size", "1"], "give --batch-size >= 2"),
    ]:
        try:
            code = main([*argv, "--out-dir", str(tmp_path / "run"), "--quiet"])
        except SystemExit as exit_:
            code = exit_.code
        err = capsys.readouterr().err
        assert code == 2 and fragment in err, (argv, err)
        assert not (tmp_path / "run").exists()


@needs_gloo
@pytest.mark.slow
def test_cli_distributed_2_trains_like_one_process(tmp_path, capsys):
    from evosparse.cli.main import main

    flags = ["--hidden", "32,32", "--epsilon", "5", "--epochs", "2", "--batch-size", "64", "--threads", "1", "--quiet"]
    assert main(["train", *flags, "--out-dir", str(tmp_path / "one")]) == 0
    assert main(["train", *flags, "--out-dir", str(tmp_path / "two"), "--distributed", "2"]) == 0
    import json

    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    two = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert two["world_size"] == 2 and two["nnz_per_layer"] == one["nnz_per_layer"]
    assert two["final_test_accuracy"] == pytest.approx(one["final_test_accuracy"], abs=2 / 599)


@needs_gloo
@pytest.mark.slow
def test_torchrun_path(tmp_path):
    """The documented launch: torchrun --nproc-per-node 2 -m evosparse train ... --distributed."""
    import shutil
    import subprocess

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    if not Path(torchrun).exists():
        pytest.skip("torchrun is not installed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    command = [
        torchrun, "--nproc-per-node", "2", "--master-port", str(_free_port()), "-m", "evosparse", "train",
        "--distributed", "--hidden", "32,32", "--epochs", "1", "--threads", "1", "--quiet",
        "--out-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "final test accuracy" in done.stdout
    assert done.stdout.count("final test accuracy") == 1  # rank 0 alone prints
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def _free_port() -> int:
    from evosparse.train.distributed import free_port

    return free_port()
