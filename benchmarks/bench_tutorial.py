"""The SET tutorial recipe, one training epoch: the SET reference code vs dense PyTorch vs evosparse, side by side.

Recipe (the ECMLPKDD 2019 tutorial's ``set_mlp.py``, on all of Fashion-MNIST): 784-1000-1000-1000-10, epsilon
13, batch 40, ReLU, dropout 0.2, SGD lr 0.05, momentum 0.9, weight decay 2e-4. Each competitor trains one epoch
(60,000 images, 1,500 steps) in a fresh process; the figure is the time of the training steps only (no data
loading, model building, evaluation or rewiring), taken the way each code reports it:

* ``reference``: the tutorial's ``SET_MLP`` (SciPy CSR + its Cython weight-gradient loop, float64, MSE on a
  sigmoid output, as published), driven batch by batch exactly as its ``fit`` does, timed around the batch loop
  (``fit``'s own "Training time"). Needs an interpreter with numpy < 2 and the compiled ``sparseoperations``
  module next to ``set_mlp.py`` (``--reference PYTHON --reference-dir DIR``; the code is
  dcmocanu/sparse-evolutionary-artificial-neural-networks, folder Tutorial-ECMLPKDD-2019-Scalable-Deep-Learning).
* ``dense``: ``evosparse train --model dense`` (``nn.Linear`` layers, the same recipe; threads as the command
  chooses them), ``train_seconds`` of its ``summary.json``.
* ``sparse`` and its variants: ``evosparse train`` with the recipe (SET), ``train_seconds``.

Rounds are interleaved (reference, dense, sparse, ..., then again), so a burst of load from other processes
hits all competitors alike (``sparse-baseline``: the same run from another checkout, ``--baseline-src``, for a
before / after comparison in one run); ``--busy`` starts a ``yes > /dev/null`` process beside every run. Run it in the
benchmark slot:

    /work/bin/bench-slot python benchmarks/bench_tutorial.py --data-dir /work/shared/data \\
        --reference /work/rbm_refvenv/bin/python --reference-dir /tmp/setmlp_ref --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RECIPE = ["--hidden", "1000,1000,1000", "--epsilon", "13", "--batch-size", "40", "--dropout", "0.2",
          "--lr", "0.05", "--momentum", "0.9", "--weight-decay", "0.0002", "--activation", "relu"]  # fmt: skip
# name -> extra flags of `evosparse train` (None: the reference code).
COMPETITORS: dict[str, list[str] | None] = {
    "reference": None,
    "dense": ["--model", "dense"],
    "dense-1-thread": ["--model", "dense", "--threads", "1"],
    "sparse": [],
    "sparse-fused-step": ["--fused-step"],
    "sparse-baseline": [],  # `sparse` run from --baseline-src (e.g. main before a change), same flags
}

# One epoch of the reference's SET_MLP.fit loop (shuffle, then _feed_forward(drop=True) + _back_prop per batch of
# 40), without its evaluation, rewiring and result files; the same settings fit would set.
REFERENCE_SCRIPT = """
import gzip, sys, time, numpy as np
sys.path.insert(0, {folder!r})
import set_mlp as ref

def idx(path):
    raw = gzip.open(path).read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)

x = idx({images!r}).reshape(-1, 784).astype('float64') / 255.0
labels = idx({labels!r})
y = np.zeros((labels.shape[0], 10)); y[np.arange(labels.shape[0]), labels] = 1
np.random.seed(0)
model = ref.SET_MLP((784, 1000, 1000, 1000, 10), (ref.Relu, ref.Relu, ref.Relu, ref.Sigmoid), epsilon=13)
model.loss = ref.MSE(model.activations[model.n_layers])
model.learning_rate, model.momentum, model.weight_decay, model.zeta, model.droprate = 0.05, 0.9, 0.0002, 0.3, 0.2
order = np.arange(x.shape[0]); np.random.shuffle(order); x_, y_ = x[order], y[order]
start = time.perf_counter()
for j in range(x.shape[0] // 40):
    z, a = model._feed_forward(x_[j * 40 : (j + 1) * 40], True)
    model._back_prop(z, a, y_[j * 40 : (j + 1) * 40])
print('TRAIN_SECONDS', time.perf_counter() - start)
"""


def run_reference(args: argparse.Namespace) -> float:
    folder = Path(args.data_dir) / "fashion_mnist"
    script = REFERENCE_SCRIPT.format(
        folder=str(Path(args.reference_dir).resolve()),
        images=str(folder / "train-images-idx3-ubyte.gz"),
        labels=str(folder / "train-labels-idx1-ubyte.gz"),
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}  # the reference is single-threaded
    done = subprocess.run([args.reference, "-c", script], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"reference failed:\n{done.stderr[-2000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("TRAIN_SECONDS"))
    return float(line.split()[1])


def run_ours(args: argparse.Namespace, flags: list[str], source: str | None = None) -> tuple[float, int]:
    env = dict(os.environ)
    if source is not None:  # another checkout's evosparse first on the path
        env["PYTHONPATH"] = os.pathsep.join([source, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "evosparse", "train", "--dataset", "fashion_mnist", "--data-dir",
                   args.data_dir, "--no-download", "--epochs", "1", "--seed", str(args.seed), "--quiet",
                   "--overwrite", "--out-dir", tmp, *RECIPE, *flags]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    return float(summary["train_seconds"]), int(summary.get("threads", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("EVOSPARSE_TEST_DATA", "../shared/data"))
    parser.add_argument("--reference", metavar="PYTHON", help="interpreter able to run the reference code")
    parser.add_argument("--reference-dir", default="", help="folder of set_mlp.py and its compiled sparseoperations")
    parser.add_argument("--baseline-src", help="src/ folder of the evosparse checkout `sparse-baseline` runs")
    parser.add_argument(
        "--competitors",
        default="reference,dense,dense-1-thread,sparse,sparse-fused-step",
        help=f"comma-separated, of {', '.join(COMPETITORS)}",
    )
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds; the median is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--busy", action="store_true", help="a `yes > /dev/null` process runs beside every run")
    args = parser.parse_args()
    names = [n.strip() for n in args.competitors.split(",") if n.strip()]
    unknown = [n for n in names if n not in COMPETITORS]
    if unknown:
        parser.error(f"--competitors: unknown {', '.join(unknown)}; choose from {', '.join(COMPETITORS)}")
    if "reference" in names and not args.reference:
        names.remove("reference")
        print("# no --reference interpreter: the reference code is skipped")
    if "sparse-baseline" in names and not args.baseline_src:
        parser.error("sparse-baseline needs --baseline-src")

    print(f"# load average at start: {' '.join(open('/proc/loadavg').read().split()[:3])}; cores {os.cpu_count()}")
    print(f"# recipe: Fashion-MNIST 784-1000-1000-1000-10, epsilon 13, batch 40, dropout 0.2, 1 epoch; "
          f"{'one busy process beside each run' if args.busy else 'no competing process'}")  # fmt: skip
    for name in names:  # untimed: numba caches compiled / loaded, data files read once
        if COMPETITORS[name] is not None:
            run_ours(args, COMPETITORS[name], args.baseline_src if name == "sparse-baseline" else None)
    times: dict[str, list[float]] = {n: [] for n in names}
    threads: dict[str, int] = {}
    for round_ in range(args.repeats):
        for name in names:
            competitor = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if args.busy else None
            try:
                if COMPETITORS[name] is None:
                    seconds = run_reference(args)
                else:
                    source = args.baseline_src if name == "sparse-baseline" else None
                    seconds, threads[name] = run_ours(args, COMPETITORS[name], source)
            finally:
                if competitor is not None:
                    competitor.kill()
                    competitor.wait()
            times[name].append(seconds)
            print(f"#   round {round_ + 1} {name}: {seconds:.2f} s", flush=True)
    median = {n: statistics.median(t) for n, t in times.items()}
    print(f"{'competitor':<20} {'train s (median)':>16} {'runs':>22} {'threads':>7} {'vs reference':>12} "
          f"{'vs best dense':>13} {'vs reference, per round':>24}")  # fmt: skip
    best_dense = min((median[n] for n in ("dense", "dense-1-thread") if n in median), default=None)
    for name in names:
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        ref = f"{median['reference'] / median[name]:.2f}x" if "reference" in median else "-"
        dense = f"{best_dense / median[name]:.2f}x" if best_dense else "-"
        used = "1" if name == "reference" else str(threads.get(name, "?"))
        paired = "-"
        if "reference" in times and name != "reference":
            # each round's reference time over this competitor's, from the same minutes: a slow spell of the
            # machine (this VM has them, 1.4x for a minute or two) then tilts one round, not the medians' ratio
            ratios = [r / t for r, t in zip(times["reference"], times[name])]
            paired = f"{statistics.median(ratios):.2f}x (" + ", ".join(f"{r:.1f}" for r in ratios) + ")"
        print(f"{name:<20} {median[name]:>16.2f} {runs:>22} {used:>7} {ref:>12} {dense:>13} {paired:>24}")
    print(f"# load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
