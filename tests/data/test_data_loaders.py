"""load_dataset on the real files of the offline data folder (skipped when a file is absent)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from conftest import require_file, shared_data_path

from evosparse.data import DATASETS, Dataset, RemoteFile, load_dataset
from evosparse.data.download import file_digest

# Published class counts (shared/data/README.md).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's real cache."""
    monkeypatch.setenv("EVOSPARSE_DATA", str(tmp_path / "cache"))


def data_dir_with(*relatives: str) -> Path:
    """The offline data folder, once every file in ``relatives`` is known to be there (else skip)."""
    for relative in relatives:
        require_file(relative)
    return shared_data_path()


def load_offline(name: str, seed: int = 0) -> Dataset:
    spec = DATASETS[name]
    data_dir = data_dir_with(*(f"{spec.folder}/{remote.name}" for remote in spec.files))
    return load_dataset(name, data_dir=data_dir, download=False, seed=seed)


def assert_well_formed(ds: Dataset) -> None:
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == ds.n_features
        assert y.dtype == np.int64 and y.shape == (x.shape[0],)
        assert np.isfinite(x).all()
    assert set(np.unique(ds.y_train)) == set(range(ds.n_classes))


def assert_standardised(ds: Dataset) -> None:
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-4)
    std = ds.x_train.std(axis=0)
    assert np.all((np.abs(std - 1.0) < 1e-3) | (std < 1e-6))  # constant features stay at 0


# ---- digits: bundled with scikit-learn, no files -----------------------------------------------------
def test_digits_loads_with_no_data_dir(tmp_path):
    ds = load_dataset("digits", download=False)
    assert_well_formed(ds)
    assert ds.n_train + ds.n_test == 1797
    assert (ds.n_features, ds.n_classes, ds.feature_shape) == (64, 10, (8, 8))
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert not (tmp_path / "cache").exists()  # nothing to fetch, nothing written


def test_digits_split_is_stratified_and_seeded():
    first, again, other = load_dataset("digits", seed=0), load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.y_train, other.y_train)
    total = np.bincount(first.y_train, minlength=10) + np.bincount(first.y_test, minlength=10)
    np.testing.assert_allclose(np.bincount(first.y_test, minlength=10) / total, 1 / 3, atol=0.01)


def test_describe_is_one_line():
    text = str(load_dataset("digits"))
    assert text == "digits: 1198 train / 599 test samples, 64 features (8x8), 10 classes"
    assert repr(load_dataset("digits")).startswith("Dataset(digits:")


# ---- MNIST and Fashion-MNIST -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_offline("mnist")


def test_mnist_shapes_counts_and_range(mnist):
    assert_well_formed(mnist)
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.feature_shape == (28, 28) and mnist.n_classes == 10
    assert np.bincount(mnist.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == MNIST_TEST_COUNTS
    assert mnist.x_train.min() == 0.0 and mnist.x_train.max() == 1.0
    assert 0.0 <= mnist.x_test.min() and mnist.x_test.max() <= 1.0


def test_mnist_pixels_are_the_file_bytes_over_255(mnist):
    # Reference reading from the README: images start at byte 16, labels at byte 8 of the decompressed files.
    images = gzip.open(require_file("mnist/train-images-idx3-ubyte.gz")).read()
    labels = gzip.open(require_file("mnist/train-labels-idx1-ubyte.gz")).read()
    first_two = np.frombuffer(images, np.uint8, count=2 * 784, offset=16).reshape(2, 784)
    np.testing.assert_array_equal(mnist.x_train[:2], first_two.astype(np.float32) / np.float32(255))
    assert mnist.y_train[:2].tolist() == list(labels[8:10]) == [5, 0]


def test_fashion_mnist_shapes_counts_and_range():
    ds = load_offline("fashion_mnist")
    assert_well_formed(ds)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0


def test_names_are_case_and_dash_insensitive():
    data_dir = data_dir_with("higgs_lightgbm_sample/binary.train", "higgs_lightgbm_sample/binary.test")
    assert load_dataset("Higgs-Sample", data_dir=data_dir, download=False).name == "higgs_sample"


# ---- tabular sets with a published split ---------------------------------------------------------------
def test_madelon_uses_train_and_valid_files():
    ds = load_offline("madelon")
    assert_well_formed(ds)
    assert ds.x_train.shape == (2000, 500) and ds.x_test.shape == (600, 500)
    assert ds.n_classes == 2 and ds.feature_shape == (500,)
    assert np.bincount(ds.y_train).tolist() == [1000, 1000]  # labels -1/1 -> 0/1
    assert np.bincount(ds.y_test).tolist() == [300, 300]
    assert_standardised(ds)


def test_higgs_sample_shapes_and_labels():
    ds = load_offline("higgs_sample")
    assert_well_formed(ds)
    assert ds.x_train.shape == (7000, 28) and ds.x_test.shape == (500, 28)
    assert np.bincount(ds.y_train).tolist() == [3284, 3716]
    assert np.bincount(ds.y_test).tolist() == [228, 272]
    assert_standardised(ds)
    assert abs(float(ds.x_test.mean())) < 0.2  # test set uses the training statistics: close to, not exactly, 0


def test_published_split_ignores_seed():
    first, other = load_offline("higgs_sample", seed=0), load_offline("higgs_sample", seed=5)
    np.testing.assert_array_equal(first.x_train, other.x_train)


# ---- scikit-feature .mat sets: seeded stratified split ---------------------------------------------------
@pytest.mark.parametrize(
    ("name", "n_samples", "n_features", "class_counts"),
    [
        ("allaml", 72, 7129, [47, 25]),
        ("prostate_ge", 102, 5966, [50, 52]),
        ("lung_discrete", 73, 325, [6, 5, 5, 16, 7, 13, 21]),
        ("colon", 62, 2000, [40, 22]),
        ("arcene", 200, 10000, [112, 88]),
        ("tox_171", 171, 5748, [45, 45, 39, 42]),
    ],
)
def test_mat_sets_shapes_split_and_standardisation(name, n_samples, n_features, class_counts):
    ds = load_offline(name)
    assert_well_formed(ds)
    assert ds.n_train + ds.n_test == n_samples
    assert ds.feature_shape == (n_features,) and ds.n_classes == len(class_counts)
    total = np.bincount(ds.y_train, minlength=ds.n_classes) + np.bincount(ds.y_test, minlength=ds.n_classes)
    assert total.tolist() == class_counts
    # Stratified: each class sends round(n_c / 3) samples to the test set.
    expected_test = [int(np.floor(count / 3 + 0.5)) for count in class_counts]
    assert np.bincount(ds.y_test, minlength=ds.n_classes).tolist() == expected_test
    assert_standardised(ds)


def test_mat_split_is_deterministic_for_a_seed_and_differs_across_seeds():
    first, again, other = load_offline("allaml", seed=3), load_offline("allaml", seed=3), load_offline("allaml", seed=4)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert not np.array_equal(first.x_test, other.x_test)
    # Same samples overall, just cut differently: the multiset of test-set class counts is the same.
    assert np.bincount(first.y_test).tolist() == np.bincount(other.y_test).tolist()


# ---- the registry agrees with the published checksums of the offline copies -----------------------------
def files_in_shared_data() -> list[tuple[str, RemoteFile]]:
    """Every registered file present in the offline folder (the big downloads-only files are not)."""
    root = shared_data_path()
    registered = [(f"{spec.folder}/{remote.name}", remote) for spec in DATASETS.values() for remote in spec.files]
    return [(relative, remote) for relative, remote in registered if root is not None and (root / relative).is_file()]


FILES_IN_SHARED_DATA = files_in_shared_data()


@pytest.mark.parametrize(("relative", "remote"), FILES_IN_SHARED_DATA, ids=[rel for rel, _ in FILES_IN_SHARED_DATA])
def test_registered_checksum_matches_offline_copy(relative, remote):
    assert file_digest(require_file(relative), remote.algorithm) == remote.digest


def test_git_blob_checksum_matches_published_prefix():
    # README: ALLAML.mat is Git blob b592b0ace190... in jundongl/scikit-feature.
    assert file_digest(require_file("scikit_feature/ALLAML.mat"), "git-sha1").startswith("b592b0ace190")


def test_registry_lists_every_promised_dataset_with_provenance():
    promised = {"digits", "mnist", "fashion_mnist", "cifar10", "madelon", "higgs_sample", "allaml", "leukemia"}
    promised |= {"prostate_ge", "lung_discrete", "arcene", "tox_171", "colon", "gli_85", "cll_sub_111", "smk_can_187"}
    assert promised | {"lung"} <= set(DATASETS)
    for name, spec in DATASETS.items():
        assert name == spec.name == name.lower() and spec.description and spec.citation
        assert spec.bundled == (name == "digits")
        assert all(remote.urls and remote.urls[0].startswith(("https://", "http://")) for remote in spec.files)
    assert (
        DATASETS["mnist"].files[0].urls[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    )
    assert DATASETS["lung"].files[0].urls == ("https://jundongl.github.io/scikit-feature/files/datasets/lung.mat",)
    assert DATASETS["mnist"].preprocessing.startswith("pixels / 255 into [0, 1]")
    assert DATASETS["allaml"].preprocessing.startswith("features standardised with the training set's mean")
    with pytest.raises(TypeError):
        DATASETS["mine"] = DATASETS["mnist"]  # read only
