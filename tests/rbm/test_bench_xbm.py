"""The XBM benchmark's plan (benchmarks/bench_rbm.py xbm): every model starts with the dense RBM's weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from evosparse.rbm import make_pattern

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_rbm.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_rbm", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_gives_equal_weight_counts(bench):
    plan = bench.xbm_plan(784, 100, [4, 2], ["xbm", "fixprob", "set"], extra_dense=[400])
    assert [entry["name"] for entry in plan] == ["dense-h100", "xbm-h400", "fixprob-h400", "set-h400", "xbm-h200",
                                                 "fixprob-h200", "set-h200", "dense-h400"]  # fmt: skip
    for entry in plan:
        # The pattern each run builds (as RBMRun does: make_pattern with the entry's epsilon, the image grid).
        pattern = make_pattern(entry["topology"], 784, entry["hidden"], epsilon=entry["epsilon"],
                               visible_shape=(28, 28), rng=0)  # fmt: skip
        assert pattern.nnz == entry["budget"], entry["name"]
        expected = 784 * 400 if entry["name"] == "dense-h400" else 784 * 100
        assert entry["budget"] == expected
    with pytest.raises(ValueError, match="widths must be > 1"):
        bench.xbm_plan(784, 100, [1], ["xbm"])
