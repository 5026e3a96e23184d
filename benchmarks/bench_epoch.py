"""One training epoch of a 784-1000-1000-1000-10 MLP on Fashion-MNIST: dense vs masked vs truly sparse.

Competitors, same recipe (SGD + momentum 0.9, lr 0.01, weight decay 2e-4, batch 128, dropout 0.3,
All-ReLU), timed side by side in one process, epochs interleaved so machine noise hits all alike:

* dense:  a dense PyTorch MLP (``DenseMLP``, nn.Linear).
* masked: dense weights times a 0/1 mask, re-masked after every step, SET rewiring on the dense mask --
  how mask-based sparse training libraries (and the SET Keras code) do it.
* sparse: evosparse ``SparseMLP`` (epsilon=20) + ``SET`` (zeta=0.3) at the end of the epoch.

Memory: bytes of weights + indices + optimizer state, counted from the tensors, and the peak resident
memory of a child process that trains 50 steps of each competitor alone.

Run: python benchmarks/bench_epoch.py [--data-dir ../shared/data] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evosparse.data import load_dataset
from evosparse.nn import DenseMLP, SparseMLP
from evosparse.sparse import set_num_threads, warm_up
from evosparse.topology import SET, weakest_connections

SIZES = (784, 1000, 1000, 1000, 10)
RECIPE = {"lr": 0.01, "momentum": 0.9, "weight_decay": 2e-4}


class MaskedLinear(nn.Linear):
    """y = x (W * M)^T + b: the gradient reaches masked weights as zeros, and M is re-applied after steps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MaskedMLP(DenseMLP):
    """Dense weights times a 0/1 mask with the same Erdos-Renyi pattern as the SparseMLP twin."""

    def __init__(self, sparse_twin: SparseMLP, **kwargs) -> None:
        super().__init__(SIZES, **kwargs)
        self.linears = []
        for i, layer in zip(
            [i for i, m in enumerate(self.net) if isinstance(m, nn.Linear)], sparse_twin.sparse_layers()
        ):
            masked = MaskedLinear(layer.in_features, layer.out_features)
            masked.register_buffer("mask", (layer.to_dense() != 0).float())
            with torch.no_grad():
                masked.weight.copy_(layer.to_dense())
                masked.bias.zero_()
            self.net[i] = masked
            self.linears.append(masked)

    def apply_masks(self) -> None:
        with torch.no_grad():
            for linear in self.linears:
                linear.weight.mul_(linear.mask)

    def set_step(self, zeta: float, rng: np.random.Generator) -> None:
        """SET on dense masks: O(in * out) per layer, as mask-based implementations do."""
        with torch.no_grad():
            for linear in self.linears:
                active = linear.mask.nonzero(as_tuple=True)
                if linear.mask.numel() == active[0].numel():
                    continue
                values = linear.weight[active].numpy()
                remove = torch.from_numpy(weakest_connections(values, zeta))
                linear.mask[active[0][remove], active[1][remove]] = 0
                empty = (linear.mask == 0).nonzero()
                grow = empty[torch.from_numpy(rng.choice(empty.shape[0], int(remove.sum()), replace=False))]
                linear.mask[grow[:, 0], grow[:, 1]] = 1
                bound = (6.0 / linear.in_features) ** 0.5
                linear.weight[grow[:, 0], grow[:, 1]] = torch.empty(grow.shape[0]).uniform_(-bound, bound)
                linear.weight.mul_(linear.mask)


def build(name: str, seed: int = 0) -> nn.Module:
    common = {"activation": "allrelu", "dropout": 0.3, "seed": seed}
    sparse = SparseMLP(SIZES, epsilon=20, **common)
    if name == "sparse":
        return sparse
    if name == "masked":
        return MaskedMLP(sparse, **common)
    return DenseMLP(SIZES, **common)


def train_epoch(model, optimizer, x, y, batch_size, *, steps=None):
    n = x.shape[0] if steps is None else min(x.shape[0], steps * batch_size)
    model.train()
    for start in range(0, n, batch_size):
        loss = F.cross_entropy(model(x[start : start + batch_size]), y[start : start + batch_size])
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        if isinstance(model, MaskedMLP):
            model.apply_masks()


def end_of_epoch(name, model, optimizer, strategy, rng, epoch):
    if name == "sparse":
        strategy.on_epoch_end(model, optimizer, epoch)
    elif name == "masked":
        model.set_step(0.3, rng)


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    indices = sum(layer.pattern.index_bytes() for layer in getattr(model, "sparse_layers", list)())
    opt = sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v))
    return {"parameters": params, "structure": buffers + indices, "optimizer": opt}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def _peak_rss_child(name, queue):
    torch.set_num_threads(2)
    # Random stand-ins of the real batches: memory does not depend on the values.
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(50 * 128, SIZES[0], generator=generator), torch.randint(0, 10, (50 * 128,), generator=generator)
    # Compile / load every kernel on a tiny model first: LLVM's own memory is not the model's.
    tiny = SparseMLP((8, 8, 2), dropout=0.3, seed=0)
    tiny(torch.rand(4, 8)).sum().backward()
    baseline = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak (VmHWM) to the current RSS
    model = build(name)
    optimizer = torch.optim.SGD(model.parameters(), **RECIPE)
    train_epoch(model, optimizer, x, y, 128, steps=50)
    end_of_epoch(name, model, optimizer, SET(0.3, seed=0), np.random.default_rng(0), 1)
    queue.put((_status_kib("VmHWM") - baseline) * 1024)


def peak_rss(name) -> int:
    """Peak RSS growth of a fresh process (spawned: forking after thread pools start can deadlock)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_rss_child, args=(name, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="../shared/data", help="folder with fashion_mnist/ (offline copy)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per competitor (median reported)")
    parser.add_argument("--steps", type=int, default=None, help="limit an epoch to this many steps (quick runs)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_num_threads(args.threads)
    warm_up()
    data = load_dataset("fashion_mnist", data_dir=args.data_dir, download=False)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    names = ("dense", "masked", "sparse")
    models = {n: build(n) for n in names}
    opts = {n: torch.optim.SGD(models[n].parameters(), **RECIPE) for n in names}
    strategy, rng = SET(0.3, seed=0), np.random.default_rng(0)
    for n in names:  # warm-up: compile, allocate, fill caches
        train_epoch(models[n], opts[n], x, y, 128, steps=20)
    times = {n: [] for n in names}
    for epoch in range(1, args.repeats + 1):
        for n in names:
            start = time.perf_counter()
            train_epoch(models[n], opts[n], x, y, 128, steps=args.steps)
            end_of_epoch(n, models[n], opts[n], strategy, rng, epoch)
            times[n].append(time.perf_counter() - start)
    print(f"torch {torch.__version__}, threads {args.threads}, {x.shape[0]} samples, batch 128, epochs {args.repeats}")
    print(
        f"{'model':8} {'epoch s (median)':>17} {'all runs':>24} {'speed-up':>9} {'weights+idx MB':>15} "
        f"{'opt state MB':>13} {'peak RSS MB':>12}"
    )
    median = {n: statistics.median(times[n]) for n in names}
    for n in names:
        mem = state_bytes(models[n], opts[n])
        rss = peak_rss(n)
        runs = ", ".join(f"{t:.2f}" for t in times[n])
        print(
            f"{n:8} {median[n]:17.2f} {runs:>24} {median['dense'] / median[n]:8.1f}x "
            f"{(mem['parameters'] + mem['structure']) / 2**20:15.2f} {mem['optimizer'] / 2**20:13.2f} "
            f"{rss / 2**20:12.1f}"
        )
    sparse_params = sum(p.numel() for p in models["sparse"].parameters())
    dense_params = sum(p.numel() for p in models["dense"].parameters())
    print(
        f"sparse vs dense: {median['dense'] / median['sparse']:.1f}x faster, "
        f"{median['masked'] / median['sparse']:.1f}x faster than masked, "
        f"parameters {sparse_params:,} vs {dense_params:,} ({sparse_params / dense_params:.3f} of dense)"
    )


if __name__ == "__main__":
    main()
