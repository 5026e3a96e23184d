"""Your own data files (evosparse.data.files): every format, and every documented error, on tmp files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.io

from evosparse.data import CorruptFileError, DatasetNotFoundError
from evosparse.data.files import FORMATS, file_format, load_file
from evosparse.data.splits import standardise


def blobs(n=60, features=4, classes=3, seed=0):
    """Separable-ish features and balanced integer labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, features)) + y[:, None]
    return x, y


def write_csv(path, header, rows, delimiter=","):
    lines = ([delimiter.join(header)] if header else []) + [delimiter.join(map(str, row)) for row in rows]
    text = "\n".join(lines) + "\n"
    if str(path).endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# ---- formats ---------------------------------------------------------------------------------------------
def test_npz_with_a_split_keeps_it_and_standardises_with_training_statistics(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "own.npz", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    ds = load_file(tmp_path / "own.npz")
    expected_train, expected_test = standardise(x[:40], x[40:])
    assert ds.name == "own.npz" and (ds.n_train, ds.n_test, ds.n_features, ds.n_classes) == (40, 20, 4, 3)
    np.testing.assert_array_equal(ds.x_train, expected_train)
    np.testing.assert_array_equal(ds.x_test, expected_test)
    np.testing.assert_array_equal(ds.y_test, y[40:])


def test_npz_x_y_is_split_stratified_and_seeded(tmp_path):
    x, y = blobs(n=90)
    np.savez(tmp_path / "own.npz", x=x, y=y + 5)  # labels 5, 6, 7 -> 0, 1, 2
    a, b = load_file(tmp_path / "own.npz", seed=1), load_file(tmp_path / "own.npz", seed=1)
    c = load_file(tmp_path / "own.npz", seed=2)
    assert (a.n_train, a.n_test, a.n_classes) == (60, 30, 3)
    assert np.bincount(a.y_test).tolist() == [10, 10, 10]  # each class's third
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, c.y_train)


def test_npz_images_keep_their_shape_as_feature_shape(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "img.npz", X=rng.integers(0, 255, (30, 2, 3), dtype=np.uint8), Y=np.arange(30) % 2)
    ds = load_file(tmp_path / "img.npz")
    assert ds.feature_shape == (2, 3) and ds.n_features == 6


@pytest.mark.parametrize("name", ["own.csv", "own.csv.gz", "own.tsv"])
def test_csv_header_and_named_label_column(tmp_path, name):
    x, y = blobs(n=30, features=2, classes=2)
    rows = [(a, "cat" if label else "dog", b) for (a, b), label in zip(x, y)]
    path = write_csv(tmp_path / name, ["height", "Label", "weight"], rows, "\t" if ".tsv" in name else ",")
    ds = load_file(path)
    assert (ds.n_train + ds.n_test, ds.n_features, ds.n_classes) == (30, 2, 2)
    # 'cat' < 'dog': cat -> 0. Check through the split: the standardised first feature tracks the label.
    assert ds.x_train[ds.y_train == 1, 0].mean() < ds.x_train[ds.y_train == 0, 0].mean()


def test_csv_without_header_takes_the_last_column_and_integer_labels(tmp_path):
    x, y = blobs(n=30, features=3, classes=3)
    path = write_csv(tmp_path / "plain.csv", None, [(*row, label + 1) for row, label in zip(x, y)])
    ds = load_file(path)
    assert (ds.n_features, ds.n_classes, ds.n_train + ds.n_test) == (3, 3, 30)


def test_csv_label_column_by_name_or_number(tmp_path):
    x, y = blobs(n=30, features=2, classes=2)
    path = write_csv(tmp_path / "t.csv", ["group", "a", "b"], [(label, *row) for row, label in zip(x, y)])
    by_name = load_file(path, label_column="group")
    by_number = load_file(path, label_column="1")
    np.testing.assert_array_equal(by_name.x_train, by_number.x_train)
    assert by_name.n_features == 2


def test_csv_integer_labels_sort_as_numbers(tmp_path):
    # The feature is the label itself: 2 < 9 < 10 as numbers, but '10' < '2' < '9' as text.
    rows = [(label, label) for label in [2, 10, 9] * 6]
    ds = load_file(write_csv(tmp_path / "n.csv", ["v", "y"], rows))
    x_all = np.concatenate([ds.x_train[:, 0], ds.x_test[:, 0]])
    y_all = np.concatenate([ds.y_train, ds.y_test])
    means = [x_all[y_all == k].mean() for k in range(ds.n_classes)]
    assert ds.n_classes == 3 and means[0] < means[1] < means[2]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow reads .parquet (pip install pyarrow)")
    import pyarrow.parquet as pq

    x, y = blobs(n=30, features=2, classes=3)
    pq.write_table(
        pa.table({"a": x[:, 0], "b": x[:, 1].astype(np.float32), "target": y.astype(str)}), tmp_path / "t.parquet"
    )
    ds = load_file(tmp_path / "t.parquet")
    assert (ds.n_features, ds.n_classes, ds.n_train + ds.n_test) == (2, 3, 30)


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(ImportError, match=r"t.parquet needs pyarrow, which is not installed: pip install pyarrow"):
        load_file(tmp_path / "t.parquet")


def test_mat_like_scikit_feature(tmp_path):
    x, y = blobs(n=30, features=5, classes=2)
    scipy.io.savemat(tmp_path / "set.mat", {"X": x, "Y": (y + 1)[:, None]})
    ds = load_file(tmp_path / "set.mat")
    assert (ds.n_features, ds.n_classes, ds.n_train, ds.n_test) == (5, 2, 20, 10)


# ---- errors ----------------------------------------------------------------------------------------------
def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"data file must end in one of \.npz, \.csv.*got '.*data.xlsx'"):
        load_file(tmp_path / "data.xlsx")
    with pytest.raises(DatasetNotFoundError, match=r"data file .*gone.npz does not exist"):
        load_file(tmp_path / "gone.npz")
    assert file_format("A.CSV.GZ") == ".csv.gz" and set(FORMATS) >= {".npz", ".csv", ".parquet", ".mat"}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npz_non_finite_feature_names_file_row_and_column(tmp_path, bad):
    x, y = blobs()
    x[7, 2] = bad
    np.savez(tmp_path / "bad.npz", x=x, y=y)
    with pytest.raises(CorruptFileError, match=r"bad.npz \(features\): row 8, column 3 is -?(nan|inf)"):
        load_file(tmp_path / "bad.npz")


def test_npz_non_finite_test_feature(tmp_path):
    x, y = blobs()
    x[45, 0] = np.nan
    np.savez(tmp_path / "bad.npz", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    with pytest.raises(CorruptFileError, match=r"bad.npz \(x_test\): row 6, column 1 is nan"):
        load_file(tmp_path / "bad.npz")


@pytest.mark.parametrize("cell", ["nan", "inf", "-Infinity"])
def test_csv_non_finite_names_line_and_column(tmp_path, cell):
    path = write_csv(tmp_path / "t.csv", ["a", "b", "label"], [(1, 2, 0), (3, cell, 1), (4, 5, 0)])
    with pytest.raises(CorruptFileError, match=r"t.csv: line 3, column 'b' is -?(nan|inf) \(1 value in all"):
        load_file(path)


def test_csv_missing_and_text_cells(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "b", "label"], [(1, 2, 0), (3, "", 1)])
    with pytest.raises(CorruptFileError, match=r"line 3, column 'b' is empty \(a missing value\)"):
        load_file(path)
    path = write_csv(tmp_path / "u.csv", ["a", "kind", "b"], [(1, "x", 0), (3, "y", 1)])
    with pytest.raises(CorruptFileError, match=r"line 2, column 'kind' is 'x', not a number.*--label-column kind"):
        load_file(path)


def test_csv_ragged_rows_and_empty_files(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b,label\n1,2,0\n3,4\n")
    with pytest.raises(CorruptFileError, match=r"r.csv: line 3 has 2 cells, the header 3"):
        load_file(path)
    (tmp_path / "e.csv").write_text("\n\n")
    with pytest.raises(CorruptFileError, match=r"e.csv holds no rows"):
        load_file(tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text("a,b,label\n")
    with pytest.raises(CorruptFileError, match=r"h.csv holds a header but no data rows"):
        load_file(tmp_path / "h.csv")


def test_unknown_label_column(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "b", "label"], [(1, 2, 0), (3, 4, 1)])
    with pytest.raises(
        ValueError, match=r"label_column must name a column of t.csv .*got 'kind'; its columns are a, b"
    ):
        load_file(path, label_column="kind")
    with pytest.raises(ValueError, match=r"label_column applies to .csv"):
        load_file(write_npz(tmp_path), label_column="y")


def write_npz(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "ok.npz", x=x, y=y)
    return tmp_path / "ok.npz"


def test_labels_are_checked(tmp_path):
    x, y = blobs(n=30)
    np.savez(tmp_path / "one.npz", x=x, y=np.zeros(30, dtype=int))
    with pytest.raises(CorruptFileError, match=r"one.npz: the labels hold 1 class \(\[0\]\); need 2 or more"):
        load_file(tmp_path / "one.npz")
    np.savez(tmp_path / "frac.npz", x=x, y=np.where(np.arange(30) == 4, 0.5, y))
    with pytest.raises(CorruptFileError, match=r"frac.npz \(labels\): the label of row 5 is 0.5"):
        load_file(tmp_path / "frac.npz")
    np.savez(tmp_path / "nan.npz", x=x, y=np.where(np.arange(30) == 2, np.nan, y))
    with pytest.raises(CorruptFileError, match=r"the label of row 3 is nan"):
        load_file(tmp_path / "nan.npz")
    np.savez(tmp_path / "len.npz", x=x, y=y[:-1])
    with pytest.raises(CorruptFileError, match=r"features / labels have 30 samples but 29 labels"):
        load_file(tmp_path / "len.npz")
    np.savez(tmp_path / "2d.npz", x=x, y=np.ones((30, 2)))
    with pytest.raises(CorruptFileError, match=r"labels must be one value per sample, got an array of shape \(30, 2\)"):
        load_file(tmp_path / "2d.npz")
    path = write_csv(tmp_path / "t.csv", ["a", "label"], [(1, "x"), (2, ""), (3, "y")])
    with pytest.raises(CorruptFileError, match=r"t.csv \(labels\): the label of row 2 is missing"):
        load_file(path)


def test_every_test_class_must_be_in_training(tmp_path):
    x, y = blobs(n=30)
    y_test = y[20:].copy()
    y_test[3] = 7
    np.savez(tmp_path / "s.npz", x_train=x[:20], y_train=y[:20], x_test=x[20:], y_test=y_test)
    with pytest.raises(CorruptFileError, match=r"class 7 appears in the test part \(1 samples\) but not in training"):
        load_file(tmp_path / "s.npz")


def test_npz_keys_pickles_and_damage(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "partial.npz", x_train=x, y_train=y)
    with pytest.raises(CorruptFileError, match=r"lacks x_test, y_test"):
        load_file(tmp_path / "partial.npz")
    np.savez(tmp_path / "keys.npz", features=x, labels=y)
    with pytest.raises(CorruptFileError, match=r"keys.npz holds arrays features, labels; expected x_train"):
        load_file(tmp_path / "keys.npz")
    np.savez(tmp_path / "obj.npz", x=x, y=np.array([{"a": 1}] * 60, dtype=object))
    with pytest.raises(CorruptFileError, match=r"obj.npz holds Python objects .*never loads"):
        load_file(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(CorruptFileError, match=r"junk.npz is not a valid .npz file"):
        load_file(tmp_path / "junk.npz")
    np.savez(tmp_path / "text.npz", x=np.array([["a", "b"]] * 4), y=np.arange(4) % 2)
    with pytest.raises(CorruptFileError, match=r"features must be numbers, got values of type <U1"):
        load_file(tmp_path / "text.npz")


def test_mat_errors(tmp_path):
    x, y = blobs(n=20)
    x[3, 1] = np.nan
    scipy.io.savemat(tmp_path / "nan.mat", {"X": x, "Y": y[:, None]})
    with pytest.raises(CorruptFileError, match=r"nan.mat \(features\): row 4, column 2 is nan"):
        load_file(tmp_path / "nan.mat")
    scipy.io.savemat(tmp_path / "keys.mat", {"data": x})
    with pytest.raises(CorruptFileError, match=r"keys.mat holds data; expected X \(samples x features\) and Y"):
        load_file(tmp_path / "keys.mat")
    (tmp_path / "junk.mat").write_bytes(b"\0" * 200)
    with pytest.raises(CorruptFileError, match=r"junk.mat is not a valid MATLAB .mat file"):
        load_file(tmp_path / "junk.mat")


def test_parquet_errors(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow reads .parquet (pip install pyarrow)")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1.0, 2.0, None, 4.0], "y": [0, 1, 0, 1]}), tmp_path / "null.parquet")
    with pytest.raises(CorruptFileError, match=r"null.parquet: row 3, column 'a' is empty"):
        load_file(tmp_path / "null.parquet")
    pq.write_table(pa.table({"a": [1.0, 2.0, float("inf"), 4.0], "y": [0, 1, 0, 1]}), tmp_path / "inf.parquet")
    with pytest.raises(CorruptFileError, match=r"inf.parquet: row 3, column 'a' is inf"):
        load_file(tmp_path / "inf.parquet")
    pq.write_table(pa.table({"a": ["u", "v"], "y": [0, 1]}), tmp_path / "text.parquet")
    with pytest.raises(CorruptFileError, match=r"column 'a' holds string values; features must be numbers"):
        load_file(tmp_path / "text.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 but not really")
    with pytest.raises(CorruptFileError, match=r"junk.parquet is not a valid .parquet file"):
        load_file(tmp_path / "junk.parquet")
