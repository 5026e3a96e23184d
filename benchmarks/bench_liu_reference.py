"""Reference timing: the published truly sparse SET-MLP code (SciPy sparse matrices + Cython) on our scale benchmark.

Runs the reference implementation that Liu et al. 2021 ("Sparse evolutionary deep learning with over one million
artificial neurons on commodity hardware") timed at 600,000 neurons per hidden layer: the folder
SET-MLP-Sparse-Python-Data-Structures of github.com/dcmocanu/sparse-evolutionary-artificial-neural-networks
(its README: "600,000 neurons/hidden layer, 1,803,317 neurons in total: 112 minutes/epoch"). It uses the same
network shape and the same synthetic Gaussian classes as

    python benchmarks/bench_scale.py --synthetic 3312,5,142,61 --hidden 600000,600000,600000 --epsilon 17 \
        --batch-size 2 --epochs 2 --fused-step

and prints the model construction time, each epoch's training and rewiring (weight evolution) seconds, the test
accuracy and the peak resident memory, in a format close to bench_scale.py's.

What is measured, and how:
  * build: SET_MLP(...) construction, i.e. the reference's createSparseWeights for every layer (a Python loop of
    epsilon * (n_in + n_out) random lil_matrix insertions per layer, then a CSR conversion).
  * train: one call of the reference's own SET_MLP.fit(..., epochs=1, testing=False) per epoch (shuffle, then
    forward / Cython backpropagation / momentum update per mini-batch). With epochs=1, fit() never calls the
    weight evolution itself ("no rewiring after the last epoch"), so the training time is clean. The forward and
    backward (+ update) split comes from timing wrappers around the instance's _feed_forward and _back_prop.
  * rewire: the reference's weightsEvolution_Amar() (the fast version fit() uses), called and timed after the
    test, exactly where fit() calls it; as in fit() (and bench_scale.py) not after the last epoch.
  * test accuracy: the reference's predict() on the test rows (batch size 1 by default, so every row is scored;
    with batch size b, predict() skips the last n_test mod b rows).
  * peak RSS: resource.getrusage(RUSAGE_SELF).ru_maxrss (the same figure as VmHWM), in GiB.
SCIPY_SHIM: the reference's _back_prop takes dw = coo_matrix(self.w[i]) and lets its Cython kernel overwrite
dw.data with the gradient. With the SciPy it was written for (0.19), coo_matrix(csr) copied the values; current
SciPy (checked with 1.17) shares them with the CSR matrix, so the kernel would overwrite the weights themselves
with their gradients (and the exact zeros among them are then dropped: the network loses over half its
connections in one epoch). The script therefore rebinds the name coo_matrix inside the reference module to a
wrapper that copies when given a sparse matrix (the 0.19 behaviour); the reference files are not edited.

Running fit() one epoch at a time consumes the global NumPy random stream in the same order as one fit() call
with all epochs (shuffle, train, test, rewire, next shuffle ...), so the run is the reference's run.

The reference recipe (kept as published, only the data, widths, epsilon, batch size and rates are ours):
ReLU hidden layers, a sigmoid output with a mean squared error loss, weights (and regrown weights) drawn from
N(0, 0.1^2), zero biases, SGD with momentum 0.9, weight decay 0.0002 applied as w -= 0.0002 * w per step (not
scaled by the learning rate), no dropout, zeta = 0.3 of the positive and of the negative weights removed per layer.

Build the reference (outside this repository; nothing of it is committed here):
    # 1. export the reference folder from a clone (or a bare mirror: git --git-dir=<mirror> show ...)
    git clone https://github.com/dcmocanu/sparse-evolutionary-artificial-neural-networks /tmp/set-ref
    mkdir -p /tmp/liu_ref
    cp /tmp/set-ref/SET-MLP-Sparse-Python-Data-Structures/{set_mlp_sparse_data_structures.py,sparseoperations.pyx} \
        /tmp/liu_ref/
    # 2. a separate environment (the 2018 code needs NumPy < 2: np.in1d) and the Cython extension
    python3 -m venv /work/refvenv
    /work/refvenv/bin/pip install "numpy<2" scipy "cython<3.1" setuptools
    cat > /tmp/liu_ref/setup.py <<'EOF'
    import numpy
    from Cython.Build import cythonize
    from setuptools import Extension, setup

    setup(
        ext_modules=cythonize(
            [Extension("sparseoperations", ["sparseoperations.pyx"], include_dirs=[numpy.get_include()])],
            language_level=3,
        )
    )
    EOF
    cd /tmp/liu_ref && /work/refvenv/bin/python setup.py build_ext --inplace

Run (the full size; a small check: --hidden 3000,3000,3000):
    /work/refvenv/bin/python benchmarks/bench_liu_reference.py --reference-dir /tmp/liu_ref \
        --synthetic 3312,5,142,61 --hidden 600000,600000,600000 --epsilon 17 --batch-size 2 --epochs 2

This script imports only NumPy, SciPy (through the reference) and the standard library; not evosparse.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import statistics
import sys
import time

import numpy as np


def peak_gib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux), in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def synthetic(spec: str, seed: int):
    """Gaussian classes "features,classes,train,test": the rule of bench_scale.py's --synthetic, value for value."""
    n_features, n_classes, n_train, n_test = (int(v) for v in spec.split(","))
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, n_features)).astype(np.float32)
    y = rng.integers(0, n_classes, n_train + n_test)
    x = (centres[y] + 3.0 * rng.standard_normal((n_train + n_test, n_features))).astype(np.float32)
    # The reference's Cython kernel takes float64 activations and one-hot float64 targets.
    x = x.astype(np.float64)
    one_hot = np.zeros((n_train + n_test, n_classes))
    one_hot[np.arange(n_train + n_test), y] = 1.0
    return x[:n_train], one_hot[:n_train], x[n_train:], one_hot[n_train:]


class StopEpoch(Exception):
    """Raised by the step counter to cut an epoch after --max-steps mini-batches."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-dir", required=True, help="folder with the built reference (sparseoperations)")
    parser.add_argument("--synthetic", default="3312,5,142,61", help='Gaussian classes "features,classes,train,test"')
    parser.add_argument("--hidden", default="600000,600000,600000", help="comma-separated hidden layer sizes")
    parser.add_argument("--epsilon", type=int, default=17, help="the reference's epsilon (an integer there)")
    parser.add_argument("--zeta", type=float, default=0.3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-steps", type=int, help="stop each epoch after this many steps (a short profile)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--test-batch-size", type=int, default=1, help="predict()'s batch size (1: every test row)")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=0.0002)
    parser.add_argument("--seed", type=int, default=0, help="the data's seed and the reference's np.random.seed")
    parser.add_argument(
        "--standardize",
        action="store_true",
        help="scale features to zero mean, unit variance as the reference's lung script does (bench_scale does not)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the reference's own prints")
    args = parser.parse_args()

    sys.path.insert(0, args.reference_dir)
    import scipy.sparse  # noqa: PLC0415
    import set_mlp_sparse_data_structures as ref  # noqa: PLC0415 (the path is known only now)

    def coo_matrix(arg1, *rest, copy=False, **options):
        """SciPy 0.19's coo_matrix(csr), which copied the values (see SCIPY_SHIM in the module docstring)."""
        return scipy.sparse.coo_matrix(arg1, *rest, copy=copy or scipy.sparse.issparse(arg1), **options)

    ref.coo_matrix = coo_matrix

    def quiet():
        return contextlib.nullcontext() if args.verbose else contextlib.redirect_stdout(io.StringIO())

    x_train, y_train, x_test, y_test = synthetic(args.synthetic, args.seed)
    if args.standardize:
        mean, std = x_train.mean(0), x_train.std(0)
        x_train, x_test = (x_train - mean) / (std + 0.0001), (x_test - mean) / (std + 0.0001)
    hidden = [int(h) for h in args.hidden.split(",")]
    sizes = [x_train.shape[1], *hidden, y_train.shape[1]]
    np.random.seed(args.seed)  # noqa: NPY002 (the reference draws everything from the global NumPy stream)

    start = time.perf_counter()
    with quiet():
        model = ref.SET_MLP(tuple(sizes), (*[ref.Relu] * len(hidden), ref.Sigmoid), epsilon=args.epsilon)
    build_seconds = time.perf_counter() - start
    build_peak = peak_gib()

    def nnz_total() -> int:
        return sum(model.w[i].nnz for i in model.w)

    nnz = nnz_total()
    dense_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    densities = ", ".join(f"{model.w[i].nnz / (sizes[i - 1] * sizes[i]):.2e}" for i in sorted(model.w))
    print(
        f"data set synthetic {args.synthetic}: {x_train.shape[0]} train / {x_test.shape[0]} test, "
        f"{x_train.shape[1]} features"
    )
    print(
        f"reference SET-MLP {sizes}: {sum(hidden):,} hidden neurons, {nnz:,} connections "
        f"(dense: {dense_weights:,}, density {nnz / dense_weights:.2e}; per layer {densities})"
    )
    print(f"build {build_seconds:.1f} s, peak RSS after build {build_peak:.2f} GiB", flush=True)

    # Timing wrappers on the instance (the reference files stay untouched).
    phases = [0.0, 0.0]  # forward, backward + update (wall seconds)
    steps = [0]
    feed_forward, back_prop = model._feed_forward, model._back_prop

    def timed_feed_forward(x):
        t0 = time.perf_counter()
        result = feed_forward(x)
        phases[0] += time.perf_counter() - t0
        return result

    def timed_back_prop(z, a, y):
        t0 = time.perf_counter()
        back_prop(z, a, y)
        phases[1] += time.perf_counter() - t0
        steps[0] += 1
        if args.max_steps is not None and steps[0] >= args.max_steps:
            raise StopEpoch

    model._feed_forward, model._back_prop = timed_feed_forward, timed_back_prop

    epoch_seconds, rewire_seconds = [], []
    accuracy = float("nan")
    for epoch in range(1, args.epochs + 1):
        phases[:] = [0.0, 0.0]
        steps[0] = 0
        loss = "n/a (epoch cut)"  # fit() reports the mean training loss (MSE) only for a whole epoch
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            with quiet():
                metrics = model.fit(
                    x_train,
                    y_train,
                    x_test,
                    y_test,
                    loss=ref.MSE,
                    epochs=1,
                    batch_size=args.batch_size,
                    learning_rate=args.lr,
                    momentum=args.momentum,
                    weight_decay=args.weight_decay,
                    zeta=args.zeta,
                    testing=False,
                )
            loss = f"{metrics[0, 0]:.4f}"
        except StopEpoch:
            pass
        train_time, train_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        train_peak = peak_gib()
        epoch_seconds.append(train_time)

        model._feed_forward = feed_forward  # the test is not part of the forward figure
        start = time.perf_counter()
        accuracy, _ = model.predict(x_test, y_test, batch_size=args.test_batch_size)
        test_time = time.perf_counter() - start
        model._feed_forward = timed_feed_forward

        rewire_time = 0.0
        if epoch < args.epochs:  # as in fit() and bench_scale.py: no rewiring after the last epoch
            start = time.perf_counter()
            with quiet():
                model.weightsEvolution_Amar()
            rewire_time = time.perf_counter() - start
            rewire_seconds.append(rewire_time)
        peak = peak_gib()
        print(
            f"epoch {epoch}: train {train_time:.1f} s ({train_cpu:.1f} s CPU; {steps[0]} steps; forward "
            f"{phases[0]:.1f}, backward+update {phases[1]:.1f}), rewire {rewire_time:.1f} s, loss {loss}, "
            f"test accuracy {accuracy:.3f} ({test_time:.1f} s), peak RSS {peak:.2f} GiB "
            f"(before rewiring {train_peak:.2f})",
            flush=True,
        )
    rewire = f"{statistics.median(rewire_seconds):.1f} s per update" if rewire_seconds else "none"
    print(
        f"reference: build {build_seconds:.1f} s, median epoch {statistics.median(epoch_seconds):.1f} s, "
        f"rewiring {rewire} ({len(rewire_seconds)} updates); final test accuracy {accuracy:.3f}; "
        f"peak RSS {peak_gib():.2f} GiB; connections {nnz:,} -> {nnz_total():,}"
    )


if __name__ == "__main__":
    main()
