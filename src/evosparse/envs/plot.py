"""A picture of one week of an episode: load and PV, price, battery state, and the devices' powers.

matplotlib is optional (``pip install evosparse[plot]``) and imported only here, with the Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

POWER_NAMES = ("battery", "hvac", "ev", "appliance", "generator", "position", "shed", "curtailed")


def require_matplotlib():
    """``matplotlib.pyplot`` on the Agg backend, or an ImportError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("plotting needs matplotlib: pip install 'evosparse[plot]'") from error
    return plt


def plot_week(
    log: dict[str, np.ndarray], path: str | Path, *, week: int = 0, steps_per_day: int = 24, title: str = ""
) -> Path:
    """Write a PNG of week ``week`` (0 = the first) of an environment's log; returns the path."""
    plt = require_matplotlib()
    steps = 7 * steps_per_day
    n = len(log["reward"])
    if week < 0 or week * steps >= n:
        raise ValueError(f"week must be in [0, {max((n - 1) // steps, 0)}] for an episode of {n} steps, got {week}")
    window = slice(week * steps, min((week + 1) * steps, n))
    hours = np.arange(window.start, window.stop) * 24.0 / steps_per_day
    figure, axes = plt.subplots(4, 1, figsize=(11, 9), sharex=True)
    top = axes[0]
    for name, label in (("load", "load"), ("pv", "PV"), ("grid_import", "grid import"), ("grid_export", "grid export")):
        if name in log:
            top.plot(hours, log[name][window], label=label, linewidth=1)
    top.set_ylabel("kWh per step")
    top.legend(loc="upper right", fontsize=8, ncol=4)
    axes[1].step(hours, log["price"][window], where="post", color="tab:red", linewidth=1)
    axes[1].set_ylabel("price / kWh")
    if "soc" in log:
        axes[2].plot(hours, log["soc"][window], color="tab:green", linewidth=1)
    axes[2].set_ylabel("battery kWh")
    for name in POWER_NAMES:
        if name in log and np.any(log[name][window]):
            axes[3].plot(hours, log[name][window], label=name, linewidth=1)
    axes[3].axhline(0.0, color="black", linewidth=0.5)
    axes[3].set_ylabel("actions, kWh per step")
    axes[3].set_xlabel("hour of the episode")
    axes[3].legend(loc="upper right", fontsize=8, ncol=4)
    figure.suptitle(title or f"week {week}")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
