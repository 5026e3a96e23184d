"""The data layer's finite-check: NaN or inf in any data file is an error naming the file and the cell."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest
import scipy.io
from conftest import require_file

from evosparse.data import CorruptFileError, load_dataset
from evosparse.data.formats import read_idx, read_mat, read_text_matrix, require_finite


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "NaN"])
def test_text_matrix_names_file_row_and_column(tmp_path, bad):
    path = tmp_path / "table.txt"
    path.write_text(f"1 2 3\n4 5 6\n7 {bad} 9\n")
    with pytest.raises(CorruptFileError, match=r"table.txt: row 3, column 2 is -?(nan|inf) \(1 value in all"):
        read_text_matrix(path)


def test_idx_floats_are_checked(tmp_path):
    values = np.zeros((3, 2, 2), dtype=">f4")
    values[1, 0, 1] = np.inf
    header = b"\0\0\x0d\x03" + struct.pack(">III", 3, 2, 2)
    (tmp_path / "images.idx.gz").write_bytes(gzip.compress(header + values.tobytes()))
    with pytest.raises(CorruptFileError, match=r"images.idx.gz: row 2, column 1, 2 is inf"):
        read_idx(tmp_path / "images.idx.gz")


def test_mat_features_are_checked(tmp_path):
    x = np.ones((4, 3))
    x[3, 2] = np.nan
    scipy.io.savemat(tmp_path / "set.mat", {"X": x, "Y": np.arange(4)[:, None]})
    with pytest.raises(CorruptFileError, match=r"set.mat \(X\): row 4, column 3 is nan"):
        read_mat(tmp_path / "set.mat")


def test_integers_and_finite_floats_pass():
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert require_finite(values, source="x") is values
    assert require_finite(np.arange(3), source="x").dtype.kind == "i"


def test_load_dataset_refuses_a_nan_cell(tmp_path):
    for name in ("binary.train", "binary.test"):
        require_file(f"higgs_lightgbm_sample/{name}")
    source = require_file("higgs_lightgbm_sample/binary.train").parent
    folder = tmp_path / "higgs_lightgbm_sample"
    shutil.copytree(source, folder)
    lines = (folder / "binary.test").read_text().splitlines()
    cells = lines[4].split("\t")
    cells[7] = "nan"
    lines[4] = "\t".join(cells)
    (folder / "binary.test").write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptFileError, match=r"binary.test: row 5, column 8 is nan"):
        load_dataset("higgs_sample", data_dir=tmp_path, download=False)


def test_values_too_large_for_float32_are_caught_after_scaling(tmp_path, monkeypatch):
    from evosparse.data import registry
    from evosparse.data.splits import Split

    spec = registry.DATASETS["digits"]

    def huge(paths, seed):
        x = np.ones((6, 2))
        x[:3, 0] = 1e300
        return Split(x[:4], np.array([0, 1, 0, 1]), x[4:], np.array([0, 1]))

    changed = type(spec)(**{**spec.__dict__, "loader": huge, "pixel_max": None})
    monkeypatch.setitem(registry._REGISTRY, "digits", changed)
    with pytest.raises(
        CorruptFileError, match=r"digits \(read from bundled data\): feature column 1 has values too large"
    ):
        load_dataset("digits")
