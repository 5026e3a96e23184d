"""The per-epoch record of a run: one row (a flat dict of numbers) per epoch, saved as CSV and JSON.

Row keys written by the built-in callbacks (see :mod:`evosparse.train.callbacks`):

* ``epoch``, ``step`` (optimizer steps so far), ``lr``;
* ``train_loss``, ``train_accuracy``: averaged over the epoch's minibatches, in training mode;
* ``test_loss``, ``test_accuracy``: the whole test set in evaluation mode, before the epoch's rewiring;
* ``nnz``, ``density`` (all layers), and ``nnz_layer<i>``, ``density_layer<i>`` per layer (1-based);
* ``rewired_fraction``: the fraction of connections SET changed at the epoch's updates (0 if none);
* ``train_seconds`` (the minibatch loop), ``eval_seconds``, ``topology_seconds`` (all rewiring of the epoch).

Accuracies are fractions in [0, 1]. Columns ending in ``_seconds`` are timings: they differ between
otherwise identical runs (see :data:`TIMING_SUFFIX`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from evosparse.io.atomic import atomic_write_text

TIMING_SUFFIX = "_seconds"


class History:
    """A list of per-epoch rows with CSV / JSON output."""

    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self.rows: list[dict[str, Any]] = [dict(row) for row in rows]

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    def column(self, key: str) -> list[Any]:
        return [row.get(key) for row in self.rows]

    def best(self, key: str = "test_accuracy") -> dict[str, Any] | None:
        """The row with the largest ``key`` (the earliest among ties), or None if no row has it."""
        rows = [row for row in self.rows if row.get(key) is not None]
        return max(rows, key=lambda row: row[key]) if rows else None

    def without_timings(self) -> list[dict[str, Any]]:
        """The rows without timing columns: what two identical runs must agree on exactly."""
        return [{k: v for k, v in row.items() if not k.endswith(TIMING_SUFFIX)} for row in self.rows]

    # ---- output ----------------------------------------------------------------------------------------
    def columns(self) -> list[str]:
        names: dict[str, None] = {}
        for row in self.rows:
            names.update(dict.fromkeys(row))
        return list(names)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns(), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buffer.getvalue()

    def to_json(self) -> str:
        return json.dumps(self.rows, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls(json.loads(text))

    def save(self, folder: str | Path, *, stem: str = "history") -> tuple[Path, Path]:
        """Write ``<stem>.csv`` and ``<stem>.json`` into ``folder`` (atomically); return their paths."""
        folder = Path(folder)
        csv_path = atomic_write_text(folder / f"{stem}.csv", self.to_csv())
        json_path = atomic_write_text(folder / f"{stem}.json", self.to_json())
        return csv_path, json_path
