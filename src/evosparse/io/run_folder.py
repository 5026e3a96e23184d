"""``RunFolder``: the one folder abstraction of every run type (train, compare, neat, rl, rbm).

A run folder holds one run. Opening it for a run decides, in this one place, whether to refuse, resume
or overwrite:

1. **Lock**: an exclusive lock file (``.evosparse.lock``, holding the owner's pid) is taken first; a
   second process opening the same folder fails at once with a one-line :class:`RunFolderError`. The lock
   is an ``fcntl.flock`` where available (released by the kernel when its process dies, so a ``kill -9``
   leaves no stale lock), else an ``O_EXCL`` file whose owner's pid is checked (a dead owner's lock is
   taken over).
2. **What it holds**: the manifest ``run.json`` says "a run of kind X with config Y" (format version,
   a run id, the config, the checksums of the data files the run read). Files the run's kind does not
   write are *foreign*.
3. **Decide**:

   * new run: refused if the folder holds any run or any foreign file (nothing is ever overwritten
     silently);
   * ``resume=True``: only a run of the same kind, whose saved config the caller's ``check`` accepts, and
     whose data files still have the recorded checksums (unless ``accept_data_change``);
   * ``overwrite=True``: only a run of the same kind (or files it would write), never foreign files. The
     new manifest, with a new run id, is written *before* the old files are deleted, and checkpoints
     record the run id they belong to (:meth:`check_run_id`), so an ``--overwrite`` interrupted at any
     point can never let ``--resume`` continue the old run.

Use (what ``evosparse train`` and ``neat run`` do; an RL or RBM run the same way)::

    folder = RunFolder.open(out_dir, kind="rl", files=("checkpoint.pt", "history.csv", "summary.json"),
                            config=config.to_dict(), resume=args.resume, overwrite=args.overwrite)
    with folder:                                   # the lock is held until the block ends
        if args.resume:
            state = load_torch(out_dir / "checkpoint.pt", format="my-rl-checkpoint")
            folder.check_run_id(state["run_id"], out_dir / "checkpoint.pt")
        ...                                        # train; save checkpoints with {"run_id": folder.run_id}
        folder.write_set({"summary.json": ..., "checkpoint.pt": ...}, last=["checkpoint.pt"])

Writes go through :mod:`evosparse.io.atomic` (temporary file, fsync, rename, fsync of the folder), with
the user's umask; :meth:`write_set` replaces several result files together, the checkpoint last, so the
checkpoint is the commit point from which the other files are rebuilt on resume.
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evosparse.io.atomic import TEMPORARY_SUFFIX, atomic_write_bytes, atomic_write_set, fsync_folder
from evosparse.io.errors import FileFormatError, RunFolderError
from evosparse.io.serialize import load_json, save_json

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

MANIFEST_FILE = "run.json"
LOCK_FILE = ".evosparse.lock"
MANIFEST_FORMAT = "evosparse-run"
MANIFEST_VERSION = 1


# ---- the lock ----------------------------------------------------------------------------------------------
class FolderLock:
    """An exclusive, non-blocking lock on a folder, held by one process until :meth:`release`."""

    def __init__(self, folder: str | Path, *, use_flock: bool | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.use_flock = (fcntl is not None) if use_flock is None else use_flock
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    def acquire(self) -> FolderLock:
        """Take the lock or raise :class:`RunFolderError` naming the process that holds it."""
        if self.held:
            return self
        self._descriptor = self._acquire_flock() if self.use_flock else self._acquire_exclusive()
        os.ftruncate(self._descriptor, 0)
        os.write(self._descriptor, f"{os.getpid()} {socket.gethostname()}\n".encode())
        os.fsync(self._descriptor)
        return self

    def release(self) -> None:
        if self._descriptor is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still holding it: a waiting opener re-checks the inode (see below)
        os.close(self._descriptor)
        self._descriptor = None

    def _busy(self) -> RunFolderError:
        holder = self._holder()
        who = f"process {holder[0]}" + (f" on {holder[1]}" if holder[1] != socket.gethostname() else "")
        return RunFolderError(
            f"{self.folder} is in use by another evosparse run ({who if holder[0] else 'another process'}); "
            "wait for it to finish or choose another --out-dir"
        )

    def _holder(self) -> tuple[int, str]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").split()
            return int(text[0]), text[1] if len(text) > 1 else socket.gethostname()
        except (OSError, ValueError, IndexError):
            return 0, ""

    def _acquire_flock(self) -> int:
        while True:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(descriptor)
                raise self._busy() from None
            # The holder before us unlinks the file before closing it; if we locked that unlinked file, the
            # lock is worthless: try again with the file now at the path.
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                os.close(descriptor)
                continue
            mine = os.fstat(descriptor)
            if (mine.st_ino, mine.st_dev) == (current.st_ino, current.st_dev):
                return descriptor
            os.close(descriptor)

    def _acquire_exclusive(self) -> int:
        for _ in range(3):
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                pid, host = self._holder()
                if pid and host == socket.gethostname() and not _alive(pid):
                    with contextlib.suppress(FileNotFoundError):  # a stale lock of a dead process: take it over
                        os.unlink(self.path)
                    continue
                raise self._busy() from None
        raise self._busy()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- the folder --------------------------------------------------------------------------------------------
def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of the run ``folder`` holds, or None if it holds none (no lock taken)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.exists():
        return None
    manifest = load_json(path, format=MANIFEST_FORMAT, version=MANIFEST_VERSION, what="run manifest")
    if not isinstance(manifest, dict) or not {"kind", "run_id", "config"} <= set(manifest):
        raise FileFormatError(f"{path} is damaged: it lacks the run's kind, id or config")
    return manifest


class RunFolder:
    """A folder holding one run of ``kind``; open it with :meth:`open` (see the module docstring).

    Attributes:
        path: the folder. kind: the run type ("train", "neat", ...). manifest: the run's ``run.json``.
        files: glob patterns of the names a run of this kind writes (anything else is foreign).
        warnings: what :meth:`open` accepted but the user should hear about (e.g. changed data files).
    """

    def __init__(self, path: Path, kind: str, files: Sequence[str], manifest: dict[str, Any], lock: FolderLock):
        self.path, self.kind, self.files, self.manifest, self._lock = path, kind, tuple(files), manifest, lock
        self.warnings: list[str] = []

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    @property
    def config(self) -> Any:
        return self.manifest["config"]

    # ---- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        kind: str,
        files: Sequence[str],
        config: Any = None,
        data: Mapping[str, str] | None = None,
        resume: bool = False,
        overwrite: bool = False,
        check: Callable[[Any], None] | None = None,
        accept_data_change: bool = False,
        adopt: bool = False,
    ) -> RunFolder:
        """Lock ``path`` and start a new run of ``kind`` with ``config`` there, or resume / overwrite one.

        Args:
            files: glob patterns of what this kind of run writes (the manifest and the lock need not be listed).
            config: the new run's config (JSON data); unused on resume (the saved one is kept).
            data: checksums of the data files the run reads (name -> sha256), recorded or compared on resume.
            resume: continue the run the folder holds; ``check(saved_config)`` raises if the request does
                not fit it. overwrite: replace the run the folder holds.
            accept_data_change: on resume, continue even if the data files changed (a warning is recorded).
            adopt: a folder holding only files of this kind but no manifest (an earlier evosparse wrote it)
                becomes a new run of this kind with its files kept (``compare``, whose runs decide reuse
                one by one); without it such a folder is refused like any run.

        Raises:
            RunFolderError: the folder is in use, holds another run, foreign files, or nothing to resume.
        """
        path = Path(path)
        if resume and overwrite:
            raise RunFolderError("--resume and --overwrite exclude each other: continue the run or replace it")
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"--out-dir {path} is a file, not a folder; choose another --out-dir")
        created = not path.exists()
        if resume and created:
            raise RunFolderError(f"--out-dir {path} does not exist; nothing to resume (start without --resume)")
        path.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(path)
        try:
            lock.acquire()
        except RunFolderError:
            if created:
                with contextlib.suppress(OSError):
                    path.rmdir()
            raise
        try:
            folder = cls._decide(
                path, kind, files, config, data, resume, overwrite, check, accept_data_change, adopt, lock
            )
        except BaseException:
            lock.release()
            if created:
                with contextlib.suppress(OSError):
                    path.rmdir()
            raise
        return folder

    @classmethod
    def _decide(cls, path, kind, files, config, data, resume, overwrite, check, accept_data_change, adopt, lock):
        try:
            manifest = read_manifest(path)
        except FileFormatError as error:
            if not overwrite:
                raise RunFolderError(f"{error}; replace the run with --overwrite or choose another --out-dir") from None
            manifest = None
        entries = sorted(entry.name for entry in path.iterdir() if not _internal(entry.name))
        owned = [name for name in entries if name != MANIFEST_FILE and _matches(name, files)]
        foreign = [name for name in entries if name not in owned and name != MANIFEST_FILE]
        held = f"a {manifest['kind']} run started {manifest.get('created', '?')}" if manifest else "its files"
        if resume:
            if manifest is None:
                what = f"files of an earlier run ({', '.join(owned[:4])}) but no {MANIFEST_FILE}" if owned else "no run"
                raise RunFolderError(
                    f"{path} holds {what}; nothing this version can resume: start a new run with --overwrite"
                )
            if manifest["kind"] != kind:
                raise RunFolderError(
                    f"{path} holds a {manifest['kind']} run, not a {kind} run; --resume continues only a run of "
                    "the same command"
                )
            if check is not None:
                check(manifest["config"])
            folder = cls(path, kind, files, manifest, lock)
            if data is not None:
                folder.check_data(data, accept=accept_data_change)
            return folder
        if foreign:
            listed = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise RunFolderError(
                f"{path} holds files that are not part of a {kind} run ({listed}); evosparse never deletes them: "
                "choose another --out-dir"
            )
        if manifest is not None and manifest["kind"] != kind:
            raise RunFolderError(
                f"{path} holds a {manifest['kind']} run; a {kind} run never resumes or replaces it: "
                "choose another --out-dir"
            )
        if adopt and manifest is None:
            owned = []  # kept: the new manifest adopts them
        if (manifest is not None or owned) and not overwrite:
            raise RunFolderError(
                f"{path} already holds a run ({held}); add --resume to continue it, --overwrite to replace it, "
                "or choose another --out-dir"
            )
        new = {
            "kind": kind,
            "run_id": uuid.uuid4().hex,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "config": config,
            "data": dict(data or {}),
        }
        # The new manifest first: from here on, old checkpoints carry another run id and cannot be resumed.
        save_json(path / MANIFEST_FILE, new, format=MANIFEST_FORMAT, version=MANIFEST_VERSION)
        for name in owned:
            target = path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        fsync_folder(path)
        return cls(path, kind, files, new, lock)

    # ---- using it ------------------------------------------------------------------------------------------
    def check_run_id(self, run_id: Any, source: str | Path) -> None:
        """Raise unless ``run_id`` (read from a checkpoint) is this run's: the file belongs to another run."""
        if run_id != self.run_id:
            raise RunFolderError(
                f"{source} belongs to another run than the one {self.path / MANIFEST_FILE} describes (an "
                "interrupted --overwrite?); it cannot be resumed: start again with --overwrite"
            )

    def check_data(self, data: Mapping[str, str], *, accept: bool = False) -> str | None:
        """Compare the checksums of the data the resumed run reads with those recorded when it started.

        Raises :class:`RunFolderError` on a difference, unless ``accept`` (then the difference is returned,
        and kept in ``warnings``, for the caller to report loudly). Returns None when nothing changed.
        """
        changed = _changed_data(self.manifest.get("data") or {}, data)
        if not changed:
            return None
        message = (
            f"the data changed since the run in {self.path} started ({', '.join(changed)} differ from the "
            "checksums recorded in its run.json); resuming would train on other data"
        )
        if not accept:
            raise RunFolderError(f"{message}: point --data-dir at the original files, or accept the change")
        self.warnings.append(message)
        return message

    def update_manifest(self, **fields: Any) -> None:
        """Record more about the run (e.g. ``finished=True``) in its manifest, atomically."""
        self.manifest = {**self.manifest, **fields}
        save_json(self.path / MANIFEST_FILE, self.manifest, format=MANIFEST_FORMAT, version=MANIFEST_VERSION)

    def write(self, name: str, data: bytes) -> Path:
        """Replace one file of the run atomically."""
        return atomic_write_bytes(self.path / name, data)

    def write_set(self, files: Mapping[str, bytes], *, last: Iterable[str] = ()) -> list[Path]:
        """Replace several files of the run together, those in ``last`` (the checkpoint) last."""
        return atomic_write_set(self.path, files, last=tuple(last))

    def close(self) -> None:
        """Release the lock (the files stay)."""
        self._lock.release()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r}, kind={self.kind!r}, run_id={self.run_id!r})"


def _internal(name: str) -> bool:
    return name == LOCK_FILE or (name.startswith(".") and name.endswith(TEMPORARY_SUFFIX))


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _changed_data(recorded: Mapping[str, str], current: Mapping[str, str] | None) -> list[str]:
    if current is None or not recorded:
        return []
    names = sorted(set(recorded) | set(current))
    return [name for name in names if recorded.get(name) != current.get(name)]
