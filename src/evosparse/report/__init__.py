"""Pictures of runs: strategy comparisons, degree distributions, connectivity over time."""

from evosparse.report.plots import (
    plot_comparison,
    plot_connectivity_over_time,
    plot_degree_distribution,
    plot_input_degree_maps,
)

__all__ = ["plot_comparison", "plot_connectivity_over_time", "plot_degree_distribution", "plot_input_degree_maps"]
