"""Benchmark of the three sparse kernels against dense GEMM, torch.sparse, scipy.sparse and SparseLab.

For every layer size and thread count, in one process:

1. build a seeded random pattern (a density, or a fixed number of connections per output neuron),
   float32 weights and feature-major activations ``xt`` (n_in x batch) and ``dyt`` (n_out x batch);
2. collect, for each implementation, a callable per product: forward ``W xt``, input gradient
   ``W^T dyt`` and weight gradient ``(dyt xt^T)`` at the stored positions; every call allocates its
   output, as a training step does;
3. time them interleaved (round r calls every implementation once), so that a burst of load from other
   processes on this shared machine hits all of them alike, and keep the median of ``repeats`` rounds.
   With ``warm=True`` (default, as the figures in the kernel notes) each timed call follows an untimed
   call of the same product, so its data are in cache; ``warm=False`` times it right after the other
   implementations ran (caches filled with their data: a pessimistic, cold-cache figure);
4. report ms, GF/s = 2 nnz batch / s (dense GEMM: 2 n_in n_out batch / s), our speed-up over each
   competitor, and our rate over one third of the dense rate (the target of the kernel issue).

Competitors: dense ``x @ W.T`` (skipped when W would exceed ``DENSE_LIMIT_BYTES``); ``torch.sparse``
CSR (``torch.sparse.mm``; dX on the transposed CSR, whose values are gathered from W's each call as
training must; dW with ``torch.sparse.sampled_addmm``); ``scipy.sparse`` CSR (single-threaded by
design; dX as ``csr.T @``, dW by chunked row-wise dot products in numpy); SparseLab (if installed).
"""

from __future__ import annotations

import ctypes
import glob
import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import torch

from evosparse.sparse import kernels
from evosparse.sparse.init import random_pattern
from evosparse.sparse.pattern import SparsePattern

OPS = ("fwd", "dX", "dW")
DENSE_LIMIT_BYTES = 4 << 30  # a dense float32 W above 4 GiB is not allocated (100k x 100k would need 40 GB)
SPARSELAB_MAX_NNZ = 5_000_000  # SparseLab builds its matrix through Python lists: too slow beyond this
_GATHER_CHUNK = 1 << 22  # numpy dW: at most this many (nnz x batch) products in memory at once


@dataclass(frozen=True)
class KernelSize:
    """A layer to benchmark: ``n_out x n_in`` weights with a density or a fixed fan-in, and a batch size."""

    n_out: int
    n_in: int
    batch: int
    density: float | None = None  # fraction of the n_out * n_in positions that are connections, or
    per_row: int | None = None  # exactly this many connections per output neuron

    def __post_init__(self):
        if (self.density is None) == (self.per_row is None):
            raise ValueError(f"give exactly one of density and per_row, got {self.density} and {self.per_row}")
        if self.density is not None and not 0 < self.density <= 1:
            raise ValueError(f"density must be in (0, 1], got {self.density}")

    @property
    def label(self) -> str:
        sparsity = f"{self.density:.1%}".replace(".0%", "%") if self.density else f"{self.per_row}/row"
        return f"{self.n_out}x{self.n_in} {sparsity} b{self.batch}"


DEFAULT_SIZES = (
    KernelSize(1000, 1000, 128, density=0.01),
    KernelSize(1000, 1000, 128, density=0.04),
    KernelSize(1000, 1000, 128, density=0.10),
    KernelSize(4096, 4096, 128, density=0.01),
    KernelSize(20000, 20000, 128, density=0.001),
    KernelSize(100_000, 100_000, 32, per_row=20),
)
HUGE_SIZE = KernelSize(1_000_000, 1_000_000, 16, per_row=20)  # ~20M connections, ~2 GB with every competitor
QUICK_SIZES = (KernelSize(1000, 1000, 128, density=0.04),)


def make_pattern(size: KernelSize, rng: np.random.Generator) -> SparsePattern:
    """The size's random pattern: Erdos-Renyi by density, or ``per_row`` distinct columns per row."""
    if size.density is not None:
        return random_pattern(size.n_out, size.n_in, size.density, rng)
    cols = np.sort(rng.integers(0, size.n_in, size=(size.n_out, size.per_row)), axis=1)
    while True:  # redraw the (rare) rows with a repeated column
        repeated = np.flatnonzero(np.any(cols[:, 1:] == cols[:, :-1], axis=1))
        if repeated.size == 0:
            break
        cols[repeated] = np.sort(rng.integers(0, size.n_in, size=(repeated.size, size.per_row)), axis=1)
    keys = (np.arange(size.n_out, dtype=np.int64)[:, None] * size.n_in + cols).ravel()
    return SparsePattern.from_sorted_keys(keys, size.n_out, size.n_in)


# ---- implementations: name -> {op: callable} -----------------------------------------------------------
def _ours(p: SparsePattern, values, xt, dyt):
    def forward():
        out = np.empty((p.n_rows, xt.shape[1]), dtype=xt.dtype)
        kernels.spmm(p.indptr, p.cols, values, xt, np.empty(0, dtype=values.dtype), out)

    def grad_x():
        out = np.empty((p.n_cols, dyt.shape[1]), dtype=dyt.dtype)
        kernels.spmm_transposed(p.csc_indptr, p.csc_rows, p.csc_perm, values, dyt, out)

    def grad_w():
        kernels.sddmm(p.indptr, p.cols, dyt, xt, np.empty(p.nnz, dtype=values.dtype))

    return {"fwd": forward, "dX": grad_x, "dW": grad_w}


def _dense(p: SparsePattern, values, xt, dyt):
    weight = torch.zeros(p.n_rows, p.n_cols)
    weight[torch.from_numpy(p.rows).long(), torch.from_numpy(p.cols).long()] = torch.from_numpy(values)
    x = torch.from_numpy(xt).t().contiguous()  # (batch, n_in), the usual nn.Linear input
    return {"fwd": lambda: x @ weight.T}


def _torch_sparse(p: SparsePattern, values, xt, dyt):
    as_long = lambda a: torch.from_numpy(a).long()  # noqa: E731
    w = torch.from_numpy(values)
    csr = torch.sparse_csr_tensor(as_long(p.indptr), as_long(p.cols), w, size=(p.n_rows, p.n_cols))
    t_indptr, t_cols, t_perm = as_long(p.csc_indptr), as_long(p.csc_rows), as_long(p.csc_perm)
    x, dy = torch.from_numpy(xt), torch.from_numpy(dyt)

    def grad_x():
        transposed = torch.sparse_csr_tensor(t_indptr, t_cols, w[t_perm], size=(p.n_cols, p.n_rows))
        return torch.sparse.mm(transposed, dy)

    ops = {"fwd": lambda: torch.sparse.mm(csr, x), "dX": grad_x}
    grad_w = lambda: torch.sparse.sampled_addmm(csr, dy, x.T, beta=0.0)  # noqa: E731
    try:
        grad_w()
        ops["dW"] = grad_w
    except (RuntimeError, NotImplementedError):
        pass  # not available in this torch build: reported as "-"
    return ops


def _scipy(p: SparsePattern, values, xt, dyt):
    import scipy.sparse

    csr = scipy.sparse.csr_matrix((values, p.cols, p.indptr), shape=(p.n_rows, p.n_cols))
    rows = p.rows

    def grad_w():
        out = np.empty(p.nnz, dtype=values.dtype)
        step = max(1, _GATHER_CHUNK // max(1, xt.shape[1]))
        for s in range(0, p.nnz, step):
            out[s : s + step] = np.einsum("ij,ij->i", dyt[rows[s : s + step]], xt[p.cols[s : s + step]])
        return out

    return {"fwd": lambda: csr @ xt, "dX": lambda: csr.T @ dyt, "dW": grad_w}


def _sparselab(p: SparsePattern, values, xt, dyt):
    import sparselab
    from sparselab import _core
    from sparselab.layout import transpose_with_perm

    as_long = lambda a: torch.from_numpy(a).long()  # noqa: E731
    csr = torch.sparse_csr_tensor(as_long(p.indptr), as_long(p.cols), torch.from_numpy(values), (p.n_rows, p.n_cols))
    matrix = sparselab.PaddedCSR.from_torch_sparse_csr(csr, padding_ratio=0.0)
    transposed, perm = transpose_with_perm(matrix, padding_ratio=0.0)
    matrix_values, transposed_values = np.asarray(matrix.values), np.asarray(transposed.values)

    def grad_x():  # as its autograd backward: refresh the cached W^T values, then one SpMM
        transposed_values[:] = matrix_values[perm]
        return _core.spmm_simd(transposed, dyt)

    return {
        "fwd": lambda: _core.spmm_simd(matrix, xt),
        "dX": grad_x,
        "dW": lambda: _core.spmm_grad_w_simd(matrix, dyt, xt),
    }


def _sparselab_set_threads(n: int) -> None:
    """SparseLab ships its own OpenMP runtime; set its thread count through it."""
    import sparselab

    libraries = glob.glob(os.path.join(os.path.dirname(sparselab.__file__), "..", "sparselab.libs", "libgomp*"))
    for path in libraries:
        ctypes.CDLL(path).omp_set_num_threads(int(n))


def _sparselab_available() -> bool:
    try:
        import sparselab  # noqa: F401
    except ImportError:
        return False
    return True


# ---- measurement ---------------------------------------------------------------------------------------
def _busy_jiffies() -> int | None:
    """Busy CPU time of the whole machine (all processes) in clock ticks, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields) - fields[3] - fields[4]  # minus idle and iowait


def _interleaved_medians(
    calls: dict[tuple[str, str], Callable], repeats: int, *, warm: bool
) -> tuple[dict, float | None]:
    """Median seconds of each call over ``repeats`` rounds, and the cores other processes kept busy meanwhile."""
    for call in calls.values():
        call()  # warm-up: caches, lazy initialisation, page faults
    times: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
    busy0, own0, wall0 = _busy_jiffies(), time.process_time(), time.perf_counter()
    for _ in range(repeats):
        for key, call in calls.items():
            if warm:
                call()
            start = time.perf_counter()
            call()
            times[key].append(time.perf_counter() - start)
    busy1, own1, wall1 = _busy_jiffies(), time.process_time(), time.perf_counter()
    other = None
    if busy0 is not None and busy1 is not None:
        ticks = os.sysconf("SC_CLK_TCK")
        other = max(0.0, ((busy1 - busy0) / ticks - (own1 - own0)) / (wall1 - wall0))
    return {key: statistics.median(values) for key, values in times.items()}, other


def _set_threads(n: int, with_sparselab: bool) -> None:
    torch.set_num_threads(n)
    kernels.set_num_threads(n)
    if with_sparselab:
        _sparselab_set_threads(n)


def run_kernel_benchmark(
    sizes: Sequence[KernelSize] = DEFAULT_SIZES,
    threads: Sequence[int] = (1, 2),
    repeats: int | None = None,
    out: Callable[[str], object] = print,
    *,
    quick: bool = False,
    warm: bool = True,
    seed: int = 0,
) -> list[dict]:
    """Time every implementation of the three products; print a table per size and a summary.

    Args:
        sizes: layers to measure (see :class:`KernelSize`); ``HUGE_SIZE`` is the 1M-neuron layer.
        threads: thread counts (for torch, our kernels and SparseLab; scipy always uses one).
        repeats: timed rounds per measurement (the median is kept); default 7, or 1 with ``quick``.
        out: where lines go (``print`` by default).
        quick: one small size (and one round unless ``repeats`` says otherwise): a smoke test.
        warm: time each call right after an untimed call of the same product (caches warm); False:
            right after the other implementations (cold caches).
        seed: seed of the patterns and inputs.

    Returns:
        One dict per (size, threads, implementation, op) with ``ms``, ``gflops`` and, for ours,
        ``speedup`` (competitor time / ours) and ``vs_third_of_dense``.
    """
    if quick:
        sizes = QUICK_SIZES
    repeats = (1 if quick else 7) if repeats is None else repeats
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    kernels.warm_up()
    with_sparselab = _sparselab_available()
    out(_environment(with_sparselab) + ("; warm caches" if warm else "; cold caches"))
    before = torch.get_num_threads(), numba.get_num_threads()
    results: list[dict] = []
    try:
        for size in sizes:
            results += _benchmark_size(size, threads, repeats, out, with_sparselab=with_sparselab, warm=warm, seed=seed)
    finally:
        torch.set_num_threads(before[0])
        kernels.set_num_threads(before[1])
    out(format_summary(results))
    return results


def _environment(with_sparselab: bool) -> str:
    import scipy

    sparselab = __import__("sparselab").__version__ if with_sparselab else "not installed"
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = "not started"
    return (
        f"torch {torch.__version__}, numba {numba.__version__} (threading layer {layer}, at most "
        f"{numba.config.NUMBA_NUM_THREADS} threads), scipy {scipy.__version__}, sparselab {sparselab}; "
        f"{os.cpu_count()} CPUs; float32; medians of interleaved rounds"
    )


def _benchmark_size(size, threads, repeats, out, *, with_sparselab, warm, seed) -> list[dict]:
    rng = np.random.default_rng(seed)
    pattern = make_pattern(size, rng)
    values = rng.uniform(-1, 1, pattern.nnz).astype(np.float32)
    xt = rng.standard_normal((size.n_in, size.batch)).astype(np.float32)
    dyt = rng.standard_normal((size.n_out, size.batch)).astype(np.float32)
    dense_bytes = 4 * size.n_in * size.n_out
    builders: dict[str, Callable] = {"ours": _ours, "torch.sparse": _torch_sparse, "scipy": _scipy}
    notes = []
    if dense_bytes <= DENSE_LIMIT_BYTES:
        builders = {"dense": _dense, **builders}
    else:
        notes.append(f"dense GEMM skipped: W would need {dense_bytes / 2**30:.0f} GiB")
    if with_sparselab and pattern.nnz <= SPARSELAB_MAX_NNZ:
        builders["sparselab"] = _sparselab
    elif with_sparselab:
        notes.append(f"sparselab skipped: it builds {pattern.nnz:,} connections through Python lists")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "sparse CSR is in beta" and invariant-check notices
        implementations = {name: build(pattern, values, xt, dyt) for name, build in builders.items()}
        results = []
        for n_threads in threads:
            _set_threads(n_threads, with_sparselab)
            calls = {(name, op): call for name, ops in implementations.items() for op, call in ops.items()}
            medians, other_load = _interleaved_medians(calls, repeats, warm=warm)
            rows = _rows(size, pattern, n_threads, medians, other_load)
            clamped = [] if numba.get_num_threads() == n_threads else [f"ours ran {numba.get_num_threads()} threads"]
            out(format_block(size, pattern, n_threads, rows, other_load, [*notes, *clamped]))
            results += rows
    return results


def _rows(size, pattern, n_threads, medians, other_load) -> list[dict]:
    flops = {"sparse": 2.0 * pattern.nnz * size.batch, "dense": 2.0 * size.n_in * size.n_out * size.batch}
    rows = []
    for (impl, op), seconds in medians.items():
        rate = flops["dense" if impl == "dense" else "sparse"] / seconds / 1e9
        rows.append(
            {"size": size.label, "n_out": size.n_out, "n_in": size.n_in, "nnz": pattern.nnz, "batch": size.batch,
             "threads": n_threads, "impl": impl, "op": op, "ms": seconds * 1e3, "gflops": rate,
             "other_load": other_load}
        )  # fmt: skip
    by_key = {(row["impl"], row["op"]): row for row in rows}
    dense = by_key.get(("dense", "fwd"))
    for op in OPS:
        ours = by_key[("ours", op)]
        ours["speedup"] = {
            impl: by_key[(impl, o)]["ms"] / ours["ms"] for impl, o in by_key if o == op and impl != "ours"
        }
        if dense is not None:
            ours["vs_third_of_dense"] = ours["gflops"] / (dense["gflops"] / 3)
    return rows


# ---- formatting ----------------------------------------------------------------------------------------
def format_block(size, pattern, n_threads, rows, other_load, notes=()) -> str:
    load = "unknown" if other_load is None else f"{other_load:.2f} cores"
    lines = [f"\n== {size.label} (nnz {pattern.nnz:,}), {n_threads} thread(s); other processes kept {load} busy =="]
    lines += [f"   ({note})" for note in notes]
    lines.append(f"   {'impl':<13}" + "".join(f"| {op + ' ms':>9} {'GF/s':>6} " for op in OPS))
    by_key = {(row["impl"], row["op"]): row for row in rows}
    for impl in dict.fromkeys(row["impl"] for row in rows):
        cells = []
        for op in OPS:
            row = by_key.get((impl, op))
            cells.append(f"| {row['ms']:9.3f} {row['gflops']:6.1f} " if row else f"| {'-':>9} {'-':>6} ")
        lines.append(f"   {impl:<13}" + "".join(cells))
    competitors = [impl for impl in dict.fromkeys(r["impl"] for r in rows) if impl not in ("ours", "dense")]
    for impl in competitors:
        ratios = [by_key[("ours", op)]["speedup"].get(impl) for op in OPS]
        lines.append(f"   ours / {impl:<13}" + " ".join(_ratio(r) for r in ratios) + "  (speed-up fwd dX dW)")
    if ("dense", "fwd") in by_key:
        ratios = [by_key[("ours", op)]["vs_third_of_dense"] for op in OPS]
        lines.append("   ours / (dense/3)    " + " ".join(_ratio(r) for r in ratios) + "  (>= 1: target met)")
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return f"{value:6.2f}x" if value is not None else f"{'-':>7}"


def format_summary(results: list[dict]) -> str:
    """A markdown table: GF/s per kernel per size and thread count, ours against every competitor."""
    impls = [impl for impl in dict.fromkeys(r["impl"] for r in results) if impl != "dense"]
    header = "| size | threads | dense fwd | " + " | ".join(f"{impl} fwd/dX/dW" for impl in impls)
    header += " | ours / best competitor (min of 3) | ours / (dense/3) (min of 3) | other load |"
    lines = ["\nSummary (GF/s, medians):", header, "|" + "---|" * (header.count("|") - 1)]
    groups: dict[tuple, dict] = {}
    for row in results:
        groups.setdefault((row["size"], row["threads"]), {})[(row["impl"], row["op"])] = row
    for (label, n_threads), rows in groups.items():
        dense = rows.get(("dense", "fwd"))
        cells = [label, str(n_threads), f"{dense['gflops']:.0f}" if dense else "skipped"]
        for impl in impls:
            rates = [rows.get((impl, op)) for op in OPS]
            cells.append(" / ".join(f"{r['gflops']:.1f}" if r else "-" for r in rates))
        speedups = [min(rows[("ours", op)]["speedup"].values(), default=None) for op in OPS]
        best = min((s for s in speedups if s is not None), default=None)
        cells.append(f"{best:.2f}x" if best is not None else "-")
        thirds = [rows[("ours", op)].get("vs_third_of_dense") for op in OPS]
        cells.append(f"{min(thirds):.2f}x" if dense else "-")
        load = next(iter(rows.values()))["other_load"]
        cells.append("?" if load is None else f"{load:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
