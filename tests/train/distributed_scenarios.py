"""What each worker of the data-parallel tests runs (imported by name in the spawned workers, so not a test file).

:func:`scenarios` runs, in one process group (starting workers costs seconds each), every case
``test_distributed.py`` checks, and returns per case what the test compares: the final weights and
indices of this rank's replica, its digests, error messages, and the files this rank wrote.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from evosparse.train import Callback, TrainConfig
from evosparse.train.distributed import Replicas, replica_digests, train_distributed

WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000  # O_WRONLY | O_RDWR | O_CREAT | O_TRUNC


class StopAfterEpoch(Callback):
    """Stops training at the end of ``epoch`` (an interrupted run, to resume)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def _on_epoch_end(self) -> bool:
        return self.trainer.epoch < self.epoch


class PerturbOneReplica(Callback):
    """On rank ``rank`` only, nudges one weight after step ``step``: the replicas no longer agree."""

    def __init__(self, replicas: Replicas, *, rank: int, step: int) -> None:
        super().__init__()
        self.replicas, self.rank, self.step = replicas, rank, step

    def _on_step_end(self) -> bool:
        if self.replicas.rank == self.rank and self.trainer.step == self.step:
            with torch.no_grad():
                next(self.trainer.model.parameters())[0] += 1e-3
        return True


def _record_writes(root: str) -> list[str]:
    """Every file this process opens for writing, or renames, under ``root`` (a Python audit hook)."""
    written: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event == "open" and args and isinstance(args[0], str | Path) and str(args[0]).startswith(root):
            mode, flags = args[1], args[2]
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & WRITE_FLAGS
            ):
                written.append(str(args[0]))
        elif event == "os.rename" and len(args) > 1 and str(args[1]).startswith(root):
            written.append(str(args[1]))

    sys.addaudithook(hook)
    return written


def _replica(result: Any) -> dict[str, Any]:
    names, digests = replica_digests(result.model)
    return {
        # numpy, not tensors: a tensor sent through a multiprocessing queue is shared memory that needs its
        # sender alive until the receiver has it, while this worker leaves right after sending.
        "state": {k: v.detach().numpy().copy() for k, v in result.model.state_dict().items()},
        "digests": dict(zip(names, digests)),
        "summary": result.summary,
    }


def scenarios(replicas: Replicas, root: str, configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run every case on this rank; see the module docstring."""
    from evosparse.data import load_dataset

    digits = load_dataset("digits")
    written = _record_writes(root)
    quiet = {"dataset": digits, "progress": False, "log": None}
    out: dict[str, Any] = {"rank": replicas.rank}
    for name in ("set", "rigl"):  # whole runs, rewiring at steps 5, 10, ...
        out[name] = _replica(train_distributed(replicas, TrainConfig.from_dict(configs[name]), **quiet))
    # An interrupted run (stopped after epoch 1), then resumed by the same workers.
    interrupted = TrainConfig.from_dict(configs["resume"])
    train_distributed(replicas, interrupted, callbacks=[StopAfterEpoch(1)], **quiet)
    out["resumed"] = _replica(train_distributed(replicas, resume_dir=interrupted.run.out_dir, **quiet))
    # Left interrupted: the test resumes it in one process.
    train_distributed(replicas, TrainConfig.from_dict(configs["stopped"]), callbacks=[StopAfterEpoch(1)], **quiet)
    # Rank 0 refuses a folder that holds a run: every rank must stop, none may wait forever.
    try:
        train_distributed(replicas, TrainConfig.from_dict(configs["set"]), **quiet)
    except Exception as error:
        out["refused"] = f"{type(error).__name__}: {error}"
    # One replica nudged after step 3: the check (every step here) must stop every rank at step 4.
    replicas.check_every = 1
    try:
        perturb = PerturbOneReplica(replicas, rank=1, step=3)
        train_distributed(replicas, TrainConfig.from_dict(configs["perturbed"]), callbacks=[perturb], **quiet)
    except Exception as error:
        out["perturbed"] = f"{type(error).__name__}: {error}"
    out["written"] = sorted(set(written))
    return out
