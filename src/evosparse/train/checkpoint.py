"""Checkpoints: everything a run needs to continue exactly as if it had never stopped.

A checkpoint is one ``torch.save`` file holding a dict:

* ``format`` / ``version``: identify the file;
* ``config``: the run's :class:`TrainConfig` as a dict;
* ``trainer``: :meth:`Trainer.state_dict` -- epoch and step counters, the model's state dict (sparse
  topology included: ``rows`` / ``cols`` of every :class:`SparseLinear`), the optimizer's state dict
  (momentum / Adam moments), the model's generator (dropout masks), the data-shuffling generator, the
  history so far, and the state of stateful callbacks (the topology strategy's random generator);
* ``finished``: whether the run completed all its epochs;
* ``run_id``: the id of the run folder's manifest (:class:`evosparse.io.RunFolder`) it belongs to;
* ``sha256``: the content digest of the above (:func:`evosparse.io.torch_files.tensor_digest`).

Files are written atomically (:func:`evosparse.io.atomic.atomic_write`) and read with
``torch.load(weights_only=True)``: no code runs when a checkpoint is opened. The checksum is verified
on every load, so a checkpoint damaged on disk (a flipped byte) is refused instead of resuming a run on
garbage. A missing, truncated, foreign or damaged file raises :class:`CheckpointError` with what to do.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from evosparse.io import FileFormatError
from evosparse.io.atomic import atomic_write
from evosparse.io.torch_files import load_failure, tensor_digest

FORMAT = "evosparse-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "config", "trainer", "finished")
CHECKED_KEYS = ("config", "trainer", "finished", "run_id")


class CheckpointError(FileFormatError):
    """A checkpoint file is missing, unreadable, truncated, damaged or not an evosparse checkpoint."""


def save_checkpoint(
    path: str | Path, *, config: dict[str, Any], trainer: dict[str, Any], finished: bool, run_id: str | None = None
) -> Path:
    """Write a checkpoint atomically (a crash or a full disk leaves the previous checkpoint intact)."""
    payload = {"format": FORMAT, "version": VERSION, "config": config, "trainer": trainer, "finished": finished}
    payload["run_id"] = run_id
    payload["sha256"] = tensor_digest({key: payload[key] for key in CHECKED_KEYS})
    return atomic_write(path, lambda file: torch.save(payload, file))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, check its format and verify its checksum."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; start a new run (without --resume) or check --out-dir")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of crafted files; we refuse them
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for damaged files
        names_code, reason = load_failure(error)
        if names_code:
            raise CheckpointError(
                f"checkpoint {path} holds objects other than tensors and plain data, which evosparse never "
                "loads (unpickling them could run code); delete it and start again with --overwrite"
            ) from None
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
    if "sha256" not in payload:
        raise CheckpointError(
            f"checkpoint {path} has no checksum (written by an earlier evosparse), so it cannot be verified; "
            "start again with --overwrite"
        )
    payload.setdefault("run_id", None)
    try:
        digest = tensor_digest({key: payload[key] for key in CHECKED_KEYS})
    except TypeError as error:
        raise CheckpointError(f"checkpoint {path} is damaged ({error}); start again with --overwrite") from None
    if digest != payload["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} fails its SHA-256 checksum: it was damaged or changed after it was written; "
            "delete it and start again with --overwrite"
        )
    return payload
