"""Ray as the backend of many runs: the cluster a command uses, and a comparison's runs as Ray tasks.

1. **Connect** (:func:`ray_session`): with no address, start a local Ray (``num_cpus`` CPUs, no dashboard)
   and shut it down at the end; with an address (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``),
   connect to that cluster and leave it running; if this process already joined a Ray cluster (a notebook,
   a test fixture), use it as it is.
2. **Submit** (:func:`run_tasks`): every item as a task of one CPU (each run uses one thread, as
   ``compare --jobs N`` does with processes), at once: Ray schedules them as CPUs free up.
3. **Collect** each result as it arrives (the caller writes its reports after every run, so a run that
   finished is never lost). A task whose worker died is retried ``retries`` times by Ray; the retry of a
   training run resumes from the run's last checkpoint (:func:`evosparse.train.compare.run_one`). Tasks
   that still fail are reported together, after all the others finished, by :class:`RunsFailedError`.

Ray is an optional extra (``pip install "evosparse[ray]"``); nothing here imports it at module level.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

RAY_EXTRA = "evosparse[ray]"


class RunsFailedError(RuntimeError):
    """Some tasks of a batch failed for good (after Ray's retries); the others finished and were collected.

    ``failures`` holds (item, one-line reason) pairs, in the order the failures arrived.
    """

    def __init__(self, message: str, failures: list[tuple[Any, str]]) -> None:
        super().__init__(message)
        self.failures = failures


def require_ray(what: str) -> Any:
    """The ``ray`` module, or an ImportError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ImportError(f"{what} needs Ray, which is not installed: pip install '{RAY_EXTRA}'") from None
    return ray


def _source_root() -> str:
    """The folder this evosparse is imported from (so a local cluster's workers import the same code)."""
    return str(Path(__file__).resolve().parents[2])


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None, what: str = "--ray") -> Iterator[Any]:
    """Ray, connected for the ``with`` block (see step 1 of the module docstring); yields the ``ray`` module.

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


def run_tasks(
    function: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    finished: Callable[[Any], object],
    *,
    retries: int = 1,
    describe: Callable[[tuple[Any, ...]], str] = repr,
) -> None:
    """``function(*item)`` for every item as a Ray task of one CPU; ``finished(result)`` as each one ends.

    Needs a connected Ray (:func:`ray_session`). A task whose worker process dies is retried ``retries``
    times; an exception raised by ``function`` is not retried (it would fail again). Failed items are
    raised together as :class:`RunsFailedError` once every other task has finished.
    """
    import ray

    if retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries}")
    remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(function)
    pending = {remote.remote(*item): item for item in items}
    failures: list[tuple[Any, str]] = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        item = pending.pop(done[0])
        try:
            result = ray.get(done[0])
        except ray.exceptions.RayError as error:
            failures.append((item, _reason(error)))
            continue
        finished(result)
    if failures:
        first = f"{describe(failures[0][0])}: {failures[0][1]}"
        raise RunsFailedError(f"{len(failures)} of {len(items)} tasks failed (first: {first})", failures)


def _reason(error: BaseException) -> str:
    """One line saying why a task failed: the task's own exception if it raised one, else Ray's."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        error = cause
    text = " ".join(str(error).split())
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
