"""Atomic writes: a reader (or a run resumed after a crash) sees the old file or the new one, never a mix.

The recipe (POSIX): write to a temporary file in the *same* folder (so the rename stays on one file
system), flush and ``fsync`` it, ``os.replace`` it over the target (atomic), then ``fsync`` the folder
so the rename itself survives a power cut. If anything fails -- an exception, a full disk -- the
temporary file is removed and the target is left untouched; a ``kill -9`` in the middle leaves at most
a hidden ``.<name>.*.tmp`` file beside an intact target.

Files get the permissions an ordinary ``open()`` would give (``0o666`` minus the user's umask), not the
owner-only ``0o600`` of :func:`tempfile.mkstemp`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from evosparse.io.errors import WriteError

TEMPORARY_SUFFIX = ".tmp"
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask (read without changing it where the system allows)."""
    try:  # Linux >= 4.7 shows it; os.umask can only read it by setting it
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _temporary(path: Path) -> tuple[int, str]:
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)


def _write_error(path: Path, error: OSError) -> WriteError:
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        reason = "the disk is full"
    else:
        reason = error.strerror or str(error) or type(error).__name__
    return WriteError(
        error.errno, f"could not write {path}: {reason}; the previous version of {path.name} is left intact"
    )


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(file)`` on a temporary binary file beside ``path``, then move it to ``path`` atomically.

    Raises:
        WriteError: the write failed (disk full, permission, ...); ``path`` is unchanged.
    """
    path = Path(path)
    try:
        descriptor, temporary = _temporary(path)
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise _write_error(path, error) from None
        raise
    fsync_folder(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda file: file.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_set(folder: str | Path, files: Mapping[str, bytes], *, last: Sequence[str] = ()) -> list[Path]:
    """Write several files of ``folder`` so that each is atomic and the set is committed in a known order.

    Every new file is first written and ``fsync``-ed as a temporary file; only when all of them are on disk
    are they renamed over the old ones, those named in ``last`` last (a run's checkpoint: the commit point
    from which the other files can be rebuilt). A failure before the renames changes nothing; a crash
    during them leaves each file old or new, never partial.
    """
    folder = Path(folder)
    order = [name for name in files if name not in last] + [name for name in last if name in files]
    temporaries: list[tuple[str, Path]] = []
    try:
        for name in order:
            target = folder / name
            try:
                descriptor, temporary = _temporary(target)
            except OSError as error:
                raise _write_error(target, error) from None
            temporaries.append((temporary, target))
            try:
                with os.fdopen(descriptor, "wb") as file:
                    file.write(files[name])
                    file.flush()
                    os.fsync(file.fileno())
                os.chmod(temporary, 0o666 & ~current_umask())
            except OSError as error:
                raise _write_error(target, error) from None
        for temporary, target in temporaries:
            os.replace(temporary, target)
    except BaseException:
        for temporary, _ in temporaries:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        raise
    fsync_folder(folder)
    return [target for _, target in temporaries]


def fsync_folder(folder: str | Path) -> None:
    """``fsync`` a folder, so renames and deletions in it survive a crash (a no-op where unsupported)."""
    try:  # Windows cannot open a folder; renames are still atomic there
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
