"""Keep freed memory in the ``evosparse train`` process, for the next topology update to reuse.

Why (measured on this project's 2-vCPU Firecracker VM, BENCHMARKS.md section 3, seventeenth session): glibc
serves every allocation above 32 MB with its own ``mmap`` and gives it back to the kernel on ``free``. Many
virtual machines hand pages freed in the guest back to the host within seconds (virtio-balloon *free page
reporting*: Firecracker, and cloud VMs configured the same way), and the next first touch of such a page then
costs a fault in the host too: 2-9 ms per MB here against 0.25-1 ms per MB for pages the host still backs. A SET
update of the one-million-neuron Liu model allocates and frees a few hundred MB of index, value and momentum
arrays; with an epoch of training between two updates, every update paid these faults again. ``evosparse train``
on the Liu recipe: 2.41-5.35 s per update as glibc is, 1.49-2.47 s with freed memory kept in the process.

What :func:`keep_freed_memory` does (Linux with glibc only; ``mallopt``): no allocation is served by its own
``mmap`` (``M_MMAP_MAX`` 0: large blocks come from the heap too) and the heap is never trimmed (``M_TRIM_THRESHOLD``
at its maximum), so a freed block stays in the process and the next update's arrays reuse it. The cost: the
process's resident memory stays at its peak instead of shrinking after it, and heap blocks fragment.

When: only in the ``evosparse train`` command (:func:`evosparse.cli.main.command_train`; a program that imports
evosparse keeps its own allocator settings), and only when asked: ``EVOSPARSE_KEEP_MEMORY=1``. Not by default,
because the heap fragments: over six epochs of the Liu recipe the peak grew with every update (1.60-1.62 GiB after two,
1.69 GiB after five, against 1.47 GiB without), past the 1.6 GiB the model was meant to fit in, and a long run
could keep growing. It pays on a virtual machine whose balloon reports freed pages to its host (the sixth
character of ``/sys/bus/virtio/drivers/virtio_balloon/virtio*/features`` is 1; elsewhere a fresh page costs
little); any ``MALLOC_*`` / ``GLIBC_TUNABLES`` setting of yours leaves glibc as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping

KEEP_MEMORY_VARIABLE = "EVOSPARSE_KEEP_MEMORY"
_USER_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1  # mallopt takes an int: the largest trim threshold it can set


def keep_freed_memory(environ: Mapping[str, str] | None = None) -> bool:
    """If ``EVOSPARSE_KEEP_MEMORY=1``, ask glibc to keep freed memory in the process (see the module doc); True if
    it was set."""
    environ = os.environ if environ is None else environ
    setting = environ.get(KEEP_MEMORY_VARIABLE, "").strip()
    if setting not in ("", "0", "1"):
        raise ValueError(
            f"{KEEP_MEMORY_VARIABLE} must be 1 (keep freed memory in the process), 0 or unset (glibc's allocator "
            f"as it is), got {setting!r}"
        )
    if setting != "1" or any(name in environ for name in _USER_SETTINGS) or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):  # musl and others: no mallopt
        return False
    # mallopt returns 1 on success; the threshold first, so that a failure leaves mmap on
    return bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX)) and bool(libc.mallopt(_M_MMAP_MAX, 0))
