"""Neurons, connections, density and bytes of a SET-MLP, computed from its sizes without building it.

A layer's Erdos-Renyi connection count is deterministic for given sizes and epsilon
(:func:`evosparse.sparse.init.erdos_renyi_nnz`), and its bytes follow from the storage of
:class:`evosparse.sparse.SparsePattern` (its CSR arrays) plus float32 values and biases, so an
architecture of a billion neurons is described in microseconds. ``tests/cli/test_cli.py`` checks the
numbers against built :class:`evosparse.nn.SparseLinear` layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evosparse.sparse.init import erdos_renyi_nnz
from evosparse.sparse.pattern import INDEX_DTYPE, OFFSET_DTYPE

FLOAT_BYTES = 4  # float32 weights and biases


def sparse_layer_bytes(n_in: int, n_out: int, nnz: int) -> int:
    """Bytes of a sparse layer as built: values, bias, CSR offsets and columns.

    Training at batches above :data:`evosparse.sparse.functional.SMALL_BATCH` adds the CSC view of layers
    that need an input gradient (8 bytes per connection), built on the first backward pass.
    """
    index, offset = np.dtype(INDEX_DTYPE).itemsize, np.dtype(OFFSET_DTYPE).itemsize
    return nnz * FLOAT_BYTES + n_out * FLOAT_BYTES + (n_out + 1) * offset + nnz * index


def architecture(layers: Sequence[int], epsilon: float) -> dict[str, Any]:
    """Per-layer and total neurons, connections, density and bytes of a SET-MLP with these layer sizes.

    Args:
        layers: every layer size, input first and outputs last (two or more positive integers).
        epsilon: Erdos-Renyi sparsity parameter (> 0).
    """
    layers = [int(size) for size in layers]
    if len(layers) < 2 or any(size < 1 for size in layers):
        raise ValueError(f"layers must be two or more positive sizes (input, ..., output), got {layers}")
    if not (isinstance(epsilon, int | float) and 0 < epsilon < float("inf")):
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")
    rows = []
    for index, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:]), start=1):
        nnz = erdos_renyi_nnz(n_in, n_out, epsilon)
        rows.append(
            {
                "layer": index,
                "n_in": n_in,
                "n_out": n_out,
                "connections": nnz,
                "dense_connections": n_in * n_out,
                "density": nnz / (n_in * n_out),
                "bytes": sparse_layer_bytes(n_in, n_out, nnz),
                "dense_bytes": (n_in * n_out + n_out) * FLOAT_BYTES,
            }
        )
    total = {key: sum(row[key] for row in rows) for key in ("connections", "dense_connections", "bytes", "dense_bytes")}
    total["density"] = total["connections"] / total["dense_connections"]
    total["neurons"] = sum(layers)
    return {"layers": layers, "epsilon": epsilon, "per_layer": rows, "total": total}
