"""File parsers on small synthetic files: IDX, CIFAR-10 archive, .mat, text; and their error messages."""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse

from evosparse.data import CorruptFileError, load_dataset
from evosparse.data.formats import read_cifar10_archive, read_higgs_sample, read_idx, read_madelon, read_mat


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's real cache."""
    monkeypatch.setenv("EVOSPARSE_DATA", str(tmp_path / "cache"))


# ---- IDX ---------------------------------------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    """Reference IDX writer: two zero bytes, type byte, ndim, big-endian uint32 dims, big-endian data."""
    type_byte = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float64): 0x0E}[array.dtype]
    header = bytes([0, 0, type_byte, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float64])
def test_idx_round_trip(tmp_path, dtype, compress):
    array = (np.arange(2 * 3 * 4) * 7 % 256).reshape(2, 3, 4).astype(dtype)
    result = read_idx(write_idx(tmp_path / "a.idx", array, compress=compress))
    assert result.dtype == dtype and result.dtype.isnative
    np.testing.assert_array_equal(result, array)
    result[0, 0, 0] = 1  # a normal, writable array


def test_idx_errors_name_the_file(tmp_path):
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 3), np.uint8))[:-1]))
    with pytest.raises(CorruptFileError, match=rf"{truncated} is truncated or padded: 17 bytes, header \(2, 3\) needs"):
        read_idx(truncated)
    bad_magic = tmp_path / "bad_magic"
    bad_magic.write_bytes(b"\x01\x02\x08\x01" + bytes(8))
    with pytest.raises(CorruptFileError, match=rf"{bad_magic} is not a valid IDX file \(bad magic number 01020801\)"):
        read_idx(bad_magic)
    broken_gzip = tmp_path / "broken.gz"
    broken_gzip.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 50), np.uint8)))[:40])
    with pytest.raises(CorruptFileError, match=rf"{broken_gzip} is not a valid IDX file"):
        read_idx(broken_gzip)


def test_missing_file_is_not_called_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.gz")


MNIST_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")


def tiny_mnist(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """A 6-train / 4-test MNIST-format folder below ``data_dir``; returns the train images and labels."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[1, 0, 0] = 0, 255
    labels = np.array([3, 1, 4, 1, 5, 9], np.uint8)
    write_idx(data_dir / "mnist" / MNIST_NAMES[0], images)
    write_idx(data_dir / "mnist" / MNIST_NAMES[1], labels)
    write_idx(data_dir / "mnist" / MNIST_NAMES[2], images[:4])
    write_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz", np.array([9, 5, 1, 3], np.uint8))
    return images, labels


def test_mnist_loader_on_a_tiny_idx_folder(tmp_path):
    images, labels = tiny_mnist(tmp_path)
    ds = load_dataset("mnist", data_dir=tmp_path, download=False)
    assert ds.x_train.shape == (6, 784) and ds.feature_shape == (28, 28)
    np.testing.assert_array_equal(ds.x_train, images.reshape(6, 784).astype(np.float32) / np.float32(255))
    # Labels present: 1, 3, 4, 5, 9 -> indices 0..4 in sorted order.
    assert ds.n_classes == 5 and ds.y_train.tolist() == [1, 0, 2, 0, 3, 4] and ds.y_test.tolist() == [4, 3, 0, 1]


def test_corrupt_file_through_load_dataset_names_it(tmp_path):
    tiny_mnist(tmp_path)
    damaged = tmp_path / "mnist" / MNIST_NAMES[0]
    damaged.write_bytes(damaged.read_bytes()[:-20])
    with pytest.raises(CorruptFileError, match=str(damaged)):
        load_dataset("mnist", data_dir=tmp_path, download=False)


# ---- CIFAR-10 --------------------------------------------------------------------------------------------
def cifar_batch(n: int, first_label: int) -> bytes:
    """``n`` binary records: a label byte, then R, G, B planes (image i: 10i red, 10i+1 green, 10i+2 blue)."""
    records = np.zeros((n, 3073), np.uint8)
    for i in range(n):
        records[i, 0] = (first_label + i) % 10
        records[i, 1:1025], records[i, 1025:2049], records[i, 2049:] = 10 * i, 10 * i + 1, 10 * i + 2
    return records.tobytes()


def write_cifar_archive(path: Path, batches: dict[str, bytes], folder: str = "cifar-10-batches-bin") -> Path:
    """A tar.gz with ``<folder>/<name>`` members holding ``batches``' bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in batches.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def synthetic_cifar(path: Path) -> Path:
    batches = {f"data_batch_{b}.bin": cifar_batch(3, first_label=3 * (b - 1)) for b in range(1, 6)}
    batches["test_batch.bin"] = cifar_batch(2, first_label=7)
    batches["batches.meta.txt"] = "\n".join(f"class{i}" for i in range(10)).encode()
    return write_cifar_archive(path, batches)


def test_cifar10_archive_parser(tmp_path):
    archive = synthetic_cifar(tmp_path / "cifar-10-binary.tar.gz")
    x_train, y_train, x_test, y_test = read_cifar10_archive(archive)
    assert x_train.shape == (15, 3, 32, 32) and x_train.dtype == np.uint8 and x_test.shape == (2, 3, 32, 32)
    assert y_train.tolist() == [i % 10 for i in range(15)] and y_test.tolist() == [7, 8]
    # Record layout: 1024 red, then green, then blue values -> channel axis first.
    assert np.all(x_train[4, 0] == 10) and np.all(x_train[4, 1] == 11) and np.all(x_train[4, 2] == 12)


def test_cifar10_loader_flattens_to_3072_features(tmp_path):
    synthetic_cifar(tmp_path / "cifar10" / "cifar-10-binary.tar.gz")
    ds = load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert ds.x_train.shape == (15, 3072) and ds.feature_shape == (3, 32, 32) and ds.n_classes == 10
    assert ds.x_train[1, 0] == np.float32(10 / 255) and ds.x_train[1, 1024] == np.float32(11 / 255)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0


def test_cifar10_archive_without_all_batches_or_damaged_is_corrupt(tmp_path):
    path = write_cifar_archive(tmp_path / "c.tar.gz", {"data_batch_1.bin": cifar_batch(1, 0)})
    with pytest.raises(CorruptFileError, match=r"lacks the CIFAR-10 batches \['data_batch_2.bin'"):
        read_cifar10_archive(path)
    not_a_tar = tmp_path / "not.tar.gz"
    not_a_tar.write_bytes(b"plain text")
    with pytest.raises(CorruptFileError, match=rf"{not_a_tar} is not a valid CIFAR-10 archive"):
        read_cifar10_archive(not_a_tar)
    batches = {f"data_batch_{b}.bin": cifar_batch(2, 0) for b in range(1, 6)}
    batches["test_batch.bin"] = cifar_batch(2, 0)[:-1]  # a truncated record
    with pytest.raises(CorruptFileError, match=r"test_batch.bin has 6145 bytes, not a multiple of the 3073-byte"):
        read_cifar10_archive(write_cifar_archive(tmp_path / "short.tar.gz", batches))
    batches["test_batch.bin"] = b"\x0c" + cifar_batch(1, 0)[1:]  # label 12
    with pytest.raises(CorruptFileError, match=r"test_batch.bin record 0 has label 12, not 0-9"):
        read_cifar10_archive(write_cifar_archive(tmp_path / "label.tar.gz", batches))


class _Payload:
    """Unpickling this would delete a folder: the loader must never unpickle anything."""

    def __init__(self, victim: Path) -> None:
        self.victim = victim

    def __reduce__(self):
        return shutil.rmtree, (str(self.victim),)


def test_cifar10_python_version_is_refused_and_never_unpickled(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    batches = {f"data_batch_{b}": pickle.dumps({"data": _Payload(victim), "labels": [0]}) for b in range(1, 6)}
    batches["test_batch"] = pickle.dumps({"data": _Payload(victim), "labels": [0]})
    path = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", batches, folder="cifar-10-batches-py")
    with pytest.raises(CorruptFileError, match=r"CIFAR-10 python version \(pickled batches\), which evosparse never"):
        read_cifar10_archive(path)
    assert victim.is_dir()
    # the same pickles renamed as binary batches are read as bytes, never run
    renamed = write_cifar_archive(tmp_path / "evil.tar.gz", {f"{name}.bin": data for name, data in batches.items()})
    with pytest.raises(CorruptFileError, match="not a multiple of the 3073-byte record"):
        read_cifar10_archive(renamed)
    assert victim.is_dir()


# ---- .mat and text ----------------------------------------------------------------------------------------
def test_mat_reader_accepts_dense_and_sparse(tmp_path):
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    scipy.io.savemat(tmp_path / "dense.mat", {"X": x, "Y": np.array([[1], [2], [1], [2]])})
    scipy.io.savemat(tmp_path / "sparse.mat", {"X": scipy.sparse.csc_matrix(x), "Y": np.array([[1, 2, 1, 2]]).T})
    for name in ("dense.mat", "sparse.mat"):
        features, labels = read_mat(tmp_path / name)
        np.testing.assert_array_equal(features, x)
        assert labels.tolist() == [1, 2, 1, 2]


def test_mat_reader_errors_name_the_file(tmp_path):
    mismatched = tmp_path / "mismatched.mat"
    scipy.io.savemat(mismatched, {"X": np.zeros((4, 3)), "Y": np.ones((3, 1))})
    with pytest.raises(CorruptFileError, match=rf"{mismatched}: X has shape \(4, 3\) but Y has 3 labels"):
        read_mat(mismatched)
    no_labels = tmp_path / "no_labels.mat"
    scipy.io.savemat(no_labels, {"X": np.zeros((4, 3))})
    with pytest.raises(CorruptFileError, match=rf"{no_labels} is not a valid MATLAB \.mat file"):
        read_mat(no_labels)
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"\x00" * 200)
    with pytest.raises(CorruptFileError, match=str(garbage)):
        read_mat(garbage)


def test_mat_reader_explains_matlab_v73_files(tmp_path):
    # A v7.3 file is HDF5 behind a 128-byte MATLAB header whose version field (bytes 124-125) is 0x0200.
    v73 = tmp_path / "big.mat"
    v73.write_bytes(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM" + bytes(512))
    with pytest.raises(CorruptFileError, match=rf"{v73} is a MATLAB v7.3 \(HDF5\) file"):
        read_mat(v73)


def test_madelon_reader_checks_rows_against_labels(tmp_path):
    (tmp_path / "x.data").write_text("1 2 3 \n4 5 6 \n")
    (tmp_path / "x.labels").write_text("-1\n1\n")
    features, labels = read_madelon(tmp_path / "x.data", tmp_path / "x.labels")
    assert features.tolist() == [[1, 2, 3], [4, 5, 6]] and labels.tolist() == [-1, 1]
    (tmp_path / "short.labels").write_text("-1\n")
    with pytest.raises(CorruptFileError, match=r"x\.data has 2 rows but .*short\.labels has 1 labels"):
        read_madelon(tmp_path / "x.data", tmp_path / "short.labels")
    (tmp_path / "bad.data").write_text("1 2 3\n4 five 6\n")
    with pytest.raises(CorruptFileError, match=r"bad\.data is not a valid text matrix file"):
        read_madelon(tmp_path / "bad.data", tmp_path / "x.labels")


def test_higgs_reader_wants_29_columns(tmp_path):
    good = tmp_path / "good.train"
    good.write_text("1\t" + "\t".join(["0.5"] * 28) + "\n0\t" + "\t".join(["-1.0"] * 28) + "\n")
    features, labels = read_higgs_sample(good)
    assert features.shape == (2, 28) and labels.tolist() == [1, 0] and labels.dtype == np.int64
    bad = tmp_path / "bad.train"
    bad.write_text("1\t0.5\t0.25\n")
    with pytest.raises(CorruptFileError, match=r"bad\.train has 3 columns, expected 29"):
        read_higgs_sample(bad)
