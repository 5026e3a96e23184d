"""Pictures: a genome's network, and fitness and species over generations (matplotlib, optional).

Layout of a network: inputs on the left, outputs on the right, hidden nodes in columns by their
longest distance from the inputs. Edge width grows with |weight|; red is positive, blue negative;
disabled genes are dotted grey (``show_disabled``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evosparse.neat.genome import Genome
from evosparse.neat.reporting import GenerationStats


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("drawing needs matplotlib: pip install matplotlib (or evosparse[plot])") from None
    return plt


def node_depths(genome: Genome, n_inputs: int, n_outputs: int) -> dict[int, int]:
    """Column of each node: inputs 0, hidden nodes their longest path from an input (cycles ignored),
    outputs one column right of everything."""
    depth = {-(i + 1): 0 for i in range(n_inputs)}
    hidden = [n for n in genome.node_ids.tolist() if n >= n_outputs]
    depth.update({n: 1 for n in hidden})
    edges = [(s, t) for s, t in zip(genome.sources.tolist(), genome.targets.tolist()) if t >= n_outputs and s != t]
    for _ in range(len(hidden)):  # relax: at most len(hidden) rounds for the longest acyclic path
        changed = False
        for source, target in edges:
            if source in depth and depth[source] + 1 > depth[target] and depth[source] + 1 <= len(hidden):
                depth[target] = depth[source] + 1
                changed = True
        if not changed:
            break
    last = max([d for n, d in depth.items() if n >= n_outputs], default=0) + 1
    depth.update({o: last for o in range(n_outputs)})
    return depth


def draw_genome(
    genome: Genome,
    n_inputs: int,
    n_outputs: int,
    path: str | Path | None = None,
    *,
    show_disabled: bool = True,
    title: str | None = None,
):
    """Draw the network of ``genome``; save to ``path`` if given; return the matplotlib figure."""
    plt = _pyplot()
    depth = node_depths(genome, n_inputs, n_outputs)
    columns: dict[int, list[int]] = {}
    for node in sorted(depth, key=lambda n: (n >= 0, n)):
        columns.setdefault(depth[node], []).append(node)
    position = {node: (x, (i + 1) / (len(nodes) + 1)) for x, nodes in columns.items() for i, node in enumerate(nodes)}
    figure, axes = plt.subplots(figsize=(2 + 1.5 * len(columns), 4))
    largest = max([abs(w) for w in genome.weights.tolist()] + [1e-9])
    for source, target, weight, enabled in zip(
        genome.sources.tolist(), genome.targets.tolist(), genome.weights.tolist(), genome.enabled.tolist()
    ):
        if not enabled and not show_disabled:
            continue
        (x0, y0), (x1, y1) = position[source], position[target]
        if source == target:
            axes.plot([x0], [y0 + 0.04], marker="o", markersize=14, fillstyle="none", color="grey")
            continue
        style = {"color": "red" if weight > 0 else "blue", "linewidth": 0.5 + 3 * abs(weight) / largest}
        if not enabled:
            style = {"color": "lightgrey", "linestyle": ":", "linewidth": 1}
        axes.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", **style})
    for node, (x, y) in position.items():
        colour = "lightgreen" if node < 0 else ("lightblue" if node < n_outputs else "white")
        axes.scatter([x], [y], s=500, color=colour, edgecolors="black", zorder=3)
        axes.text(x, y, str(node), ha="center", va="center", fontsize=8, zorder=4)
    axes.set_axis_off()
    hidden, connections = genome.size(n_outputs)
    axes.set_title(title or f"genome {genome.key}: {hidden} hidden, {connections} enabled connections")
    if path is not None:
        figure.savefig(path, bbox_inches="tight", dpi=120)
    return figure


def plot_history(history: Sequence[GenerationStats] | Sequence[dict], path: str | Path | None = None):
    """Best and mean fitness, and the number of species, per generation; rows as GenerationStats or CSV dicts."""
    plt = _pyplot()
    rows = [h.as_row() if isinstance(h, GenerationStats) else h for h in history]
    generations = [r["generation"] for r in rows]
    figure, (fitness_axes, species_axes) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    mean = [r["mean_fitness"] for r in rows]
    spread = [r["stdev_fitness"] for r in rows]
    fitness_axes.plot(generations, [r["best_fitness"] for r in rows], label="best")
    fitness_axes.plot(generations, mean, label="mean")
    fitness_axes.fill_between(
        generations,
        [m - s for m, s in zip(mean, spread)],
        [m + s for m, s in zip(mean, spread)],
        alpha=0.2,
        label="mean +- sd",
    )
    fitness_axes.set_ylabel("fitness")
    fitness_axes.legend()
    species_axes.plot(generations, [r["n_species"] for r in rows], color="black")
    species_axes.set_ylabel("species")
    species_axes.set_xlabel("generation")
    if path is not None:
        figure.savefig(path, bbox_inches="tight", dpi=120)
    return figure
