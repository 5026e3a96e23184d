"""How evosparse uses the CPU's threads: OpenMP's wait policy (set at import) and a run's thread count.

Why it matters (measured with ``benchmarks/bench_threads.py``, BENCHMARKS.md section 12): torch and
Numba each load their own copy of GNU OpenMP, so a training step drives two pools of worker threads.
By default an idle OpenMP worker *spins* for ~3 ms (``GOMP_SPINCOUNT`` 300000) after each parallel
region before it sleeps. A small-batch step is shorter than that, so the workers of both pools spin all
the time: on a quiet machine this costs little, but as soon as another process wants a core, the
scheduler runs it against our spinning workers, a parallel region waits for a descheduled worker, and an
epoch takes 3-4x longer.

What evosparse does:

1. **At import** (:func:`configure_openmp`, run when this module is imported, which ``evosparse/__init__``
   does first, before torch and Numba load their OpenMP runtimes): set :data:`DEFAULT_ENVIRONMENT` in
   ``os.environ`` unless you set one of :data:`WAIT_SETTINGS` yourself (yours always win). It has no
   effect on a runtime that is already loaded: import evosparse before torch, or set it in the shell.
2. **At import, Numba's pool** (:func:`configure_numba_pool`): ``NUMBA_NUM_THREADS`` =
   :data:`TASK_THREADS_PER_THREAD` x the cores, unless you set it. The kernels whose threads take tasks
   from a shared counter (the row-blocked layers of the million-neuron recipe, a first layer's update) run
   that many threads per thread asked for; every other kernel still runs the threads asked for
   (``evosparse.sparse.kernels``: ``set_num_threads``, ``task_threads``). Why: the scheduler shares the
   cores alike among all runnable threads, so with another process busy on one of two cores, two threads
   get 2/3 of the machine and four get 4/5; tasks taken from a counter let the extra threads help instead
   of waiting for each other, so on a quiet machine they cost little (BENCHMARKS.md section 3). Set
   ``NUMBA_NUM_THREADS`` to the number of cores to turn it off.
3. **Per run**: ``--threads N`` (``run.threads``), else the ``EVOSPARSE_THREADS`` environment variable,
   else one thread for a small model and all cores otherwise (``evosparse.train.run.choose_threads``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
"""Variables that choose how idle OpenMP workers wait; if you set any, evosparse sets none."""
DEFAULT_ENVIRONMENT = {"OMP_WAIT_POLICY": "passive"}
"""What evosparse sets at import: idle workers sleep at once instead of spinning (BENCHMARKS.md section 12)."""
TASK_THREADS_PER_THREAD = 2
"""Threads of a task-counter kernel per thread asked for (Numba's pool is made this much larger than the cores)."""
NUMBA_POOL_VARIABLE = "NUMBA_NUM_THREADS"
THREADS_VARIABLE = "EVOSPARSE_THREADS"
"""Threads of torch and the sparse kernels for every run that does not set ``--threads``."""


def configure_openmp(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put :data:`DEFAULT_ENVIRONMENT` into ``environ`` (default ``os.environ``) unless the user chose a wait
    policy; returns what was set ({} if nothing)."""
    environ = os.environ if environ is None else environ
    if any(name in environ for name in WAIT_SETTINGS):
        return {}
    environ.update(DEFAULT_ENVIRONMENT)
    return dict(DEFAULT_ENVIRONMENT)


def cores() -> int:
    """CPU cores this process may run on (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def configure_numba_pool(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set ``NUMBA_NUM_THREADS`` to :data:`TASK_THREADS_PER_THREAD` x :func:`cores` in ``environ`` (default
    ``os.environ``) unless it is set, or unless Numba is already imported into this process (it re-reads the
    variable at every compilation and refuses a pool size other than the one it started); returns what was set
    ({} if nothing)."""
    if environ is None:
        if "numba" in sys.modules:
            return {}
        environ = os.environ
    if NUMBA_POOL_VARIABLE in environ:
        return {}
    setting = {NUMBA_POOL_VARIABLE: str(TASK_THREADS_PER_THREAD * cores())}
    environ.update(setting)
    return setting


def threads_from_environment(environ: MutableMapping[str, str] | None = None) -> int | None:
    """The thread count ``EVOSPARSE_THREADS`` asks for (None: unset or empty); a bad value is a ValueError."""
    environ = os.environ if environ is None else environ
    text = environ.get(THREADS_VARIABLE, "").strip()
    if not text:
        return None
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(
            f"{THREADS_VARIABLE} must be a positive integer (threads of torch and the sparse kernels), got {text!r}"
        )
    return threads


# At import: evosparse/__init__ imports this module before anything that loads torch or Numba.
configure_openmp()
NUMBA_POOL_SET_HERE = bool(configure_numba_pool())
"""Whether evosparse chose Numba's pool size (then the kernels start with :func:`cores` threads active)."""
