"""Data-only files: nested data as JSON, numpy arrays in ``.npz``; a format tag and a checksum in each.

Two formats, both readable without running any code from the file:

* **JSON** (:func:`save_json` / :func:`load_json`): ``{"format", "version", "sha256", "data"}``, for
  configs, manifests, summaries: dicts (string keys), lists, strings, numbers, booleans, None.
* **npz** (:func:`save_arrays` / :func:`load_arrays`): the same nested data with numpy arrays anywhere
  in it. Each array is a member of a standard ``.npz`` (read with ``numpy.load(allow_pickle=False)``:
  an array of Python objects, which would need pickle, is refused); the structure, the format tag and
  the checksum are the JSON member ``__meta__``.

Every file is written atomically (:mod:`evosparse.io.atomic`) and records the SHA-256 of its content
(:func:`evosparse.io.digest.content_digest`); a loader checks the format tag, the version and the
checksum, and a foreign, truncated, corrupt or tampered file raises :class:`FileFormatError` in one line
that names the file. Pickle is never used: a pickle file is recognised and refused, never opened.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from evosparse.io.atomic import atomic_write, atomic_write_bytes
from evosparse.io.digest import content_digest
from evosparse.io.errors import FileFormatError, MissingFileError

META = "__meta__"
ARRAY_KEY = "__array__"
PICKLE_MAGIC = b"\x80"  # the first byte of every pickle of protocol 2 or later


# ---- JSON ------------------------------------------------------------------------------------------------
def dump_json(data: Any, *, format: str, version: int = 1) -> bytes:
    """The bytes :func:`save_json` writes (for :func:`evosparse.io.atomic.atomic_write_set`)."""
    _check_keys(data, "data")
    envelope = {"format": format, "version": version, "sha256": content_digest(data), "data": data}
    return (json.dumps(envelope, indent=1) + "\n").encode("utf-8")


def save_json(path: str | Path, data: Any, *, format: str, version: int = 1) -> Path:
    """Write ``data`` (dicts with string keys, lists, str, int, float, bool, None) atomically as JSON."""
    return atomic_write_bytes(path, dump_json(data, format=format, version=version))


def load_json(path: str | Path, *, format: str, version: int = 1, what: str | None = None) -> Any:
    """The data of a file :func:`save_json` wrote, after checking its format tag, version and checksum.

    ``what`` names the kind of file in errors, e.g. "evosparse NEAT checkpoint" (default: the format tag).
    """
    path, what = Path(path), what or f"{format} file"
    raw = _read(path, what)
    if raw.startswith(PICKLE_MAGIC):
        raise _pickle_error(path, what)
    try:
        envelope = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise corrupt_error(path, what, error) from None
    return _open_envelope(envelope, path, format=format, version=version, what=what)


# ---- npz -------------------------------------------------------------------------------------------------
def dump_arrays(data: Any, *, format: str, version: int = 1) -> bytes:
    """The bytes :func:`save_arrays` writes (for :func:`evosparse.io.atomic.atomic_write_set`)."""
    arrays: dict[str, np.ndarray] = {}
    structure = _extract(data, arrays, "data")
    envelope = {"format": format, "version": version, "sha256": content_digest(data), "data": structure}
    meta = np.frombuffer(json.dumps(envelope).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **{META: meta}, **arrays)
    return buffer.getvalue()


def save_arrays(path: str | Path, data: Any, *, format: str, version: int = 1) -> Path:
    """Write nested ``data`` with numpy arrays anywhere in it atomically as one ``.npz``."""
    payload = dump_arrays(data, format=format, version=version)
    return atomic_write(path, lambda file: file.write(payload))


def load_arrays(path: str | Path, *, format: str, version: int = 1, what: str | None = None) -> Any:
    """The data of a file :func:`save_arrays` wrote, after checking its format tag, version and checksum."""
    path, what = Path(path), what or f"{format} file"
    raw = _read(path, what)
    if raw.startswith(PICKLE_MAGIC):
        raise _pickle_error(path, what)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as members:
            if not isinstance(members, np.lib.npyio.NpzFile) or META not in members.files:
                raise FileFormatError(f"{path} is not {a(what)} (it has no {META} record)")
            envelope = json.loads(members[META].tobytes().decode("utf-8"))
            arrays = {name: members[name] for name in members.files if name != META}
    except FileFormatError:
        raise
    except ValueError as error:  # numpy refuses object arrays: they would need pickle
        if "allow_pickle" in str(error):
            raise _pickle_error(path, what) from None
        raise corrupt_error(path, what, error) from None
    except Exception as error:  # zipfile.BadZipFile, EOFError, zlib.error, OSError, UnicodeDecodeError, ...
        raise corrupt_error(path, what, error) from None
    if not isinstance(envelope, dict):
        raise FileFormatError(f"{path} is not {a(what)} (its {META} record is not an object)")
    try:
        envelope["data"] = _insert(envelope.get("data"), arrays)
    except (KeyError, TypeError) as error:
        raise FileFormatError(f"{path} is damaged: its {META} record names a missing array ({error})") from None
    return _open_envelope(envelope, path, format=format, version=version, what=what)


# ---- shared ----------------------------------------------------------------------------------------------
def _read(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise MissingFileError(f"no {what} at {path}")
    try:
        return path.read_bytes()
    except OSError as error:
        raise FileFormatError(f"cannot read {path}: {error.strerror or error}") from None


def _pickle_error(path: Path, what: str) -> FileFormatError:
    return FileFormatError(
        f"{path} holds pickled data, which evosparse never loads (unpickling can run arbitrary code); "
        f"it is not {a(what)} of this version"
    )


def _open_envelope(
    envelope: Any, path: Path, *, format: str, version: int, what: str, digest: Any = content_digest
) -> Any:
    if not isinstance(envelope, dict) or "format" not in envelope:
        raise FileFormatError(f"{path} is not {a(what)} (it has no format tag)")
    if envelope["format"] != format:
        raise FileFormatError(f"{path} is a {envelope['format']!r} file, not {a(what)} ({format!r})")
    if envelope.get("version") != version:
        raise FileFormatError(
            f"{path} has format version {envelope.get('version')!r}; this evosparse reads version {version}"
        )
    if "data" not in envelope or "sha256" not in envelope:
        raise FileFormatError(f"{path} is damaged: it lacks its data or its checksum")
    data = envelope["data"]
    try:
        actual = digest(data)
    except TypeError as error:
        raise FileFormatError(f"{path} is damaged ({error})") from None
    if actual != envelope["sha256"]:
        raise FileFormatError(
            f"{path} fails its SHA-256 checksum: the file was damaged or changed after it was written"
        )
    return data


def corrupt_error(path: Path, what: str, error: BaseException) -> FileFormatError:
    """The error for a file that cannot be parsed: truncated, corrupt or of another format."""
    return FileFormatError(f"{path} is not {a(what)} (truncated or corrupt: {_first_line(error)})")


def a(noun: str) -> str:
    """``noun`` with its indefinite article: "an evosparse checkpoint", "a run manifest"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_keys(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: dict keys must be strings to round-trip through JSON, got {key!r}")
            _check_keys(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_keys(item, f"{where}[{index}]")
    elif isinstance(value, np.ndarray):
        raise TypeError(f"{where}: numpy arrays go in save_arrays (npz), not in JSON")
    elif isinstance(value, np.generic):
        raise TypeError(f"{where}: convert numpy scalars with .item() before saving ({value!r})")
    elif value is not None and not isinstance(value, (bool, int, float, str)):
        raise TypeError(f"{where}: cannot store a {type(value).__name__} as JSON")


def _extract(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    """``value`` with every array replaced by ``{"__array__": name}`` and collected in ``arrays``."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"{where}: arrays of Python objects cannot be stored (they would need pickle)")
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {ARRAY_KEY: name}
    if isinstance(value, dict):
        if ARRAY_KEY in value:
            raise TypeError(f"{where}: the key {ARRAY_KEY!r} is reserved")
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: dict keys must be strings, got {key!r}")
            out[key] = _extract(item, arrays, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_extract(item, arrays, f"{where}[{index}]") for index, item in enumerate(value)]
    _check_keys(value, where)
    return value


def _insert(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {ARRAY_KEY}:
            return arrays[value[ARRAY_KEY]]
        return {key: _insert(item, arrays) for key, item in value.items()}
    if isinstance(value, list):
        return [_insert(item, arrays) for item in value]
    return value
