"""Threading choices of a training run, on a quiet machine and with one competing busy process.

The SET tutorial recipe (Fashion-MNIST, 784-1000-1000-1000-10, epsilon 13, batch 40, 2 epochs) runs
through the real ``evosparse train`` command once per *choice* (thread count, OpenMP wait policy,
Numba threading layer, parallel chunk size, torch's own thread count), each in a fresh process because
the wait policy and the threading layer are fixed when the OpenMP runtimes start. Every choice runs twice:
alone, and while a ``yes > /dev/null`` process this script starts keeps one of the two cores busy. The
table gives the training seconds (``train_seconds`` of ``summary.json``: the epochs' training steps,
without evaluation or start-up), busy / quiet, and the largest "other load" of the choice's runs: the
cores' worth of CPU that processes other than the run and its competitor used meanwhile (near 0 on a
quiet machine; a row with a high figure was disturbed and should be repeated).

Why there is something to choose: torch and Numba each load their own copy of GNU OpenMP (two thread
pools), and by default an idle OpenMP worker spins for ~3 ms (GOMP_SPINCOUNT 300000) after each parallel
region before it sleeps. A batch-40 step is shorter than that, so the workers of both pools spin all
the time; a competing process then gets scheduled against them and a parallel region waits for a
descheduled worker (BENCHMARKS.md, section 1).

``--recipe liu --data lung_like.npz``: the one-million-neuron recipe instead (3312-600000x3-5, batch 2), whose
row-blocked kernels take their tasks from a shared counter. Choice ``oversubscribed`` runs twice as many threads
as cores (Numba's pool and ``--threads``), which a shared counter makes possible without threads waiting for
each other; tried as the default and dropped (BENCHMARKS.md section 3, fifteenth session).

Run it in the benchmark slot (each choice: ~10 s quiet, up to ~30 s busy):

    /work/bin/bench-slot python benchmarks/bench_threads.py --data-dir /work/shared/data
    /work/bin/bench-slot python benchmarks/bench_threads.py --choices passive,threads-1 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name -> (environment set for the child process, in-process settings of the child, what it is).
# "today" pins libgomp's default spin (300000 iterations, ~3 ms) so that it stays the pre-change
# behaviour whatever evosparse's own default becomes (evosparse leaves an explicit GOMP_SPINCOUNT alone).
CHOICES: dict[str, tuple[dict[str, str], dict[str, int], str]] = {
    "today": ({"GOMP_SPINCOUNT": "300000"}, {}, "OpenMP layer, libgomp default spin (~3 ms), 2 threads"),
    "threads-1": ({"GOMP_SPINCOUNT": "300000"}, {"threads": 1}, "one thread (torch and kernels)"),
    "passive": ({"OMP_WAIT_POLICY": "passive"}, {}, "OMP_WAIT_POLICY=passive (no spin), 2 threads"),
    "spin-10k": ({"GOMP_SPINCOUNT": "10000"}, {}, "GOMP_SPINCOUNT=10000 (~0.1 ms spin), 2 threads"),
    "spin-1k": ({"GOMP_SPINCOUNT": "1000"}, {}, "GOMP_SPINCOUNT=1000 (~10 us spin), 2 threads"),
    "workqueue": (
        {"NUMBA_THREADING_LAYER": "workqueue", "GOMP_SPINCOUNT": "300000"},
        {},
        "Numba workqueue layer (torch: default OpenMP), 2 threads",
    ),
    "workqueue-passive": (
        {"NUMBA_THREADING_LAYER": "workqueue", "OMP_WAIT_POLICY": "passive"},
        {},
        "Numba workqueue layer, torch OpenMP passive, 2 threads",
    ),
    "tbb": (
        {"NUMBA_THREADING_LAYER": "tbb", "OMP_WAIT_POLICY": "passive"},
        {},
        "Numba TBB layer (pip install tbb), torch OpenMP passive, 2 threads",
    ),
    "passive-torch-1": (
        {"OMP_WAIT_POLICY": "passive"},
        {"torch_threads": 1},
        "passive; torch 1 thread, kernels 2 threads",
    ),
    "passive-chunk-8": (
        {"OMP_WAIT_POLICY": "passive"},
        {"chunksize": 8},
        "passive; numba.set_parallel_chunksize(8) (rows handed out 8 at a time)",
    ),
    "oversubscribed": (
        {"NUMBA_NUM_THREADS": str(2 * (os.cpu_count() or 1))},
        {"threads": 2 * (os.cpu_count() or 1)},
        "twice as many threads as cores (Numba's pool and --threads), torch too",
    ),
    "omp-passive": (
        {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "passive"},
        {},
        "Numba OpenMP layer, OMP_WAIT_POLICY=passive (evosparse's layer and wait policy, set explicitly)",
    ),
    "threads-all": ({}, {"threads": os.cpu_count() or 1}, "every core, fixed (--threads: no tuning)"),
    "default": ({}, {}, "evosparse's default (whatever this checkout does with no setting)"),
}
# Environment variables that change the choice: removed from the child's environment before the choice's own.
CONTROLS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_THREADING_LAYER", "NUMBA_NUM_THREADS", "EVOSPARSE_THREADS")


def train_argv(args: argparse.Namespace, out_dir: str) -> list[str]:
    if args.recipe == "liu":
        return [
            "train", "--data", args.data, "--hidden", "600000,600000,600000", "--epsilon", "17",
            "--batch-size", str(args.batch_size or 2),
            "--lr", "0.01", "--fused-step", "--epochs", str(args.epochs), "--quiet", "--overwrite",
            "--out-dir", out_dir,
        ]  # fmt: skip
    return [
        "train",
        "--dataset",
        "fashion_mnist",
        "--data-dir",
        args.data_dir,
        "--hidden",
        "1000,1000,1000",
        "--epsilon",
        "13",
        "--batch-size",
        str(args.batch_size or 40),
        "--epochs",
        str(args.epochs),
        "--quiet",
        "--no-download",
        "--overwrite",
        "--out-dir",
        out_dir,
    ]


def child(name: str, argv: list[str]) -> int:
    """Apply the choice's in-process settings, then run ``evosparse train`` exactly as the command does."""
    settings = CHOICES[name][1]
    if "tbb" in name:  # the pip wheel puts libtbb.so.12 in <venv>/lib, which the loader does not search
        import ctypes

        ctypes.CDLL(str(Path(sys.prefix) / "lib" / "libtbb.so.12"), mode=ctypes.RTLD_GLOBAL)
    if "chunksize" in settings:
        import numba

        numba.set_parallel_chunksize(settings["chunksize"])
    if "threads" in settings:
        argv = [*argv, "--threads", str(settings["threads"])]
    if "torch_threads" in settings:
        import torch

        # evosparse sets torch's threads only when --threads is given: patch its setter to keep torch at 1.
        import evosparse.train.run as run

        torch.set_num_threads(settings["torch_threads"])
        original = run.set_threads

        def kernels_only(threads: int | None) -> None:
            original(threads)
            torch.set_num_threads(settings["torch_threads"])

        run.set_threads = kernels_only
    from evosparse.cli.main import main

    code = main(argv)
    import numba

    print(f"numba threading layer: {numba.threading_layer()}", file=sys.stderr)
    return code


def busy_seconds() -> float:
    """CPU seconds all processes have used since boot (user + nice + system + irq + softirq, /proc/stat)."""
    fields = open("/proc/stat").readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_choice(args: argparse.Namespace, name: str, busy: bool) -> tuple[float, float, float, str]:
    """(training seconds, wall seconds, other load, threads) of one run of ``name``, with or without a competing
    process; threads: ``threads=steps`` per count when the run tuned its kernels' count, else the count.

    Other load: cores' worth of CPU time that processes other than this benchmark's children (the run and
    its competitor) used during the run: the machine is shared, so a row taken while it was not quiet
    says so.
    """
    env = {key: value for key, value in os.environ.items() if key not in CONTROLS}
    env.update(CHOICES[name][0])
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, __file__, "--child", name, "--", *train_argv(args, tmp)]
        before = (busy_seconds(), children_seconds())
        competitor = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if busy else None
        try:
            start = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
        other = (busy_seconds() - before[0] - (children_seconds() - before[1])) / wall
        if done.returncode != 0:
            raise SystemExit(f"choice {name} failed:\n{done.stderr[-2000:]}")
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    steps = summary.get("thread_steps")
    threads = " ".join(f"{k}t={v}" for k, v in steps.items()) if steps else f"{summary.get('threads')}t"
    return float(summary["train_seconds"]), wall, max(other, 0.0), threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("EVOSPARSE_TEST_DATA", "../shared/data"))
    parser.add_argument("--choices", default=",".join(CHOICES), help=f"comma-separated, of {', '.join(CHOICES)}")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--recipe",
        choices=("tutorial", "liu"),
        default="tutorial",
        help="tutorial: the SET recipe above; liu: the one-million-neuron recipe (3 x 600,000 hidden, epsilon 17, "
        "batch 2, fused step) on --data (an .npz of lung's shape: 3312 features, 5 classes; ~1 min per run)",
    )
    parser.add_argument("--data", help="with --recipe liu: the data file")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="instead of the recipe's (40 or 2); at 100 the tutorial model starts on 2 threads",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each (choice, condition); median kept")
    parser.add_argument("--conditions", default="quiet,busy", help="quiet, busy or both (comma-separated)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        sys.exit(child(args.child, [a for a in rest if a != "--"]))
    names = [name.strip() for name in args.choices.split(",") if name.strip()]
    unknown = [name for name in names if name not in CHOICES]
    if unknown:
        parser.error(f"--choices: unknown {', '.join(unknown)}; choose from {', '.join(CHOICES)}")
    conditions = [c.strip() for c in args.conditions.split(",")]
    if any(c not in ("quiet", "busy") for c in conditions):
        parser.error(f"--conditions must be quiet and/or busy, got {args.conditions}")

    print(f"# load average at start: {' '.join(open('/proc/loadavg').read().split()[:3])}; cores {os.cpu_count()}")
    if args.recipe == "liu":
        if not args.data:
            parser.error("--recipe liu needs --data FILE (e.g. lung_like.npz)")
        batch = args.batch_size or 2
        print(f"# recipe: {args.data}, 3312-600000x3-5, epsilon 17, batch {batch}, fused step, {args.epochs} epochs")
    else:
        batch = args.batch_size or 40
        print(f"# recipe: Fashion-MNIST 784-1000-1000-1000-10, epsilon 13, batch {batch}, {args.epochs} epochs")
    run_choice(args, names[0], busy=False)  # compile / load the kernel cache and warm the file cache: untimed
    header = f"{'choice':<18} " + " ".join(f"{c + ' train s':>14}" for c in conditions)
    header += f" {'busy/quiet':>10}" if len(conditions) == 2 else ""
    print(f"{header}  {'other load':>10}  what", flush=True)
    for name in names:
        medians, others = {}, []
        for condition in conditions:
            runs = [run_choice(args, name, condition == "busy") for _ in range(args.repeats)]
            medians[condition] = statistics.median(run[0] for run in runs)
            others += [run[2] for run in runs]
            if args.repeats > 1:
                print(f"#   {name} {condition}: " + ", ".join(f"{run[0]:.2f} ({run[3]})" for run in runs), flush=True)
        row = f"{name:<18} " + " ".join(f"{medians[c]:>14.2f}" for c in conditions)
        if len(conditions) == 2:
            row += f" {medians['busy'] / medians['quiet']:>9.2f}x"
        print(f"{row}  {max(others):>10.2f}  {CHOICES[name][2]}", flush=True)
    print(f"# load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
