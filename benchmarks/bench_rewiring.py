"""Seconds and peak memory of SET updates of a wide row-blocked model: rewired in its own order, or through CSR order.

The issue's target is <= 2 s per topology update on the one-million-neuron shape of Liu et al. 2021
(3312-600000x3-5, epsilon 17, 54M connections, the row-blocked layout `evosparse train` gives it at batch 2).
A SET update of a row-blocked layer used to convert the layer to CSR order (indices, weights and SGD momentum),
rewire, and convert back; now it rewires in blocks (`DropAndGrow.update_stored_layer`). This script times both
side by side, each in a fresh process (a process's first update pays first touches of fresh memory, which on a
VM whose balloon reports freed pages to the host cost 2-9 ms per MB: BENCHMARKS.md section 3), alternating the
two paths round by round, with ``--sleep`` seconds between updates as an epoch of training would space them.

    python benchmarks/bench_rewiring.py                          # the Liu shape, 3 rounds of 3 updates (~5 min)
    python benchmarks/bench_rewiring.py --width 60000 --rounds 1 # a tenth of it
    python benchmarks/bench_rewiring.py --busy                   # with one competing busy process

"through-csr" is the conversion path every strategy still takes when its result depends on CSR order (RigL's
gradient growth, custom criteria, equal weights straddling SET's threshold).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

PATHS = ("in-blocks", "through-csr")


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from evosparse.nn import SparseMLP
    from evosparse.sparse import warm_up
    from evosparse.topology import SET
    from evosparse.topology.criteria import DROP_CRITERIA

    warm_up()
    torch.manual_seed(0)
    start = time.perf_counter()
    width = args.width
    model = SparseMLP([3312, width, width, width, 5], epsilon=args.epsilon, block_rows=0, seed=1)
    build = time.perf_counter() - start
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(2)
    for parameter in model.parameters():  # momentum as after training: every tensor exists and is filled
        optimizer.state[parameter]["momentum_buffer"] = torch.randn(parameter.shape, generator=generator) * 1e-3
    strategy = SET(0.3, seed=3)
    if args.child == "through-csr":  # the same rule given as a function: DropAndGrow then converts every layer
        strategy.drop = DROP_CRITERIA["set"]
    seconds = []
    for update in range(args.updates):
        time.sleep(args.sleep)
        start = time.perf_counter()
        strategy.on_epoch_end(model, optimizer, update)
        seconds.append(time.perf_counter() - start)
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    digest = float(sum(float(layer.values.double().sum()) for layer in model.sparse_layers()))
    cols = [np.asarray(layer.pattern.cols[:1000]).tolist() for layer in model.sparse_layers()]
    print(
        json.dumps({"build": build, "seconds": seconds, "peak_gib": peak_kib / 2**20, "digest": digest, "cols": cols})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=600_000, help="neurons of each of the three hidden layers")
    parser.add_argument("--epsilon", type=float, default=17.0, help="Erdos-Renyi epsilon (Liu et al.: 17)")
    parser.add_argument("--updates", type=int, default=3, help="SET updates per process")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per path, alternated")
    parser.add_argument("--sleep", type=float, default=10.0, help="seconds before each update (an epoch's spacing)")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of {', '.join(PATHS)}")
    parser.add_argument("--busy", action="store_true", help="one competing busy process (`yes`) throughout")
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    paths = args.paths.split(",")
    if not paths or any(path not in PATHS for path in paths):
        parser.error(f"--paths must be a comma-separated list of {', '.join(PATHS)}, got {args.paths!r}")
    busy = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if args.busy else None
    results: dict[str, list[dict]] = {path: [] for path in paths}
    try:
        for round_ in range(args.rounds):
            for path in paths:
                command = [sys.executable, __file__, "--child", path, "--width", str(args.width)]
                command += ["--epsilon", str(args.epsilon), "--updates", str(args.updates), "--sleep", str(args.sleep)]
                line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()
                result = json.loads(line[-1])
                results[path].append(result)
                updates = ", ".join(f"{s:.2f}" for s in result["seconds"])
                print(
                    f"round {round_ + 1} {path:12s} build {result['build']:6.2f} s  updates {updates} s  "
                    f"peak {result['peak_gib']:.2f} GiB",
                    flush=True,
                )
    finally:
        if busy is not None:
            busy.kill()
    print(f"\n3312-{args.width}x3-5, epsilon {args.epsilon}, SET zeta 0.3, {'busy' if args.busy else 'quiet'}:")
    for path, runs in results.items():
        first = [run["seconds"][0] for run in runs]
        later = [s for run in runs for s in run["seconds"][1:]]
        peak = max(run["peak_gib"] for run in runs)
        later_text = f"later updates median {statistics.median(later):.2f} s (max {max(later):.2f})" if later else ""
        print(f"  {path:12s} first update median {statistics.median(first):.2f} s; {later_text}; peak {peak:.2f} GiB")
    if len(paths) == 2:
        same = all(
            a["digest"] == b["digest"] and a["cols"] == b["cols"] for a, b in zip(*results.values(), strict=False)
        )
        print(f"  same weights and connections on both paths: {same}")


if __name__ == "__main__":
    main()
