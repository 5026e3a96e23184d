"""Benchmarks that ship with the library (run by ``evosparse bench`` and ``benchmarks/*.py``)."""

from evosparse.bench.kernels import DEFAULT_SIZES, HUGE_SIZE, KernelSize, run_kernel_benchmark

__all__ = ["DEFAULT_SIZES", "HUGE_SIZE", "KernelSize", "run_kernel_benchmark"]
