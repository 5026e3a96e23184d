"""Every loader of a file a user may have received, fed hostile and broken files.

For each loader and each file below: the loader raises its one-line error (a ValueError or OSError, which
the command line prints as ``error: ...``), the message names the file, and -- for the payloads that
would run code if unpickled -- the marker file does not exist afterwards.
"""

from __future__ import annotations

import io
import tarfile

import pytest
from hostile import object_npz_bytes, pickle_bytes, torch_payload_bytes


def loaders():
    from evosparse.data.formats import read_cifar10_archive, read_idx, read_mat, read_text_matrix
    from evosparse.io import load_arrays, load_json, read_manifest
    from evosparse.io.torch_files import load_torch
    from evosparse.neat import NeatConfig, load_checkpoint, load_winner
    from evosparse.neat.reporting import read_history
    from evosparse.train import TrainConfig
    from evosparse.train import load_checkpoint as load_train_checkpoint
    from evosparse.train.callbacks import read_connectivity

    return {
        "neat checkpoint": load_checkpoint,
        "neat winner": load_winner,
        "train checkpoint": load_train_checkpoint,
        "connectivity.npz": read_connectivity,
        "train config (toml)": TrainConfig.from_file,
        "neat config (toml)": NeatConfig.from_file,
        "run manifest": lambda path: read_manifest(_as_manifest(path)),
        "json file": lambda path: load_json(path, format="f"),
        "npz file": lambda path: load_arrays(path, format="f"),
        "torch file": lambda path: load_torch(path, format="f"),
        "neat history.csv": read_history,
        "idx": read_idx,
        "mat": read_mat,
        "text matrix": read_text_matrix,
        "cifar-10 archive": read_cifar10_archive,
    }


def _as_manifest(path):
    """read_manifest reads ``run.json`` in a folder: put the file there."""
    folder = path.parent / f"folder-{path.stem}"
    folder.mkdir(exist_ok=True)
    (folder / "run.json").write_bytes(path.read_bytes())
    return folder


def hostile_files(marker) -> dict[str, bytes]:
    return {
        "pickle": pickle_bytes(marker, wrap=False),
        "wrapped-pickle": pickle_bytes(marker),
        "object-npz": object_npz_bytes(marker),
        "torch-payload": torch_payload_bytes(marker),
        "noise": bytes(range(256)) * 4,
        "empty": b"",
        "text": b"hello = [1, 2\n",
        "binary-toml": b"\xff\xfe\x00n_inputs = 3",
    }


@pytest.mark.parametrize("loader_name", sorted(loaders()))
def test_loader_refuses_hostile_and_broken_files_without_running_code(tmp_path, loader_name):
    load = loaders()[loader_name]
    marker = tmp_path / "pwned"
    for name, content in hostile_files(marker).items():
        if name == "empty" and "config" in loader_name:
            continue  # an empty config file is valid: every setting at its default
        path = tmp_path / f"{name}.file"
        path.write_bytes(content)
        with pytest.raises((ValueError, OSError)) as caught:
            load(path)
        message = " ".join(str(caught.value).split())
        assert message, (loader_name, name)
        assert "\n" not in str(caught.value).strip(), (loader_name, name, str(caught.value))
        assert path.name in message or f"folder-{path.stem}" in message, (loader_name, name, message)
    assert not marker.exists(), f"{loader_name} ran code from a file"


def test_cifar_archive_with_a_code_payload_is_refused(tmp_path):
    from evosparse.data import CorruptFileError
    from evosparse.data.formats import CIFAR10_TEST_BATCH, CIFAR10_TRAIN_BATCHES, read_cifar10_archive

    marker = tmp_path / "pwned"
    payload = pickle_bytes(marker, wrap=False)
    for folder, names, error in (
        ("cifar-10-batches-bin", (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH), "not a multiple of the 3073-byte"),
        ("cifar-10-batches-py", ("data_batch_1", "test_batch"), "which evosparse never loads"),
    ):
        with tarfile.open(tmp_path / f"{folder}.tar.gz", "w:gz") as archive:
            for name in names:
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
        with pytest.raises(CorruptFileError, match=error):
            read_cifar10_archive(tmp_path / f"{folder}.tar.gz")
        assert not marker.exists()
