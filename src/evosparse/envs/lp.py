"""A small builder for sparse linear and mixed-integer programs solved by HiGHS (``scipy.optimize.milp``).

Variables come in named blocks (one index array per block); a constraint block adds one row per element
of its right-hand side, each row a sum of ``coefficient * variable`` terms. This keeps every perfect-foresight
model in :mod:`evosparse.envs.optimal` close to its equations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse


@dataclass
class Solution:
    values: dict[str, np.ndarray]
    objective: float  # cost of the returned plan
    bound: float  # proven lower bound on the optimum (equals objective for an LP or a MILP solved to optimality)
    status: str


class ProgramBuilder:
    def __init__(self):
        self._blocks: dict[str, np.ndarray] = {}
        self._lower, self._upper, self._cost, self._integer = [], [], [], []
        self._rows, self._cols, self._vals, self._row_low, self._row_high = [], [], [], [], []
        self._n_rows = 0
        self._n = 0

    def variables(self, name: str, size: int, *, lower=0.0, upper=np.inf, cost=0.0, integer: bool = False):
        """Add ``size`` variables; bounds and cost broadcast. Returns their column indices."""
        index = np.arange(self._n, self._n + size)
        self._n += size
        self._blocks[name] = index
        self._lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (size,)))
        self._upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (size,)))
        self._cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), (size,)))
        self._integer.append(np.full(size, int(integer)))
        return index

    def rows(self, terms, *, low, high) -> None:
        """Rows ``low <= sum(coefficient * x[column]) <= high``.

        ``terms`` is a list of ``(columns, coefficients)`` with one entry per row, or ``(columns, coefficients,
        rows)`` to place entries on chosen rows (0-based within this block) for sums of different lengths.
        """
        low = np.atleast_1d(np.asarray(low, dtype=np.float64))
        high = np.atleast_1d(np.asarray(high, dtype=np.float64))
        n_rows = max(len(low), len(high), *(len(term[0]) for term in terms if len(term) == 2))
        low, high = np.broadcast_to(low, (n_rows,)), np.broadcast_to(high, (n_rows,))
        for term in terms:
            columns = np.asarray(term[0])
            rows = np.asarray(term[2]) if len(term) == 3 else np.arange(n_rows)
            self._rows.append(self._n_rows + rows)
            self._cols.append(columns)
            self._vals.append(np.broadcast_to(np.asarray(term[1], dtype=np.float64), columns.shape))
        self._row_low.append(low)
        self._row_high.append(high)
        self._n_rows += n_rows

    def equal(self, terms, rhs) -> None:
        self.rows(terms, low=rhs, high=rhs)

    def solve(self, *, time_limit: float = 60.0, mip_rel_gap: float = 1e-4) -> Solution:
        matrix = sparse.csr_array(
            (np.concatenate(self._vals), (np.concatenate(self._rows), np.concatenate(self._cols))),
            shape=(self._n_rows, self._n),
        )
        constraint = optimize.LinearConstraint(matrix, np.concatenate(self._row_low), np.concatenate(self._row_high))
        integrality = np.concatenate(self._integer)
        result = optimize.milp(
            np.concatenate(self._cost),
            integrality=integrality,
            bounds=optimize.Bounds(np.concatenate(self._lower), np.concatenate(self._upper)),
            constraints=constraint,
            options={"time_limit": time_limit, "mip_rel_gap": mip_rel_gap, "presolve": True},
        )
        if result.x is None:
            raise RuntimeError(f"perfect-foresight program has no solution: {result.message}")
        bound = getattr(result, "mip_dual_bound", None)
        bound = float(result.fun) if bound is None or not integrality.any() else float(bound)
        values = {name: result.x[index] for name, index in self._blocks.items()}
        return Solution(values=values, objective=float(result.fun), bound=bound, status=result.message)
