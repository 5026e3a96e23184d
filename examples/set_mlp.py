"""SET-MLP: the experiment of Mocanu et al. (2018), top to bottom, through evosparse's public API.

Paper: Mocanu, Mocanu, Stone, Nguyen, Gibescu, Liotta, "Scalable training of artificial neural networks with
adaptive sparse connectivity inspired by network science", Nature Communications 9, 2383 (2018).

The recipe (Methods and Algorithm 1 of the paper, MLP experiments on MNIST / Fashion-MNIST / CIFAR-10):

1. An MLP of 3 hidden layers of 1000 neurons whose every layer is a sparse Erdos-Renyi graph: a connection
   exists with probability ``epsilon (n_in + n_out) / (n_in n_out)``, epsilon = 20.
2. SReLU activations, dropout 0.3 (Fashion-MNIST, CIFAR-10), softmax output with cross-entropy.
3. SGD, learning rate 0.01, momentum 0.9, weight decay 0.0002, batch size 100.
4. After each training epoch but the last: remove the fraction zeta = 0.3 of the weights closest to zero
   (among the positive weights and among the negative ones), and add as many connections at random empty
   positions. The number of connections never changes.

The paper trains for 1000 epochs. Run it as ``python examples/set_mlp.py --dataset fashion_mnist`` (the data
set is downloaded into evosparse's cache, or read from ``--data-dir``); ``--epochs 2 --hidden 64,64
--dataset digits`` is the seconds-long smoke run the tests use.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from evosparse.data import load_dataset
from evosparse.nn import SparseMLP
from evosparse.topology import SET, UpdateSchedule


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", default="fashion_mnist", help="evosparse.data name (paper: mnist, fashion_mnist, cifar10)"
    )
    parser.add_argument(
        "--data-dir", default=None, help="folder holding the data files (default: download into the cache)"
    )
    parser.add_argument(
        "--hidden", default="1000,1000,1000", help="neurons of each hidden layer (paper: 1000,1000,1000)"
    )
    parser.add_argument("--epsilon", type=float, default=20.0, help="Erdos-Renyi sparsity parameter (paper: 20)")
    parser.add_argument(
        "--zeta", type=float, default=0.3, help="fraction of weights removed and regrown per epoch (paper: 0.3)"
    )
    parser.add_argument("--activation", default="srelu", help="hidden activation (paper: srelu)")
    parser.add_argument("--dropout", type=float, default=0.3, help="dropout after each hidden layer (paper: 0.3)")
    parser.add_argument("--epochs", type=int, default=1000, help="training epochs (paper: 1000)")
    parser.add_argument("--batch-size", type=int, default=100, help="minibatch size (paper: 100)")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (paper: 0.01)")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (paper: 0.9)")
    parser.add_argument("--weight-decay", type=float, default=0.0002, help="L2 weight decay (paper: 0.0002)")
    parser.add_argument("--max-train", type=int, default=None, help="use only this many training examples (smoke runs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the topology, the weights and the data order")
    parser.add_argument("--json", action="store_true", help="print the per-epoch results as JSON at the end")
    return parser.parse_args(argv)


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on (x, y), without dropout."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            logits = model(x[start : start + batch_size])
            target = y[start : start + batch_size]
            loss += F.cross_entropy(logits, target, reduction="sum").item()
            correct += int((logits.argmax(dim=1) == target).sum())
    model.train()
    return loss / x.shape[0], correct / x.shape[0]


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)

    # ---- 1. data: flat features scaled as evosparse.data preprocesses them, integer labels ---------------
    data = load_dataset(args.dataset, data_dir=args.data_dir)
    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    if args.max_train is not None:
        x_train, y_train = x_train[: args.max_train], y_train[: args.max_train]
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    loader = DataLoader(
        TensorDataset(x_train, y_train),
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),  # the data order is seeded, no global state
    )
    print(data.describe())

    # ---- 2. model: every layer an Erdos-Renyi sparse graph (step 1 of the recipe), SReLU + dropout --------
    sizes = (data.n_features, *(int(h) for h in args.hidden.split(",")), data.n_classes)
    model = SparseMLP(sizes, activation=args.activation, dropout=args.dropout, epsilon=args.epsilon, seed=args.seed)
    layers = model.sparse_layers()
    print(f"SET-MLP {'-'.join(map(str, sizes))}: {sum(layer.nnz for layer in layers):,} connections, "
          f"densities {', '.join(f'{layer.density:.2%}' for layer in layers)}")  # fmt: skip

    # ---- 3. optimiser: plain SGD with momentum and weight decay ----------------------------------------------
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)

    # ---- 4. topology evolution: SET after every epoch but the last (stop_after = epochs) ---------------------
    strategy = SET(schedule=UpdateSchedule(zeta=args.zeta, stop_after=args.epochs), seed=args.seed)

    history = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        train_loss, seen = 0.0, 0
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            train_loss += loss.item() * x.shape[0]
            seen += x.shape[0]
        train_seconds = time.perf_counter() - start
        test_loss, test_accuracy = evaluate(model, x_test, y_test, 1000)
        # Evaluate first, then rewire: the accuracy is that of the network that was trained.
        rewired = strategy.on_epoch_end(model, optimizer, epoch)  # nnz constant, momentum follows the survivors
        row = {
            "epoch": epoch,
            "train_loss": train_loss / seen,
            "test_loss": test_loss,
            "test_accuracy": test_accuracy,
            "nnz": sum(layer.nnz for layer in layers),
            "rewired": rewired,
            "train_seconds": train_seconds,
        }
        history.append(row)
        print(f"epoch {epoch}/{args.epochs}: train loss {row['train_loss']:.4f}, test loss {test_loss:.4f}, "
              f"test accuracy {test_accuracy:.2%}{', rewired' if rewired else ''} ({train_seconds:.1f} s)")  # fmt: skip
    if args.json:
        print(json.dumps(history))
    return history


if __name__ == "__main__":
    main()
