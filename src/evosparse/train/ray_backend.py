"""Ray as the backend of many runs: a comparison's runs as Ray tasks.

1. **Connect** (:func:`evosparse._ray.ray_session`): a local Ray of ``num_cpus`` CPUs started for the
   command, or the cluster at an address, or the Ray this process already joined.
2. **Submit** (:func:`run_tasks`): every item as a task of one CPU (each run uses one thread, as
   ``compare --jobs N`` does with processes), at once: Ray schedules them as CPUs free up.
3. **Collect** each result as it arrives (the caller writes its reports after every run, so a run that
   finished is never lost). A task whose worker died is retried ``retries`` times by Ray; the retry of a
   training run resumes from the run's last checkpoint (:func:`evosparse.train.compare.run_one`). Tasks
   that still fail are reported together, after all the others finished, by :class:`RunsFailedError`.

Ray is an optional extra (``pip install "evosparse[ray]"``); nothing here imports it at module level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from evosparse._ray import RAY_EXTRA, ray_session, require_ray

__all__ = ["RAY_EXTRA", "RunsFailedError", "ray_session", "require_ray", "run_tasks"]


class RunsFailedError(RuntimeError):
    """Some tasks of a batch failed for good (after Ray's retries); the others finished and were collected.

    ``failures`` holds (item, one-line reason) pairs, in the order the failures arrived.
    """

    def __init__(self, message: str, failures: list[tuple[Any, str]]) -> None:
        super().__init__(message)
        self.failures = failures


def run_tasks(
    function: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    finished: Callable[[Any], object],
    *,
    retries: int = 1,
    describe: Callable[[tuple[Any, ...]], str] = repr,
) -> None:
    """``function(*item)`` for every item as a Ray task of one CPU; ``finished(result)`` as each one ends.

    Needs a connected Ray (:func:`evosparse._ray.ray_session`). A task whose worker process dies is retried ``retries``
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
