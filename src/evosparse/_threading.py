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
2. **Per run**: ``--threads N`` (``run.threads``), else the ``EVOSPARSE_THREADS`` environment variable,
   else one thread for a small model and all cores otherwise (``evosparse.train.run.choose_threads``); with
   neither set, a sparse model's kernels then follow a measurement of one thread against all cores on the
   run's own steps (:class:`evosparse.train.ThreadTuner`).

Numba's pool is left at its default (one thread per core). Tried and dropped (BENCHMARKS.md section 3,
fifteenth session): a pool twice the cores, with the kernels whose threads take tasks from a shared counter
running two threads per thread asked for. At kernel level it helped with one busy process (the Liu shape's
wide layer, forward + backward: 86.7 ms against 115.7), but whole epochs were no faster busy (two epochs: 46.1 s
against 45.4 s with one thread per core) and 5% slower quiet (31.0 s against 29.6 s). What makes the busy
case tolerable is the tasks themselves: a thread whose core is shared takes fewer of them instead of holding
up the call. To try it anyway: ``NUMBA_NUM_THREADS=4`` in the environment and ``--threads 4``.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
"""Variables that choose how idle OpenMP workers wait; if you set any, evosparse sets none."""
DEFAULT_ENVIRONMENT = {"OMP_WAIT_POLICY": "passive"}
"""What evosparse sets at import: idle workers sleep at once instead of spinning (BENCHMARKS.md section 12)."""
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
