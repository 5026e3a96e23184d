"""Inference speed of the networks a comparison produced: every strategy's final (truly sparse) network
against the dense baseline, side by side in one process, on the test set.

For each run folder of ``evosparse compare`` (seed 0 by default) the final model is rebuilt from its
checkpoint -- for the dense-to-sparse methods that is the pruned network after its conversion to
SparseLinear layers -- and the test set is classified in batches, alternating between the models so that
machine noise hits all alike. Printed: median time per batch, speed-up over dense, and the FLOPs ratio.

Run: python benchmarks/bench_pruned_inference.py /work/bench/compare_fmnist [--batch 100] [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from evosparse.data import load_dataset
from evosparse.sparse import set_num_threads, warm_up
from evosparse.train.checkpoint import load_checkpoint
from evosparse.train.config import TrainConfig
from evosparse.train.metrics import evaluate, inference_flops
from evosparse.train.run import build_trainer, load_tensors


def load_final_model(folder: Path, dataset):
    checkpoint = load_checkpoint(folder / "checkpoint.pt")
    config = TrainConfig.from_dict(checkpoint["config"])
    trainer = build_trainer(config, load_tensors(config, dataset))
    trainer.load_state_dict(checkpoint["trainer"])
    model = trainer.model.eval()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("compare_dir", type=Path)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_num_threads(args.threads)
    warm_up()
    folders = sorted(p for p in args.compare_dir.glob(f"*-s{args.seed}") if (p / "summary.json").exists())
    config = TrainConfig.from_file(folders[0] / "config.toml")
    dataset = load_dataset(config.data.dataset, data_dir=config.data.data_dir, download=False)
    tensors = load_tensors(config, dataset)
    x = tensors.x_test
    models = {p.name.rsplit("-s", 1)[0]: load_final_model(p, dataset) for p in folders}
    if "dense" not in models:
        raise SystemExit("the comparison has no dense run to compare with")
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.no_grad():
        for _ in range(args.repeats):
            for name, model in models.items():
                start = time.perf_counter()
                for begin in range(0, x.shape[0], args.batch):
                    model(x[begin : begin + args.batch])
                times[name].append((time.perf_counter() - start) / ((x.shape[0] + args.batch - 1) // args.batch))
    dense_time = statistics.median(times["dense"])
    dense_flops = inference_flops(models["dense"])
    print(f"{x.shape[0]} test examples, batch {args.batch}, {args.threads} thread(s), median of {args.repeats}\n")
    print("| run | test accuracy % | ms per batch | speed-up vs dense | FLOPs / dense |")
    print("|---|---|---|---|---|")
    for name, model in sorted(models.items(), key=lambda item: -statistics.median(times[item[0]])):
        median = statistics.median(times[name])
        _, accuracy = evaluate(model, tensors.x_test, tensors.y_test)
        print(f"| {name} | {100 * accuracy:.2f} | {1000 * median:.3f} | {dense_time / median:.1f}x | "
              f"{inference_flops(model) / dense_flops:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
