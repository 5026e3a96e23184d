"""Peak memory of each phase of a wide run: build, a SET update, evaluation, writing and reading a checkpoint.

The issue's memory target is for the whole `evosparse train` command on the one-million-neuron shape of Liu et
al. 2021 (3312-600000x3-5, epsilon 17, 54M connections): <= 1.6 GiB. The model itself (weights, int32 columns,
uint16 row offsets of the row-blocked layout, SGD momentum) needs ~14 bytes per connection, ~0.75 GB; this script
shows what each phase adds on top, so a regression is found in the phase that causes it. Each phase resets the
kernel's peak counter (/proc/self/clear_refs) and reports VmHWM above the resident memory before it (Linux only).

    python benchmarks/bench_memory.py                       # the Liu shape (~2 minutes)
    python benchmarks/bench_memory.py --width 60000         # a tenth of it
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from evosparse.nn import SparseMLP
from evosparse.sparse import warm_up
from evosparse.topology import SET
from evosparse.train.checkpoint import load_checkpoint, save_checkpoint
from evosparse.train.metrics import eval_batch_size, evaluate


def memory_gib() -> tuple[float, float]:
    """(resident, peak resident since the last reset) of this process, in GiB."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 2**20, int(fields["VmHWM"].split()[0]) / 2**20


def reset_peak() -> float:
    """Reset the peak counter to the current resident memory; returns that memory in GiB."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return memory_gib()[0]


def phase(name: str, run) -> object:
    before = reset_peak()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    after, peak = memory_gib()
    print(f"{name:34s} {seconds:7.2f} s   resident {before:5.2f} -> {after:5.2f} GiB   peak +{peak - before:5.3f} GiB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=600_000, help="neurons of each of the three hidden layers")
    parser.add_argument("--epsilon", type=float, default=17.0)
    parser.add_argument("--block-rows", type=int, default=16384, help="layout of the wide layers (1: CSR order)")
    parser.add_argument("--test-rows", type=int, default=61, help="rows evaluated (lung's test split: 61)")
    args = parser.parse_args()
    torch.manual_seed(0)
    warm_up()  # compile (or load) the kernels first: compilation is not what is measured
    start = reset_peak()
    print(f"# 3312-{args.width}x3-5, epsilon {args.epsilon}, block_rows {args.block_rows}; at start {start:.2f} GiB")

    def build():
        model = SparseMLP([3312, args.width, args.width, args.width, 5], epsilon=args.epsilon, seed=0,
                          block_rows=args.block_rows)  # fmt: skip
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)
        for parameter in model.parameters():  # the momentum a trained model carries
            optimizer.state[parameter]["momentum_buffer"] = 0.01 * torch.randn_like(parameter)
        return model, optimizer

    model, optimizer = phase("build (model + momentum)", build)
    nnz = sum(p.numel() for p in model.parameters())
    print(f"# {nnz / 1e6:.1f}M parameters; evaluation batch {eval_batch_size(model)} rows")
    x = torch.randn(args.test_rows, 3312)
    y = torch.arange(args.test_rows) % 5
    phase("evaluation (default batches)", lambda: evaluate(model, x, y))
    phase("evaluation, one batch of all rows", lambda: evaluate(model, x, y, batch_size=args.test_rows))
    strategy = SET(0.3, seed=0)
    phase("SET update (zeta 0.3)", lambda: strategy._maybe_update(model, optimizer, 1))
    before = [layer.values.detach().clone() for layer in model.net if hasattr(layer, "values")]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.pt"

        def save():
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            save_checkpoint(path, config={}, trainer=state, finished=False)

        phase("checkpoint: state dicts + write", save)
        print(f"# checkpoint file {path.stat().st_size / 2**30:.2f} GiB")
        saved = phase("checkpoint: read + verify", lambda: load_checkpoint(path))["trainer"]["model"]
        phase("checkpoint: load into the model", lambda: model.load_state_dict(saved))
        saved = None  # the file's tensors go (the model's pattern keeps the arrays it adopted)
    after = [layer.values.detach() for layer in model.net if hasattr(layer, "values")]
    same = all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    print(f"# resident at the end {memory_gib()[0]:.2f} GiB; weights equal after the round trip: {same}")


if __name__ == "__main__":
    main()
