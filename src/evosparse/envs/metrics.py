"""CityLearn-style key performance indicators of an episode, and the share of the optimality gap closed.

Computed from an environment's per-step ``log`` (arrays named ``grid_import``, ``grid_export``, ``cost``,
``reward`` and, where the environment has them, ``pv``, ``carbon``, ``comfort_violation``, ``unmet``).
CityLearn (Vazquez-Canteli et al., 2020; the 2022 challenge KPIs) reports cost, carbon emissions, ramping,
(daily / all-time) peak, 1 - load factor and discomfort, each as control / no-control; we report raw values,
so ratios can be taken against the ``none`` row.
"""

from __future__ import annotations

import math

import numpy as np

KPI_UNITS = {
    "total_cost": "currency, energy cost + wear + penalties (= -sum of rewards)",
    "energy_cost": "currency, imports - exports (+ fuel, wear)",
    "peak": "kW, largest hourly import",
    "daily_peak": "kW, mean over days of the daily largest import",
    "ramping": "kW, sum of |net(t) - net(t-1)|",
    "load_factor": "mean import / peak import",
    "self_consumption": "share of PV used on site",
    "carbon": "kgCO2 of imports (and of on-site fuel)",
    "comfort": "degree-hours outside the comfort band",
    "unmet": "kWh not delivered (EV, appliance, shed load)",
    "imbalance": "kWh settled at the imbalance price",
    "gap_closed": "(none - controller) / (none - optimum)",
}


def episode_metrics(log: dict[str, np.ndarray], *, steps_per_day: int = 24) -> dict[str, float]:
    """KPIs of one episode from an environment's log (one entry per step)."""
    grid_import, grid_export = log["grid_import"], log["grid_export"]
    net = grid_import - grid_export
    hours = 24.0 / steps_per_day  # energy per step -> power
    n_days = max(len(net) // steps_per_day, 1)
    daily = (
        grid_import[: n_days * steps_per_day].reshape(n_days, -1) if len(net) >= steps_per_day else grid_import[None]
    )
    peak = float(grid_import.max(initial=0.0)) / hours
    metrics = {
        "total_cost": float(-log["reward"].sum()),
        "energy_cost": float(log["cost"].sum()),
        "peak": peak,
        "daily_peak": float(daily.max(axis=1).mean()) / hours,
        "ramping": float(np.abs(np.diff(net)).sum()) / hours,
        "load_factor": float(grid_import.mean() / hours / peak) if peak > 0 else math.nan,
    }
    if "pv" in log and log["pv"].sum() > 0:
        metrics["self_consumption"] = float(1.0 - min(grid_export.sum() / log["pv"].sum(), 1.0))
    if "carbon" in log:  # grid imports at the grid's intensity, plus on-site fuel where there is a generator
        metrics["carbon"] = float((grid_import * log["carbon"]).sum() + log.get("fuel_carbon", np.zeros(1)).sum())
    if "comfort_violation" in log:
        metrics["comfort"] = float(log["comfort_violation"].sum())
    if "unmet" in log:
        metrics["unmet"] = float(log["unmet"].sum())
    if "imbalance" in log:
        metrics["imbalance"] = float(log["imbalance"].sum())
    return metrics


def gap_closed(cost: float, *, no_control: float, optimum: float) -> float:
    """Share of the gap between no control and the perfect-foresight optimum that a controller closes
    (1 = optimal, 0 = no better than no control, negative = worse); NaN when the gap is zero."""
    gap = no_control - optimum
    return (no_control - cost) / gap if abs(gap) > 1e-9 else math.nan


def format_table(rows: dict[str, dict[str, float]], title: str = "") -> str:
    """A fixed-width text table: one row per controller, one column per KPI (the union, in KPI_UNITS order)."""
    names = [name for name in KPI_UNITS if any(name in row for row in rows.values())]
    width = max(11, *(len(name) + 1 for name in names))
    lines = [title] if title else []
    lines.append(f"{'controller':<11}" + "".join(f"{name:>{width}}" for name in names))
    for controller, row in rows.items():
        cells = []
        for name in names:
            value = row.get(name, math.nan)
            cells.append(f"{'-':>{width}}" if value is None or math.isnan(value) else f"{value:>{width}.3f}")
        lines.append(f"{controller:<11}" + "".join(cells))
    return "\n".join(lines)
