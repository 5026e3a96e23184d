"""Dataset loaders: MNIST, Fashion-MNIST, CIFAR-10, MADELON, a HIGGS sample, scikit-feature .mat sets, digits.

``load_dataset(name)`` returns a :class:`Dataset` of flat float32 features and int64 labels, reading files
from ``data_dir`` or the cache and downloading (with checksum verification) what is missing.
``load_file(path)`` reads your own ``.npz`` / ``.csv`` / ``.parquet`` / ``.mat`` file into the same
:class:`Dataset` (:mod:`evosparse.data.files`).
"""

from evosparse.data.dataset import Dataset
from evosparse.data.download import RemoteFile, default_cache_dir
from evosparse.data.errors import CorruptFileError, DatasetNotFoundError
from evosparse.data.files import load_file
from evosparse.data.registry import DATASETS, DatasetSpec, load_dataset

__all__ = [
    "DATASETS",
    "CorruptFileError",
    "Dataset",
    "DatasetNotFoundError",
    "DatasetSpec",
    "RemoteFile",
    "default_cache_dir",
    "load_dataset",
    "load_file",
]
