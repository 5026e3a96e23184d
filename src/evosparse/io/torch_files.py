"""Torch state dicts on disk: ``torch.save`` written atomically, ``torch.load(weights_only=True)`` to read.

The saved dict is ``{"format", "version", "sha256", "data"}``; ``sha256`` is the content digest of
``data`` (every tensor's dtype, shape and bytes, every number and string), checked on load, so a
checkpoint damaged on disk is refused instead of resuming a run on garbage. ``weights_only=True`` means
the file can only hold tensors and plain data: opening a crafted file runs no code.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from evosparse.io.atomic import atomic_write
from evosparse.io.digest import content_digest
from evosparse.io.errors import FileFormatError, MissingFileError
from evosparse.io.serialize import _open_envelope, a


def tensor_leaf(value: Any) -> tuple[str, tuple[int, ...], memoryview] | None:
    """Digest encoding of a tensor (any dtype, layout or device), for :func:`content_digest`; the bytes of a
    contiguous CPU tensor are read in place (no copy)."""
    if not isinstance(value, torch.Tensor):
        return None
    tensor = value.detach().cpu()
    if tensor.layout != torch.strided:
        tensor = tensor.to_dense()
    raw = tensor.contiguous().reshape(-1).view(torch.uint8).numpy() if tensor.numel() else b""
    return str(tensor.dtype), tuple(tensor.shape), memoryview(raw)


def tensor_digest(data: Any) -> str:
    """:func:`content_digest` of nested data holding tensors."""
    return content_digest(data, leaf=tensor_leaf)


def save_torch(path: str | Path, data: Any, *, format: str, version: int = 1) -> Path:
    """Write ``data`` (a state dict: tensors, numbers, strings, lists, dicts) atomically with its checksum."""
    payload = {"format": format, "version": version, "sha256": tensor_digest(data), "data": data}
    return atomic_write(path, lambda file: torch.save(payload, file))


def load_failure(error: BaseException) -> tuple[bool, str]:
    """Why ``torch.load(weights_only=True)`` failed: (the file names code to run, a one-line reason)."""
    text = str(error)
    if "unsupported GLOBAL" in text or "Unsupported global" in text:
        return True, "it names Python objects to create"
    if "WeightsUnpickler error:" in text:  # torch's long advice is about trusting the file: we never do
        detail = " ".join(text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0].split())
        return False, f"not a torch file: {detail or 'unreadable'}"
    lines = text.strip().splitlines()
    return False, lines[0] if lines else type(error).__name__


def load_torch(path: str | Path, *, format: str, version: int = 1, what: str | None = None) -> Any:
    """The data of a file :func:`save_torch` wrote, after checking its format tag, version and checksum."""
    path, what = Path(path), what or f"{format} file"
    if not path.is_file():
        raise MissingFileError(f"no {what} at {path}")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of crafted files; we refuse them
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # RuntimeError, EOFError, UnpicklingError, ... for damaged or crafted files
        names_code, reason = load_failure(error)
        if names_code:
            raise FileFormatError(
                f"{path} holds objects other than tensors and plain data, which evosparse never loads "
                f"(unpickling them could run code); it is not {a(what)}"
            ) from None
        raise FileFormatError(f"{path} is not {a(what)} (truncated or corrupt: {reason})") from None
    return _open_envelope(payload, path, format=format, version=version, what=what, digest=tensor_digest)
