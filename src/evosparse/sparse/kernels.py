"""Compiled CPU kernels for a sparse layer (Numba, parallel over output rows, cached on disk).

Activations are *feature-major*: ``xt`` has shape (features, batch), so the batch values of one
neuron are contiguous and every connection touches one contiguous vector. With W stored in CSR order
(rows = output neurons):

* ``spmm``:  Yt[r, :] = bias[r] + sum_k values[k] * Xt[cols[k], :]   (forward, Y = X W^T + b)
* ``spmm_transposed``: the same loop over the CSC view, dXt = W^T dYt (input gradient, dX = dY W)
* ``sddmm``: dW[k] = <dYt[rows[k], :], Xt[cols[k], :]>                (weight gradient at stored positions)

Each costs O(nnz * batch). How they are made fast (measurements in BENCHMARKS.md, section 1):

1. **Register tiles over the batch.** A row's output is computed one *tile* of the batch at a time
   (8, 4, 2 or 1 SIMD registers of :data:`REGISTER_BYTES`: with AVX-512, 128 / 64 / 32 / 16 float32), and the
   tile's accumulator stays in registers while *all* the row's connections are swept: per connection, one broadcast of
   the weight and one fused multiply-add per register, no load/store of the output. The registers are
   independent FMA chains, which hides the FMA latency. What is left after the 8-register tiles (up to 7
   registers) is swept once with two tiles side by side (4 + 1, 4 + 2, 2 + 1 registers): each connection's
   index and weight are read once for both, and a 1-register tile is no longer a lone FMA chain (batch 24-56
   on AVX2: forward and dX 1.2-1.6x faster than a sweep per tile). A masked load/store handles the last
   ``batch % lanes`` columns, so any batch size runs vectorised, in half a register when they fit in one
   (:data:`HALF`). Sweeps of up to 4 registers keep two accumulators each (even and odd connections), so that
   the fused multiply-adds of one connection do not wait for the previous one's.
2. **Explicit vectors.** Numba's auto-vectoriser cannot keep such a tile in registers (it cannot prove
   that ``out`` and ``xt`` do not alias, and its SLP vectoriser is disabled), so the helpers below emit
   LLVM vector loads, stores and FMAs directly (``_vload``, ``_vfma``, ...): a few lines of llvmlite
   that play the role of C intrinsics.
3. **dX reuses the forward loop**: the CSR values are first gathered into CSC order (one O(nnz) pass)
   so that the transposed product is exactly ``spmm`` on the CSC view.
4. **dW two connections at a time**: the two dot products share each load of ``dYt[r]``.

Tried and dropped (no gain measured on this machine): software prefetch of the rows a connection
32 ahead will need (wide layers are limited by DRAM latency and TLB misses either way), four
connections at a time in dW with one shared reduction tree (again with AVX-512 on AMD Zen 4: 8 shuffles and 5 adds
instead of 32 and 16 for four products, dW 0.95-1.05x: the loads of xt's rows bound it, not the sums), 8-register
dW tiles.

All kernels accept float32 and float64; the number of threads is Numba's (see :func:`set_num_threads`). The
row-blocked kernels, ``spmm`` of a large layer and a first layer's update hand their tasks out from a shared
counter, so that a thread whose core is shared with another process takes fewer tasks instead of holding up
the call (BENCHMARKS.md section 3, fifteenth session).
"""

from __future__ import annotations

import time

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model

_JIT = {"parallel": True, "fastmath": True, "cache": True, "nogil": True, "boundscheck": False}
_INLINE = {"fastmath": True, "boundscheck": False, "inline": "always"}


def _vector_bytes() -> int:
    """Bytes in one SIMD register of the CPU the kernels are compiled for: 64 with AVX-512, 32 with AVX / AVX2,
    16 otherwise (SSE, NEON).

    The kernels' tiles are counted in registers (up to 8 accumulators plus the operands), so they must match
    the real register: with 64-byte "registers" on an AVX2 CPU each vector was split in two ymm registers, an
    8-register tile needed all 16 of them, and it spilled: forward, dX and dW ran at about half speed (AMD Zen 3,
    BENCHMARKS.md section 1). Numba's compiled-code cache is keyed by the CPU, so a cache built on another CPU
    (with another width) is never loaded here.
    """
    if numba.config.CPU_NAME not in (None, "", "host"):  # an explicit target (NUMBA_CPU_NAME / _FEATURES)
        features = set((numba.config.CPU_FEATURES or "").split(","))
    else:
        features = set(llvm.get_host_cpu_features().flatten().split(","))
    if "+avx512f" in features:
        return 64
    if "+avx2" in features or "+avx" in features:
        return 32
    return 16


REGISTER_BYTES = _vector_bytes()  # one register of the compile target (an AVX-512 register is a cache line)
BACKWARD_CHUNKS = 2  # column ranges of backward_csr: one per core of a laptop-class CPU, fixed for bit-identity
BLOCKED_CHUNKS = 6  # column ranges of the row-blocked backward, handed out one at a time (see _blocked_sweep)
_SCALAR_DW_BATCH = 4  # sddmm at batches up to this: scalar dot products instead of masked registers


# ---- SIMD vectors for Numba (a Numba type backed by an LLVM vector, and its operations) ------------
class _Vector(types.Type):
    """``lanes`` values of ``dtype`` held in SIMD registers (LLVM ``<lanes x dtype>``)."""

    def __init__(self, dtype, lanes):
        self.dtype = dtype
        self.lanes = lanes
        super().__init__(name=f"Vector({dtype} x {lanes})")


@register_model(_Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


HALF = 0
"""A register count (literal) meaning half a register: the vector of a batch's last columns when they fill at most
half of one. On AMD Zen 4 a 64-byte operation costs two 32-byte ones even when masked, so a mostly-off masked
register cost a whole one: batch 24 and 40 in float32 (AVX-512: 1.5 and 2.5 registers) ran forward, dX and dW
1.1-1.45x slower than the same kernels built for 32-byte registers (BENCHMARKS.md section 1, eighteenth session)."""


def _lanes(dtype, n_registers):
    """Lanes of a vector of ``n_registers`` registers (:data:`HALF`: half of one), or None if the count is not a
    literal."""
    if not isinstance(n_registers, types.IntegerLiteral):
        return None  # Numba retries with the literal value
    count = n_registers.literal_value
    vector_bytes = REGISTER_BYTES // 2 if count == HALF else count * REGISTER_BYTES
    return vector_bytes // (dtype.bitwidth // 8)


def _is_row_major(arr):
    return isinstance(arr, types.Array) and arr.ndim == 2 and arr.layout == "C"


def _pointer(context, builder, sig, args):
    """Address of ``arr[row, col]`` for a C-contiguous 2-D array (args = arr, row, col, ...)."""
    array = context.make_array(sig.args[0])(context, builder, args[0])
    row = context.cast(builder, args[1], sig.args[1], types.intp)
    col = context.cast(builder, args[2], sig.args[2], types.intp)
    n_cols = builder.extract_value(array.shape, 1)
    return cgutils.gep_inbounds(builder, array.data, builder.add(builder.mul(row, n_cols), col))


def _splat(builder, value, lanes):
    vector_type = ir.VectorType(value.type, lanes)
    first = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    return builder.shuffle_vector(first, ir.Constant(vector_type, ir.Undefined), zeros)


def _mask(context, builder, n_valid, n_valid_type, lanes):
    """<lanes x i1>: lane i is on iff i < n_valid."""
    n_valid = context.cast(builder, n_valid, n_valid_type, types.int32)
    lane_ids = ir.Constant(ir.VectorType(ir.IntType(32), lanes), list(range(lanes)))
    return builder.icmp_signed("<", lane_ids, _splat(builder, n_valid, lanes))


def _llvm_intrinsic(builder, name, return_type, arg_types):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(return_type, arg_types), name)


def _suffix(vector):
    return f"v{vector.lanes}f{vector.dtype.bitwidth}"


@intrinsic
def _vload(typingctx, arr, row, col, n_registers):
    """``arr[row, col : col + lanes]`` as a vector (unaligned load)."""
    lanes = _lanes(arr.dtype, n_registers) if _is_row_major(arr) else None
    if lanes is None:
        return None
    vector = _Vector(arr.dtype, lanes)

    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(vector)
        pointer = builder.bitcast(_pointer(context, builder, sig, args), vector_type.as_pointer())
        return builder.load(pointer, align=arr.dtype.bitwidth // 8, typ=vector_type)

    return vector(arr, row, col, n_registers), codegen


@intrinsic
def _vload_masked(typingctx, arr, row, col, n_valid, n_registers):
    """``arr[row, col : col + n_valid]`` in the first lanes, zeros after; nothing past is read."""
    lanes = _lanes(arr.dtype, n_registers) if _is_row_major(arr) else None
    if lanes is None:
        return None
    vector = _Vector(arr.dtype, lanes)

    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(vector)
        pointer = builder.bitcast(_pointer(context, builder, sig, args), vector_type.as_pointer())
        mask = _mask(context, builder, args[3], sig.args[3], lanes)
        align = ir.Constant(ir.IntType(32), arr.dtype.bitwidth // 8)
        arg_types = [pointer.type, align.type, mask.type, vector_type]
        load = _llvm_intrinsic(builder, f"llvm.masked.load.{_suffix(vector)}.p0", vector_type, arg_types)
        return builder.call(load, [pointer, align, mask, ir.Constant(vector_type, None)])

    return vector(arr, row, col, n_valid, n_registers), codegen


@intrinsic
def _vstore(typingctx, arr, row, col, vector):
    """``arr[row, col : col + lanes] = vector``."""
    if not (_is_row_major(arr) and isinstance(vector, _Vector)):
        return None

    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(vector)
        pointer = builder.bitcast(_pointer(context, builder, sig, args), vector_type.as_pointer())
        builder.store(args[3], pointer, align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(arr, row, col, vector), codegen


@intrinsic
def _vstore_masked(typingctx, arr, row, col, n_valid, vector):
    """``arr[row, col : col + n_valid] = vector[:n_valid]``; nothing past is written."""
    if not (_is_row_major(arr) and isinstance(vector, _Vector)):
        return None

    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(vector)
        pointer = builder.bitcast(_pointer(context, builder, sig, args), vector_type.as_pointer())
        mask = _mask(context, builder, args[3], sig.args[3], vector.lanes)
        align = ir.Constant(ir.IntType(32), arr.dtype.bitwidth // 8)
        arg_types = [vector_type, pointer.type, align.type, mask.type]
        store = _llvm_intrinsic(builder, f"llvm.masked.store.{_suffix(vector)}.p0", ir.VoidType(), arg_types)
        builder.call(store, [args[4], pointer, align, mask])
        return context.get_dummy_value()

    return types.none(arr, row, col, n_valid, vector), codegen


@intrinsic
def _vsplat(typingctx, value, n_registers):
    """A vector with every lane equal to ``value``."""
    lanes = _lanes(value, n_registers) if isinstance(value, types.Float) else None
    if lanes is None:
        return None
    vector = _Vector(value, lanes)

    def codegen(context, builder, sig, args):
        return _splat(builder, args[0], lanes)

    return vector(value, n_registers), codegen


@intrinsic
def _vfma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (``llvm.fma``); ``a`` is a scalar (broadcast) or a vector."""
    if not (isinstance(b, _Vector) and b == c and (a == b or a == b.dtype)):
        return None

    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(c)
        a_vector = args[0] if isinstance(a, _Vector) else _splat(builder, args[0], c.lanes)
        fma = _llvm_intrinsic(builder, f"llvm.fma.{_suffix(c)}", vector_type, [vector_type] * 3)
        return builder.call(fma, [a_vector, args[1], args[2]])

    return c(a, b, c), codegen


@intrinsic
def _vsum(typingctx, vector):
    """Sum of the lanes, by halving (a tree: log2(lanes) vector adds)."""
    if not isinstance(vector, _Vector):
        return None

    def codegen(context, builder, sig, args):
        value, width = args[0], vector.lanes
        while width > 1:
            width //= 2
            low = ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(width)))
            high = ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(width, 2 * width)))
            value = builder.fadd(builder.shuffle_vector(value, value, low), builder.shuffle_vector(value, value, high))
        return builder.extract_element(value, ir.Constant(ir.IntType(32), 0))

    return vector.dtype(vector), codegen


@intrinsic
def _vadd(typingctx, a, b):
    """``a + b`` lane by lane."""
    if not (isinstance(a, _Vector) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])

    return a(a, b), codegen


@intrinsic
def _vsum_with(typingctx, vector, part):
    """Sum of the lanes of ``vector`` and of the narrower ``part``: ``vector`` is halved until it is as wide as
    ``part``, which is added there, and the tree goes on (``_vsum`` of ``vector`` when ``part`` is zero)."""
    if not (isinstance(vector, _Vector) and isinstance(part, _Vector) and part.dtype == vector.dtype):
        return None
    if part.lanes > vector.lanes or vector.lanes % part.lanes:
        return None

    def codegen(context, builder, sig, args):
        value, width = args[0], vector.lanes
        while width > 1:
            if width == part.lanes:
                value = builder.fadd(value, args[1])
            width //= 2
            low = ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(width)))
            high = ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(width, 2 * width)))
            value = builder.fadd(builder.shuffle_vector(value, value, low), builder.shuffle_vector(value, value, high))
        if part.lanes == 1:
            value = builder.fadd(value, args[1])
        return builder.extract_element(value, ir.Constant(ir.IntType(32), 0))

    return vector.dtype(vector, part), codegen


# ---- small calls on one thread ------------------------------------------------------------------------
SERIAL_WAKE_FACTOR = 3.0
"""A call whose estimated one-thread time is below this many times the measured cost of waking the other threads
runs on one thread (:func:`call_sized`; 0 turns it off). With OpenMP's passive waits (evosparse's default) an
idle worker sleeps, and waking it cost 53-74 us on the 2-core VM this was written on, more than a whole
one-thread call of a small layer: at 2 threads a 256 x 256 layer at 10% density took 55 us forward at batch 1
(7 us on one thread) and a 1000 x 1000 one at 1%, batch 128, 84 us (55 us). With two threads an ideal split
gains half of the call and a real one about a third, so a call shorter than ~3 wake-ups cannot win."""
_MULTIPLY_ADDS_PER_SECOND = 2e10  # one thread of these kernels at batch 16-128 (AMD Zen 4: 1-3e10)
_wake_cost: dict[int, float] = {}  # thread count -> seconds of an empty parallel region (see _wake_seconds)


@njit(parallel=True, cache=True, nogil=True)
def _touch_each(flags):  # pragma: no cover - compiled
    for i in prange(flags.shape[0]):
        flags[i] += 1


def _wake_seconds(threads: int) -> float:
    """The cost of a parallel region that does nothing, on ``threads`` threads (median of 7, after a warm-up)."""
    flags = np.zeros(4 * threads, dtype=np.int64)
    _touch_each(flags)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        _touch_each(flags)
        times.append(time.perf_counter() - start)
    return sorted(times)[3]


def _kernel_seconds(index: np.ndarray, dense: np.ndarray) -> float:
    """One thread's estimated time of a product over ``index``'s connections with a (features, batch) operand."""
    return index.shape[0] * dense.shape[1] / _MULTIPLY_ADDS_PER_SECOND


def call_sized(one_thread_seconds: float, kernel, *args):
    """``kernel(*args)`` on one thread if its estimated one-thread time is below :data:`SERIAL_WAKE_FACTOR`
    wake-ups of the other threads (measured once per thread count), else on the threads asked for. The kernels'
    results do not depend on the thread count, so this changes the time only."""
    threads = numba.get_num_threads()
    if threads == 1:
        return kernel(*args)
    wake = _wake_cost.get(threads)
    if wake is None:
        wake = _wake_cost[threads] = _wake_seconds(threads)
    if one_thread_seconds >= SERIAL_WAKE_FACTOR * wake:
        return kernel(*args)
    numba.set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(threads)


# ---- spmm: one output row, one batch tile at a time -----------------------------------------------
@intrinsic
def _fetch_add(typingctx, counter, value):
    """``counter[0] += value`` as one atomic operation; returns the value before (a shared task counter)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        step = context.cast(builder, args[1], sig.args[1], types.int64)
        return builder.atomic_rmw("add", array.data, step, "monotonic")

    return types.int64(counter, value), codegen


@njit(**_INLINE)
def _row_tile(start, end, index, values, dense, init, out, row, col, n_registers):
    """out[row, col:col+tile] = init + sum_{k in [start, end)} values[k] * dense[index[k], col:col+tile].

    The accumulator is a vector of ``n_registers`` registers (a literal), kept in registers for the
    whole sweep over the connections. Up to 4 registers it is two: even and odd connections (added at the end),
    because one chain waits for each fused multiply-add's result (~4 cycles) before the next connection's, which
    bounded the narrow tiles of rows of ~26 connections; two chains made forward and dX 1.03-1.17x faster at batch
    16-64 (1.35x on a 10-row layer of 1000 connections per row; BENCHMARKS.md section 1, eighteenth session).
    Wider tiles have enough independent registers already.
    """
    acc = _vsplat(init, n_registers)
    acc_odd = _vsplat(dense.dtype.type(0), n_registers)
    k = start
    if n_registers <= 4:
        while k + 2 <= end:
            acc = _vfma(values[k], _vload(dense, index[k], col, n_registers), acc)
            acc_odd = _vfma(values[k + 1], _vload(dense, index[k + 1], col, n_registers), acc_odd)
            k += 2
    for m in range(k, end):
        acc = _vfma(values[m], _vload(dense, index[m], col, n_registers), acc)
    _vstore(out, row, col, _vadd(acc, acc_odd))


@njit(**_INLINE)
def _half_tail(n_valid, lanes):
    """Whether a batch's last ``n_valid`` columns (< ``lanes``) go in a :data:`HALF` register (else a whole one)."""
    return REGISTER_BYTES >= 32 and n_valid <= lanes // 2


@njit(**_INLINE)
def _row_tail(start, end, index, values, dense, init, out, row, col, n_valid, tail_registers):
    """As ``_row_tile`` for the last ``n_valid`` (< one register) columns, with masked loads and store, in a vector
    of ``tail_registers`` (1 or :data:`HALF`, a literal)."""
    acc = _vsplat(init, tail_registers)
    for k in range(start, end):
        acc = _vfma(values[k], _vload_masked(dense, index[k], col, n_valid, tail_registers), acc)
    _vstore_masked(out, row, col, n_valid, acc)


@njit(**_INLINE)
def _row_tile_tail(start, end, index, values, dense, init, out, row, col, n_first, n_valid, tail_registers):
    """A tile of ``n_first`` registers (a literal) and the masked last ``n_valid`` columns after it in ONE sweep."""
    acc = _vsplat(init, n_first)
    acc_tail = _vsplat(init, tail_registers)
    acc_odd = _vsplat(dense.dtype.type(0), n_first)
    acc_tail_odd = _vsplat(dense.dtype.type(0), tail_registers)
    col_tail = col + n_first * (REGISTER_BYTES // dense.itemsize)
    k = start
    while k + 2 <= end:
        c, v = index[k], values[k]
        acc = _vfma(v, _vload(dense, c, col, n_first), acc)
        acc_tail = _vfma(v, _vload_masked(dense, c, col_tail, n_valid, tail_registers), acc_tail)
        c, v = index[k + 1], values[k + 1]
        acc_odd = _vfma(v, _vload(dense, c, col, n_first), acc_odd)
        acc_tail_odd = _vfma(v, _vload_masked(dense, c, col_tail, n_valid, tail_registers), acc_tail_odd)
        k += 2
    if k < end:
        c, v = index[k], values[k]
        acc = _vfma(v, _vload(dense, c, col, n_first), acc)
        acc_tail = _vfma(v, _vload_masked(dense, c, col_tail, n_valid, tail_registers), acc_tail)
    _vstore(out, row, col, _vadd(acc, acc_odd))
    _vstore_masked(out, row, col_tail, n_valid, _vadd(acc_tail, acc_tail_odd))


@njit(**_INLINE)
def _row_tiles_tail(start, end, index, values, dense, init, out, row, col, n_first, n_second, n_valid, tail_registers):
    """Tiles of ``n_first`` and ``n_second`` registers and the masked last ``n_valid`` columns in ONE sweep
    (in two chains, see ``_row_tile``, when the whole tiles are 3 registers or fewer)."""
    lanes = REGISTER_BYTES // dense.itemsize
    zero = dense.dtype.type(0)
    acc, acc_odd = _vsplat(init, n_first), _vsplat(zero, n_first)
    acc_next, acc_next_odd = _vsplat(init, n_second), _vsplat(zero, n_second)
    acc_tail, acc_tail_odd = _vsplat(init, tail_registers), _vsplat(zero, tail_registers)
    col_next = col + n_first * lanes
    col_tail = col_next + n_second * lanes
    k = start
    if n_first + n_second <= 3:
        while k + 2 <= end:
            c, v = index[k], values[k]
            acc = _vfma(v, _vload(dense, c, col, n_first), acc)
            acc_next = _vfma(v, _vload(dense, c, col_next, n_second), acc_next)
            acc_tail = _vfma(v, _vload_masked(dense, c, col_tail, n_valid, tail_registers), acc_tail)
            c, v = index[k + 1], values[k + 1]
            acc_odd = _vfma(v, _vload(dense, c, col, n_first), acc_odd)
            acc_next_odd = _vfma(v, _vload(dense, c, col_next, n_second), acc_next_odd)
            acc_tail_odd = _vfma(v, _vload_masked(dense, c, col_tail, n_valid, tail_registers), acc_tail_odd)
            k += 2
    for m in range(k, end):
        c, v = index[m], values[m]
        acc = _vfma(v, _vload(dense, c, col, n_first), acc)
        acc_next = _vfma(v, _vload(dense, c, col_next, n_second), acc_next)
        acc_tail = _vfma(v, _vload_masked(dense, c, col_tail, n_valid, tail_registers), acc_tail)
    _vstore(out, row, col, _vadd(acc, acc_odd))
    _vstore(out, row, col_next, _vadd(acc_next, acc_next_odd))
    _vstore_masked(out, row, col_tail, n_valid, _vadd(acc_tail, acc_tail_odd))


@njit(**_INLINE)
def _row_tiles(start, end, index, values, dense, init, out, row, col, n_first, n_second):
    """Two adjacent tiles (``n_first`` then ``n_second`` registers, literals) in ONE sweep over the connections.

    Each connection's index and weight are read once for both tiles, and the two accumulators are
    independent FMA chains: at batch 40 (AVX2: 4 + 1 registers) this was 1.3-1.8x faster than a sweep per tile.
    Two chains each (see ``_row_tile``) when the tiles are 3 registers or fewer.
    """
    zero = dense.dtype.type(0)
    acc, acc_odd = _vsplat(init, n_first), _vsplat(zero, n_first)
    acc_next, acc_next_odd = _vsplat(init, n_second), _vsplat(zero, n_second)
    col_next = col + n_first * (REGISTER_BYTES // dense.itemsize)
    k = start
    if n_first + n_second <= 3:
        while k + 2 <= end:
            c, v = index[k], values[k]
            acc = _vfma(v, _vload(dense, c, col, n_first), acc)
            acc_next = _vfma(v, _vload(dense, c, col_next, n_second), acc_next)
            c, v = index[k + 1], values[k + 1]
            acc_odd = _vfma(v, _vload(dense, c, col, n_first), acc_odd)
            acc_next_odd = _vfma(v, _vload(dense, c, col_next, n_second), acc_next_odd)
            k += 2
    for m in range(k, end):
        c, v = index[m], values[m]
        acc = _vfma(v, _vload(dense, c, col, n_first), acc)
        acc_next = _vfma(v, _vload(dense, c, col_next, n_second), acc_next)
    _vstore(out, row, col, _vadd(acc, acc_odd))
    _vstore(out, row, col_next, _vadd(acc_next, acc_next_odd))


@njit(**_INLINE)
def _row_rest_tail(start, end, index, values, dense, init, out, row, col, rest, tail, tail_registers):
    """The ``rest`` (< 8) whole registers from ``col`` and the masked ``tail`` columns after them, in one sweep
    (vectors of 1, 2 or 4 registers, and the tail's of ``tail_registers``: LLVM splits a masked load of another
    width, such as 3 registers, into one load per lane, 10x slower)."""
    lanes = REGISTER_BYTES // dense.itemsize
    if rest == 7:
        _row_tiles(start, end, index, values, dense, init, out, row, col, 4, 2)
        _row_tile_tail(start, end, index, values, dense, init, out, row, col + 6 * lanes, 1, tail, tail_registers)
    elif rest == 6:
        _row_tiles_tail(start, end, index, values, dense, init, out, row, col, 4, 2, tail, tail_registers)
    elif rest == 5:
        _row_tiles_tail(start, end, index, values, dense, init, out, row, col, 4, 1, tail, tail_registers)
    elif rest == 4:
        _row_tile_tail(start, end, index, values, dense, init, out, row, col, 4, tail, tail_registers)
    elif rest == 3:
        _row_tiles_tail(start, end, index, values, dense, init, out, row, col, 2, 1, tail, tail_registers)
    elif rest == 2:
        _row_tile_tail(start, end, index, values, dense, init, out, row, col, 2, tail, tail_registers)
    elif rest == 1:
        _row_tile_tail(start, end, index, values, dense, init, out, row, col, 1, tail, tail_registers)
    else:
        _row_tail(start, end, index, values, dense, init, out, row, col, tail, tail_registers)


@njit(**_INLINE)
def _spmm_row(start, end, index, values, dense, init, out, row):
    """One output row: tiles of 8 registers (128 float32 with AVX-512) while they fit, then the remaining
    whole registers and the masked tail in one sweep (4 + 2 + 1 + tail as the batch needs): a sweep of its own for
    the tail made batch 24 and 56 (AVX-512: 1 and 3 registers + half of one) 1.5-1.9x slower."""
    batch = dense.shape[1]
    lanes = REGISTER_BYTES // dense.itemsize
    col = 0
    while col + 8 * lanes <= batch:
        _row_tile(start, end, index, values, dense, init, out, row, col, 8)
        col += 8 * lanes
    rest = (batch - col) // lanes
    tail = batch - col - rest * lanes
    if tail:  # a part-filled last register, swept with the whole ones before it; half a register if it fits
        if _half_tail(tail, lanes):
            _row_rest_tail(start, end, index, values, dense, init, out, row, col, rest, tail, HALF)
        else:
            _row_rest_tail(start, end, index, values, dense, init, out, row, col, rest, tail, 1)
    elif rest == 7:
        _row_tiles(start, end, index, values, dense, init, out, row, col, 4, 2)
        _row_tile(start, end, index, values, dense, init, out, row, col + 6 * lanes, 1)
    elif rest == 6:
        _row_tiles(start, end, index, values, dense, init, out, row, col, 4, 2)
    elif rest == 5:
        _row_tiles(start, end, index, values, dense, init, out, row, col, 4, 1)
    elif rest == 4:
        _row_tile(start, end, index, values, dense, init, out, row, col, 4)
    elif rest == 3:
        _row_tiles(start, end, index, values, dense, init, out, row, col, 2, 1)
    elif rest == 2:
        _row_tile(start, end, index, values, dense, init, out, row, col, 2)
    elif rest == 1:
        _row_tile(start, end, index, values, dense, init, out, row, col, 1)


def spmm(indptr, cols, values, xt, bias, out) -> None:
    """out[r, :] = bias[r] + sum over row r's connections k of values[k] * xt[cols[k], :].

    ``bias`` may be empty (no bias). ``xt`` (n_cols, batch) and ``out`` (n_rows, batch) must be
    C-contiguous; ``out`` is fully overwritten. Each row is summed by one thread in its stored order. A layer
    of :data:`_TASK_MIN_NNZ` connections or more hands its rows out as tasks of ~:data:`_TASK_NNZ`
    connections from a shared counter, so that a core shared with another process does
    not hold up the call; smaller layers split their rows among the threads asked for (the same numbers).
    """
    call_sized(_kernel_seconds(cols, xt), _spmm_split, indptr, cols, values, xt, bias, out)


def _spmm_split(indptr, cols, values, xt, bias, out) -> None:
    nnz = cols.shape[0]
    if nnz < _TASK_MIN_NNZ or numba.get_num_threads() == 1:
        _spmm(indptr, cols, values, xt, bias, out)
        return
    bounds = _row_tasks(indptr, nnz)
    _spmm_tasks(indptr, cols, values, xt, bias, out, bounds, numba.get_num_threads())


_TASK_MIN_NNZ = 1 << 20  # connections from which spmm hands its rows out as tasks
_TASK_NNZ = 1 << 16  # connections per task (a task costs one atomic add; ~64k connections take ~0.1 ms)


def _row_tasks(indptr: np.ndarray, nnz: int) -> np.ndarray:
    """Row bounds of tasks of about :data:`_TASK_NNZ` connections each (at most 1024 tasks)."""
    n_tasks = int(min(1024, max(1, nnz // _TASK_NNZ)))
    bounds = np.searchsorted(indptr, np.arange(n_tasks + 1, dtype=np.int64) * nnz // n_tasks).astype(np.int64)
    n_rows = indptr.shape[0] - 1
    np.minimum(bounds, n_rows, out=bounds)
    bounds[0], bounds[-1] = 0, n_rows
    return bounds


@njit(**_JIT)
def _spmm(indptr, cols, values, xt, bias, out):  # pragma: no cover - compiled
    n_rows = indptr.shape[0] - 1
    has_bias = bias.shape[0] > 0
    for r in prange(n_rows):
        init = bias[r] if has_bias else values.dtype.type(0)
        _spmm_row(indptr[r], indptr[r + 1], cols, values, xt, init, out, r)


@njit(**_JIT)
def _spmm_tasks(indptr, cols, values, xt, bias, out, bounds, n_takers):  # pragma: no cover - compiled
    has_bias = bias.shape[0] > 0
    n_tasks = bounds.shape[0] - 1
    next_task = np.zeros(1, dtype=np.int64)
    for _ in prange(n_takers):
        while True:
            t = _fetch_add(next_task, 1)
            if t >= n_tasks:
                break
            for r in range(bounds[t], bounds[t + 1]):
                init = bias[r] if has_bias else values.dtype.type(0)
                _spmm_row(indptr[r], indptr[r + 1], cols, values, xt, init, out, r)


def spmm_transposed(csc_indptr, csc_rows, csc_perm, values, dyt, out) -> None:
    """out[c, :] = sum over column c's connections of values * dyt[row, :]  (dXt = W^T dYt); see
    :func:`_spmm_transposed`."""
    call_sized(_kernel_seconds(csc_rows, dyt), _spmm_transposed, csc_indptr, csc_rows, csc_perm, values, dyt, out)


@njit(**_JIT)
def _spmm_transposed(csc_indptr, csc_rows, csc_perm, values, dyt, out):  # pragma: no cover - compiled
    """out[c, :] = sum over column c's connections of values * dyt[row, :]  (dXt = W^T dYt).

    The weights are stored in CSR order (``csc_perm[k]`` is the CSR position of the k-th connection
    in column order): a first parallel pass gathers them into CSC order, a flat loop that keeps many
    cache misses in flight, then the forward loop runs over the CSC view. Reading ``values[csc_perm[k]]``
    inside the tile loop instead, or gathering per block of columns, was 1.2-2x slower on wide layers.
    """
    n_cols = csc_indptr.shape[0] - 1
    nnz = csc_perm.shape[0]
    csc_values = np.empty(nnz, dtype=values.dtype)
    for k in prange(nnz):
        csc_values[k] = values[csc_perm[k]]
    zero = values.dtype.type(0)
    for c in prange(n_cols):
        _spmm_row(csc_indptr[c], csc_indptr[c + 1], csc_rows, csc_values, dyt, zero, out, c)


# ---- sddmm: one dot product of two batch vectors per connection ------------------------------------
@njit(**_INLINE)
def _dot2(dyt, row, xt, c0, c1, n_registers):
    """(<dyt[row], xt[c0]>, <dyt[row], xt[c1]>): each load of dyt[row] serves two products.

    Tiles of ``n_registers`` registers (a literal; 2 accumulators + the shared dyt tile stay in
    registers), the last one masked, then one horizontal sum per product.
    """
    batch = xt.shape[1]
    tile = n_registers * REGISTER_BYTES // xt.itemsize
    acc0 = _vsplat(xt.dtype.type(0), n_registers)
    acc1 = _vsplat(xt.dtype.type(0), n_registers)
    j = 0
    while j + tile <= batch:
        g = _vload(dyt, row, j, n_registers)
        acc0 = _vfma(g, _vload(xt, c0, j, n_registers), acc0)
        acc1 = _vfma(g, _vload(xt, c1, j, n_registers), acc1)
        j += tile
    if j < batch:
        n_valid = batch - j
        g = _vload_masked(dyt, row, j, n_valid, n_registers)
        acc0 = _vfma(g, _vload_masked(xt, c0, j, n_valid, n_registers), acc0)
        acc1 = _vfma(g, _vload_masked(xt, c1, j, n_valid, n_registers), acc1)
    return _vsum(acc0), _vsum(acc1)


@njit(**_INLINE)
def _sddmm_row(indptr, cols, dyt, xt, out_values, row, n_registers):
    """All of one row's weight gradients, two connections at a time."""
    k = indptr[row]
    end = indptr[row + 1]
    while k + 2 <= end:
        s0, s1 = _dot2(dyt, row, xt, cols[k], cols[k + 1], n_registers)
        out_values[k] = s0
        out_values[k + 1] = s1
        k += 2
    if k < end:  # an odd last connection: computed twice, stored once
        s0, _ = _dot2(dyt, row, xt, cols[k], cols[k], n_registers)
        out_values[k] = s0


@njit(**_INLINE)
def _dot4_by_register(dyt, row, xt, c0, c1, c2, c3, tail_registers):
    """Four products <dyt[row], xt[c]>, one register at a time, then the part-filled last register (masked, in a
    vector of ``tail_registers``: 1 or :data:`HALF`, a literal): four independent FMA chains share each load of
    dyt[row]."""
    batch = xt.shape[1]
    lanes = REGISTER_BYTES // xt.itemsize
    zero = xt.dtype.type(0)
    acc0, acc1, acc2, acc3 = _vsplat(zero, 1), _vsplat(zero, 1), _vsplat(zero, 1), _vsplat(zero, 1)
    j = 0
    while j + lanes <= batch:
        g = _vload(dyt, row, j, 1)
        acc0 = _vfma(g, _vload(xt, c0, j, 1), acc0)
        acc1 = _vfma(g, _vload(xt, c1, j, 1), acc1)
        acc2 = _vfma(g, _vload(xt, c2, j, 1), acc2)
        acc3 = _vfma(g, _vload(xt, c3, j, 1), acc3)
        j += lanes
    n_valid = batch - j  # may be 0: the tail vectors then stay zero
    tail0, tail1 = _vsplat(zero, tail_registers), _vsplat(zero, tail_registers)
    tail2, tail3 = _vsplat(zero, tail_registers), _vsplat(zero, tail_registers)
    if n_valid:
        g = _vload_masked(dyt, row, j, n_valid, tail_registers)
        tail0 = _vfma(g, _vload_masked(xt, c0, j, n_valid, tail_registers), tail0)
        tail1 = _vfma(g, _vload_masked(xt, c1, j, n_valid, tail_registers), tail1)
        tail2 = _vfma(g, _vload_masked(xt, c2, j, n_valid, tail_registers), tail2)
        tail3 = _vfma(g, _vload_masked(xt, c3, j, n_valid, tail_registers), tail3)
    return _vsum_with(acc0, tail0), _vsum_with(acc1, tail1), _vsum_with(acc2, tail2), _vsum_with(acc3, tail3)


@njit(**_INLINE)
def _sddmm_row_by_register(indptr, cols, dyt, xt, out_values, row, tail_registers):
    """A row's weight gradients one register at a time, four connections at a time (the last 1-3 too, with their
    last column repeated: every connection's sum is then the same function of its two vectors)."""
    k = indptr[row]
    end = indptr[row + 1]
    while k + 4 <= end:
        s0, s1, s2, s3 = _dot4_by_register(dyt, row, xt, cols[k], cols[k + 1], cols[k + 2], cols[k + 3], tail_registers)
        out_values[k] = s0
        out_values[k + 1] = s1
        out_values[k + 2] = s2
        out_values[k + 3] = s3
        k += 4
    if k < end:
        last = end - 1
        s0, s1, s2, _ = _dot4_by_register(
            dyt, row, xt, cols[k], cols[min(k + 1, last)], cols[min(k + 2, last)], cols[last], tail_registers
        )
        out_values[k] = s0
        if k + 1 < end:
            out_values[k + 1] = s1
        if k + 2 < end:
            out_values[k + 2] = s2


@njit(**_INLINE)
def _sddmm_row_scalar(indptr, cols, dyt, xt, out_values, row):
    """A row's weight gradients as plain scalar dot products, for batches of a few samples."""
    batch = xt.shape[1]
    for k in range(indptr[row], indptr[row + 1]):
        c = cols[k]
        acc = xt.dtype.type(0)
        for j in range(batch):
            acc += dyt[row, j] * xt[c, j]
        out_values[k] = acc


def sddmm(indptr, cols, dyt, xt, out_values) -> None:
    """out_values[k] = <dyt[r, :], xt[cols[k], :]> for every stored connection k of every row r; see
    :func:`_sddmm`."""
    call_sized(_kernel_seconds(cols, xt), _sddmm, indptr, cols, dyt, xt, out_values)


@njit(**_JIT)
def _sddmm(indptr, cols, dyt, xt, out_values):  # pragma: no cover - compiled
    """out_values[k] = <dyt[r, :], xt[cols[k], :]> for every stored connection k of every row r.

    Two connections of a row at a time share the loads of ``dyt[r]`` (which stays in L1). The tile
    is the widest of 4 / 2 / 1 registers that the batch fills: at batch 128, 2 connections x 4
    registers measured 10-20% faster than 4 x 2 or 1 x 8; narrower tiles avoid masked-off work at
    batch 16-32, and an odd number of whole registers (batch 24, 40, 56 in float32 with AVX2) takes 1-register
    tiles, four connections at a time (``_dot4_by_register``: four FMA chains, where two chains of 3-7 FMAs
    left the core waiting on their latency; dW 1.2x again at batch 24 and 40, the same sums). So does a batch
    below 8 registers that ends with a part-filled one (batch 40 with AVX-512: 2.5 registers), where 2-register
    tiles did 4 registers of work: dW 1.3x at batch 24, 40 and 56 with AVX-512 (AMD Zen 4); a last register at
    most half filled is then a :data:`HALF` one (dW 1.1x again at batch 24 and 40, AMD Zen 4). At batch
    1-4 a masked register and its horizontal sum are mostly wasted work: plain scalar products were
    1.1-1.6x faster there (AMD Zen 3, BENCHMARKS.md section 3).
    """
    n_rows = indptr.shape[0] - 1
    lanes = REGISTER_BYTES // xt.itemsize
    batch = xt.shape[1]
    for r in prange(n_rows):
        if batch <= _SCALAR_DW_BATCH:
            _sddmm_row_scalar(indptr, cols, dyt, xt, out_values, r)
        elif batch < 8 * lanes and (batch % lanes != 0 or (batch // lanes) % 2 == 1):
            # 3, 5 or 7 whole registers, or a part-filled last one: single-register tiles leave at most one
            # masked register (a 2- or 4-register tile would end with a masked one mostly off)
            if batch % lanes != 0 and _half_tail(batch % lanes, lanes):
                _sddmm_row_by_register(indptr, cols, dyt, xt, out_values, r, HALF)
            else:
                _sddmm_row_by_register(indptr, cols, dyt, xt, out_values, r, 1)
        elif batch >= 4 * lanes:
            _sddmm_row(indptr, cols, dyt, xt, out_values, r, 4)
        elif batch >= 2 * lanes:
            _sddmm_row(indptr, cols, dyt, xt, out_values, r, 2)
        else:
            _sddmm_row(indptr, cols, dyt, xt, out_values, r, 1)


# ---- both gradients in one pass over the CSR order, for batches of a few samples -------------------
_NO_SGD = np.empty(0, dtype=np.float64)
_ROW_TASKS = 32  # backward_csr without dX: row ranges handed to the threads one at a time
_CHUNK_BYTES = 5 << 18  # backward_csr: scratch bytes per column range (1.25 MiB), so that a range stays in cache


def backward_chunks(n_cols: int, batch: int, itemsize: int) -> int:
    """Column ranges of :func:`backward_csr` for a layer: at least :data:`BACKWARD_CHUNKS`, more for wide layers.

    Each range's scratch (x and partial dX, ``2 * batch`` numbers per column) is kept near
    ``_CHUNK_BYTES``: at 600,000 inputs and batch 2 (9.6 MB of scratch), 8 ranges made the sweep ~2x faster
    than 2 (less random access outside the cache); 16 and more lost it again (each range re-reads the
    indices of every row). A function of the shape only, so results do not depend on the thread count.
    """
    return max(BACKWARD_CHUNKS, -(-n_cols * 2 * batch * itemsize // _CHUNK_BYTES))


def backward_csr(indptr, cols, values, dyt, xt, grad_values, grad_xt, n_chunks):
    """grad_values[k] = <dyt[r], xt[cols[k]]> and, if ``grad_xt`` has rows, grad_xt = W^T dyt, in one sweep.

    ``grad_xt`` of shape (0, batch) skips the input gradient (a first layer). ``n_chunks``: the number
    of column ranges (or row ranges without input gradient) the work is split into, a constant
    (:data:`BACKWARD_CHUNKS`) rather than the thread count, so that results do not depend on the threads.
    See :func:`_backward_sweep` for how.
    """
    scratch = _scratch(grad_xt, xt)
    call_sized(
        _kernel_seconds(cols, xt), _sweep_csr,
        indptr, cols, values, dyt, xt, grad_values, grad_xt, n_chunks, _NO_SGD, values[:0], scratch,
    )  # fmt: skip


def backward_csr_sgd(
    indptr,
    cols,
    values,
    momentum_buffer,
    dyt,
    xt,
    grad_xt,
    n_chunks,
    *,
    lr,
    weight_decay=0.0,
    momentum=0.0,
    dampening=0.0,
    nesterov=False,
    maximize=False,
    first_step=False,
):
    """:func:`backward_csr` fused with one SGD step on ``values`` (in place): no gradient array is written.

    Per connection, in the same sweep that reads its index, weight and momentum: the gradient
    ``g = <dyt[r], xt[c]>``, the input gradient's share (with the weight *before* the step), then
    ``torch.optim.SGD``'s update: ``g = -g`` if maximize; ``g += weight_decay * w``; with momentum,
    ``b = g`` on the first step, else ``b = momentum * b + (1 - dampening) * g``, and ``g = g + momentum * b``
    (Nesterov) or ``g = b``; finally ``w -= lr * g``. ``momentum_buffer`` (nnz, the optimizer's state) is
    read and written when ``momentum != 0`` (may be empty otherwise); ``first_step`` initialises it.
    """
    sgd = _sgd_parameters(
        values, momentum_buffer, lr, weight_decay, momentum, dampening, nesterov, maximize, first_step
    )
    scratch = _scratch(grad_xt, xt)
    call_sized(
        _kernel_seconds(cols, xt), _sweep_csr,
        indptr, cols, values, dyt, xt, values[:0], grad_xt, n_chunks, sgd, momentum_buffer, scratch,
    )  # fmt: skip


def sddmm_sgd(
    indptr,
    cols,
    dyt,
    xt,
    values,
    momentum_buffer,
    *,
    lr,
    weight_decay=0.0,
    momentum=0.0,
    dampening=0.0,
    nesterov=False,
    maximize=False,
    first_step=False,
):
    """:func:`sddmm`, then one SGD step on ``values`` (in place) with those gradients, for batches above a few.

    The gradients are :func:`sddmm`'s (into a temporary), applied by the update of :func:`backward_csr_sgd` in
    one compiled loop: the optimizer's several passes over the weights (and its per-tensor Python work) go.
    Applying each gradient inside the tiled product loop instead made the kernel's first compilation take
    ~30 s (every tile width inlines the update twice). The input gradient, which needs the weights before the
    step, must be computed first (:func:`spmm_transposed`).
    """
    sgd = _sgd_parameters(
        values, momentum_buffer, lr, weight_decay, momentum, dampening, nesterov, maximize, first_step
    )
    grad_values = np.empty_like(values)
    seconds = _kernel_seconds(cols, xt)
    call_sized(seconds, _sddmm_then_sgd, indptr, cols, dyt, xt, values, momentum_buffer, grad_values, sgd)


def _sddmm_then_sgd(indptr, cols, dyt, xt, values, momentum_buffer, grad_values, sgd) -> None:
    _sddmm(indptr, cols, dyt, xt, grad_values)
    _sgd_apply(values, momentum_buffer, grad_values, sgd)


def _sgd_parameters(values, momentum_buffer, lr, weight_decay, momentum, dampening, nesterov, maximize, first_step):
    if momentum != 0 and momentum_buffer.shape != values.shape:
        raise ValueError(f"momentum_buffer must have shape {values.shape}, got {momentum_buffer.shape}")
    return np.array(
        [lr, weight_decay, momentum, dampening, float(nesterov), float(maximize), float(first_step)], dtype=np.float64
    )


def _scratch(grad_xt, xt):
    # Allocated by numpy, not inside the kernel: numpy asks for transparent huge pages for large arrays
    # (madvise), which spares the TLB misses of random accesses to a 10 MB array (costly under a hypervisor).
    return np.empty((grad_xt.shape[0], 2 * xt.shape[1]), dtype=xt.dtype)


def _sweep_csr(indptr, cols, values, dyt, xt, grad_values, grad_xt, n_chunks, sgd, momentum_buffer, scratch) -> None:
    """:func:`_backward_sweep` with the threads asked for (passed in: see :func:`_spmm_blocked`)."""
    # With dX the tasks are the n_chunks column ranges; without, row ranges (_ROW_TASKS or more).
    _backward_sweep(
        indptr, cols, values, dyt, xt, grad_values, grad_xt, n_chunks, sgd, momentum_buffer, scratch,
        numba.get_num_threads(),
    )  # fmt: skip


@njit(**_INLINE)
def _sgd_value(w, b, g, lr, weight_decay, momentum, undamped, nesterov, maximize, first_step):
    """``_sgd_update`` on scalars, its hyperparameters passed in (loop invariants; ``undamped`` = 1 - dampening):
    (new weight, new momentum)."""
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * w
    if momentum != 0:
        b = g if first_step else momentum * b + undamped * g
        g = g + momentum * b if nesterov else b
    return w - lr * g, b


@njit(**_INLINE)
def _sgd_update(values, momentum_buffer, k, g, sgd):
    """One connection's ``torch.optim.SGD`` step (see :func:`backward_csr_sgd`); ``g`` is its gradient."""
    dtype = values.dtype.type
    momentum = dtype(sgd[2])
    b = momentum_buffer[k] if momentum != 0 and sgd[6] == 0 else dtype(0)
    w, b = _sgd_value(
        values[k], b, g, dtype(sgd[0]), dtype(sgd[1]), momentum, dtype(1) - dtype(sgd[3]),
        sgd[4] != 0, sgd[5] != 0, sgd[6] != 0,
    )  # fmt: skip
    if momentum != 0:
        momentum_buffer[k] = b
    values[k] = w


@njit(**_JIT)
def _sgd_apply(values, momentum_buffer, grad_values, sgd):  # pragma: no cover - compiled
    for k in prange(values.shape[0]):
        _sgd_update(values, momentum_buffer, k, grad_values[k], sgd)


@njit(**_JIT)
def _backward_sweep(  # pragma: no cover - compiled
    indptr, cols, values, dyt, xt, grad_values, grad_xt, n_chunks, sgd, momentum_buffer, scratch, n_takers
):
    """Both gradients (or, with ``sgd`` set, the SGD step instead of dW) in one sweep over the CSR order.

    At a batch of a few samples a wide layer's gradients are bound by random accesses to the rows of
    ``xt`` (one per connection), not by arithmetic. This sweep visits each connection once and touches
    one cache line per connection: ``xt`` is copied into a scratch array whose row ``c`` holds ``xt[c]``
    followed by the partial ``dXt[c]`` (so the read of x and the update of dX share a line), and
    ``values[k] * dyt[r]`` is scattered into it. No CSC view (8 bytes per connection) is needed.

    The threads split the *columns* (input neurons), not the rows: chunk t handles, in every row, the
    connections whose column lies in its range (columns are ascending within a row), so each chunk reads
    and writes only its own rows of one shared scratch (a scratch per thread over all columns, the earlier
    design, doubled the random-access working set and needed a final sum), and each dX entry is summed in
    row order by one chunk: bit-identical for any thread count. The chunks are handed out one at a time
    from a shared counter (whichever thread is free takes the next). Each chunk starts at a different row,
    so that two threads rarely write the same cache line of ``values`` at once. Without input gradient (a
    first layer) the work is row ranges, handed out the same way. (Tried: a block of rows swept twice, the
    dX scatter then the gathers, with x and dX in separate arrays: two random lines per connection, not
    faster on a loaded machine.)
    """
    n_rows = indptr.shape[0] - 1
    n_cols, batch = xt.shape
    need_dx = grad_xt.shape[0] > 0
    update = sgd.shape[0] > 0
    zero = xt.dtype.type(0)
    if need_dx:
        for c in prange(n_cols):
            for j in range(batch):
                scratch[c, j] = xt[c, j]
                scratch[c, batch + j] = zero
        next_chunk = np.zeros(1, dtype=np.int64)
        for _ in prange(n_takers):
            while True:
                t = _fetch_add(next_chunk, 1)
                if t >= n_chunks:
                    break
                low = n_cols * t // n_chunks
                high = n_cols * (t + 1) // n_chunks
                first_row = n_rows * t // n_chunks
                for i in range(n_rows):
                    r = first_row + i
                    if r >= n_rows:
                        r -= n_rows
                    k = indptr[r]
                    end = indptr[r + 1]
                    while k < end and cols[k] < low:
                        k += 1
                    while k < end and cols[k] < high:
                        c = np.uint32(cols[k])  # unsigned: no negative-index check per access
                        v = values[k]
                        acc = zero
                        for j in range(batch):
                            g = dyt[r, j]
                            acc += g * scratch[c, j]
                            scratch[c, batch + j] += v * g
                        if update:
                            _sgd_update(values, momentum_buffer, k, acc, sgd)
                        else:
                            grad_values[k] = acc
                        k += 1
        for c in prange(n_cols):
            for j in range(batch):
                grad_xt[c, j] = scratch[c, batch + j]
    else:
        # Without dX every connection's update is independent of the others, so any split gives the same
        # numbers: row ranges of ~nnz / _ROW_TASKS connections, taken from a shared counter by whichever
        # thread is free (a thread sharing its core with another process takes fewer).
        nnz = indptr[n_rows]
        n_tasks = max(n_chunks, _ROW_TASKS)
        bounds = np.empty(n_tasks + 1, dtype=np.int64)
        for t in range(n_tasks):
            bounds[t] = min(np.searchsorted(indptr, nnz * t // n_tasks), n_rows)
        bounds[0] = 0
        bounds[n_tasks] = n_rows
        dtype = values.dtype.type
        # A first layer at batch 2 with momentum SGD after its first step (the million-neuron recipe's first
        # layer): a loop with no branch per connection (57 -> 22 ms on the 3312 x 600,000 layer, BENCHMARKS.md
        # 3), with undamped passed as the constant 1 when there is no dampening (one multiply less per
        # connection). Everything else takes the general loop.
        fast = batch == 2 and update and sgd[2] != 0 and sgd[4] == 0 and sgd[6] == 0
        lr = dtype(sgd[0]) if fast else zero
        weight_decay = dtype(sgd[1]) if fast else zero
        momentum = dtype(sgd[2]) if fast else zero
        undamped = dtype(1) - dtype(sgd[3]) if fast else zero
        sign = -dtype(1) if fast and sgd[5] != 0 else dtype(1)
        next_task = np.zeros(1, dtype=np.int64)
        for _ in prange(n_takers):
            while True:
                t = _fetch_add(next_task, 1)
                if t >= n_tasks:
                    break
                if fast:
                    if undamped == dtype(1):
                        _batch2_first_rows(
                            bounds[t], bounds[t + 1], indptr, cols, values, momentum_buffer, dyt, xt,
                            sign, lr, weight_decay, momentum, dtype(1),
                        )  # fmt: skip
                    else:
                        _batch2_first_rows(
                            bounds[t], bounds[t + 1], indptr, cols, values, momentum_buffer, dyt, xt,
                            sign, lr, weight_decay, momentum, undamped,
                        )  # fmt: skip
                    continue
                for r in range(bounds[t], bounds[t + 1]):
                    for k in range(indptr[r], indptr[r + 1]):
                        c = np.uint32(cols[k])
                        acc = zero
                        for j in range(batch):
                            acc += dyt[r, j] * xt[c, j]
                        if update:
                            _sgd_update(values, momentum_buffer, k, acc, sgd)
                        else:
                            grad_values[k] = acc


@njit(**_INLINE)
def _batch2_first_rows(
    first_row, end_row, indptr, cols, values, momentum_buffer, dyt, xt, sign, lr, weight_decay, momentum, undamped
):  # fmt: skip
    """Rows ``first_row:end_row`` of a layer without dX at batch 2: the momentum SGD step with no branch."""
    for r in range(first_row, end_row):
        g0 = dyt[r, 0] * sign
        g1 = dyt[r, 1] * sign
        for k in range(indptr[r], indptr[r + 1]):
            c = np.uint32(cols[k])  # unsigned: no negative-index check per access
            v = values[k]
            m = momentum * momentum_buffer[k] + undamped * ((g0 * xt[c, 0] + g1 * xt[c, 1]) + weight_decay * v)
            momentum_buffer[k] = m
            values[k] = v - lr * m


# ---- row-blocked patterns: wide layers at batches of a few samples -------------------------------------
def spmm_blocked(block_ptr, cols, row_offsets, block_rows, values, xt, bias, out) -> None:
    """:func:`spmm` over a row-blocked pattern (:mod:`evosparse.sparse.pattern`): one block of rows per task.

    Inside a block the connections come in column order, so ``xt`` is read as an ascending stream (the
    prefetcher's case) instead of one random line per connection, and the block's rows of ``out`` (block_rows
    x batch numbers) stay in L2 while they accumulate. Each output sums bias, then its connections in column
    order, as :func:`spmm`. On the one-million-neuron layer (600,000 x 600,000, 20M connections, batch 2):
    2.4x faster than :func:`spmm` with two threads, 3.7x with one (BENCHMARKS.md section 3).

    The threads take blocks one at a time from a shared counter instead of fixed ranges, so a thread whose
    core is shared with another process takes fewer blocks instead of holding up the call; a block is
    computed by one thread in the same order whichever thread it is, so results do not depend on the split.
    """
    _spmm_blocked(block_ptr, cols, row_offsets, block_rows, values, xt, bias, out, numba.get_num_threads())


@njit(**_JIT)
def _spmm_blocked(block_ptr, cols, row_offsets, block_rows, values, xt, bias, out, n_takers):  # pragma: no cover
    # n_takers is the thread count, passed in: numba.get_num_threads() inside a cached function stops the cache
    n_rows, batch = out.shape
    n_blocks = block_ptr.shape[0] - 1
    has_bias = bias.shape[0] > 0
    zero = values.dtype.type(0)
    next_block = np.zeros(1, dtype=np.int64)
    for _ in prange(n_takers):  # one task taker per thread (see spmm_blocked)
        while True:
            b = _fetch_add(next_block, 1)
            if b >= n_blocks:
                break
            first_row = b * block_rows
            last_row = min(first_row + block_rows, n_rows)
            if batch == 2:  # the million-neuron recipe's batch, unrolled (the loop of unknown length cost ~1.5x)
                acc = np.empty((last_row - first_row, 2), dtype=out.dtype)  # no aliasing with xt: loads move freely
                for r in range(last_row - first_row):
                    init = bias[first_row + r] if has_bias else zero
                    acc[r, 0] = init
                    acc[r, 1] = init
                for k in range(block_ptr[b], block_ptr[b + 1]):
                    c = np.uint32(cols[k])  # unsigned: no negative-index check per access
                    r = row_offsets[k]
                    v = values[k]
                    acc[r, 0] += v * xt[c, 0]
                    acc[r, 1] += v * xt[c, 1]
                for r in range(last_row - first_row):
                    out[first_row + r, 0] = acc[r, 0]
                    out[first_row + r, 1] = acc[r, 1]
                continue
            for r in range(first_row, last_row):
                init = bias[r] if has_bias else zero
                for j in range(batch):
                    out[r, j] = init
            for k in range(block_ptr[b], block_ptr[b + 1]):
                c = np.uint32(cols[k])
                r = first_row + row_offsets[k]
                v = values[k]
                for j in range(batch):
                    out[r, j] += v * xt[c, j]


def backward_blocked(block_ptr, cols, row_offsets, block_rows, values, dyt, xt, grad_values, grad_xt, n_chunks):
    """:func:`backward_csr` over a row-blocked pattern: ``grad_values`` and (if it has rows) ``grad_xt``."""
    _blocked_sweep(
        block_ptr, cols, row_offsets, block_rows, values, dyt, xt, grad_values, grad_xt, n_chunks, _NO_SGD,
        values[:0], numba.get_num_threads(),
    )  # fmt: skip


def backward_blocked_sgd(
    block_ptr,
    cols,
    row_offsets,
    block_rows,
    values,
    momentum_buffer,
    dyt,
    xt,
    grad_xt,
    n_chunks,
    *,
    lr,
    weight_decay=0.0,
    momentum=0.0,
    dampening=0.0,
    nesterov=False,
    maximize=False,
    first_step=False,
):
    """:func:`backward_csr_sgd` over a row-blocked pattern: the SGD step of ``values`` inside the backward sweep."""
    sgd = _sgd_parameters(
        values, momentum_buffer, lr, weight_decay, momentum, dampening, nesterov, maximize, first_step
    )
    _blocked_sweep(
        block_ptr, cols, row_offsets, block_rows, values, dyt, xt, values[:0], grad_xt, n_chunks, sgd,
        momentum_buffer, numba.get_num_threads(),
    )  # fmt: skip


@njit(**_JIT)
def _blocked_sweep(  # pragma: no cover - compiled
    block_ptr, cols, row_offsets, block_rows, values, dyt, xt, grad_values, grad_xt, n_chunks, sgd, momentum_buffer,
    n_takers,
):  # fmt: skip
    """Both gradients (or the SGD step instead of dW) in one sweep over a row-blocked pattern.

    The work is split by columns into ``n_chunks`` ranges: in every block, chunk t takes the connections whose
    column is in its range, a contiguous run found by binary search because a block is sorted by column. So
    ``xt`` and ``grad_xt`` are read and written as ascending streams, only ``dyt``'s block rows (in L2) are read
    at random, and each ``grad_xt[c]`` is summed by one chunk, over the blocks in order: the same numbers for any
    number of chunks and whichever thread runs a chunk. The threads take chunks from a shared counter, so a
    thread whose core is busy with another process takes fewer (fixed ranges let it hold up the call).

    Per connection: ``g = <dyt[r], xt[c]>``, ``grad_xt[c] += w * dyt[r]`` with the weight before the step,
    then the SGD step or ``grad_values[k] = g``. The step's hyperparameters are read once into locals (read
    from ``sgd`` per connection, the sweep was ~1.2x slower).
    """
    n_cols, batch = xt.shape
    n_blocks = block_ptr.shape[0] - 1
    need_dx = grad_xt.shape[0] > 0
    update = sgd.shape[0] > 0
    dtype = values.dtype.type
    zero = dtype(0)
    lr = dtype(sgd[0]) if update else zero
    weight_decay = dtype(sgd[1]) if update else zero
    momentum = dtype(sgd[2]) if update else zero
    undamped = dtype(1) - dtype(sgd[3]) if update else zero
    nesterov = update and sgd[4] != 0
    maximize = update and sgd[5] != 0
    first_step = update and sgd[6] != 0
    sign = -dtype(1) if maximize else dtype(1)
    if need_dx:
        for c in prange(n_cols):
            for j in range(batch):
                grad_xt[c, j] = zero
    plain = sign == dtype(1) and undamped == dtype(1)
    next_chunk = np.zeros(1, dtype=np.int64)
    for _ in prange(n_takers):  # one task taker per thread (see the docstring; the thread count, passed in)
        while True:
            t = _fetch_add(next_chunk, 1)
            if t >= n_chunks:
                break
            low = n_cols * t // n_chunks
            high = n_cols * (t + 1) // n_chunks
            for b in range(n_blocks):
                start = block_ptr[b]
                end = block_ptr[b + 1]
                first_row = b * block_rows
                k = start + np.searchsorted(cols[start:end], low)
                stop = start + np.searchsorted(cols[start:end], high)
                if batch == 2 and need_dx and update and momentum != 0 and not nesterov and not first_step:
                    # The million-neuron recipe's case (batch 2, momentum SGD after its first step) in a loop with
                    # no branch (see _batch2_sgd_run). Without maximize and dampening, sign and undamped are passed
                    # as the constant 1, so the compiler drops their two multiplies per connection: ~1.3x faster on
                    # the Liu shape's wide layers (BENCHMARKS.md 3). (Under fastmath the compiler may then fuse
                    # multiply-adds differently, so the last bits can differ from the general loop's; they depend
                    # on neither the chunks nor the threads.)
                    block_dyt = dyt[first_row:]
                    if plain:
                        one = dtype(1)
                        _batch2_sgd_run(
                            k, stop, cols, row_offsets, values, momentum_buffer, block_dyt, xt, grad_xt,
                            lr, weight_decay, momentum, one, one,
                        )  # fmt: skip
                    else:
                        _batch2_sgd_run(
                            k, stop, cols, row_offsets, values, momentum_buffer, block_dyt, xt, grad_xt,
                            lr, weight_decay, momentum, undamped, sign,
                        )  # fmt: skip
                    continue
                while k < stop:
                    c = np.uint32(cols[k])
                    r = first_row + row_offsets[k]
                    v = values[k]
                    acc = zero
                    for j in range(batch):
                        g = dyt[r, j]
                        acc += g * xt[c, j]
                        if need_dx:
                            grad_xt[c, j] += v * g
                    if update:
                        b_old = momentum_buffer[k] if momentum != 0 else zero
                        w, b_new = _sgd_value(
                            v, b_old, acc, lr, weight_decay, momentum, undamped, nesterov, maximize, first_step
                        )
                        values[k] = w
                        if momentum != 0:
                            momentum_buffer[k] = b_new
                    else:
                        grad_values[k] = acc
                    k += 1


@njit(**_INLINE)
def _batch2_sgd_run(
    k, stop, cols, row_offsets, values, momentum_buffer, block_dyt, xt, grad_xt,
    lr, weight_decay, momentum, undamped, sign,
):  # fmt: skip
    """Connections ``k:stop`` of one block at batch 2: dX and the momentum SGD step, with no branch.

    The batch unrolled, maximize and weight decay folded into a sign and a multiply-add (a weight decay of 0
    adds 0 * w: the same numbers), the column read as unsigned (signed indices cost a wraparound check per
    access) and the block's rows of dyt as a view indexed by the uint16 offset. Against the loop before (weight
    decay 0 only, with branches): 1.16x, and 1.66x with the SET recipe's weight decay (BENCHMARKS.md 3).
    """
    while k < stop:
        c = np.uint32(cols[k])
        r = row_offsets[k]
        v = values[k]
        g0 = block_dyt[r, 0]
        g1 = block_dyt[r, 1]
        acc = (g0 * xt[c, 0] + g1 * xt[c, 1]) * sign + weight_decay * v
        grad_xt[c, 0] += v * g0
        grad_xt[c, 1] += v * g1
        m = momentum * momentum_buffer[k] + undamped * acc
        momentum_buffer[k] = m
        values[k] = v - lr * m
        k += 1


def set_num_threads(n: int) -> None:
    """Number of threads the compiled kernels use (at most the number Numba started with).

    On a machine shared with other busy processes, OpenMP's spinning worker threads can stall a
    multi-threaded call for a whole scheduler slice (~8 ms instead of ~0.1 ms, BENCHMARKS.md section 1);
    ``OMP_WAIT_POLICY=passive`` or ``NUMBA_THREADING_LAYER=workqueue`` (set before start) avoid it.
    """
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel for float32 and float64.

    The index dtypes are those :class:`~evosparse.sparse.pattern.SparsePattern` produces (int64 offsets,
    int32 indices; layers with 2**31 or more connections use an int64 ``csc_perm`` and compile on first use).
    """
    indptr = np.array([0, 1], dtype=np.int64)
    index = np.array([0], dtype=np.int32)
    for dtype in (np.float32, np.float64):
        values = np.ones(1, dtype=dtype)
        xt = np.ones((1, 2), dtype=dtype)
        out = np.empty((1, 2), dtype=dtype)
        spmm(indptr, index, values, xt, np.empty(0, dtype=dtype), out)
        spmm_transposed(indptr, index, index, values, xt, out)
        sddmm(indptr, index, xt, xt, np.empty(1, dtype=dtype))
        backward_csr(indptr, index, values, xt, xt, np.empty(1, dtype=dtype), out, 1)
        backward_csr(indptr, index, values, xt, xt, np.empty(1, dtype=dtype), out[:0], 1)
        backward_csr_sgd(indptr, index, values.copy(), values.copy(), xt, xt, out, 1, lr=0.0, momentum=0.5)
        offsets = np.zeros(1, dtype=np.uint16)
        spmm_blocked(indptr, index, offsets, 2, values, xt, np.empty(0, dtype=dtype), out)
        backward_blocked(indptr, index, offsets, 2, values, xt, xt, np.empty(1, dtype=dtype), out, 1)
        backward_blocked(indptr, index, offsets, 2, values, xt, xt, np.empty(1, dtype=dtype), out[:0], 1)
        backward_blocked_sgd(
            indptr, index, offsets, 2, values.copy(), values.copy(), xt, xt, out, 1, lr=0.0, momentum=0.5
        )
