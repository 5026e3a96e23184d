"""Learning curves: the evaluation return of one or more RL runs against environment steps, in one PNG.

Each run folder's ``history.csv`` (written by :mod:`evosparse.rl.run`) gives one line (the mean return of
the evaluation episodes) and a band (plus / minus their standard deviation). Runs that differ only in the
seed can be averaged into one line with ``group_seeds=True``: the band is then the spread across seeds.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evosparse.envs.plot import require_matplotlib


def read_returns(run_dir: str | Path) -> dict[str, np.ndarray]:
    """``step``, ``return_mean`` and ``return_std`` columns of a run's ``history.csv``."""
    path = Path(run_dir) / "history.csv"
    if not path.is_file():
        raise FileNotFoundError(f"RUN {run_dir} has no history.csv (give a folder written by 'evosparse rl train')")
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if not rows or not {"step", "return_mean", "return_std"} <= set(rows[0]):
        raise ValueError(f"RUN {run_dir}: history.csv has no evaluation rows (step, return_mean, return_std)")
    return {name: np.array([float(row[name]) for row in rows]) for name in ("step", "return_mean", "return_std")}


def run_label(run_dir: str | Path, *, with_seed: bool = True) -> str:
    """'sac set 0.5/0.5 s0' from the run's summary.json (the folder name when there is none)."""
    path = Path(run_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        label = f"{summary['algo']} {summary['strategy']}"
        if summary["strategy"] != "dense":
            label += f" {summary['actor_density']:g}/{summary['critic_density']:g}"
        return label + (f" s{summary['seed']}" if with_seed else "")
    except (OSError, ValueError, KeyError, TypeError):
        return Path(run_dir).name


def plot_returns(
    run_dirs: Sequence[str | Path], out: str | Path, *, title: str | None = None, group_seeds: bool = False
) -> Path:
    """Draw the learning curves of ``run_dirs`` into ``out`` (PNG) and return its path."""
    if not run_dirs:
        raise ValueError("plot returns needs at least one RUN folder")
    plt = require_matplotlib()
    curves: dict[str, list[dict[str, np.ndarray]]] = {}
    for run_dir in run_dirs:
        label = run_label(run_dir, with_seed=not group_seeds)
        curves.setdefault(label if group_seeds else f"{label} ({Path(run_dir).name})", []).append(read_returns(run_dir))
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, runs in curves.items():
        if len(runs) == 1:
            steps, mean, band = runs[0]["step"], runs[0]["return_mean"], runs[0]["return_std"]
        else:  # seeds: on the steps all of them evaluated
            length = min(len(run["step"]) for run in runs)
            steps = runs[0]["step"][:length]
            means = np.stack([run["return_mean"][:length] for run in runs])
            mean, band = means.mean(axis=0), means.std(axis=0)
            label = f"{label} ({len(runs)} seeds)"
        (line,) = axes.plot(steps, mean, label=label)
        axes.fill_between(steps, mean - band, mean + band, color=line.get_color(), alpha=0.2, linewidth=0)
    axes.set_xlabel("environment steps")
    axes.set_ylabel("evaluation return")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
