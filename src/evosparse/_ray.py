"""Ray, optional: the one place evosparse imports it and connects to a cluster (``pip install "evosparse[ray]"``).

Used by ``evosparse compare --ray`` and ``evosparse tune`` (:mod:`evosparse.train.ray_backend`,
:mod:`evosparse.train.tune`) and by NEAT's :class:`evosparse.neat.RayEvaluator`, so it sits below all of them.

:func:`ray_session`: with no address, start a local Ray (``num_cpus`` CPUs, no dashboard) and shut it down
at the end; with an address (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``), connect to that cluster
and leave it running; if this process already joined a Ray cluster (a notebook, a test fixture), use it as
it is and leave it to its owner.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RAY_EXTRA = "evosparse[ray]"


def require_ray(what: str) -> Any:
    """The ``ray`` module, or an ImportError naming ``what`` needs it and the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ImportError(f"{what} needs Ray: pip install '{RAY_EXTRA}' (Ray is not installed)") from None
    return ray


def _source_root() -> str:
    """The folder this evosparse is imported from (so a local cluster's workers import the same code)."""
    return str(Path(__file__).resolve().parents[1])


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None, what: str = "--ray") -> Iterator[Any]:
    """Ray, connected for the ``with`` block (see the module docstring); yields the ``ray`` module.

    Args:
        address: a running cluster's address; None (or "") starts a local Ray for this block.
        num_cpus: CPUs of a local Ray (default: this machine's cores); ignored when connecting.
        what: the feature that needs Ray, named in the error if it is missing.
    """
    ray = require_ray(what)
    if num_cpus is not None and num_cpus < 1:
        raise ValueError(f"num_cpus must be an integer >= 1, got {num_cpus}")
    if ray.is_initialized():  # someone else's session: theirs to shut down
        yield ray
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        # The workers of a local cluster must import *this* evosparse (a source checkout may shadow an
        # installed one only through sys.path, which workers do not inherit): put it first on their path.
        path = os.pathsep.join(p for p in (_source_root(), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )
    try:
        yield ray
    finally:
        ray.shutdown()
