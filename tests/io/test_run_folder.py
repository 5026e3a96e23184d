"""RunFolder: the lock, and the refuse / resume / overwrite decision."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evosparse.io import MANIFEST_FILE, FolderLock, RunFolder, RunFolderError, read_manifest
from evosparse.io.run_folder import LOCK_FILE

FILES = ("checkpoint.npz", "history.csv", "summary.json")


def start(path, **kwargs) -> RunFolder:
    kwargs.setdefault("config", {"lr": 0.1})
    return RunFolder.open(path, kind="demo", files=FILES, **kwargs)


def test_new_run_writes_manifest_and_releases_lock(tmp_path):
    with start(tmp_path / "run", data={"train.csv": "abc"}) as folder:
        assert (tmp_path / "run" / LOCK_FILE).exists()
        folder.write("history.csv", b"epoch\n1\n")
    manifest = read_manifest(tmp_path / "run")
    assert manifest["kind"] == "demo" and manifest["config"] == {"lr": 0.1} and manifest["data"] == {"train.csv": "abc"}
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_second_new_run_is_refused(tmp_path):
    start(tmp_path).close()
    with pytest.raises(RunFolderError, match=r"already holds a run \(a demo run started .*\); add --resume"):
        start(tmp_path)


def test_foreign_files_refused_even_with_overwrite(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match=r"not part of a demo run \(thesis.tex\)"):
            start(tmp_path, overwrite=overwrite)
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_other_kind_refused_for_resume_and_overwrite(tmp_path):
    RunFolder.open(tmp_path, kind="train", files=("checkpoint.pt",), config={}).close()
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(RunFolderError, match="holds a train run, not a demo run"):
        start(tmp_path, resume=True)
    with pytest.raises(RunFolderError, match=r"not part of a demo run \(checkpoint.pt\)"):
        start(tmp_path, overwrite=True)
    (tmp_path / "checkpoint.pt").unlink()
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match="holds a train run; a demo run never resumes or replaces it"):
            start(tmp_path, overwrite=overwrite)


def test_resume_checks_config_and_data(tmp_path):
    with start(tmp_path, data={"train.csv": "abc"}) as first:
        run_id = first.run_id

    def check(saved):
        if saved != {"lr": 0.1}:
            raise RunFolderError("config differs")

    with start(tmp_path, resume=True, check=check, data={"train.csv": "abc"}) as again:
        assert again.run_id == run_id and again.config == {"lr": 0.1}
    with pytest.raises(RunFolderError, match=r"the data changed since .*\(train.csv differ from the checksums"):
        start(tmp_path, resume=True, data={"train.csv": "xyz"})
    with start(tmp_path, resume=True, data={"train.csv": "xyz"}, accept_data_change=True) as accepted:
        assert "train.csv" in accepted.warnings[0]

    def refuse(saved):
        raise RunFolderError("seed differs")

    with pytest.raises(RunFolderError, match="seed differs"):
        start(tmp_path, resume=True, check=refuse)
    assert not (tmp_path / LOCK_FILE).exists()  # a refusal releases the lock


def test_resume_of_nothing_refused_and_leaves_no_folder(tmp_path):
    with pytest.raises(RunFolderError, match="does not exist; nothing to resume"):
        start(tmp_path / "missing", resume=True)
    (tmp_path / "history.csv").write_text("old")
    with pytest.raises(RunFolderError, match="no run.json"):
        start(tmp_path, resume=True)
    with pytest.raises(RunFolderError, match="exclude each other"):
        start(tmp_path, resume=True, overwrite=True)


def test_refused_new_folder_is_not_left_behind(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        start(tmp_path / "file")


def test_overwrite_replaces_the_runs_files(tmp_path):
    with start(tmp_path) as old:
        old.write_set({"history.csv": b"old", "checkpoint.npz": b"old"}, last=["checkpoint.npz"])
        old_id = old.run_id
    with start(tmp_path, overwrite=True, config={"lr": 0.5}) as new:
        assert new.run_id != old_id
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE, MANIFEST_FILE]
    assert read_manifest(tmp_path)["config"] == {"lr": 0.5}


def test_interrupted_overwrite_never_resumes_the_old_run(tmp_path, monkeypatch):
    with start(tmp_path) as old:
        old.write("checkpoint.npz", b"old checkpoint")
        old_id = old.run_id  # what the old checkpoint records
    real_unlink = Path.unlink

    def crash(self, *args, **kwargs):
        if self.name == "checkpoint.npz":
            raise KeyboardInterrupt  # killed after the new manifest, before the old files were gone
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(KeyboardInterrupt):
        start(tmp_path, overwrite=True)
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.npz").exists()
    with start(tmp_path, resume=True) as resumed, pytest.raises(RunFolderError, match="belongs to another run"):
        resumed.check_run_id(old_id, tmp_path / "checkpoint.npz")


def test_damaged_manifest_refused_unless_overwrite(tmp_path):
    start(tmp_path).close()
    (tmp_path / MANIFEST_FILE).write_text('{"format": "evosparse-run", "ver')
    with pytest.raises(RunFolderError, match="run.json is not a run manifest"):
        start(tmp_path, resume=True)
    start(tmp_path, overwrite=True).close()
    assert read_manifest(tmp_path)["kind"] == "demo"


# ---- locks across processes (forked: the children start at once, the imports are already done) -------------
FORK = multiprocessing.get_context("fork")


def _hold(path, ready) -> None:
    RunFolder.open(path, kind="demo", files=("history.csv",), config={})
    ready.set()
    time.sleep(60)


def test_locked_folder_refused_at_once_and_freed_by_kill_9(tmp_path):
    ready = FORK.Event()
    process = FORK.Process(target=_hold, args=(tmp_path, ready))
    process.start()
    try:
        assert ready.wait(30)
        began = time.monotonic()
        with pytest.raises(RunFolderError, match=rf"in use by another evosparse run \(process {process.pid}\)"):
            start(tmp_path, overwrite=True)
        assert time.monotonic() - began < 1.0
    finally:
        process.kill()  # SIGKILL: no clean-up runs
        process.join()
    with start(tmp_path, resume=True) as folder:  # the kernel dropped the dead holder's lock
        assert folder.kind == "demo"


def _race(path, name, barrier, results) -> None:
    barrier.wait()
    try:
        folder = RunFolder.open(path, kind="demo", files=("history.csv",), config={"who": name})
    except RunFolderError as error:
        results.put((name, "refused", str(error)))
        return
    folder.write("history.csv", name.encode())
    time.sleep(0.3)
    folder.close()
    results.put((name, "won", ""))


@pytest.mark.parametrize("existing", [False, True])
def test_concurrent_new_runs_into_one_folder_exactly_one_wins(tmp_path, existing):
    target = tmp_path / "run"
    if existing:
        target.mkdir()
    barrier, results = FORK.Barrier(3), FORK.Queue()
    processes = [FORK.Process(target=_race, args=(target, name, barrier, results)) for name in ("a", "b", "c")]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join()
    assert [outcome for _, outcome, _ in outcomes].count("won") == 1, outcomes
    for _, outcome, message in outcomes:
        if outcome == "refused":
            assert "in use by another evosparse run" in message or "already holds a run" in message
    winner = next(name for name, outcome, _ in outcomes if outcome == "won")
    assert read_manifest(target)["config"]["who"] == winner
    assert (target / "history.csv").read_text() == winner


def test_exclusive_lock_fallback_takes_over_a_dead_owners_lock(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    (tmp_path / LOCK_FILE).write_text(f"{dead.pid} {socket.gethostname()}\n")
    lock = FolderLock(tmp_path, use_flock=False).acquire()
    assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(os.getpid())
    with pytest.raises(RunFolderError, match=f"process {os.getpid()}"):
        FolderLock(tmp_path, use_flock=False).acquire()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()
