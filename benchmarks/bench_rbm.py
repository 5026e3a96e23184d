"""Sparse RBMs on COIL20, the SET-RBM reference setting: quality of SET / FixProb / dense, and time per epoch.

The reference setting (Mocanu et al. 2018, code SET-RBM-Sparse-Python-Data-Structures): 200 hidden units,
epsilon 10, zeta 0.3, CD-1 (its "Markov chain of length 2"), lr 0.1, weight decay 2e-7, batch 10, 1000
epochs; its result files end at test reconstruction error 0.01359 (SET-RBM) and 0.02663 (FixProb).

Two parts:

* ``table RUN_DIR...``: the runs of ``evosparse rbm train`` (one per topology, the reference setting) side by
  side: final / best test reconstruction error, connections, seconds per epoch, against the reference.
  Made by (nice'd, in the background, outside the tree)::

      evosparse rbm train --topology set --epochs 1000 --threads 1 --out-dir /work/rbm_runs/coil20/set
      (and fixprob, dense)
      python benchmarks/bench_rbm.py table /work/rbm_runs/coil20/{set,fixprob,dense}

* ``speed``: seconds per training epoch (960 COIL20 images, batch 10) of evosparse's SET-RBM (CD pass +
  rewiring), FixProb and dense RBMs against scikit-learn's ``BernoulliRBM`` (dense, CD-1 = PCD with one
  step, 200 components) at the same threads; ``--reference PYTHON`` also times the reference code run by
  another interpreter (it needs numpy < 2 and its Cython module)::

      /work/bin/bench-slot python benchmarks/bench_rbm.py speed --epochs 5 --threads 1,2

* ``compile``: what the first run on a machine waits for. Each line is a fresh process with an empty Numba
  cache (``NUMBA_CACHE_DIR`` in a temporary folder): one COIL20-sized epoch on the step-by-step path (the
  sparse kernels it shares with the rest of the library), then one on the fused path (what the fused pass
  adds), then the same two in a second process on the now-filled cache::

      /work/bin/bench-slot python benchmarks/bench_rbm.py compile

* ``xbm run --out-dir DIR`` / ``xbm table --out-dir DIR``: the XBM claim (Mocanu et al., Machine Learning
  2016): at a fixed number of weights, sparse RBMs with more hidden units (XBM, SET-RBM, FixProb) against the
  dense RBM, by AIS test log-likelihood on binarised MNIST. Every model of the plan (:func:`xbm_plan`) has
  exactly the dense RBM's ``n_visible x dense_hidden`` weights at the start; each is an ``evosparse rbm train``
  run folder under DIR (exact resume: an interrupted ``xbm run`` continues where it stopped)::

      nice -n 19 python benchmarks/bench_rbm.py xbm run --out-dir /work/rbm_runs/xbm
      python benchmarks/bench_rbm.py xbm table --out-dir /work/rbm_runs/xbm

  ``xbm ais --out-dir DIR --models dense-h100,xbm-h400 [--ais-betas 10000 --seed 1]`` re-estimates the
  log-likelihood of finished models with an independent AIS (the table then lists both).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REFERENCE_RESULT = {"set": 0.01359, "fixprob": 0.02663}  # last line of Results/set_rbm.txt, rbm_fixprob.txt
SETTING = {"hidden": 200, "epsilon": 10.0, "zeta": 0.3, "cd_steps": 1, "lr": 0.1, "weight_decay": 2e-7,
           "batch_size": 10}  # fmt: skip


REFERENCE_FILES = {"set": "set_rbm.txt", "fixprob": "rbm_fixprob.txt"}  # the reference's Results/ folder


def _reference_curve(folder: str | None, topology: str) -> np.ndarray | None:
    """Test reconstruction error per epoch of the reference's result file (column 2), if the folder is given."""
    if folder is None or topology not in REFERENCE_FILES:
        return None
    return np.loadtxt(Path(folder) / REFERENCE_FILES[topology])[:, 1]


def command_table(args: argparse.Namespace) -> None:
    from evosparse.rbm import load_run

    print(
        "| topology | epoch | connections | test reconstruction error | reference, same epoch | reference, epoch 1000 |"
    )
    print("|---|---|---|---|---|---|")
    for folder in map(Path, args.runs):
        config, rbm, state = load_run(folder)
        history = state["history"]
        curve = _reference_curve(args.reference_results, config.topology)
        final = REFERENCE_RESULT.get(config.topology, "-")
        for epoch in [*[e for e in args.at if e < len(history)], len(history)]:
            row = history[epoch - 1]
            reference = f"{curve[epoch - 1]:.5f}" if curve is not None else "-"
            print(f"| {config.topology} | {epoch} | {row['nnz']:,} | {row['test_reconstruction_error']:.5f} | "
                  f"{reference} | {final} |")  # fmt: skip


def _coil20(data_dir: str):
    from evosparse.data import load_dataset

    return load_dataset("coil20", data_dir=data_dir, download=False)


def _time_evosparse(topology: str, x: np.ndarray, epochs: int, seed: int, *, fused: bool = True) -> list[float]:
    """Seconds per epoch; ``fused=False`` times the step-by-step numpy path the fused CD pass replaced."""
    from evosparse.rbm import RBM, ContrastiveDivergence, evolve, make_pattern

    pattern = make_pattern(topology, x.shape[1], SETTING["hidden"], epsilon=SETTING["epsilon"],
                           visible_shape=(32, 32), rng=seed)  # fmt: skip
    rbm = RBM(x.shape[1], SETTING["hidden"], pattern=pattern, seed=seed)
    learner = ContrastiveDivergence(lr=SETTING["lr"], k=SETTING["cd_steps"], weight_decay=SETTING["weight_decay"],
                                    seed=seed, fused=fused)  # fmt: skip
    rng = np.random.default_rng(seed)
    learner.epoch(rbm, x[:100], batch_size=SETTING["batch_size"], rng=rng)  # warm-up: kernels loaded, caches hot
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        learner.epoch(rbm, x, batch_size=SETTING["batch_size"], rng=rng)
        if topology == "set":
            learner.remap(evolve(rbm, zeta=SETTING["zeta"], rng=rng))
        times.append(time.perf_counter() - start)
    return times


def _time_sklearn(x: np.ndarray, epochs: int, seed: int) -> list[float]:
    """``BernoulliRBM.fit`` with ``n_iter=1``: one shuffled pass of CD-1 (PCD) updates; the input checks and the
    initial weights it redoes each call cost well under 1% of the pass."""
    from sklearn.neural_network import BernoulliRBM

    model = BernoulliRBM(n_components=SETTING["hidden"], learning_rate=SETTING["lr"],
                         batch_size=SETTING["batch_size"], n_iter=1, random_state=seed)  # fmt: skip
    model.fit(x[:100])  # warm-up
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(x)
        times.append(time.perf_counter() - start)
    return times


def command_speed(args: argparse.Namespace) -> None:
    from threadpoolctl import threadpool_limits

    from evosparse.sparse import set_num_threads

    dataset = _coil20(args.data_dir)
    x = np.ascontiguousarray(dataset.x_train, dtype=np.float32)
    x64 = x.astype(np.float64)  # scikit-learn computes in float64 for float64 input; give it what it prefers
    results = {}
    for threads in args.threads:
        set_num_threads(threads)
        with threadpool_limits(threads):
            for name in ("set", "fixprob", "dense"):
                results[(name, threads)] = _time_evosparse(name, x, args.epochs, args.seed)
            results[("set, step-by-step CD (fused=False)", threads)] = _time_evosparse(
                "set", x, args.epochs, args.seed, fused=False
            )
            results[("sklearn BernoulliRBM", threads)] = _time_sklearn(x64, args.epochs, args.seed)
    if args.reference:
        total, cd_only = _time_reference(args)
        results[("reference SET-RBM (SciPy + Cython, float64), CD + rewiring", 1)] = total
        results[("reference SET-RBM, CD pass only", 1)] = cd_only
    print(f"# COIL20 train set {x.shape}, batch {SETTING['batch_size']}, {SETTING['hidden']} hidden, "
          f"{args.epochs} timed epochs after a warm-up; seconds per epoch (median [min, max])")  # fmt: skip
    print("| model | threads | s / epoch | min | max |")
    print("|---|---|---|---|---|")
    for (name, threads), times in results.items():
        print(f"| {name} | {threads} | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |")
    if args.json:
        print(json.dumps({f"{n}@{t}": v for (n, t), v in results.items()}))


_COMPILE_PROBE = """
import json, sys, time
import numpy as np
from evosparse.rbm import RBM, ContrastiveDivergence, make_pattern
dtype = np.dtype(sys.argv[1])
pattern = make_pattern("set", 1024, 200, epsilon=10, rng=1)
rbm = RBM(1024, 200, pattern=pattern, dtype=dtype, seed=2)
x = np.random.default_rng(0).random((100, 1024)).astype(np.float32)
seconds = {}
for fused in (False, True):
    start = time.perf_counter()
    ContrastiveDivergence(seed=3, fused=fused).epoch(rbm, x, batch_size=10, rng=np.random.default_rng(4))
    seconds["fused" if fused else "step-by-step"] = time.perf_counter() - start
print(json.dumps(seconds))
"""


def command_compile(args: argparse.Namespace) -> None:
    import os
    import tempfile

    print("# first epoch (100 samples, 1024 visible, 200 hidden, batch 10) in a fresh process, seconds")
    print("| model dtype | Numba cache | step-by-step path | fused path (after it) |")
    print("|---|---|---|---|")
    for dtype in args.dtypes:
        with tempfile.TemporaryDirectory() as cache:
            environment = {**os.environ, "NUMBA_CACHE_DIR": cache}
            for state in ("empty", "filled"):
                output = subprocess.run([sys.executable, "-c", _COMPILE_PROBE, dtype], env=environment, check=True,
                                        capture_output=True, text=True).stdout  # fmt: skip
                seconds = json.loads(output.splitlines()[-1])
                print(f"| {dtype} | {state} | {seconds['step-by-step']:.1f} | {seconds['fused']:.1f} |", flush=True)


def _time_reference(args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Time the reference SET_RBM.fit in another interpreter (numpy < 2, Cython module on its path)."""
    # One epoch as the reference's fit does it (shuffle, CD on each batch of 10, then weightsEvolution with
    # regrowth), driven from outside so that no epoch is a "last" one (fit prunes without regrowing there).
    script = f"""
import sys, time, numpy as np, scipy.io as sio
sys.path.insert(0, {args.reference_dir!r})
import set_rbm_sparse_data_structures as ref
np.random.seed(0)
X = sio.loadmat({str(Path(args.data_dir) / "coil20" / "COIL20.mat")!r})['X'].astype('float64')
idx = np.random.permutation(X.shape[0]); xtr = X[idx[:960]]
model = ref.SET_RBM(xtr.shape[1], noHiddens=200, epsilon=10)
model.lengthMarkovChain, model.weight_decay, model.learning_rate, model.zeta = 2, 2e-7, 0.1, 0.3
cd, evolution = [], []
for epoch in range({args.epochs} + 1):
    order = np.arange(xtr.shape[0]); np.random.shuffle(order); x = xtr[order]
    t = time.perf_counter()
    for j in range(x.shape[0] // 10):
        model.learn(x[j * 10 : (j + 1) * 10])
    t2 = time.perf_counter()
    model.weightsEvolution(addition=True)
    cd.append(t2 - t); evolution.append(time.perf_counter() - t2)
print("TIMES", [a + b for a, b in zip(cd[1:], evolution[1:])])
print("CD", cd[1:])
"""
    output = subprocess.run([args.reference, "-c", script], capture_output=True, text=True, check=True).stdout

    def parse(tag: str) -> list[float]:
        line = next(line for line in output.splitlines() if line.startswith(tag))
        return [float(v) for v in line.removeprefix(tag).strip(" []").split(",")]

    return parse("TIMES"), parse("CD")


# ---- the XBM claim: equal weights, more hidden units ---------------------------------------------------------------
XBM_SETTING = {"dataset": "mnist", "binarize": True, "lr": 0.05, "momentum": 0.5, "weight_decay": 2e-4,
               "batch_size": 20, "init_std": 0.01, "cd_steps": 1, "zeta": 0.3}  # fmt: skip


def xbm_plan(n_visible: int, dense_hidden: int, widths: list[int], topologies: list[str],
             extra_dense: list[int] = ()) -> list[dict]:  # fmt: skip
    """The models of the comparison: the dense RBM with ``dense_hidden`` units, then for each width w each sparse
    topology with ``w * dense_hidden`` hidden units and the same ``n_visible * dense_hidden`` weights (epsilon
    chosen so that the Erdos-Renyi budget epsilon (n_visible + n_hidden) is exactly that); ``extra_dense``
    adds wider dense RBMs (more weights: the upper reference)."""
    budget = n_visible * dense_hidden
    plan = [{"name": f"dense-h{dense_hidden}", "topology": "dense", "hidden": dense_hidden, "epsilon": 10.0,
             "budget": budget}]  # fmt: skip
    for width in widths:
        hidden = width * dense_hidden
        if budget >= n_visible * hidden:
            raise ValueError(f"widths must be > 1 (a sparse model needs more hidden units than the dense one), "
                             f"got {width}")  # fmt: skip
        for topology in topologies:
            plan.append({"name": f"{topology}-h{hidden}", "topology": topology, "hidden": hidden,
                         "epsilon": budget / (n_visible + hidden), "budget": budget})  # fmt: skip
    for hidden in extra_dense:
        plan.append({"name": f"dense-h{hidden}", "topology": "dense", "hidden": hidden, "epsilon": 10.0,
                     "budget": n_visible * hidden})  # fmt: skip
    return plan


def _xbm_config(entry: dict, args: argparse.Namespace):
    from evosparse.rbm import RBMConfig

    return RBMConfig(**XBM_SETTING, data_dir=args.data_dir, download=False, train_samples=args.train_samples,
                     topology=entry["topology"], hidden=entry["hidden"], epsilon=entry["epsilon"],
                     epochs=args.epochs, seed=args.seed, ais_runs=args.ais_runs, ais_betas=args.ais_betas,
                     threads=1, out_dir=str(Path(args.out_dir) / entry["name"]))  # fmt: skip


def command_xbm_run(args: argparse.Namespace) -> None:
    from evosparse.rbm import format_summary, train_rbm

    for entry in xbm_plan(784, args.dense_hidden, args.widths, args.topologies, args.extra_dense):
        config = _xbm_config(entry, args)
        folder = Path(config.out_dir)
        summary = folder / "summary.json"
        if summary.exists() and json.loads(summary.read_text()).get("finished"):
            print(f"{entry['name']}: finished, kept", flush=True)
            continue
        resume = (folder / "checkpoint.npz").exists()
        if resume and _trained_without_ais(entry, config, folder):
            continue
        print(f"{entry['name']}: {'resuming' if resume else 'starting'} ({entry['hidden']} hidden, "
              f"{entry['budget']:,} weights, epsilon {entry['epsilon']:.4g})", flush=True)  # fmt: skip
        result = train_rbm(config, resume=resume, overwrite=not resume and folder.exists(),
                           log=lambda line: print(line, flush=True))  # fmt: skip
        print(format_summary(result.summary), flush=True)


def _trained_without_ais(entry: dict, config, folder: Path) -> bool:
    """A run stopped after its last epoch but before its AIS (nothing left to resume): finish it here."""
    from evosparse.io.atomic import atomic_write_text
    from evosparse.rbm import ais_log_partition, log_likelihood
    from evosparse.rbm.run import RBMRun, load_checkpoint, load_data, stream, summarize

    state = load_checkpoint(folder / "checkpoint.npz")
    if int(state["epoch"]) < config.epochs:
        return False
    print(f"{entry['name']}: trained, AIS only", flush=True)
    run = RBMRun(config, load_data(config))
    run.restore(state)
    summary = summarize(run, 1)
    ais = ais_log_partition(run.rbm, n_runs=config.ais_runs, n_betas=config.ais_betas, data=run.data.x_train,
                            rng=stream(config.seed, "ais"))  # fmt: skip
    result = log_likelihood(run.rbm, run.data.x_test, ais)
    summary.update({"log_z": ais.log_z, "log_z_interval": [ais.low, ais.high], "test_log_likelihood": result.mean,
                    "test_log_likelihood_interval": [result.low, result.high]})  # fmt: skip
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    return True


def command_xbm_ais(args: argparse.Namespace) -> None:
    """A second, independent AIS estimate (other seed, more betas) for finished models: is the first one stable?"""
    from evosparse.io.atomic import atomic_write_text
    from evosparse.rbm import ais_log_partition, load_run, log_likelihood
    from evosparse.rbm.run import load_data

    for name in args.models:
        folder = Path(args.out_dir) / name
        config, rbm, _ = load_run(folder)
        data = load_data(config)
        start = time.perf_counter()
        ais = ais_log_partition(rbm, n_runs=args.ais_runs, n_betas=args.ais_betas, data=data.x_train,
                                rng=np.random.default_rng([args.seed, 6]))  # fmt: skip
        result = log_likelihood(rbm, data.x_test, ais)
        record = {"n_runs": args.ais_runs, "n_betas": args.ais_betas, "seed": args.seed, "log_z": ais.log_z,
                  "test_log_likelihood": result.mean, "test_log_likelihood_interval": [result.low, result.high],
                  "seconds": time.perf_counter() - start}  # fmt: skip
        atomic_write_text(folder / f"ais-b{args.ais_betas}-r{args.ais_runs}-s{args.seed}.json",
                          json.dumps(record, indent=2) + "\n")  # fmt: skip
        print(
            f"{name}: test log-likelihood {result.mean:.2f} [{result.low:.2f}, {result.high:.2f}] "
            f"({args.ais_runs} runs, {args.ais_betas} betas, seed {args.seed}, {record['seconds']:.0f} s)",
            flush=True,
        )


def command_xbm_table(args: argparse.Namespace) -> None:
    rows = []
    for summary_file in sorted(Path(args.out_dir).glob("*/summary.json")):
        summary = json.loads(summary_file.read_text())
        if "test_log_likelihood" not in summary:
            continue
        from evosparse.rbm import RBMConfig

        config = RBMConfig.from_toml((summary_file.parent / "config.toml").read_text())
        rows.append((summary, config))
    rows.sort(key=lambda row: -row[0]["test_log_likelihood"])
    checks = []
    print("| model | hidden | weights at start | weights at end | density | test log-likelihood (nats) | AIS +-3 sd "
          "| test reconstruction error | epochs | s / epoch | train s |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for summary, config in rows:
        low, high = summary["test_log_likelihood_interval"]
        start = 784 * config.hidden if config.topology == "dense" else round(config.epsilon * (784 + config.hidden))
        print(f"| {config.topology} | {config.hidden} | {start:,} | {summary['nnz']:,} | "
              f"{100 * summary['density']:.1f}% | {summary['test_log_likelihood']:.2f} | [{low:.2f}, {high:.2f}] | "
              f"{summary['final_test_reconstruction_error']:.4f} | {summary['epochs']} | "
              f"{summary['seconds_per_epoch']:.2f} | {summary['train_seconds']:.0f} |")  # fmt: skip
        for extra in sorted(Path(summary["out_dir"]).glob("ais-*.json")):
            checks.append((f"{config.topology}-h{config.hidden}", json.loads(extra.read_text())))
    if checks:
        print("\nIndependent AIS re-estimates (another seed):\n")
        print("| model | AIS runs | betas | seed | test log-likelihood | AIS +-3 sd | s |")
        print("|---|---:|---:|---:|---:|---|---:|")
        for name, record in checks:
            low, high = record["test_log_likelihood_interval"]
            cells = f"{record['test_log_likelihood']:.2f} | [{low:.2f}, {high:.2f}] | {record['seconds']:.0f}"
            print(f"| {name} | {record['n_runs']} | {record['n_betas']} | {record['seed']} | {cells} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    table = sub.add_parser("table", help="side-by-side table of finished runs")
    table.add_argument("runs", nargs="+", help="run folders of 'evosparse rbm train'")
    table.add_argument("--at", type=lambda s: [int(v) for v in s.split(",")], default=[],
                       help="also the test error at these epochs, e.g. 100,500")  # fmt: skip
    table.add_argument("--reference-results", metavar="DIR", help="the reference's Results/ folder (per-epoch curves)")
    table.set_defaults(handler=command_table)
    speed = sub.add_parser("speed", help="seconds per epoch against scikit-learn (and the reference code)")
    speed.add_argument("--data-dir", default="../shared/data")
    speed.add_argument("--epochs", type=int, default=5)
    speed.add_argument("--threads", type=lambda s: [int(v) for v in s.split(",")], default=[1])
    speed.add_argument("--seed", type=int, default=0)
    speed.add_argument("--reference", metavar="PYTHON", help="interpreter of a venv able to run the reference code")
    speed.add_argument("--reference-dir", default="", help="folder holding the reference code and its Cython module")
    speed.add_argument("--json", action="store_true")
    speed.set_defaults(handler=command_speed)
    compile_ = sub.add_parser("compile", help="first-run compile time of the CD paths on an empty Numba cache")
    compile_.add_argument("--dtypes", type=lambda s: s.split(","), default=["float32", "float64"])
    compile_.set_defaults(handler=command_compile)
    xbm = sub.add_parser("xbm", help="the XBM claim on MNIST: dense vs wider sparse RBMs at equal weights")
    xbm_commands = xbm.add_subparsers(dest="xbm_command", required=True)
    xbm_run = xbm_commands.add_parser("run", help="train (or resume) every model of the plan, then AIS")
    xbm_run.add_argument("--out-dir", required=True)
    xbm_run.add_argument("--data-dir", default="../shared/data")
    xbm_run.add_argument("--dense-hidden", type=int, default=100, help="hidden units of the dense RBM (100)")
    xbm_run.add_argument("--widths", type=integers, default=[4, 2], help="sparse hidden units / dense (4,2)")
    xbm_run.add_argument("--topologies", type=lambda s: s.split(","), default=["xbm", "fixprob", "set"])
    xbm_run.add_argument("--extra-dense", type=integers, default=[400],
                         help="wider dense RBMs, more weights: the upper reference (400)")  # fmt: skip
    xbm_run.add_argument("--train-samples", type=int, default=5000, help="random MNIST training subset (5000)")
    xbm_run.add_argument("--epochs", type=int, default=15)
    xbm_run.add_argument("--ais-runs", type=int, default=100)
    xbm_run.add_argument("--ais-betas", type=int, default=3000)
    xbm_run.add_argument("--seed", type=int, default=0)
    xbm_run.set_defaults(handler=command_xbm_run)
    xbm_ais = xbm_commands.add_parser("ais", help="an independent AIS re-estimate of finished models")
    xbm_ais.add_argument("--out-dir", required=True)
    xbm_ais.add_argument("--models", type=lambda s: s.split(","), required=True, help="e.g. dense-h100,xbm-h400")
    xbm_ais.add_argument("--ais-runs", type=int, default=100)
    xbm_ais.add_argument("--ais-betas", type=int, default=10000)
    xbm_ais.add_argument("--seed", type=int, default=1)
    xbm_ais.set_defaults(handler=command_xbm_ais)
    xbm_table = xbm_commands.add_parser("table", help="the finished models, best test log-likelihood first")
    xbm_table.add_argument("--out-dir", required=True)
    xbm_table.set_defaults(handler=command_xbm_table)
    args = parser.parse_args(argv)
    args.handler(args)


def integers(text: str) -> list[int]:
    """A comma-separated list of integers ("" -> [])."""
    return [int(v) for v in text.split(",") if v]


if __name__ == "__main__":
    sys.exit(main())
