"""Sparse kernels (forward, dX, dW) against dense GEMM, torch.sparse, scipy.sparse and SparseLab.

A thin wrapper of :func:`evosparse.bench.kernels.run_kernel_benchmark` (also ``evosparse bench``).

Run (the recorded results in BENCHMARKS.md, section 1):
    python benchmarks/bench_kernels.py --threads 1,2 --repeats 7 --huge
    python benchmarks/bench_kernels.py --quick          # one small size, one round: a smoke test
"""

from __future__ import annotations

import argparse
import json

from evosparse.bench.kernels import DEFAULT_SIZES, HUGE_SIZE, run_kernel_benchmark


def parse_threads(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated thread counts such as 1,2, got {text!r}") from None
    if any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1, got {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small size, one round (a smoke test)")
    parser.add_argument("--threads", type=parse_threads, default=(1, 2), help="thread counts, e.g. 1,2 (default)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per measurement; the median is kept")
    parser.add_argument("--huge", action="store_true", help="add the 1,000,000 x 1,000,000 layer (20M connections)")
    parser.add_argument("--cold", action="store_true", help="time each call right after the other implementations")
    parser.add_argument("--json", metavar="FILE", help="also write every measurement to FILE as JSON")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    sizes = (*DEFAULT_SIZES, HUGE_SIZE) if args.huge else DEFAULT_SIZES
    results = run_kernel_benchmark(
        sizes=sizes, threads=args.threads, repeats=args.repeats, quick=args.quick, warm=not args.cold
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
