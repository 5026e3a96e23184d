"""In-process A/B of two versions of the sparse kernels (``kernels.py`` files) over batch sizes.

Both modules are loaded side by side in one process and timed in interleaved rounds on the same layer and
data (a 1000 x 1000 layer with 26 connections per row, the SET tutorial's hidden layer), so that a noisy
machine affects both alike; outputs are checked equal to float rounding first. Use it to judge a kernel
change: e.g. main's kernels against a working tree's:

    PYTHONPATH=src python benchmarks/ab_kernels.py --old /path/to/main/src/evosparse/sparse/kernels.py \
        --new src/evosparse/sparse/kernels.py --batches 8,16,24,40,56,100,128

Prints microseconds per call (median of the rounds) of the forward product (spmm), the input gradient
(spmm_transposed) and the weight gradient (sddmm), and old / new.

``--shape liu``: the one-million-neuron recipe's layers at batch 2 instead (Liu et al. 2021, 3312-600000x3-5,
epsilon 17): a 600,000 x 600,000 layer in row-blocked order (R 16384; forward, and the fused backward + SGD step
with and without weight decay) and the 3312 x 600,000 first layer in CSR order (fused backward + SGD, no dX);
milliseconds per call. Needs ~2 GB and ~1 minute per round:

    PYTHONPATH=src python benchmarks/ab_kernels.py --old OLD/kernels.py --new src/evosparse/sparse/kernels.py \
        --shape liu --threads 2 --rounds 5
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
    parser.add_argument("--shape", choices=("tutorial", "liu"), default="tutorial", help="which layers (see above)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="ab_kernels_")
    atexit.register(shutil.rmtree, folder, True)
    versions = {"old": load(args.old, "kernels_old", folder), "new": load(args.new, "kernels_new", folder)}
    for kernels in versions.values():
        kernels.set_num_threads(args.threads)
    if args.shape == "liu":
        liu_layers(versions, args.rounds, args.threads)
        return
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


def liu_layers(versions: dict, rounds: int, threads: int) -> None:
    """The batch-2 kernels of the Liu shape's layers, old against new (see the module docstring)."""
    rng = np.random.default_rng(0)

    def layer(n_in: int, n_out: int, block_rows: int) -> SparsePattern:
        keys = np.unique(rng.integers(0, n_in * n_out, 17 * (n_in + n_out), dtype=np.int64))
        pattern = SparsePattern.from_sorted_keys(keys, n_out, n_in)
        return pattern.to_blocked(block_rows)[0] if block_rows > 1 else pattern

    wide, first = layer(600_000, 600_000, 16384), layer(3312, 600_000, 1)
    data = {}
    for name, p in (("wide", wide), ("first", first)):
        data[name] = {
            "values": (0.01 * rng.standard_normal(p.nnz)).astype(np.float32),
            "xt": rng.standard_normal((p.n_cols, 2)).astype(np.float32),
            "dyt": rng.standard_normal((p.n_rows, 2)).astype(np.float32),
        }

    def calls(k) -> dict:
        w, f = data["wide"], data["first"]
        blocked = (wide.indptr, wide.cols, wide.row_offsets, wide.block_rows)
        out, grad_x = np.empty((wide.n_rows, 2), np.float32), np.empty((wide.n_cols, 2), np.float32)
        no_dx = np.empty((0, 2), np.float32)  # the first layer's input needs no gradient
        # Each version steps its own copy of the weights and momentum (the step writes them).
        wv, wm, fv, fm = w["values"].copy(), np.zeros_like(w["values"]), f["values"].copy(), np.zeros_like(f["values"])
        sgd = {"lr": 1e-4, "momentum": 0.9}
        chunks = k.backward_chunks(3312, 2, 4)
        blocked_chunks = getattr(k, "BLOCKED_CHUNKS", k.BACKWARD_CHUNKS)  # each version's own (older: fixed halves)
        return {
            "wide forward": partial(k.spmm_blocked, *blocked, wv, w["xt"], wv[:0], out),
            "wide bwd+SGD, wd 2e-4": partial(
                k.backward_blocked_sgd, *blocked, wv, wm, w["dyt"], w["xt"], grad_x, blocked_chunks,
                weight_decay=2e-4, **sgd,
            ),
            "wide bwd+SGD, wd 0": partial(
                k.backward_blocked_sgd, *blocked, wv, wm, w["dyt"], w["xt"], grad_x, blocked_chunks, **sgd
            ),
            "first bwd+SGD (CSR)": partial(
                k.backward_csr_sgd, first.indptr, first.cols, fv, fm, f["dyt"], f["xt"], no_dx, chunks,
                weight_decay=2e-4, **sgd,
            ),
        }  # fmt: skip

    per_version = {name: calls(k) for name, k in versions.items()}
    for version in per_version.values():
        for call in version.values():
            call()  # compiles (or loads the cache) outside the timing
    times = {(name, case): [] for name in versions for case in per_version["old"]}
    for _ in range(rounds):
        for name, version in per_version.items():
            for case, call in version.items():
                start = time.perf_counter()
                call()
                times[(name, case)].append(time.perf_counter() - start)
    print(f"# Liu shape layers, batch 2, {threads} thread(s); ms per call, median of {rounds} interleaved rounds")
    for case in per_version["old"]:
        old, new = (float(np.median(times[(name, case)])) * 1e3 for name in ("old", "new"))
        print(f"{case:24s} old {old:7.1f}   new {new:7.1f}   old/new {old / new:4.2f}x")


if __name__ == "__main__":
    main()
