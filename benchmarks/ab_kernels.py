"""In-process A/B of two versions of the sparse kernels (``kernels.py`` files) over batch sizes.

Both modules are loaded side by side in one process and timed in interleaved rounds on the same layer and
data (a 1000 x 1000 layer with 26 connections per row, the SET tutorial's hidden layer), so that a noisy
machine affects both alike; outputs are checked equal to float rounding first. Use it to judge a kernel
change: e.g. main's kernels against a working tree's:

    PYTHONPATH=src python benchmarks/ab_kernels.py --old /path/to/main/src/evosparse/sparse/kernels.py \
        --new src/evosparse/sparse/kernels.py --batches 8,16,24,40,56,100,128

Prints microseconds per call (median of the rounds) of the forward product (spmm), the input gradient
(spmm_transposed) and the weight gradient (sddmm), and old / new.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from evosparse.sparse.pattern import SparsePattern


def load(path: str, name: str, folder: str):
    # A copy in a folder of its own: numba caches by source file, and a cache entry compiled under the
    # module name `name` next to the package's own kernels.py would be loaded (and fail) by the package.
    copy = Path(folder) / name / "kernels.py"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    spec = importlib.util.spec_from_file_location(name, copy)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba's cache needs the module importable by name while compiling
    spec.loader.exec_module(module)
    return module


def per_call(function, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", required=True, help="path of the first kernels.py")
    parser.add_argument("--new", required=True, help="path of the second kernels.py")
    parser.add_argument("--batches", default="8,16,24,40,56,100,128", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the median is kept")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="ab_kernels_")
    atexit.register(shutil.rmtree, folder, True)
    versions = {"old": load(args.old, "kernels_old", folder), "new": load(args.new, "kernels_new", folder)}
    for kernels in versions.values():
        kernels.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n_in, n_out, per_row = 1000, 1000, 26
    cols = np.concatenate([np.sort(rng.choice(n_in, per_row, replace=False)) for _ in range(n_out)])
    pattern = SparsePattern.from_coo(np.repeat(np.arange(n_out), per_row), cols, n_out, n_in)
    print(f"# 1000 x 1000, {pattern.nnz} connections, {args.threads} thread(s); us per call, median of {args.rounds}")
    print("dtype   batch   forward old/new        dX old/new             dW old/new")
    for dtype in (np.float32, np.float64):
        for batch in (int(b) for b in args.batches.split(",")):
            values = rng.standard_normal(pattern.nnz).astype(dtype)
            bias = rng.standard_normal(n_out).astype(dtype)
            xt, dyt = rng.random((n_in, batch)).astype(dtype), rng.random((n_out, batch)).astype(dtype)
            calls, outputs = {}, {}
            p = pattern
            for name, k in versions.items():
                out, grad_x = np.empty((n_out, batch), dtype), np.empty((n_in, batch), dtype)
                grad_w = np.empty_like(values)
                calls[name] = (
                    partial(k.spmm, p.indptr, p.cols, values, xt, bias, out),
                    partial(k.spmm_transposed, p.csc_indptr, p.csc_rows, p.csc_perm, values, dyt, grad_x),
                    partial(k.sddmm, p.indptr, p.cols, dyt, xt, grad_w),
                )
                for call in calls[name]:
                    call()  # compiles (or loads the cache) outside the timing
                outputs[name] = (out, grad_x, grad_w)
            for a, b in zip(outputs["old"], outputs["new"], strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)
            n_calls = max(50, 20000 // batch)
            times = {name: [[], [], []] for name in versions}
            for _ in range(args.rounds):
                for name in versions:
                    for i, call in enumerate(calls[name]):
                        times[name][i].append(per_call(call, n_calls))
            cells = []
            for i in range(3):
                old, new = (float(np.median(times[name][i])) for name in ("old", "new"))
                cells.append(f"{old:7.1f}/{new:7.1f} {old / new:4.2f}x")
            print(f"{np.dtype(dtype).name:7} {batch:5d}   " + "   ".join(cells))


if __name__ == "__main__":
    main()
