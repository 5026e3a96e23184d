"""Plots a person would rather look at than read (matplotlib, imported only when a plot is drawn).

* :func:`plot_comparison` -- test accuracy against density and against training FLOPs, one line per
  strategy, the dense network as a reference band (what ``evosparse compare`` writes).
* :func:`plot_input_degree_maps` -- the SET paper's picture (Mocanu et al. 2018, Fig. 4): the number of
  connections of each input pixel, drawn as an image at several epochs; evolution concentrates the
  connections on the pixels that carry information and starves the empty border.
* :func:`plot_degree_distribution` -- histograms of in- and out-degrees of every sparse layer.
* :func:`plot_connectivity_over_time` -- connections of every layer, and test accuracy, epoch by epoch (how
  pruning methods shrink the network, how neuron importance pruning shrinks it further).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - matplotlib is in the test and plot extras
        raise ImportError("plots need matplotlib: pip install 'evosparse[plot]'") from error
    return plt


def plot_comparison(table: Sequence[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """accuracy_vs_density.png and accuracy_vs_flops.png from :func:`evosparse.train.compare.aggregate` rows."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    dense = [r for r in table if r["strategy"] == "dense"]
    strategies = sorted({r["strategy"] for r in table} - {"dense"})
    paths = []
    for x_key, x_label, name in (
        ("density", "weight density (log)", "accuracy_vs_density.png"),
        ("train_flops", "training FLOPs (log)", "accuracy_vs_flops.png"),
    ):
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for strategy in strategies:
            rows = sorted((r for r in table if r["strategy"] == strategy), key=lambda r: r[x_key])
            axes.errorbar(
                [r[x_key] for r in rows],
                [r["accuracy_mean"] for r in rows],
                yerr=[r["accuracy_std"] for r in rows],
                marker="o",
                capsize=3,
                label=strategy,
            )
        for r in dense:
            if x_key == "density":
                axes.axhspan(r["accuracy_mean"] - r["accuracy_std"], r["accuracy_mean"] + r["accuracy_std"], alpha=0.2,
                             color="grey")  # fmt: skip
                axes.axhline(r["accuracy_mean"], color="grey", linestyle="--", label="dense")
            else:
                axes.errorbar([r[x_key]], [r["accuracy_mean"]], yerr=[r["accuracy_std"]], marker="s", color="black",
                              capsize=3, label="dense")  # fmt: skip
        axes.set_xscale("log")
        axes.set_xlabel(x_label)
        axes.set_ylabel("test accuracy (%)")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8, ncol=2)
        figure.tight_layout()
        path = out_dir / name
        figure.savefig(path, dpi=120)
        plt.close(figure)
        paths.append(path)
    return paths


def plot_input_degree_maps(
    degrees: np.ndarray,
    epochs: Sequence[int],
    path: str | Path,
    *,
    image_shape: tuple[int, int] | None = None,
    columns: int = 5,
) -> Path:
    """Input-neuron degrees (one row per recorded epoch) as images, for up to ``columns * 2`` epochs.

    Args:
        degrees: shape (n_epochs, n_inputs), connections of each input neuron after each epoch.
        epochs: the epoch of each row.
        image_shape: (height, width) of the input (default: square if n_inputs is a square).
    """
    plt = _pyplot()
    degrees = np.asarray(degrees)
    n_inputs = degrees.shape[1]
    if image_shape is None:
        side = math.isqrt(n_inputs)
        if side * side != n_inputs:
            raise ValueError(f"image_shape is needed: {n_inputs} inputs is not a square image")
        image_shape = (side, side)
    if image_shape[0] * image_shape[1] != n_inputs:
        raise ValueError(f"image_shape {image_shape} does not hold {n_inputs} inputs")
    shown = np.unique(np.linspace(0, len(epochs) - 1, min(len(epochs), 2 * columns)).round().astype(int))
    rows = math.ceil(len(shown) / columns)
    figure, axes = plt.subplots(rows, min(columns, len(shown)), figsize=(2.2 * min(columns, len(shown)), 2.4 * rows),
                                squeeze=False)  # fmt: skip
    vmax = float(degrees.max()) or 1.0
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, shown):
        image = ax.imshow(degrees[index].reshape(image_shape), cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(f"epoch {epochs[index]}", fontsize=9)
    figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="connections per input neuron")
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_degree_distribution(model, path: str | Path) -> Path:
    """Histograms of the in-degree (connections per output neuron) and out-degree of every sparse layer."""
    from evosparse.topology.strategy import sparse_layers

    plt = _pyplot()
    layers = sparse_layers(model)
    if not layers:
        raise ValueError("the model has no sparse layer")
    figure, axes = plt.subplots(2, len(layers), figsize=(3.2 * len(layers), 5), squeeze=False)
    for index, layer in enumerate(layers):
        for row, (degrees, what) in enumerate(
            (
                (layer.pattern.row_degrees(), "in-degree of outputs"),
                (layer.pattern.col_degrees(), "out-degree of inputs"),
            )
        ):
            ax = axes[row, index]
            ax.hist(degrees, bins=min(50, int(degrees.max()) + 1 if degrees.size else 1), color=f"C{row}")
            ax.set_title(f"layer {index + 1}: {what}", fontsize=8)
            ax.set_xlabel("connections")
    axes[0, 0].set_ylabel("neurons")
    axes[1, 0].set_ylabel("neurons")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_connectivity_over_time(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Connections per layer (log scale) and test accuracy against the epoch, from a run's history rows."""
    plt = _pyplot()
    rows = [r for r in history if "nnz" in r]
    if not rows:
        raise ValueError("the history has no connection counts (nnz columns)")
    epochs = [r["epoch"] for r in rows]
    layers = sorted({k for r in rows for k in r if k.startswith("nnz_layer")}, key=lambda k: int(k[9:]))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    for key in layers:
        top.plot(epochs, [r.get(key, math.nan) for r in rows], marker=".", label=f"layer {key[9:]}")
    top.set_yscale("log")
    top.set_ylabel("connections")
    top.legend(fontsize=8)
    top.grid(True, alpha=0.3)
    bottom.plot(epochs, [100 * r.get("test_accuracy", math.nan) for r in rows], marker=".", color="black")
    bottom.set_ylabel("test accuracy (%)")
    bottom.set_xlabel("epoch")
    bottom.grid(True, alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
