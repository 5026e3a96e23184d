"""Accuracy: SET-MLP vs the dense MLP of the same architecture, same recipe, same epochs, several seeds.

Both runs go through the library's own ``evosparse.train.train`` (what ``evosparse train`` does), so the
recipe is identical but for ``model``: sparse (Erdos-Renyi epsilon=20 + SET) or dense (nn.Linear).

Run (the recorded results in BENCHMARKS.md):
    python benchmarks/bench_accuracy.py --dataset fashion_mnist --epochs 30 --seeds 0,1,2
    python benchmarks/bench_accuracy.py --dataset digits --seeds 0,1,2,3,4    # the CLI defaults
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from evosparse.data import load_dataset
from evosparse.train import TrainConfig, train

PAPER_RECIPE = {  # SET paper, Fashion-MNIST MLP (Mocanu et al. 2018), All-ReLU from Curci et al. 2021
    "hidden": (1000, 1000, 1000),
    "activation": "allrelu",
    "dropout": 0.3,
    "epsilon": 20.0,
    "zeta": 0.3,
    "lr": 0.01,
    "momentum": 0.9,
    "weight_decay": 2e-4,
    "batch_size": 128,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the config default)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--recipe",
        choices=("paper", "cli-defaults"),
        default=None,
        help="paper: the SET paper's MLP recipe; cli-defaults: TrainConfig defaults "
        "(default: paper, except cli-defaults for digits)",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    recipe = args.recipe or ("cli-defaults" if args.dataset == "digits" else "paper")
    overrides = dict(PAPER_RECIPE) if recipe == "paper" else {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    seeds = [int(s) for s in args.seeds.split(",")]
    dataset = load_dataset(args.dataset, data_dir=None if args.dataset == "digits" else args.data_dir, download=False)

    results: dict[str, list[dict]] = {"sparse": [], "dense": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for model in ("sparse", "dense"):
                config = TrainConfig.from_dict(
                    dict(
                        dataset=args.dataset,
                        model=model,
                        seed=seed,
                        threads=args.threads,
                        out_dir=str(Path(tmp) / f"{model}-{seed}"),
                        **overrides,
                    )
                )
                summary = train(config, dataset=dataset, progress=False, log=None).summary
                results[model].append(summary)
                print(
                    f"seed {seed} {model:6}: final test accuracy {summary['final_test_accuracy']:.4f}, "
                    f"best {summary['best_test_accuracy']:.4f}, connections {summary['nnz']:,}, "
                    f"training {summary['train_seconds']:.1f} s",
                    flush=True,
                )

    print(f"\n{args.dataset}, recipe {recipe}, epochs {config.run.epochs}, seeds {seeds}")
    print(
        f"{'model':7} {'final acc mean':>15} {'spread (min-max)':>18} {'best acc mean':>14} "
        f"{'connections':>12} {'train s/run':>12}"
    )
    for model, rows in results.items():
        final = [r["final_test_accuracy"] for r in rows]
        best = [r["best_test_accuracy"] for r in rows]
        print(
            f"{model:7} {100 * statistics.mean(final):14.2f}% {100 * min(final):8.2f}-{100 * max(final):.2f}% "
            f"{100 * statistics.mean(best):13.2f}% {rows[0]['nnz']:12,} "
            f"{statistics.mean(r['train_seconds'] for r in rows):12.1f}"
        )
    gap = statistics.mean(r["final_test_accuracy"] for r in results["sparse"]) - statistics.mean(
        r["final_test_accuracy"] for r in results["dense"]
    )
    share = results["sparse"][0]["nnz"] / results["dense"][0]["nnz"]
    print(f"sparse - dense: {100 * gap:+.2f} points (mean final accuracy), with {100 * share:.2f}% of the connections")


if __name__ == "__main__":
    main()
