"""Scale: train a SET-MLP with a million (or ten million) hidden neurons on a 2-core laptop-class CPU.

A dense network of the same shape cannot even be allocated here: its weights alone would need the
"dense weights" figure printed below (x3 with gradients and momentum). The truly sparse one stores
epsilon * (n_in + n_out) connections per layer, so memory and time grow linearly with the neurons.

Run (the recorded results in BENCHMARKS.md):
    python benchmarks/bench_scale.py --dataset leukemia --hidden 500000,500000 --epochs 30 --update-every 10
    python benchmarks/bench_scale.py --dataset madelon --hidden 400000,400000,400000 --epochs 3
    python benchmarks/bench_scale.py --dataset leukemia --hidden 5000000,5000000 --epsilon 2 --epochs 3

The one-million-neuron shape of Liu et al. 2021 (the lung data set's shape: 3312 features, 5 classes, 142
training rows; synthetic Gaussian classes, since lung.mat is not in the offline data):
    python benchmarks/bench_scale.py --synthetic 3312,5,142,61 --hidden 600000,600000,600000 --epsilon 17 \
        --batch-size 2 --epochs 2 --fused-step --block-rows 16384     # row-blocked wide layers; 1: CSR; 0: auto
and the reference code on the same shape: benchmarks/bench_liu_reference.py.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from evosparse.data import Dataset, load_dataset
from evosparse.nn import FusedSGD, SparseMLP
from evosparse.sparse import set_num_threads, warm_up
from evosparse.topology import SET, UpdateSchedule


def peak_gib() -> float:
    """Peak resident memory of this process so far (VmHWM), in GiB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 2**20


def synthetic(spec: str, seed: int) -> Dataset:
    """Gaussian classes of a given shape, "features,classes,train,test" (a stand-in for a data set not at hand)."""
    n_features, n_classes, n_train, n_test = (int(v) for v in spec.split(","))
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, n_features)).astype(np.float32)
    y = rng.integers(0, n_classes, n_train + n_test)
    x = (centres[y] + 3.0 * rng.standard_normal((n_train + n_test, n_features))).astype(np.float32)
    return Dataset(
        name=f"synthetic {spec}",
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
        n_classes=n_classes,
        feature_shape=(n_features,),
    )


def evaluate(model, x, y, batch_size):
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            correct += int((model(x[start : start + batch_size]).argmax(1) == y[start : start + batch_size]).sum())
    return correct / x.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="leukemia", help="a high-dimensional data set of evosparse.data")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--synthetic", help='instead of --dataset: Gaussian classes "features,classes,train,test"')
    parser.add_argument("--hidden", default="500000,500000", help="comma-separated hidden layer sizes")
    parser.add_argument("--epsilon", type=float, default=10.0)
    parser.add_argument("--zeta", type=float, default=0.3)
    parser.add_argument("--update-every", type=int, default=1, help="rewire every this many epochs")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-steps", type=int, help="stop each epoch after this many steps (a short profile)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--block-rows",
        type=int,
        default=1,
        help="row-blocked weight order with blocks of this many rows (1: CSR; 0: a size per wide layer, as "
        "evosparse train chooses at batch sizes up to 4)",
    )
    parser.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True, help="torch's fused SGD")
    parser.add_argument(
        "--fused-step",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="evosparse.nn.FusedSGD: the sparse layers' SGD step inside their backward pass (no gradient arrays)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_num_threads(args.threads)
    warm_up()

    if args.synthetic:
        data = synthetic(args.synthetic, args.seed)
    else:
        data = load_dataset(args.dataset, data_dir=args.data_dir, download=False, seed=args.seed)
    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    hidden = [int(h) for h in args.hidden.split(",")]
    sizes = [data.n_features, *hidden, data.n_classes]

    start = time.perf_counter()
    model = SparseMLP(sizes, activation="allrelu", epsilon=args.epsilon, seed=args.seed, block_rows=args.block_rows)
    build_seconds = time.perf_counter() - start
    build_peak = peak_gib()
    # The output layer sums a whole hidden layer (fan-in in the hundreds of thousands): with one learning
    # rate for all layers, one SGD step moves the logits by lr * fan_in * E[h^2] and training diverges.
    # Its rate is scaled by 1000 / fan_in (the width-aware "muP" readout rule, Yang et al. 2021).
    output = model.sparse_layers()[-1]
    output_lr = args.lr * min(1.0, 1000.0 / output.in_features)
    others = [p for p in model.parameters() if all(p is not q for q in output.parameters())]
    # fused: weight decay, momentum and the update in one pass over each parameter (torch's CPU kernel), not
    # four passes with a temporary of the gradient's size (BENCHMARKS.md section 3).
    optimizer = torch.optim.SGD(
        [{"params": others}, {"params": list(output.parameters()), "lr": output_lr}],
        lr=args.lr,
        momentum=0.9,
        weight_decay=2e-4,
        fused=args.fused,
    )
    fusion = FusedSGD(model, optimizer) if args.fused_step else None
    # Tiny data sets give few steps per epoch: rewiring every epoch would undo what those steps learnt.
    strategy = SET(schedule=UpdateSchedule(zeta=args.zeta, every=args.update_every), seed=args.seed)
    shuffle = np.random.default_rng(args.seed)

    layers = model.sparse_layers()
    nnz = sum(layer.nnz for layer in layers)
    dense_weights = sum(layer.in_features * layer.out_features for layer in layers)
    print(f"data set {data.name}: {x_train.shape[0]} train / {x_test.shape[0]} test, {data.n_features} features")
    print(
        f"layers {sizes}: {sum(hidden):,} hidden neurons, {nnz:,} connections "
        f"(dense: {dense_weights:,}, density {nnz / dense_weights:.2e}); built in {build_seconds:.1f} s, "
        f"peak RSS after build {build_peak:.2f} GiB"
    )
    print(
        f"dense weights would need {dense_weights * 4 / 2**30:,.1f} GiB (x3 with gradients and momentum); "
        f"sparse weights + indices: {sum(layer.memory_bytes()['total'] for layer in layers) / 2**30:.2f} GiB"
    )

    epoch_seconds, rewire_seconds = [], []
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.from_numpy(shuffle.permutation(x_train.shape[0]))
        start, start_cpu = time.perf_counter(), time.process_time()
        phases = [0.0, 0.0, 0.0]  # forward, backward, optimizer step (wall seconds)
        for step, begin in enumerate(range(0, x_train.shape[0], args.batch_size)):
            if args.max_steps is not None and step >= args.max_steps:
                break
            batch = order[begin : begin + args.batch_size]
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            t1 = time.perf_counter()
            if fusion is not None:
                fusion.backward(loss)
            else:
                loss.backward()
            t2 = time.perf_counter()
            optimizer.step()
            phases = [total + part for total, part in zip(phases, (t1 - t0, t2 - t1, time.perf_counter() - t2))]
            last_loss = loss.item()
            # The step's autograd graph remembers each layer's pattern: dropped now, so that rewiring can free
            # the old index arrays (as the training loop's locals go when its epoch ends).
            del loss
        train_time, train_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        train_peak = peak_gib()
        start = time.perf_counter()
        # As in the SET code: no rewiring after the last epoch.
        updated = epoch < args.epochs and strategy.on_epoch_end(model, optimizer, epoch)
        rewire_time = time.perf_counter() - start
        if updated:
            rewire_seconds.append(rewire_time)
        epoch_seconds.append(train_time)
        accuracy = evaluate(model, x_test, y_test, 64)
        peak = peak_gib()
        print(
            f"epoch {epoch}: train {train_time:.1f} s ({train_cpu:.1f} s CPU; forward {phases[0]:.1f}, backward "
            f"{phases[1]:.1f}, step {phases[2]:.1f}), rewire {rewire_time:.1f} s, "
            f"loss {last_loss:.4f}, "
            f"test accuracy {accuracy:.3f}, peak RSS {peak:.2f} GiB (before rewiring {train_peak:.2f})",
            flush=True,
        )
    rewire = f"{statistics.median(rewire_seconds):.1f} s per update" if rewire_seconds else "none"
    print(
        f"median epoch {statistics.median(epoch_seconds):.1f} s, rewiring {rewire} ({len(rewire_seconds)} updates); "
        f"final test accuracy {accuracy:.3f}; peak RSS {peak:.2f} GiB; "
        f"nnz constant: {sum(layer.nnz for layer in layers) == nnz}"
    )


if __name__ == "__main__":
    main()
