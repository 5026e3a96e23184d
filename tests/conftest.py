"""Shared test fixtures.

Real data for tests comes from the offline copy in ``../shared/data`` (or wherever EVOSPARSE_TEST_DATA
points); tests that need a file skip with the reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

# First, as in a user's program: evosparse's thread settings apply before torch and Numba load.
import evosparse  # noqa: F401

# isort: split
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_path() -> Path | None:
    """The offline data folder: $EVOSPARSE_TEST_DATA, else ../shared/data beside the repository."""
    configured = os.environ.get("EVOSPARSE_TEST_DATA")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    """Path of the offline data folder; skips the test when it is absent."""
    path = shared_data_path()
    if path is None:
        pytest.skip("offline data folder not found: set EVOSPARSE_TEST_DATA to a copy of shared/data")
    return path


def require_file(relative: str) -> Path:
    """A file below the offline data folder, or skip the calling test with the reason."""
    base = shared_data_path()
    if base is None or not (base / relative).is_file():
        pytest.skip(f"data file {relative} not found below EVOSPARSE_TEST_DATA / ../shared/data")
    return base / relative


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one thread (torch and the compiled kernels): tiny models are fastest so,
    and timings stay robust when other jobs share the cores."""
    from evosparse.sparse import set_num_threads

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    set_num_threads(1)
    yield
    torch.set_num_threads(before)
    set_num_threads(before)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs for one test module (started once, shut down after the module's last test);
    skips when Ray is not installed. evosparse's own commands find it running and use it."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'evosparse[ray]')")
    from evosparse._ray import ray_session

    with ray_session(num_cpus=2) as ray:
        yield ray


@pytest.fixture
def small_calls_parallel(monkeypatch):
    """Kernels run on every thread asked for, however small the call (no switch to one thread, see
    ``evosparse.sparse.kernels.call_sized``): for tests that compare thread counts on small layers."""
    from evosparse.sparse import kernels

    monkeypatch.setattr(kernels, "SERIAL_WAKE_FACTOR", 0.0)
