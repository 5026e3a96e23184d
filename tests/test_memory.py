"""evosparse._memory: the train command keeps freed memory in the process (glibc), and leaves it alone on request."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from evosparse._memory import KEEP_MEMORY_VARIABLE, keep_freed_memory

# Resident MB after a 200 MB array is freed, in a fresh interpreter, with or without keep_freed_memory() first.
RESIDENT_AFTER_FREE = """
import sys, numpy as np
from evosparse._memory import keep_freed_memory
kept = keep_freed_memory({"EVOSPARSE_KEEP_MEMORY": sys.argv[1]})
def resident_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20
before = resident_mb()
block = np.ones(200 * 2**20 // 8)
del block
print(kept, round(resident_mb() - before))
"""


def _resident_after_free(mode: str) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if k != KEEP_MEMORY_VARIABLE and not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    done = subprocess.run(
        [sys.executable, "-c", RESIDENT_AFTER_FREE, mode], env=env, capture_output=True, text=True, check=True
    )
    kept, grown = done.stdout.split()
    return kept == "True", int(grown)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_memory_stays_in_the_process_only_when_asked():
    kept, grown = _resident_after_free("1")
    if not kept:
        pytest.skip("this C library has no mallopt (not glibc)")
    assert grown >= 190  # the 200 MB block stayed in the process
    kept, grown = _resident_after_free("")
    assert not kept and grown < 20  # glibc's default: a 200 MB block is its own mapping, unmapped on free


def test_a_users_setting_wins():
    assert keep_freed_memory({}) is False  # not asked for
    assert keep_freed_memory({KEEP_MEMORY_VARIABLE: "0"}) is False
    for name in ("GLIBC_TUNABLES", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        assert keep_freed_memory({KEEP_MEMORY_VARIABLE: "1", name: "1"}) is False


def test_a_bad_setting_is_one_clear_error():
    with pytest.raises(ValueError, match="EVOSPARSE_KEEP_MEMORY must be 1 .*, 0 or unset .*, got 'yes'"):
        keep_freed_memory({KEEP_MEMORY_VARIABLE: "yes"})


def test_the_train_command_reports_a_bad_setting_in_one_line(tmp_path):
    env = {**os.environ, KEEP_MEMORY_VARIABLE: "maybe"}
    done = subprocess.run(
        [sys.executable, "-m", "evosparse", "train", "--epochs", "1", "--out-dir", str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: EVOSPARSE_KEEP_MEMORY must be 1 (keep freed memory in the process), 0 or unset (glibc's allocator as"
        " it is), got 'maybe'"
    ]
    assert not (tmp_path / "run").exists()
