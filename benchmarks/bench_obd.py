"""Magnitude vs Optimal Brain Damage: which weights can go, on a trained LeNet-300-100 (Fashion-MNIST).

The classic experiment of LeCun, Denker and Solla (1990, Fig. 1-2) and of Han et al. (2015): train a dense
784-300-100-10 MLP, then delete weights (one global ranking, as OBD does) by three criteria, without
retraining and after one epoch of retraining the survivors:

* magnitude |w|;
* OBD saliency 0.5 h w^2 with h the exact Gauss-Newton diagonal (= the Hessian diagonal for ReLU nets);
* OBD saliency with LeCun's backpropagated diagonal approximation.

Printed per density: test accuracy and loss, and OBD's predicted loss increase (sum of deleted saliencies)
next to the measured one. Both the pruned network and the retraining run truly sparse (SparseLinear).

Run: python benchmarks/bench_obd.py [--data-dir ../shared/data] [--epochs 5] [--samples 2000]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from evosparse.data import load_dataset
from evosparse.nn import DenseMLP
from evosparse.prune import Pruning, magnitude_scores, obd_saliency
from evosparse.prune.saliency import weight_layers
from evosparse.prune.schedule import PruningSchedule
from evosparse.topology.select import global_budget
from evosparse.train.metrics import evaluate

SIZES = (784, 300, 100, 10)
DENSITIES = (0.5, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02)


def train_epochs(model, x, y, epochs, seed, lr=0.01):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        for begin in range(0, x.shape[0], 128):
            index = order[begin : begin + 128]
            optimizer.zero_grad()
            F.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=5, help="dense training epochs")
    parser.add_argument("--samples", type=int, default=2000, help="training examples of the saliencies")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = load_dataset("fashion_mnist", data_dir=args.data_dir, download=False)
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train, dtype=torch.int64)
    x_test = torch.as_tensor(data.x_test, dtype=torch.float32)
    y_test = torch.as_tensor(data.y_test, dtype=torch.int64)
    start = time.perf_counter()
    dense = train_epochs(DenseMLP(SIZES, seed=args.seed), x, y, args.epochs, args.seed)
    base_loss, base_accuracy = evaluate(dense, x_test, y_test)
    print(f"dense 784-300-100-10, {args.epochs} epochs ({time.perf_counter() - start:.0f} s): "
          f"test accuracy {100 * base_accuracy:.2f}%, loss {base_loss:.4f}")  # fmt: skip
    sample = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(args.seed))[: args.samples]
    xs, ys = x[sample], y[sample]
    start = time.perf_counter()
    saliency = {
        "magnitude": magnitude_scores(dense),
        "obd-gauss-newton": obd_saliency(dense, xs, ys, method="gauss_newton"),
        "obd-lecun": obd_saliency(dense, xs, ys, method="lecun"),
    }
    print(f"saliencies on {args.samples} examples: {time.perf_counter() - start:.1f} s\n")
    total = sum(layer.weight.numel() for layer in weight_layers(dense))
    gauss_newton = saliency["obd-gauss-newton"]
    print("| density | criterion | test acc % (no retrain) | test loss | OBD-predicted loss increase | "
          "train loss increase (measured) | test acc % after 1 epoch retrain |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    base_train_loss, _ = evaluate(dense, xs, ys)
    for density in DENSITIES:
        keep_total = int(round(density * total))
        for name, scores in saliency.items():
            model = copy.deepcopy(dense)
            budget = global_budget(scores, keep_total)
            # The scores of the trained dense network rank its weights (computed once, above).
            strategy = Pruning(budget, criterion=lambda _, s=scores: s, schedule=PruningSchedule("one_shot", start=1))
            strategy.on_train_start(model, None)
            strategy.on_epoch_end(model, None, 1)
            kept = [layer.to_dense() != 0 for layer in weight_layers(model)]
            predicted = sum(float(s[~k].sum()) for s, k in zip(gauss_newton, kept))
            train_loss, _ = evaluate(model, xs, ys)
            loss, accuracy = evaluate(model, x_test, y_test)
            train_epochs(model, x, y, 1, args.seed + 1)
            _, retrained = evaluate(model, x_test, y_test)
            print(f"| {density:g} | {name} | {100 * accuracy:.2f} | {loss:.4f} | {predicted:.4f} | "
                  f"{train_loss - base_train_loss:.4f} | {100 * retrained:.2f} |")  # fmt: skip


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
