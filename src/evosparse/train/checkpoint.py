"""Checkpoints: everything a run needs to continue exactly as if it had never stopped.

A checkpoint is one ``torch.save`` file holding a dict:

* ``format`` / ``version``: identify the file;
* ``config``: the run's :class:`TrainConfig` as a dict;
* ``trainer``: :meth:`Trainer.state_dict` -- epoch and step counters, the model's state dict (sparse
  topology included: ``rows`` / ``cols`` of every :class:`SparseLinear`), the optimizer's state dict
  (momentum / Adam moments), the model's generator (dropout masks), the data-shuffling generator, the
  history so far, and the state of stateful callbacks (the topology strategy's random generator);
* ``finished``: whether the run completed all its epochs.

Files are written atomically (:func:`evosparse.io.atomic.atomic_write`) and read with
``torch.load(weights_only=True)``: no arbitrary code runs when a checkpoint is opened. A missing,
truncated or foreign file raises :class:`CheckpointError` with what to do about it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from evosparse.io.atomic import atomic_write

FORMAT = "evosparse-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "config", "trainer", "finished")


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, truncated or not an evosparse checkpoint."""


def save_checkpoint(path: str | Path, *, config: dict[str, Any], trainer: dict[str, Any], finished: bool) -> Path:
    """Write a checkpoint atomically (a crash leaves the previous checkpoint intact)."""
    payload = {"format": FORMAT, "version": VERSION, "config": config, "trainer": trainer, "finished": finished}
    return atomic_write(path, lambda file: torch.save(payload, file))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; start a new run (without --resume) or check --out-dir")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for damaged files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({reason}); delete it and start again with --overwrite"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an evosparse checkpoint; point --out-dir at a folder of evosparse train")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(missing)}: it is damaged; start again with --overwrite"
        )
    if payload["version"] != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {payload['version']}, this evosparse reads version {VERSION}"
        )
    return payload
