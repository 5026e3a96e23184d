"""Hostile files for the bad-input tests: pickle payloads that would leave a marker file if unpickled,
byte flips and truncations of good files.

A test writes a payload where a loader expects its file, calls the loader, and asserts that it raised
the loader's one-line error *and* that the marker file does not exist (no code ran).
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np


class MarkerPayload:
    """Unpickling this runs ``os.system("touch MARKER")``: the marker proves that code ran."""

    def __init__(self, marker: str | Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def pickle_bytes(marker: str | Path, *, wrap: bool = True) -> bytes:
    """A pickle whose loading creates ``marker``; ``wrap``: inside a dict that looks like our formats."""
    payload = MarkerPayload(marker)
    obj = {"format": "evosparse-neat-checkpoint", "version": 1, "data": payload} if wrap else payload
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def object_npz_bytes(marker: str | Path) -> bytes:
    """A ``.npz`` whose only array is an object array holding the payload (numpy pickles it)."""
    buffer = io.BytesIO()
    array = np.empty(1, dtype=object)
    array[0] = MarkerPayload(marker)
    np.savez(buffer, __meta__=array, payload=array)
    return buffer.getvalue()


def torch_payload_bytes(marker: str | Path) -> bytes:
    """A ``torch.save`` file holding the payload beside plausible keys."""
    import torch

    buffer = io.BytesIO()
    torch.save({"format": "evosparse-checkpoint", "version": 1, "data": MarkerPayload(marker)}, buffer)
    return buffer.getvalue()


def flipped(data: bytes, position: int) -> bytes:
    """``data`` with every bit of the byte at ``position`` inverted."""
    return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]


def positions(size: int, count: int) -> list[int]:
    """``count`` positions spread over ``size`` bytes, always including the first and last."""
    if size <= count:
        return list(range(size))
    return sorted({round(i * (size - 1) / (count - 1)) for i in range(count)})
