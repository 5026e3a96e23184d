"""Finding data files on disk, downloading the missing ones, and checking them.

Where a file comes from, in order:

1. ``data_dir/<folder>/<name>`` when a ``data_dir`` is given (read only: nothing is ever written there);
2. ``cache_dir/<folder>/<name>``, the cache being ``cache_dir`` if given, else :func:`default_cache_dir`;
3. a download from the file's URLs (tried in order) into the cache, when ``download=True``.

A download is atomic: the bytes go to a hidden temporary file beside the target, the checksum is
verified, and only then is the file renamed into place (``os.replace``). A checksum mismatch deletes
the temporary file and raises :class:`CorruptFileError`, so the cache never holds a partial or wrong file.
Files found on disk are checked only when ``verify=True`` (reading large files twice is wasteful).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from evosparse.data.errors import CorruptFileError, DatasetNotFoundError

CHECKSUM_ALGORITHMS = ("md5", "sha256", "git-sha1")
USER_AGENT = "evosparse-data/0.1 (Python urllib)"
_CHUNK_BYTES = 1 << 20

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteFile:
    """One published data file: its name, where to download it, and its published checksum.

    ``checksum`` is ``"<algorithm>:<hex digest>"`` with algorithm ``md5``, ``sha256`` or ``git-sha1``
    (the Git blob id, as printed by ``git hash-object FILE``; used where only a repository blob is known).
    """

    name: str
    """File name inside the dataset's folder, e.g. ``"train-images-idx3-ubyte.gz"``."""
    urls: tuple[str, ...]
    """Download addresses, tried in order (mirror first when the original host is unreliable)."""
    checksum: str
    """``"md5:..."``, ``"sha256:..."`` or ``"git-sha1:..."``."""

    def __post_init__(self) -> None:
        algorithm, _, digest = self.checksum.partition(":")
        if algorithm not in CHECKSUM_ALGORITHMS:
            raise ValueError(f"checksum algorithm must be one of {CHECKSUM_ALGORITHMS}, got {self.checksum!r}")
        if not digest or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"checksum must be '<algorithm>:<lowercase hex>', got {self.checksum!r}")

    @property
    def algorithm(self) -> str:
        return self.checksum.partition(":")[0]

    @property
    def digest(self) -> str:
        return self.checksum.partition(":")[2]


def default_cache_dir() -> Path:
    """Where downloads go by default: ``$EVOSPARSE_DATA`` if set, else ``~/.cache/evosparse``."""
    configured = os.environ.get("EVOSPARSE_DATA")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "evosparse"


def file_digest(path: str | Path, algorithm: str) -> str:
    """Hex digest of a file with ``md5``, ``sha256`` or ``git-sha1`` (SHA-1 of ``b"blob <size>\\0" + bytes``)."""
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ValueError(f"algorithm must be one of {CHECKSUM_ALGORITHMS}, got {algorithm!r}")
    path = Path(path)
    if algorithm == "git-sha1":
        hasher = hashlib.sha1(usedforsecurity=False)
        hasher.update(f"blob {path.stat().st_size}\0".encode())
    else:
        hasher = hashlib.new(algorithm, usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


def verify_file(path: Path, remote: RemoteFile) -> None:
    """Raise :class:`CorruptFileError` naming ``path`` unless its checksum is the published one."""
    actual = file_digest(path, remote.algorithm)
    if actual != remote.digest:
        raise CorruptFileError(
            f"{path} has {remote.algorithm} {actual}, expected {remote.digest}: the file is damaged or a "
            f"different version; replace it with the published file (or delete it from the cache to download it again)"
        )


def fetch_file(
    remote: RemoteFile,
    folder: str,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    verify: bool = False,
) -> Path:
    """Path of ``folder/remote.name``, found in ``data_dir`` or the cache, or downloaded into the cache.

    Raises:
        DatasetNotFoundError: the file is nowhere on disk and ``download`` is False or every URL failed.
        CorruptFileError: the checksum is wrong (always checked after a download; on disk if ``verify``).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    roots = ([Path(data_dir).expanduser()] if data_dir is not None else []) + [cache]
    relative = Path(folder) / remote.name
    for root in roots:
        candidate = root / relative
        if candidate.is_file():
            if verify:
                verify_file(candidate, remote)
            return candidate
    looked_in = ", ".join(str(root / folder) for root in roots)
    advice = f"pass data_dir (--data-dir) pointing to a folder that contains {relative.as_posix()}"
    if not download:
        raise DatasetNotFoundError(f"{relative.as_posix()} not found in {looked_in}; {advice}, or allow download")
    return download_file(remote, cache / relative, advice=advice)


def download_file(remote: RemoteFile, target: Path, *, advice: str = "", timeout: float = 60.0) -> Path:
    """Download ``remote`` to ``target`` atomically, trying its URLs in order; verify the checksum."""
    target.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in remote.urls:
        try:
            _download_once(url, target, remote, timeout=timeout)
            return target
        except (OSError, http.client.HTTPException) as error:  # network and HTTP errors: try the next URL
            failures.append(f"{url} ({_describe(error)})")
    tried = "; ".join(failures) or "no URL is known"
    raise DatasetNotFoundError(f"could not download {target.name}: {tried}; {advice or 'retry later'}")


def _describe(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    return str(error.reason if isinstance(error, urllib.error.URLError) else error)


def _download_once(url: str, target: Path, remote: RemoteFile, *, timeout: float) -> None:
    # Same folder as the target, so os.replace is an atomic rename on the same file system.
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    logger.info("downloading %s to %s", url, target)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, partial.open("xb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name, disable=None) as bar:
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))
        actual = file_digest(partial, remote.algorithm)
        if actual != remote.digest:
            raise CorruptFileError(
                f"checksum mismatch for {target.name} downloaded from {url}: {remote.algorithm} {actual}, "
                f"expected {remote.digest}; the partial file was deleted. The download was corrupted or the "
                f"upstream file changed: retry, or place a verified copy in {target.parent}"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)  # no-op after a successful replace
