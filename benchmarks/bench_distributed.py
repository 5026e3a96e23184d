"""Data-parallel training (``evosparse train --distributed``): communication volume, step times, projected speed-up.

Two parts (BENCHMARKS.md, section 16):

``volume``: for a few real SET-MLPs, the bytes one step all-reduces (every gradient the optimizer uses: the
sparse values, nnz per layer, and the biases, plus the loss and the hit count, in float32: exactly what
:meth:`evosparse.train.distributed.Replicas.all_reduce_gradients` sends) against the dense twin's parameter
count x 4, and RigL's extra all-gather per topology update; then the measured single-worker step time at
the global batch B and at the per-worker batches B/p, and the speed-up they imply for p = 2..64 workers
under the stated model::

    T(p) = compute(p) + 2 (p - 1) / p * bytes / bandwidth + 2 (p - 1) * latency     (ring all-reduce)
    speed-up(p) = T(1) / T(p)

with compute(p) either the ideal ``T(1) / p`` or the measured step time at batch ``ceil(B / p)`` (small
batches use the cores less well). Step times come from the real :class:`Trainer` on random data of the
model's shape (one process, ``--threads``), after warm-up steps: the median step.

``workers``: the same run (Fashion-MNIST, the SET tutorial's 784-1000-1000-1000-10 at epsilon 13, batch
40) through the real ``evosparse train`` command: one process with 2 threads, one with 1 thread, and
``--distributed 2`` (two workers of one thread: this machine has 2 cores). Figures are the runs'
``summary.json``: training seconds per step, and for the distributed run the measured bytes and seconds
of its all-reduces.

    /work/bin/bench-slot python benchmarks/bench_distributed.py volume
    /work/bin/bench-slot python benchmarks/bench_distributed.py workers --data-dir /work/shared/data
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name -> (layer sizes, epsilon, global batch). The SET tutorial's MLP at its two densities, and one wide layer.
MODELS = {
    "set-eps13": ((784, 1000, 1000, 1000, 10), 13.0, 100),
    "set-eps20": ((784, 1000, 1000, 1000, 10), 20.0, 100),
    "wide-100k": ((784, 100_000, 10), 20.0, 100),
}
WORKERS = (1, 2, 4, 8, 16, 32, 64)
# (name, bytes per second, latency per ring step): the stated network model. Latencies are typical
# figures (TCP over 10 Gb/s Ethernet; an RDMA-class 100 Gb/s fabric), assumptions, not measurements.
NETWORKS = (("10 Gb/s", 10e9 / 8, 50e-6), ("100 Gb/s", 100e9 / 8, 10e-6))


def step_seconds(config, n_features: int, n_classes: int, batch: int, steps: int, seed: int = 0) -> float:
    """Median seconds of one training step (forward, backward, optimizer) of ``config``'s model at ``batch``.

    The median, not the mean: on a shared machine a step now and then waits for a descheduled thread.
    """
    import statistics

    import torch

    from evosparse.train import Callback, Trainer, build_model, build_optimizer

    class StepClock(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times = [time.perf_counter()]

        def _on_step_end(self) -> bool:
            self.times.append(time.perf_counter())
            return True

    model = build_model(config, n_features, n_classes)
    generator = torch.Generator().manual_seed(seed)
    n = batch * steps
    x = torch.randn(n, n_features, generator=generator)
    y = torch.randint(0, n_classes, (n,), generator=generator)
    warm = Trainer(model, build_optimizer(config, model), x[: 3 * batch], y[: 3 * batch], epochs=1, batch_size=batch)
    warm.fit()  # compiled kernels loaded, caches warm
    clock = StepClock()
    Trainer(model, build_optimizer(config, model), x, y, epochs=1, batch_size=batch, callbacks=[clock]).fit()
    return statistics.median(b - a for a, b in zip(clock.times, clock.times[1:]))


def ring_seconds(n_bytes: float, p: int, bandwidth: float, latency: float) -> float:
    """Ring all-reduce of ``n_bytes`` over ``p`` workers: 2 (p - 1) steps of n/p bytes each."""
    return 0.0 if p == 1 else 2 * (p - 1) / p * n_bytes / bandwidth + 2 * (p - 1) * latency


def volume(args: argparse.Namespace) -> None:
    import torch

    from evosparse.train import TrainConfig, build_model
    from evosparse.train.run import set_threads

    set_threads(args.threads)
    print(f"# threads {torch.get_num_threads()}; cores {os.cpu_count()}; load {os.getloadavg()[0]:.2f}")
    for name in args.models.split(","):
        sizes, epsilon, batch = MODELS[name]
        config = TrainConfig.from_dict(
            dict(hidden=sizes[1:-1], epsilon=epsilon, batch_size=batch, activation="allrelu", dropout=0.3, lr=0.01)
        )
        model = build_model(config, sizes[0], sizes[-1])
        n_parameters = sum(p.numel() for p in model.parameters())
        nnz = sum(layer.nnz for layer in model.sparse_layers())
        biases = n_parameters - nnz
        dense = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        sparse_bytes, dense_bytes = 4 * (n_parameters + 2), 4 * dense
        gather = 4 * batch * sum(a + b for a, b in zip(sizes[:-1], sizes[1:]))
        print(f"\n## {name}: {'-'.join(map(str, sizes))}, epsilon {epsilon:g}, global batch {batch}")
        print(
            f"nnz {nnz:,} + biases {biases:,} (+2: loss, hits) -> all-reduce {sparse_bytes:,} B/step "
            f"({sparse_bytes / 2**20:.2f} MiB); dense twin {dense:,} parameters -> {dense_bytes:,} B "
            f"({dense_bytes / 2**20:.1f} MiB): {dense_bytes / sparse_bytes:.1f}x more"
        )
        scores = 4 * (dense - sum(sizes[1:]))
        print(f"RigL update: all-gather of x and dL/dy {gather:,} B (a dense score matrix: {scores:,} B)")
        per_worker = {}
        for p in WORKERS:
            local = math.ceil(batch / p)
            if local not in per_worker:
                per_worker[local] = step_seconds(config, sizes[0], sizes[-1], local, args.steps)
        t1 = per_worker[batch]
        print(
            f"measured step (1 worker, batch {batch}): {1000 * t1:.2f} ms; at batch B/p: "
            + ", ".join(f"{b}: {1000 * s:.2f} ms" for b, s in sorted(per_worker.items(), reverse=True))
        )
        header = f"{'p':>3} {'B/p':>4}"
        for network, _, _ in NETWORKS:
            header += f" | {network}: comm sparse ms  dense ms  speed-up ideal  measured-B/p"
        print(header)
        for p in WORKERS:
            local = math.ceil(batch / p)
            row = f"{p:>3} {local:>4}"
            for _, bandwidth, latency in NETWORKS:
                comm = ring_seconds(sparse_bytes, p, bandwidth, latency)
                ideal = t1 / (t1 / p + comm)
                measured = t1 / (per_worker[local] + comm)
                dense_comm = ring_seconds(dense_bytes, p, bandwidth, latency)
                row += f" | {1000 * comm:>17.3f} {1000 * dense_comm:>9.2f} {ideal:>14.1f}x {measured:>12.1f}x"
            print(row)


def workers(args: argparse.Namespace) -> None:
    recipe = [
        "--dataset", "fashion_mnist", "--hidden", "1000,1000,1000", "--epsilon", "13", "--batch-size", "40",
        "--activation", "allrelu", "--dropout", "0.3", "--lr", "0.01", "--epochs", str(args.epochs), "--quiet",
    ]  # fmt: skip
    if args.data_dir:
        recipe += ["--data-dir", args.data_dir, "--no-download"]
    runs = [("1 process, 2 threads", ["--threads", "2"]), ("1 process, 1 thread", ["--threads", "1"])]
    runs.append(("--distributed 2 (1 thread each)", ["--distributed", "2", "--threads", "1"]))
    print(f"# cores {os.cpu_count()}; load at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# recipe: Fashion-MNIST 784-1000-1000-1000-10, epsilon 13, batch 40, {args.epochs} epoch(s)")
    print(
        f"{'run':<32} {'train s':>8} {'ms/step':>8} {'test acc':>9} {'allreduce B/step':>17} {'allreduce ms/step':>18}"
    )
    with tempfile.TemporaryDirectory() as root:
        for label, flags in runs:
            out = Path(root) / str(len(label))
            command = [sys.executable, "-m", "evosparse", "train", *recipe, *flags, "--out-dir", str(out)]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            summary = json.loads((out / "summary.json").read_text())
            history = json.loads((out / "history.json").read_text())
            steps = history[-1]["step"] if isinstance(history, list) else history["rows"][-1]["step"]
            seconds = summary["train_seconds"]
            reduced = summary.get("allreduce_bytes_per_step")
            reduce_ms = 1000 * summary["allreduce_seconds"] / steps if "allreduce_seconds" in summary else None
            print(
                f"{label:<32} {seconds:>8.2f} {1000 * seconds / steps:>8.2f} "
                f"{100 * summary['final_test_accuracy']:>8.2f}% {'-' if reduced is None else f'{reduced:,}':>17} "
                f"{'-' if reduce_ms is None else f'{reduce_ms:.2f}':>18}"
            )
    print(f"# load at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = parser.add_subparsers(dest="part", required=True)
    one = parts.add_parser("volume", help="bytes per step, single-worker step times, projected speed-up")
    one.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    one.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of the single worker [all cores]")
    one.add_argument("--steps", type=int, default=40, help="timed steps per batch size [40]")
    one.set_defaults(run=volume)
    two = parts.add_parser("workers", help="1 process against --distributed 2 on this machine, real runs")
    two.add_argument("--data-dir", help="folder of the Fashion-MNIST files")
    two.add_argument("--epochs", type=int, default=1, help="epochs per run [1]")
    two.set_defaults(run=workers)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
