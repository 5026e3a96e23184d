"""SHA-256 of the *content* of nested data: what a loader compares with the checksum a file records.

The digest covers values, not file bytes, so it can live inside the file it checks: a flipped byte
either breaks the container (the loader reports a corrupt file) or changes a value (the digest no
longer matches). Dicts are digested in insertion order (every writer here preserves it), lists and
tuples alike (JSON has no tuples), arrays by dtype, shape and bytes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# A hook for array types other than numpy's (torch tensors): returns (dtype name, shape, raw bytes -- bytes or
# a contiguous buffer such as a numpy array, hashed without a copy), or None for objects it does not handle.
LeafEncoder = Callable[[Any], "tuple[str, tuple[int, ...], bytes | memoryview | np.ndarray] | None"]


def content_digest(data: Any, *, leaf: LeafEncoder | None = None) -> str:
    """Hex SHA-256 of ``data``: None, bool, int, float, str, bytes, lists, tuples, dicts and numpy arrays."""
    hasher = hashlib.sha256()
    _feed(hasher, data, leaf, "data")
    return hasher.hexdigest()


def file_sha256(path: str | Path, *, block_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the data files a run read, recorded in its manifest)."""
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(block_size):
            hasher.update(block)
    return hasher.hexdigest()


def _chunk(hasher: Any, tag: bytes, payload: bytes | memoryview) -> None:
    # The payload is fed as it is, not concatenated: an array's bytes are hashed from its own memory (a
    # checkpoint of a 54M-connection model would otherwise copy every array twice). Same digest either way.
    payload = memoryview(payload).cast("B")
    hasher.update(tag + payload.nbytes.to_bytes(8, "little"))
    hasher.update(payload)


def _feed(hasher: Any, value: Any, leaf: LeafEncoder | None, where: str) -> None:
    if value is None:
        _chunk(hasher, b"N", b"")
    elif isinstance(value, (bool, np.bool_)):
        _chunk(hasher, b"B", b"1" if value else b"0")
    elif isinstance(value, (int, np.integer)):
        _chunk(hasher, b"I", str(int(value)).encode())
    elif isinstance(value, (float, np.floating)):
        number = float(value)
        _chunk(hasher, b"F", (repr(number) if not math.isnan(number) else "nan").encode())
    elif isinstance(value, str):
        _chunk(hasher, b"S", value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, (bytes, bytearray)):
        _chunk(hasher, b"Y", bytes(value))
    elif isinstance(value, (list, tuple)):
        _chunk(hasher, b"L", str(len(value)).encode())
        for index, item in enumerate(value):
            _feed(hasher, item, leaf, f"{where}[{index}]")
    elif isinstance(value, dict):
        _chunk(hasher, b"D", str(len(value)).encode())
        for key, item in value.items():
            _feed(hasher, key, leaf, where)
            _feed(hasher, item, leaf, f"{where}[{key!r}]")
    elif isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"{where}: arrays of Python objects cannot be stored (they would need pickle)")
        _chunk(hasher, b"A", f"{value.dtype.str}|{value.shape}".encode())
        _chunk(hasher, b"a", _raw_bytes(np.ascontiguousarray(value)))
    else:
        encoded = leaf(value) if leaf is not None else None
        if encoded is None:
            raise TypeError(f"{where}: cannot store a {type(value).__name__} (only data: numbers, strings, arrays)")
        dtype, shape, raw = encoded
        _chunk(hasher, b"T", f"{dtype}|{tuple(shape)}".encode())
        _chunk(hasher, b"t", raw)


def _raw_bytes(array: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without a copy."""
    return memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
