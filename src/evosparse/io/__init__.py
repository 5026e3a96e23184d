"""Safe files and run folders: the lowest layer, used by every run type (train, compare, neat, rl, rbm).

* :mod:`~evosparse.io.atomic`: atomic writes (temporary file, fsync, rename, fsync of the folder).
* :mod:`~evosparse.io.serialize`: data-only files, JSON and ``.npz`` (never pickle), with a format tag and
  a SHA-256 checksum checked on read.
* :mod:`~evosparse.io.torch_files`: torch state dicts (``torch.load(weights_only=True)``), same checks.
* :mod:`~evosparse.io.run_folder`: :class:`RunFolder`, the lock and the refuse / resume / overwrite rule.

Imports nothing else of evosparse; torch only in :mod:`~evosparse.io.torch_files`.
"""

from evosparse.io.atomic import atomic_write, atomic_write_bytes, atomic_write_set, atomic_write_text
from evosparse.io.digest import content_digest, file_sha256
from evosparse.io.errors import FileFormatError, MissingFileError, RunFolderError, WriteError
from evosparse.io.run_folder import MANIFEST_FILE, FolderLock, RunFolder, read_manifest
from evosparse.io.serialize import dump_arrays, dump_json, load_arrays, load_json, save_arrays, save_json

__all__ = [
    "MANIFEST_FILE",
    "FileFormatError",
    "FolderLock",
    "MissingFileError",
    "RunFolder",
    "RunFolderError",
    "WriteError",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_set",
    "atomic_write_text",
    "content_digest",
    "dump_arrays",
    "dump_json",
    "file_sha256",
    "load_arrays",
    "load_json",
    "read_manifest",
    "save_arrays",
    "save_json",
]
