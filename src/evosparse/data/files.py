"""Your own data as a :class:`Dataset`: ``.npz``, ``.csv`` / ``.tsv`` (also gzipped), ``.parquet``, ``.mat``.

Reading a data file, step by step (:func:`load_file`, what ``evosparse train --data FILE`` calls):

1. **Read** the file by its suffix, never running code from it:

   - ``.npz``: arrays ``x_train, y_train, x_test, y_test`` (a split of your own), or ``x, y`` (also
     ``X, Y``), read with ``allow_pickle=False``;
   - ``.csv`` / ``.tsv`` (``.gz`` too): one sample per row; the first row is a header if it names the
     label column or has a word where the next row has a number; the label column is ``label_column``
     (a header name, or a column number counted from 1), else the one named label / y / target / class,
     else the last; every other column is a feature;
   - ``.parquet``: the same column rules, read with pyarrow (optional: ``pip install pyarrow``);
   - ``.mat``: MATLAB files as scikit-feature publishes them, ``X`` (samples x features) and ``Y``.
2. **Check**: features are numbers and finite (else an error naming the file, the row and the column:
   evosparse never trains on NaN); labels are integers or strings (class names), one per sample, with at
   least two classes, each of them in the training part.
3. **Split** data that come without a test part: seeded and stratified, 1/3 to test (as the registered
   scikit-feature sets are split, :func:`evosparse.data.splits.stratified_split`).
4. **Preprocess** as the registered tabular sets are: labels -> 0..K-1 in sorted order of the original
   labels; features standardised with the training part's mean and std.
"""

from __future__ import annotations

import csv
import gzip
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from evosparse.data.dataset import Dataset
from evosparse.data.errors import CorruptFileError, DatasetNotFoundError
from evosparse.data.formats import require_finite
from evosparse.data.splits import Split, encode_labels, split_arrays, standardise

FORMATS = (".npz", ".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet", ".mat")
"""The file suffixes :func:`load_file` reads."""
LABEL_NAMES = ("label", "labels", "y", "target", "class")
"""Header names taken as the label column when ``label_column`` is not given (case ignored)."""


class _Raw(NamedTuple):
    """What a reader found: a split, or all samples (``test`` None) to be split; labels as stored."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None


def file_format(path: str | Path) -> str:
    """The format of ``path`` from its suffix (one of :data:`FORMATS`), or a ValueError naming the choices."""
    name = Path(path).name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):  # '.csv.gz' before '.csv'
        if name.endswith(suffix):
            return suffix
    raise ValueError(f"data file must end in one of {', '.join(FORMATS)}; got {str(path)!r}")


def load_file(
    path: str | Path, *, label_column: str | None = None, seed: int = 0, test_fraction: float = 1 / 3
) -> Dataset:
    """A data file of your own as a preprocessed :class:`Dataset` (see the module docstring for the rules).

    Args:
        path: a ``.npz``, ``.csv``, ``.tsv``, ``.csv.gz``, ``.tsv.gz``, ``.parquet`` or ``.mat`` file.
        label_column: tables only: the label column's header name, or its number counted from 1
            (None: the column named label / y / target / class, else the last).
        seed: seed of the stratified split of data without a test part.
        test_fraction: share of each class sent to the test part when the file has none.

    Raises:
        DatasetNotFoundError: the file does not exist.
        ValueError: an unknown suffix, or a ``label_column`` the file does not have.
        CorruptFileError: the file cannot be read, or its features or labels break the rules above.
        ImportError: a ``.parquet`` file without pyarrow installed.
    """
    path = Path(path)
    suffix = file_format(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"data file {path} does not exist (or is not a file)")
    if label_column is not None and suffix in (".npz", ".mat"):
        raise ValueError(f"label_column applies to .csv, .tsv and .parquet tables; {path.name} has its labels apart")
    raw = _READERS[suffix](path, label_column)
    x_train = _features(raw.x_train, f"{path} ({'x_train' if raw.x_test is not None else 'features'})")
    y_train = _labels(raw.y_train, f"{path} ({'y_train' if raw.x_test is not None else 'labels'})")
    _same_length(x_train, y_train, path, "train" if raw.x_test is not None else "")
    if raw.x_test is None:
        split = split_arrays(x_train, y_train, seed=seed, test_fraction=test_fraction)
    else:
        x_test = _features(raw.x_test, f"{path} (x_test)")
        y_test = _labels(raw.y_test, f"{path} (y_test)")
        _same_length(x_test, y_test, path, "test")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise CorruptFileError(f"{path}: x_train samples have shape {x_train.shape[1:]}, x_test {x_test.shape[1:]}")
        split = Split(x_train, y_train, x_test, y_test)
    _check_classes(split, path)
    y_train, y_test, n_classes = encode_labels(split.y_train, split.y_test)
    flat_train, flat_test = (x.reshape(x.shape[0], -1) for x in (split.x_train, split.x_test))
    try:
        x_train, x_test = standardise(flat_train, flat_test)
    except ValueError as error:
        raise CorruptFileError(f"{path}: {error}") from None
    for part, values in (("x_train", x_train), ("x_test", x_test)):  # finite values too large for float32
        require_finite(values, source=f"{path} {part} after standardising (values too large for float32?)")
    return Dataset(
        name=path.name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=n_classes,
        feature_shape=tuple(int(d) for d in split.x_train.shape[1:]),
    )


# ---- checks ---------------------------------------------------------------------------------------------
def _features(x: np.ndarray, source: str) -> np.ndarray:
    """Numeric features of at least 2 dimensions (samples first), every value finite."""
    x = np.asarray(x)
    if x.dtype.kind == "b":
        x = x.astype(np.float32)
    if x.dtype.kind not in "iuf":
        raise CorruptFileError(f"{source}: features must be numbers, got values of type {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0 or math.prod(x.shape[1:]) == 0:
        raise CorruptFileError(f"{source}: features must be one row of one or more values per sample, got {x.shape}")
    return require_finite(x, source=source)


def _labels(y: np.ndarray, source: str) -> np.ndarray:
    """Labels as a 1-D int64 array (integers) or str array (class names)."""
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:  # a MATLAB column (or row) vector
        y = y.reshape(-1)
    if y.ndim != 1:
        raise CorruptFileError(f"{source}: labels must be one value per sample, got an array of shape {y.shape}")
    if y.dtype.kind in "biu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            row = int(np.argmax(bad))
            raise CorruptFileError(
                f"{source}: the label of row {row + 1} is {y[row].item()!r}; labels must be integers or class names"
            )
        return y.astype(np.int64)
    if y.dtype.kind in "US":
        return y.astype(str)
    if y.dtype.kind == "O":  # strings from a table, perhaps with missing cells
        bad = [i for i, value in enumerate(y) if not isinstance(value, str) or not value.strip()]
        if bad:
            raise CorruptFileError(f"{source}: the label of row {bad[0] + 1} is missing ({y[bad[0]]!r})")
        return _typed_labels(list(y))
    raise CorruptFileError(f"{source}: labels must be integers or class names, got values of type {y.dtype}")


def _typed_labels(cells: Sequence[str]) -> np.ndarray:
    """Text labels as integers if every one is an integer ('1', '2.0'), else as class names."""
    try:
        numbers = np.array([float(cell) for cell in cells])
    except ValueError:
        return np.array([cell.strip() for cell in cells])
    if np.isfinite(numbers).all() and (numbers == np.round(numbers)).all():
        return numbers.astype(np.int64)
    return np.array([cell.strip() for cell in cells])


def _same_length(x: np.ndarray, y: np.ndarray, path: Path, part: str) -> None:
    if x.shape[0] != y.shape[0]:
        names = f"x_{part} / y_{part}" if part else "features / labels"
        raise CorruptFileError(f"{path}: {names} have {x.shape[0]} samples but {y.shape[0]} labels")


def _check_classes(split: Split, path: Path) -> None:
    """At least two classes, and every class of the test part also in the training part."""
    train_classes = np.unique(split.y_train)
    classes = np.unique(np.concatenate([split.y_train, split.y_test]))
    if classes.shape[0] < 2:
        raise CorruptFileError(f"{path}: the labels hold {classes.shape[0]} class ({classes.tolist()}); need 2 or more")
    unseen = np.setdiff1d(np.unique(split.y_test), train_classes)
    if unseen.size:
        count = int(np.isin(split.y_test, unseen).sum())
        raise CorruptFileError(
            f"{path}: class{'es' if unseen.size > 1 else ''} {', '.join(map(repr, unseen.tolist()))} "
            f"appear{'' if unseen.size > 1 else 's'} in the test part ({count} samples) but not in training; "
            "a model cannot learn a class it never sees: move some of those samples to training"
        )


# ---- readers --------------------------------------------------------------------------------------------
def _read_npz(path: Path, label_column: str | None) -> _Raw:
    with open(path, "rb") as file:
        if file.read(4) != b"PK\x03\x04":  # numpy.savez writes a zip archive; anything else np.load would unpickle
            raise CorruptFileError(f"{path} is not a valid .npz file (not a zip archive as numpy.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            split_keys = ("x_train", "y_train", "x_test", "y_test")
            if keys & set(split_keys):
                missing = [key for key in split_keys if key not in keys]
                if missing:
                    raise CorruptFileError(
                        f"{path} has {', '.join(sorted(keys & set(split_keys)))} but lacks {', '.join(missing)}: "
                        "give all four (x_train, y_train, x_test, y_test), or x and y to be split"
                    )
                return _Raw(*(archive[key] for key in split_keys))
            for x_key, y_key in (("x", "y"), ("X", "Y")):
                if x_key in keys and y_key in keys:
                    return _Raw(archive[x_key], archive[y_key], None, None)
    except ValueError as error:  # numpy: "Object arrays cannot be loaded when allow_pickle=False"
        if "allow_pickle" in str(error):
            raise CorruptFileError(
                f"{path} holds Python objects (pickled arrays), which evosparse never loads: a file you received "
                "could run code; save plain numeric (or string label) arrays with numpy.savez"
            ) from None
        raise CorruptFileError(f"{path} is not a valid .npz file ({error})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise CorruptFileError(f"{path} is not a valid .npz file ({' '.join(str(error).split())})") from None
    raise CorruptFileError(
        f"{path} holds arrays {', '.join(sorted(keys)) or '(none)'}; expected x_train, y_train, x_test, y_test "
        "(a split of your own) or x, y (split for you)"
    )


def _read_mat(path: Path, label_column: str | None) -> _Raw:
    import scipy.io
    import scipy.sparse

    try:
        contents = scipy.io.loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5, which scipy does not read
        raise CorruptFileError(f"{path} is a MATLAB v7.3 (HDF5) file, which scipy.io cannot read") from None
    except (ValueError, OSError, TypeError, scipy.io.matlab.MatReadError) as error:
        raise CorruptFileError(f"{path} is not a valid MATLAB .mat file ({' '.join(str(error).split())})") from None
    keys = [key for key in contents if not key.startswith("__")]
    for x_key, y_key in (("X", "Y"), ("x", "y"), ("X", "y")):
        if x_key in contents and y_key in contents:
            x = contents[x_key]
            x = x.toarray() if scipy.sparse.issparse(x) else np.asarray(x)
            y = contents[y_key]
            y = y.toarray() if scipy.sparse.issparse(y) else np.asarray(y)
            return _Raw(x, y, None, None)
    raise CorruptFileError(
        f"{path} holds {', '.join(sorted(keys)) or 'no variables'}; expected X (samples x features) and Y "
        "(labels), as in the scikit-feature files"
    )


def _read_table_file(path: Path, label_column: str | None) -> _Raw:
    suffix = file_format(path)
    delimiter = "\t" if suffix.startswith(".tsv") else ","
    opener = gzip.open if suffix.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file, delimiter=delimiter)
            rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except (OSError, EOFError, csv.Error) as error:
        raise CorruptFileError(f"{path} is not a readable {suffix} file ({' '.join(str(error).split())})") from None
    except UnicodeDecodeError as error:
        raise CorruptFileError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not rows:
        raise CorruptFileError(f"{path} holds no rows")
    header = _header(rows, label_column)
    names = header if header is not None else [str(i + 1) for i in range(len(rows[0][1]))]
    body = rows[1:] if header is not None else rows
    if not body:
        raise CorruptFileError(f"{path} holds a header but no data rows")
    for line, row in body:
        if len(row) != len(names):
            raise CorruptFileError(
                f"{path}: line {line} has {len(row)} cells, the {'header' if header else 'first row'} {len(names)}"
            )
    label = _label_index(names, header is not None, label_column, path)
    if len(names) < 2:
        raise CorruptFileError(f"{path} has one column: it needs a label column and at least one feature column")
    columns = [i for i in range(len(names)) if i != label]
    lines = [line for line, _ in body]
    x = _numbers([[row[i] for i in columns] for _, row in body], path, lines, [names[i] for i in columns])
    _finite_table(x, path, [f"line {line}" for line in lines], [names[i] for i in columns])
    return _Raw(x, np.array([row[label] for _, row in body], dtype=object), None, None)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _header(rows: list[tuple[int, list[str]]], label_column: str | None) -> list[str] | None:
    """The first row's cells if it is a header, else None."""
    first = [cell.strip() for cell in rows[0][1]]
    lowered = {cell.lower() for cell in first}
    if label_column is not None and label_column.strip() in first:
        return first
    if lowered & set(LABEL_NAMES):
        return first
    if len(rows) > 1:
        second = rows[1][1]
        if any(not _is_number(a) and _is_number(b) for a, b in zip(first, second)):
            return first
    return None


def _label_index(names: list[str], has_header: bool, label_column: str | None, path: Path) -> int:
    if label_column is None:
        found = [i for i, name in enumerate(names) if has_header and name.lower() in LABEL_NAMES]
        return found[0] if found else len(names) - 1
    wanted = label_column.strip()
    if has_header and wanted in names:
        return names.index(wanted)
    if wanted.lstrip("-").isdigit() and 1 <= abs(int(wanted)) <= len(names):
        number = int(wanted)
        return number - 1 if number > 0 else len(names) + number
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    what = f"its columns are {shown}" if has_header else f"it has no header and {len(names)} columns"
    raise ValueError(
        f"label_column must name a column of {path.name} or give its number (1..{len(names)}), "
        f"got {label_column!r}; {what}"
    )


def _numbers(cells: list[list[str]], path: Path, lines: list[int], names: list[str]) -> np.ndarray:
    """Feature cells as float64, or an error naming the line and column of the first one that is no number."""
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        pass
    for line, row in zip(lines, cells):
        for name, cell in zip(names, row):
            if not _is_number(cell):
                if not cell.strip():
                    what = "is empty (a missing value); features must be numbers: fix or drop that row"
                else:
                    what = (
                        f"is {cell!r}, not a number; features must be numbers (if {name!r} holds the labels, "
                        f"say so: --label-column {name})"
                    )
                raise CorruptFileError(f"{path}: line {line}, column {name!r} {what}")
    raise CorruptFileError(f"{path}: the features cannot be read as numbers")  # pragma: no cover - found above


def _finite_table(x: np.ndarray, path: Path, places: Sequence[str], names: Sequence[str]) -> None:
    """NaN / inf in a table: an error naming the place ('line 7' of a text file, 'row 6') and the column."""
    finite = np.isfinite(x)
    if finite.all():
        return
    row, column = np.unravel_index(int(np.argmin(finite.reshape(-1))), x.shape)
    count = int((~finite).sum())
    raise CorruptFileError(
        f"{path}: {places[row]}, column {names[column]!r} is {x[row, column]} ({count} value"
        f"{'s' if count > 1 else ''} in all are NaN or infinite); evosparse does not train on them: fix or drop "
        "those rows"
    )


def _read_parquet(path: Path, label_column: str | None) -> _Raw:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise ImportError(
            f"reading {path.name} needs pyarrow, which is not installed: pip install pyarrow "
            "(or pip install 'evosparse[parquet]'), or save the table as .csv or .npz"
        ) from None
    try:
        table = parquet.read_table(path)
    except (OSError, ValueError) as error:  # pyarrow.ArrowInvalid is a ValueError
        raise CorruptFileError(f"{path} is not a valid .parquet file ({' '.join(str(error).split())})") from None
    names = [str(name) for name in table.column_names]
    if table.num_rows == 0:
        raise CorruptFileError(f"{path} holds no rows")
    if len(names) < 2:
        raise CorruptFileError(f"{path} has one column: it needs a label column and at least one feature column")
    label = _label_index(names, True, label_column, path)
    columns = []
    for i, name in enumerate(names):
        if i == label:
            continue
        column = table.column(i)
        values = column.to_numpy(zero_copy_only=False)
        if values.dtype.kind not in "biuf":
            raise CorruptFileError(f"{path}: column {name!r} holds {column.type} values; features must be numbers")
        if column.null_count:  # a missing value: pyarrow gives NaN (floats) or an object array
            row = next(j for j, valid in enumerate(column.is_valid().to_pylist()) if not valid)
            raise CorruptFileError(
                f"{path}: row {row + 1}, column {name!r} is empty (a missing value); features must be numbers: "
                "fix or drop that row"
            )
        columns.append(values.astype(np.float64))
    x = np.stack(columns, axis=1)
    rows = [f"row {n}" for n in range(1, table.num_rows + 1)]  # parquet has rows, not lines: counted from 1
    _finite_table(x, path, rows, [n for i, n in enumerate(names) if i != label])
    y = table.column(label)
    if y.null_count:
        row = next(j for j, valid in enumerate(y.is_valid().to_pylist()) if not valid)
        raise CorruptFileError(f"{path} (labels): the label of row {row + 1} is missing")
    y = y.to_numpy(zero_copy_only=False)
    return _Raw(x, y if y.dtype.kind != "O" else np.array([str(v) for v in y], dtype=object), None, None)


_READERS = {
    ".npz": _read_npz,
    ".mat": _read_mat,
    ".csv": _read_table_file,
    ".tsv": _read_table_file,
    ".csv.gz": _read_table_file,
    ".tsv.gz": _read_table_file,
    ".parquet": _read_parquet,
}
