"""Finding, downloading and checking files, against a local HTTP server and file:// URLs (no internet)."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import require_file

import evosparse.data.download as download_module
from evosparse.data import (
    CorruptFileError,
    DatasetNotFoundError,
    RemoteFile,
    default_cache_dir,
    load_dataset,
)
from evosparse.data import registry as registry_module
from evosparse.data.download import fetch_file, file_digest

PAYLOAD = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # several download chunks, not a round size
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on localhost; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's real cache."""
    monkeypatch.setenv("EVOSPARSE_DATA", str(tmp_path / "env-cache"))


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


# ---- successful downloads --------------------------------------------------------------------------
def test_http_download_lands_verified_in_the_cache(served, tmp_path):
    folder, base = served
    (folder / "blob.bin").write_bytes(PAYLOAD)
    remote = RemoteFile("blob.bin", (base + "blob.bin",), f"sha256:{PAYLOAD_SHA256}")
    path = fetch_file(remote, "demo", cache_dir=tmp_path / "cache")
    assert path == tmp_path / "cache" / "demo" / "blob.bin"
    assert path.read_bytes() == PAYLOAD
    assert leftovers(path.parent) == ["blob.bin"]  # no temporary file left behind
    # Found in the cache next time: no server needed, and verify=True re-checks it.
    (folder / "blob.bin").unlink()
    assert fetch_file(remote, "demo", cache_dir=tmp_path / "cache", download=False, verify=True) == path


def test_download_is_renamed_into_place_only_after_verification(served, tmp_path, monkeypatch):
    folder, base = served
    (folder / "blob.bin").write_bytes(PAYLOAD)
    seen = []
    real_replace = download_module.os.replace

    def checking_replace(source, target):
        source, target = Path(source), Path(target)
        # Atomic: the complete, verified bytes sit in a hidden file of the same folder; the target does not exist yet.
        seen.append((source.parent == target.parent, source.name.startswith("."), target.exists()))
        assert file_digest(source, "sha256") == PAYLOAD_SHA256
        real_replace(source, target)

    monkeypatch.setattr(download_module.os, "replace", checking_replace)
    fetch_file(RemoteFile("blob.bin", (base + "blob.bin",), f"sha256:{PAYLOAD_SHA256}"), "demo", cache_dir=tmp_path)
    assert seen == [(True, True, False)]


def test_file_url_download(tmp_path):
    source = tmp_path / "published" / "blob.bin"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    path = fetch_file(RemoteFile("blob.bin", (source.as_uri(),), f"md5:{md5}"), "demo", cache_dir=tmp_path / "cache")
    assert path.read_bytes() == PAYLOAD


def test_next_url_is_tried_when_one_fails(served, tmp_path):
    folder, base = served
    (folder / "blob.bin").write_bytes(PAYLOAD)
    remote = RemoteFile("blob.bin", (base + "gone/blob.bin", base + "blob.bin"), f"sha256:{PAYLOAD_SHA256}")
    assert fetch_file(remote, "demo", cache_dir=tmp_path).read_bytes() == PAYLOAD


# ---- failed downloads --------------------------------------------------------------------------------
def test_checksum_mismatch_raises_and_leaves_no_partial_file(served, tmp_path):
    folder, base = served
    (folder / "blob.bin").write_bytes(PAYLOAD)
    remote = RemoteFile("blob.bin", (base + "blob.bin",), "sha256:" + "0" * 64)
    with pytest.raises(CorruptFileError, match=r"checksum mismatch for blob\.bin .* expected 0{64}"):
        fetch_file(remote, "demo", cache_dir=tmp_path / "cache")
    assert leftovers(tmp_path / "cache" / "demo") == []


def test_unreachable_file_raises_not_found_naming_the_urls(served, tmp_path):
    _, base = served
    remote = RemoteFile("blob.bin", (base + "missing.bin",), f"sha256:{PAYLOAD_SHA256}")
    with pytest.raises(DatasetNotFoundError, match=r"could not download blob\.bin: .*missing\.bin \(HTTP 404 "):
        fetch_file(remote, "demo", cache_dir=tmp_path / "cache")
    assert leftovers(tmp_path / "cache" / "demo") == []


# ---- load_dataset end to end, with the registry pointed at the local server ---------------------------
@pytest.fixture
def higgs_served(served, monkeypatch):
    """The HIGGS sample spec, its URLs replaced by the local server holding copies of the offline files."""
    folder, base = served
    spec = registry_module.DATASETS["higgs_sample"]
    for remote in spec.files:
        shutil.copy(require_file(f"higgs_lightgbm_sample/{remote.name}"), folder / remote.name)
    local = replace(spec, files=tuple(replace(remote, urls=(base + remote.name,)) for remote in spec.files))
    monkeypatch.setitem(registry_module._REGISTRY, "higgs_sample", local)
    return folder


def test_load_dataset_downloads_into_the_cache_not_the_data_dir(higgs_served, tmp_path):
    data_dir, cache = tmp_path / "data", tmp_path / "cache"
    data_dir.mkdir()
    ds = load_dataset("higgs_sample", data_dir=data_dir, cache_dir=cache)
    assert ds.x_train.shape == (7000, 28)
    assert leftovers(cache / "higgs_lightgbm_sample") == ["binary.test", "binary.train"]
    assert leftovers(data_dir) == []  # data_dir is read only
    for path in higgs_served.iterdir():
        path.unlink()  # the server has nothing now: the next load must come from the cache
    again = load_dataset("higgs_sample", cache_dir=cache, download=False)
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_default_cache_is_evosparse_data(higgs_served, tmp_path):
    load_dataset("higgs_sample")
    assert leftovers(tmp_path / "env-cache" / "higgs_lightgbm_sample") == ["binary.test", "binary.train"]


def test_failed_download_raises_dataset_not_found(higgs_served, tmp_path):
    (higgs_served / "binary.test").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"could not download binary\.test.*--data-dir"):
        load_dataset("higgs_sample", cache_dir=tmp_path / "cache")


# ---- files on disk -------------------------------------------------------------------------------------
def test_missing_file_without_download_says_what_where_and_how(tmp_path):
    data_dir, cache = tmp_path / "data", tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset("mnist", data_dir=data_dir, cache_dir=cache, download=False)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert "\n" not in message
    assert "mnist/train-images-idx3-ubyte.gz not found" in message
    assert str(data_dir / "mnist") in message and str(cache / "mnist") in message
    assert "data_dir (--data-dir) pointing to a folder that contains mnist/train-images-idx3-ubyte.gz" in message
    assert message.endswith("or allow download")


def test_verify_catches_a_damaged_file_in_data_dir(tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "higgs_lightgbm_sample").mkdir(parents=True)
    for name in ("binary.train", "binary.test"):
        shutil.copy(require_file(f"higgs_lightgbm_sample/{name}"), data_dir / "higgs_lightgbm_sample" / name)
    damaged = data_dir / "higgs_lightgbm_sample" / "binary.test"
    damaged.write_bytes(damaged.read_bytes().replace(b"0.869", b"0.868", 1))  # still parses: only a checksum sees it
    assert load_dataset("higgs_sample", data_dir=data_dir, download=False).n_test == 500  # verify=False by default
    with pytest.raises(CorruptFileError, match=rf"{damaged} has sha256 [0-9a-f]{{64}}, expected d99ebec9"):
        load_dataset("higgs_sample", data_dir=data_dir, download=False, verify=True)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("EVOSPARSE_DATA", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("EVOSPARSE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "evosparse"


# ---- arguments -----------------------------------------------------------------------------------------
def test_unknown_name_lists_the_allowed_names():
    with pytest.raises(ValueError, match=r"name must be one of .*digits.*mnist.*; got 'imagenet'"):
        load_dataset("imagenet")


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        load_dataset("digits", seed=seed)


@pytest.mark.parametrize("checksum", ["crc32:1234", "sha256:", "md5:XYZ", "0123abcd"])
def test_bad_checksum_spec_is_rejected(checksum):
    with pytest.raises(ValueError, match="checksum"):
        RemoteFile("f", ("file:///f",), checksum)


def test_file_digest_known_values(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert file_digest(path, "git-sha1") == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object
    assert file_digest(path, "md5") == "b1946ac92492d2347c6235b4d2611184"
    assert file_digest(path, "sha256") == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    with pytest.raises(ValueError, match="algorithm must be one of"):
        file_digest(path, "crc32")
