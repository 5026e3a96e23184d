"""Pictures of a network and of a run's history are drawn (matplotlib, optional)."""

from __future__ import annotations

import pytest

from evosparse.neat.draw import draw_genome, node_depths, plot_history


def test_node_depths_put_hidden_nodes_between_inputs_and_outputs(make_genome):
    genome = make_genome(
        [(0, -1, 1, 1.0), (1, 1, 2, 1.0), (2, 2, 0, 1.0), (3, -2, 0, 1.0), (4, 2, 2, 0.5)], hidden=[1, 2]
    )
    depth = node_depths(genome, 2, 1)
    assert depth[-1] == depth[-2] == 0 and depth[1] == 1 and depth[2] == 2 and depth[0] == 3


def test_draw_and_plot_write_files(make_genome, grow, grown_config, tmp_path):
    pytest.importorskip("matplotlib")
    genome = make_genome([(0, -1, 1, 1.0), (1, 1, 0, -2.0), (2, -1, 0, 0.5, False), (3, 1, 1, 0.3)], hidden=[1])
    draw_genome(genome, 1, 1, tmp_path / "net.png")
    population = grow(grown_config, seed=0, generations=3)
    plot_history(population.history, tmp_path / "history.png")
    assert (tmp_path / "net.png").stat().st_size > 1000 and (tmp_path / "history.png").stat().st_size > 1000
