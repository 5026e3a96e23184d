"""Atomic writes: old or new file, never a mix, even under kill -9; a failed write changes nothing."""

from __future__ import annotations

import errno
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from evosparse.io import WriteError, atomic_write, atomic_write_bytes, atomic_write_set, atomic_write_text


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_write_replaces_and_leaves_no_temporary(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "old")
    atomic_write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new"
    assert leftovers(tmp_path) == []


def test_failed_write_keeps_the_old_file(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "old")

    def half_then_fail(file):
        file.write(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_write(tmp_path / "a.txt", half_then_fail)
    assert (tmp_path / "a.txt").read_text() == "old"
    assert leftovers(tmp_path) == []


def test_disk_full_is_one_line_naming_the_file(tmp_path):
    atomic_write_text(tmp_path / "checkpoint.pt", "old")

    def full(file):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError) as caught:
        atomic_write(tmp_path / "checkpoint.pt", full)
    message = str(caught.value)
    assert "disk is full" in message and "checkpoint.pt" in message and "\n" not in message
    assert caught.value.errno == errno.ENOSPC
    assert (tmp_path / "checkpoint.pt").read_text() == "old"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_users_umask(tmp_path, mask, mode):
    before = os.umask(mask)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
        paths = atomic_write_set(tmp_path, {"b.txt": b"y"})
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == mode
    assert paths[0].stat().st_mode & 0o777 == mode


def test_write_set_renames_the_commit_file_last(tmp_path, monkeypatch):
    atomic_write_set(tmp_path, {"checkpoint": b"c1", "history": b"h1"}, last=["checkpoint"])
    calls = []
    real_replace = os.replace

    def tracking_replace(source, target):
        calls.append(Path(target).name)
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", tracking_replace)
    atomic_write_set(tmp_path, {"checkpoint": b"c2", "history": b"h2", "summary": b"s2"}, last=["checkpoint"])
    monkeypatch.undo()
    assert calls == ["history", "summary", "checkpoint"]
    assert (tmp_path / "checkpoint").read_bytes() == b"c2"


def test_write_set_failure_before_renames_changes_nothing(tmp_path, monkeypatch):
    atomic_write_set(tmp_path, {"checkpoint": b"c1", "history": b"h1"})
    real_chmod = os.chmod
    count = {"n": 0}

    def fail_second(path, mode):
        count["n"] += 1
        if count["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_chmod(path, mode)

    monkeypatch.setattr(os, "chmod", fail_second)
    with pytest.raises(WriteError, match="disk is full"):
        atomic_write_set(tmp_path, {"history": b"h2", "checkpoint": b"c2"}, last=["checkpoint"])
    monkeypatch.undo()
    assert (tmp_path / "history").read_bytes() == b"h1" and (tmp_path / "checkpoint").read_bytes() == b"c1"
    assert leftovers(tmp_path) == []


def _write_forever(path, ready) -> None:
    for i in range(100_000):
        atomic_write_bytes(path, bytes([65 + i % 2]) * 4_000_000)
        ready.set()


@pytest.mark.parametrize(
    "delay", [0.2, pytest.param(0.05, marks=pytest.mark.slow), pytest.param(0.6, marks=pytest.mark.slow)]
)
def test_kill_9_during_writes_leaves_a_whole_file(tmp_path, delay):
    path, fork = tmp_path / "big.bin", multiprocessing.get_context("fork")
    ready = fork.Event()
    process = fork.Process(target=_write_forever, args=(path, ready))
    process.start()
    assert ready.wait(60)
    time.sleep(delay)
    process.kill()  # SIGKILL, mid-write with high probability (each write takes tens of milliseconds)
    process.join()
    data = path.read_bytes()
    assert len(data) == 4_000_000 and data in (b"A" * 4_000_000, b"B" * 4_000_000)
    atomic_write_bytes(path, b"after")  # a leftover temporary never blocks the next write
    assert path.read_bytes() == b"after"
