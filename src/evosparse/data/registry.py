"""The dataset registry and :func:`load_dataset`.

Loading a dataset, step by step:

1. **Look up** the :class:`DatasetSpec` by name in :data:`DATASETS`.
2. **Fetch** each of its files: ``data_dir``, then the cache, then a verified download (:mod:`.download`).
3. **Parse** the files into raw arrays, making a seeded stratified split if the data have none (:mod:`.formats`).
4. **Preprocess**: labels -> 0..K-1; images -> [0, 1]; tabular features standardised with training statistics
   (:mod:`.splits`), everything flattened to (n, features) float32.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from evosparse.data import scikit_feature
from evosparse.data.dataset import Dataset
from evosparse.data.download import RemoteFile, fetch_file
from evosparse.data.errors import CorruptFileError
from evosparse.data.formats import (
    read_cifar10_archive,
    read_higgs_sample,
    read_idx,
    read_madelon,
    read_mat,
    require_finite,
)
from evosparse.data.splits import Split, encode_labels, scale_images, split_arrays, standardise

Loader = Callable[[tuple[Path, ...], int], Split]
"""Reads a spec's files (in the order of ``DatasetSpec.files``) with a seed for splitting; returns raw arrays."""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to obtain and read one dataset."""

    name: str
    """Registry name (lowercase)."""
    description: str
    """What the data are: domain, samples x features, classes."""
    citation: str
    """The paper or source to cite."""
    folder: str
    """Sub-folder of ``data_dir`` / the cache holding the files (as in shared/data); empty if bundled."""
    files: tuple[RemoteFile, ...]
    """The published files, with URLs and checksums; empty for data bundled with a dependency."""
    loader: Loader
    """Function ``(paths, seed) -> Split`` of raw arrays."""
    pixel_max: float | None = None
    """Images: features are divided by this to lie in [0, 1]. None: tabular, standardised."""

    @property
    def preprocessing(self) -> str:
        features = (
            f"pixels / {self.pixel_max:g} into [0, 1]"
            if self.pixel_max is not None
            else "features standardised with the training set's mean and std (std 0 -> 1)"
        )
        return f"{features}; labels -> 0..K-1 in sorted order of the original labels"

    @property
    def bundled(self) -> bool:
        """True if no file is needed (the data ship with an installed package)."""
        return not self.files


# ---- loaders: files -> raw split ------------------------------------------------------------------
def _load_digits(paths: tuple[Path, ...], seed: int) -> Split:
    from sklearn.datasets import load_digits  # scikit-learn is slow to import; only pay when asked

    bunch = load_digits()
    return split_arrays(bunch.images, bunch.target, seed=seed)


def _load_idx(paths: tuple[Path, ...], seed: int) -> Split:
    x_train, y_train, x_test, y_test = (read_idx(path) for path in paths)
    return Split(x_train, y_train, x_test, y_test)


def _load_cifar10(paths: tuple[Path, ...], seed: int) -> Split:
    return Split(*read_cifar10_archive(paths[0]))


def _load_madelon(paths: tuple[Path, ...], seed: int) -> Split:
    # The official test labels were never published: the validation split serves as the test set.
    x_train, y_train = read_madelon(paths[0], paths[1])
    x_test, y_test = read_madelon(paths[2], paths[3])
    return Split(x_train, y_train, x_test, y_test)


def _load_higgs_sample(paths: tuple[Path, ...], seed: int) -> Split:
    return Split(*read_higgs_sample(paths[0]), *read_higgs_sample(paths[1]))


def _load_mat(paths: tuple[Path, ...], seed: int) -> Split:
    x, y = read_mat(paths[0])
    return split_arrays(x, y, seed=seed)


def _load_coil20(paths: tuple[Path, ...], seed: int) -> Split:
    x, y = read_mat(paths[0])
    if x.shape[1] != 32 * 32:
        raise CorruptFileError(f"{paths[0]}: COIL20 images have 1024 pixels (32 x 32), got {x.shape[1]}")
    # Each row holds a 32x32 image in MATLAB's column-major order: transposed, the rows come out upright.
    images = x.reshape(-1, 32, 32).transpose(0, 2, 1)
    return split_arrays(images, y, seed=seed)


# ---- the catalogue ----------------------------------------------------------------------------------
def _idx_files(base_urls: tuple[str, ...], md5s: dict[str, str]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, tuple(base + name for base in base_urls), f"md5:{md5}") for name, md5 in md5s.items())


# The original host (yann.lecun.com) often refuses downloads: torchvision's mirror comes first.
_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_MNIST_MD5 = {  # published values (torchvision)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_FASHION_MNIST_MD5 = {  # published values (zalandoresearch/fashion-mnist README)
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_MADELON_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/madelon/"
_MADELON_SHA256 = {
    "MADELON/madelon_train.data": "0b6e37711efdc7ab74250c51e7d6966bffd9f8f2b0e9971e882c3a7a380c2314",
    "MADELON/madelon_train.labels": "10bffcc3b017467cb810d326b931951adcbde2b4870faf981da2991993b48689",
    "MADELON/madelon_valid.data": "cb9a46475147de1a58d9f15ef4c318e5b85de344e0f9ab92626fa446aa815dc9",
    "madelon_valid.labels": "fbac32fa87fac41ab731994a1c824e7b25396069bff6df242c01fe240fcb34dc",  # not in MADELON/
}
_HIGGS_URL = "https://raw.githubusercontent.com/microsoft/LightGBM/master/examples/binary_classification/"
_HIGGS_SHA256 = {
    "binary.train": "41c42dc14f86960256bf872fc8ae6286c688b44f43b4057b29428787fc1e0444",
    "binary.test": "d99ebec91acd99638f00c727c251c947a1d17ddfcbea27bfef6b0dc5e5fb1db3",
}

_SPECS = [
    DatasetSpec(
        name="digits",
        description="8x8 handwritten digits bundled with scikit-learn, 1797 x 64, 10 classes; "
        "stratified seeded 2/3 - 1/3 split",
        citation="Alpaydin and Kaynak, 'Optical Recognition of Handwritten Digits', "
        "UCI Machine Learning Repository (1998)",
        folder="",
        files=(),
        loader=_load_digits,
        pixel_max=16.0,
    ),
    DatasetSpec(
        name="mnist",
        description="MNIST handwritten digits 28x28, 60000 train / 10000 test, 10 classes",
        citation="LeCun, Bottou, Bengio and Haffner, 'Gradient-based learning applied to document recognition', "
        "Proceedings of the IEEE 86(11) (1998)",
        folder="mnist",
        files=_idx_files(_MNIST_URLS, _MNIST_MD5),
        loader=_load_idx,
        pixel_max=255.0,
    ),
    DatasetSpec(
        name="fashion_mnist",
        description="Fashion-MNIST clothing images 28x28, 60000 train / 10000 test, 10 classes",
        citation="Xiao, Rasul and Vollgraf, 'Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning "
        "Algorithms', arXiv:1708.07747 (2017)",
        folder="fashion_mnist",
        files=_idx_files(("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",), _FASHION_MNIST_MD5),
        loader=_load_idx,
        pixel_max=255.0,
    ),
    DatasetSpec(
        name="cifar10",
        description="CIFAR-10 colour images 3x32x32 flattened to 3072 features, 50000 train / 10000 test, 10 classes",
        citation="Krizhevsky, 'Learning Multiple Layers of Features from Tiny Images', tech. report, "
        "University of Toronto (2009)",
        folder="cifar10",
        files=(
            RemoteFile(
                "cifar-10-binary.tar.gz",
                ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                "md5:c32a1d4ab5d03f1284b67883e8d87530",
            ),
        ),
        loader=_load_cifar10,
        pixel_max=255.0,
    ),
    DatasetSpec(
        name="madelon",
        description="MADELON synthetic XOR-like problem (NIPS 2003 challenge), 500 features, 2000 train / "
        "600 test (the published validation split), 2 classes (-1/1 -> 0/1)",
        citation="Guyon, Gunn, Ben-Hur and Dror, 'Result analysis of the NIPS 2003 feature selection challenge', "
        "NIPS 17 (2004)",
        folder="madelon",
        files=tuple(
            RemoteFile(Path(path).name, (_MADELON_URL + path,), f"sha256:{digest}")
            for path, digest in _MADELON_SHA256.items()
        ),
        loader=_load_madelon,
    ),
    DatasetSpec(
        name="higgs_sample",
        description="HIGGS sample from LightGBM's examples: 7000 train / 500 test, 28 features, 2 classes "
        "(for tests and smoke runs, not the paper's 11M-row HIGGS)",
        citation="Baldi, Sadowski and Whiteson, 'Searching for exotic particles in high-energy physics with deep "
        "learning', Nature Communications 5, 4308 (2014)",
        folder="higgs_lightgbm_sample",
        files=tuple(
            RemoteFile(name, (_HIGGS_URL + name,), f"sha256:{digest}") for name, digest in _HIGGS_SHA256.items()
        ),
        loader=_load_higgs_sample,
    ),
    DatasetSpec(
        name="coil20",
        description="COIL-20 object images 32x32 in [0, 1] (20 objects x 72 poses), 1440 x 1024, 20 classes; "
        "stratified seeded 2/3 - 1/3 split (960 / 480, the SET-RBM reference's proportions)",
        citation="Nene, Nayar and Murase, 'Columbia Object Image Library (COIL-20)', tech. report CUCS-005-96 "
        "(1996); file from scikit-feature (Li et al. 2017)",
        folder="coil20",
        files=(
            RemoteFile(
                scikit_feature.COIL20[0],
                (scikit_feature.URL.format(file=scikit_feature.COIL20[0]),),
                scikit_feature.COIL20[1],
            ),
        ),  # fmt: skip
        loader=_load_coil20,
        pixel_max=1.0,
    ),
    *(
        DatasetSpec(
            name=name,
            description=f"{description}; scikit-feature, stratified seeded 2/3 - 1/3 split",
            citation=scikit_feature.CITATION,
            folder="scikit_feature",
            files=(RemoteFile(file, (scikit_feature.URL.format(file=file),), checksum),),
            loader=_load_mat,
        )
        for name, file, checksum, description in scikit_feature.MAT_FILES
    ),
]

_REGISTRY = {spec.name: spec for spec in _SPECS}
DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(_REGISTRY)
"""Every registered dataset, by name (read only)."""


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = True,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    verify: bool = False,
) -> Dataset:
    """Load a registered dataset as a preprocessed :class:`Dataset`.

    Args:
        name: a key of :data:`DATASETS` (case and ``-``/``_`` are ignored: ``"Fashion-MNIST"`` works).
        data_dir: a folder laid out like ``shared/data`` (``data_dir/mnist/train-images-idx3-ubyte.gz``,
            ``data_dir/scikit_feature/ALLAML.mat``, ...), searched first; never written to.
        download: if a file is in neither ``data_dir`` nor the cache, download it into the cache.
        cache_dir: where downloads go and are looked for; default :func:`default_cache_dir`.
        seed: seed of the stratified train/test split of data published without one (ignored otherwise).
        verify: check the checksum of files found on disk too (downloads are always checked).

    Raises:
        ValueError: unknown ``name`` or invalid ``seed``.
        DatasetNotFoundError: a file is missing and ``download`` is False, or the download failed.
        CorruptFileError: a file has the wrong checksum or cannot be parsed.
    """
    spec = _lookup(name)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    paths = tuple(
        fetch_file(remote, spec.folder, data_dir=data_dir, cache_dir=cache_dir, download=download, verify=verify)
        for remote in spec.files
    )
    raw = spec.loader(paths, int(seed))
    # The parsers check the files they read; this backstop covers every loader (bundled data included).
    files = ", ".join(str(path) for path in paths) or "bundled data"
    for part in ("x_train", "x_test"):
        require_finite(getattr(raw, part), source=f"{spec.name} {part} (read from {files})")
    y_train, y_test, n_classes = encode_labels(raw.y_train, raw.y_test)
    if spec.pixel_max is not None:
        x_train, x_test = scale_images(raw.x_train, spec.pixel_max), scale_images(raw.x_test, spec.pixel_max)
    else:
        flat_train, flat_test = (x.reshape(x.shape[0], -1) for x in (raw.x_train, raw.x_test))
        try:
            x_train, x_test = standardise(flat_train, flat_test)
        except ValueError as error:
            raise CorruptFileError(f"{spec.name} (read from {files}): {error}") from None
    for part, values in (("x_train", x_train), ("x_test", x_test)):  # finite values too large for float32
        require_finite(values, source=f"{spec.name} {part} after scaling (read from {files}; values too large?)")
    return Dataset(
        name=spec.name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=n_classes,
        feature_shape=tuple(int(d) for d in raw.x_train.shape[1:]),
    )


def _lookup(name: str) -> DatasetSpec:
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else None
    if key not in DATASETS:
        raise ValueError(f"name must be one of {', '.join(sorted(DATASETS))}; got {name!r}")
    return DATASETS[key]
