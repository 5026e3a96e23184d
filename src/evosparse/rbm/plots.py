"""Pictures of an RBM: its samples, its filters, its learning curves (matplotlib, imported when drawing).

* :func:`plot_samples` -- a grid of model samples: Gibbs chains started at data (the reconstructions a
  few steps away) and at random states (what the model generates on its own).
* :func:`plot_filters` -- each hidden unit's weights drawn on the visible geometry; a sparse unit shows
  only where it has connections (grey elsewhere), so XBM's local receptive fields and SET's evolved ones
  are visible at a glance.
* :func:`plot_history` -- train and test reconstruction error per epoch of one or more runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evosparse.envs.plot import require_matplotlib
from evosparse.rbm.model import RBM


def image_shape(n_visible: int, shape: Sequence[int] | None) -> tuple[int, int]:
    """The 2-D picture of one visible vector: ``shape`` if it is 2-D, else the squarest rectangle."""
    if shape is not None and len(shape) == 2 and shape[0] * shape[1] == n_visible:
        return int(shape[0]), int(shape[1])
    rows = int(math.floor(math.sqrt(n_visible)))
    while n_visible % rows:
        rows -= 1
    return rows, n_visible // rows


def _tile(images: np.ndarray, shape: tuple[int, int], columns: int, fill: float) -> np.ndarray:
    """Images (n, pixels) as one array: a grid of ``columns`` columns with a one-pixel border."""
    n = images.shape[0]
    rows = math.ceil(n / columns)
    height, width = shape
    canvas = np.full((rows * (height + 1) + 1, columns * (width + 1) + 1), fill, dtype=np.float64)
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        canvas[1 + r * (height + 1) : (r + 1) * (height + 1), 1 + c * (width + 1) : (c + 1) * (width + 1)] = (
            image.reshape(shape)
        )
    return canvas


def plot_samples(
    rbm: RBM,
    path: str | Path,
    *,
    data: np.ndarray | None = None,
    shape: Sequence[int] | None = None,
    n: int = 50,
    steps: int = 1000,
    rng: int | np.random.Generator | None = 0,
    title: str | None = None,
) -> Path:
    """Two grids: chains started at ``n`` data samples (if given) and at random states, after ``steps`` steps."""
    plt = require_matplotlib()
    picture = image_shape(rbm.n_visible, shape)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    panels = []
    if data is not None:
        start = np.asarray(data)[: min(n, len(data))]
        panels.append(("data", start))
        panels.append((f"chains from the data, {steps} Gibbs steps", rbm.sample(start.shape[0], steps=steps,
                                                                              rng=rng, start=start)))  # fmt: skip
    panels.append((f"chains from random states, {steps} Gibbs steps", rbm.sample(n, steps=steps, rng=rng)))
    columns = 10
    figure, axes = plt.subplots(len(panels), 1, figsize=(columns * 0.9, sum(1 + math.ceil(len(p) / columns)
                                                                              for _, p in panels) * 0.9))  # fmt: skip
    for axis, (label, images) in zip(np.atleast_1d(axes), panels):
        low, high = (0.0, 1.0) if rbm.visible == "bernoulli" else (float(images.min()), float(images.max()))
        axis.imshow(_tile(images, picture, columns, fill=high), cmap="gray", vmin=low, vmax=high)
        axis.set_title(label, fontsize=9)
        axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_filters(
    rbm: RBM, path: str | Path, *, shape: Sequence[int] | None = None, n: int = 100, title: str | None = None
) -> Path:
    """The weights of the first ``n`` hidden units (those with the most connections first), one image each."""
    plt = require_matplotlib()
    picture = image_shape(rbm.n_visible, shape)
    order = np.argsort(-rbm.pattern.row_degrees(), kind="stable")[: min(n, rbm.n_hidden)]
    dense = rbm.to_dense()[order].astype(np.float64)
    scale = float(np.abs(dense).max()) or 1.0
    filters = np.where(rbm.to_dense()[order] != 0, dense / scale, 0.0)
    figure, axis = plt.subplots(figsize=(9, 0.9 * (1 + math.ceil(len(order) / 10))))
    axis.imshow(_tile(filters, picture, 10, fill=0.0), cmap="RdBu_r", vmin=-1, vmax=1)
    axis.set_title(title or f"filters of {len(order)} hidden units (red +, blue -, white: no connection)", fontsize=9)
    axis.axis("off")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_history(histories: dict[str, list[dict]], path: str | Path, *, title: str | None = None) -> Path:
    """Test (solid) and train (dashed) reconstruction error against epochs, one colour per run label."""
    plt = require_matplotlib()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for index, (label, rows) in enumerate(histories.items()):
        epochs = [row["epoch"] for row in rows]
        colour = f"C{index}"
        axis.plot(epochs, [row["test_reconstruction_error"] for row in rows], color=colour, label=f"{label} test")
        axis.plot(epochs, [row["train_reconstruction_error"] for row in rows], color=colour, linestyle="--",
                  label=f"{label} train")  # fmt: skip
    axis.set_xlabel("epoch")
    axis.set_ylabel("reconstruction error (MSE)")
    axis.set_yscale("log")
    axis.legend(fontsize=8)
    if title:
        axis.set_title(title)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
