"""Parsers for the published file formats: IDX (MNIST), MATLAB .mat (scikit-feature), UCI text, CIFAR-10 binary records.

Each parser returns raw arrays exactly as stored (no scaling, labels as published) and turns any
parsing failure into a :class:`CorruptFileError` that names the file.
"""

from __future__ import annotations

import gzip
import tarfile
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse

from evosparse.data.errors import CorruptFileError

# IDX type byte -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# What the standard parsers raise on damaged input (gzip.BadGzipFile is an OSError).
_PARSE_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    zlib.error,
    tarfile.TarError,
    scipy.io.matlab.MatReadError,
)


@contextmanager
def _naming(path: Path, what: str) -> Iterator[None]:
    """Re-raise low-level parsing errors as a CorruptFileError that says which file failed."""
    try:
        yield
    except (CorruptFileError, FileNotFoundError):
        raise
    except _PARSE_ERRORS as error:
        reason = " ".join(str(error).split()) or type(error).__name__  # one line, whatever the parser said
        raise CorruptFileError(f"{path} is not a valid {what} file ({reason}); delete or replace it") from error


def require_finite(values: np.ndarray, *, source: str, rows_from: int = 1) -> np.ndarray:
    """``values`` unchanged if every value is finite, else a CorruptFileError naming the first bad cell.

    The one finite-check of the data layer: every parser that can produce floats calls it, so NaN or inf
    never reaches a training loop (where it would turn every loss into NaN without an error).
    ``rows_from``: the number of the first row in the message (1: rows counted from one).
    """
    if not np.issubdtype(values.dtype, np.floating) and not np.issubdtype(values.dtype, np.complexfloating):
        return values
    finite = np.isfinite(values)
    if finite.all():
        return values
    position = np.unravel_index(int(np.argmin(finite.reshape(-1))), values.shape)
    row = int(position[0]) + rows_from if position else rows_from
    column = ", column " + ", ".join(str(int(i) + 1) for i in position[1:]) if len(position) > 1 else ""
    count = int((~finite).sum())
    raise CorruptFileError(
        f"{source}: row {row}{column} is {values[position]} ({count} value{'s' if count > 1 else ''} in all are "
        "NaN or infinite); evosparse does not train on them: fix or drop those rows"
    )


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally gzip-compressed) as an array of its stored dtype and shape.

    Header: two zero bytes, a type byte, the number of dimensions, then each dimension as a big-endian
    uint32; the data follow in C order.
    """
    path = Path(path)
    with _naming(path, "IDX"):
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic
            raw = gzip.decompress(raw)
        if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
            raise CorruptFileError(f"{path} is not a valid IDX file (bad magic number {raw[:4].hex()})")
        dtype = np.dtype(_IDX_DTYPES[raw[2]])
        n_dims = raw[3]
        shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=n_dims, offset=4))
        offset = 4 + 4 * n_dims
        expected = offset + int(np.prod(shape)) * dtype.itemsize
        if len(raw) != expected:
            raise CorruptFileError(f"{path} is truncated or padded: {len(raw)} bytes, header {shape} needs {expected}")
        values = np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))
        return require_finite(values, source=str(path))


def read_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A scikit-feature .mat file as ``(X, y)``: ``X`` samples x features, ``y`` the labels as stored."""
    path = Path(path)
    with _naming(path, "MATLAB .mat"):
        try:
            contents = scipy.io.loadmat(path)
        except NotImplementedError as error:  # MATLAB v7.3 files are HDF5, which scipy does not read
            raise CorruptFileError(f"{path} is a MATLAB v7.3 (HDF5) file, which scipy.io cannot read") from error
        x, y = contents["X"], contents["Y"]
        x = x.toarray() if scipy.sparse.issparse(x) else np.asarray(x)
        y = np.asarray(y).ravel()
        if x.ndim != 2 or x.shape[0] != y.shape[0]:
            raise CorruptFileError(f"{path}: X has shape {x.shape} but Y has {y.shape[0]} labels")
        return require_finite(x, source=f"{path} (X)"), require_finite(y, source=f"{path} (Y)")


def read_text_matrix(path: str | Path, dtype: type = np.float64) -> np.ndarray:
    """A whitespace-separated text matrix (UCI MADELON ``.data``/``.labels``, LightGBM HIGGS sample)."""
    path = Path(path)
    with _naming(path, "text matrix"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # numpy warns on an empty file: we raise instead
        values = np.loadtxt(path, dtype=dtype, ndmin=2)
    if values.size == 0:
        raise CorruptFileError(f"{path} holds no data (an empty text matrix); delete or replace it")
    return require_finite(values, source=str(path))


def read_madelon(data_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A MADELON split: ``(X, y)`` with X of shape (n, 500) as integers and y in {-1, 1}."""
    x = read_text_matrix(data_path, dtype=np.int64)
    y = read_text_matrix(labels_path, dtype=np.int64).ravel()
    if x.shape[0] != y.shape[0]:
        raise CorruptFileError(f"{data_path} has {x.shape[0]} rows but {labels_path} has {y.shape[0]} labels")
    return x, y


def read_higgs_sample(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A LightGBM HIGGS sample file: ``(X, y)``, column 0 the 0/1 label, then the 28 HIGGS features."""
    table = read_text_matrix(path)
    if table.shape[1] != 29:
        raise CorruptFileError(f"{path} has {table.shape[1]} columns, expected 29 (label + 28 HIGGS features)")
    return table[:, 1:], table[:, 0].astype(np.int64)


CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch.bin"
_CIFAR10_RECORD = 1 + 3 * 32 * 32  # one label byte, then 1024 red, 1024 green and 1024 blue bytes


def read_cifar10_archive(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``cifar-10-binary.tar.gz`` as ``(x_train, y_train, x_test, y_test)``, images (n, 3, 32, 32) uint8.

    The binary version, not the python one: its batches are fixed-length records (a label byte, then the
    image's red, green and blue planes, row-major), so nothing is ever unpickled. The archive holds
    ``cifar-10-batches-bin/data_batch_1..5.bin`` and ``test_batch.bin``, read straight from it, not extracted.
    """
    path = Path(path)
    with _naming(path, "CIFAR-10 archive"), tarfile.open(path, "r:*") as archive:
        batches = {Path(member.name).name: member for member in archive.getmembers() if member.isfile()}
        if "data_batch_1" in batches and "data_batch_1.bin" not in batches:
            raise CorruptFileError(
                f"{path} is the CIFAR-10 python version (pickled batches), which evosparse never loads; "
                "use the binary version cifar-10-binary.tar.gz"
            )
        missing = [name for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH) if name not in batches]
        if missing:
            raise CorruptFileError(f"{path} lacks the CIFAR-10 batches {missing}")

        def read_batch(name: str) -> tuple[np.ndarray, np.ndarray]:
            raw = np.frombuffer(archive.extractfile(batches[name]).read(), dtype=np.uint8)
            if raw.size == 0 or raw.size % _CIFAR10_RECORD:
                raise CorruptFileError(
                    f"{path}: batch {name} has {raw.size} bytes, not a multiple of the {_CIFAR10_RECORD}-byte record"
                )
            records = raw.reshape(-1, _CIFAR10_RECORD)
            labels = records[:, 0].astype(np.int64)
            if labels.max() > 9:
                row = int(np.argmax(labels > 9))
                raise CorruptFileError(f"{path}: batch {name} record {row} has label {labels[row]}, not 0-9")
            return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels

        train = [read_batch(name) for name in CIFAR10_TRAIN_BATCHES]
        x_test, y_test = read_batch(CIFAR10_TEST_BATCH)
    x_train = np.concatenate([images for images, _ in train])
    y_train = np.concatenate([labels for _, labels in train])
    return x_train, y_train, x_test, y_test
