"""The one table of strategies: what the config accepts, what the builder builds, what the docs list."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evosparse.nn import DenseMLP, SparseMLP
from evosparse.prune import SNIP, NeuronImportance, Pruning
from evosparse.topology import SET, RigL, StaticSparse
from evosparse.train import TrainConfig, build_model, build_strategy
from evosparse.train import config as config_module
from evosparse.train.strategies import (
    DENSE_TO_SPARSE,
    REGISTRY,
    SPARSE_STRATEGIES,
    STRATEGIES,
    markdown_table,
    strategy_spec,
)

EXPECTED = {
    "set": SET, "rigl": RigL, "static": StaticSparse, "snip": SNIP, "neuron": NeuronImportance,
    "magnitude": Pruning, "imp": Pruning, "gmp": Pruning, "obd": Pruning, "l1": Pruning,
}  # fmt: skip
SIZES = [64, 32, 32, 10]


def config_of(strategy: str) -> TrainConfig:
    return TrainConfig.from_dict(
        {"strategy": strategy, "hidden": (32, 32), "epochs": 20, "prune_start": 2, "prune_end": 8, "prune_cycles": 4}
    )


def test_the_config_takes_its_choices_from_the_table():
    assert config_module.STRATEGIES == STRATEGIES == tuple(REGISTRY)
    assert config_module.DENSE_TO_SPARSE == DENSE_TO_SPARSE
    assert set(SPARSE_STRATEGIES) | set(DENSE_TO_SPARSE) == set(REGISTRY)
    with pytest.raises(ValueError, match="strategy must be one of set, rigl, static, snip, neuron, magnitude"):
        config_of("lottery")
    with pytest.raises(ValueError, match="strategy must be one of set, rigl"):
        strategy_spec("lottery")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_strategy_builds_with_the_model_it_starts_from(name):
    config = config_of(name)
    spec = REGISTRY[name]
    model = build_model(config, SIZES[0], SIZES[-1])
    assert isinstance(model, DenseMLP if spec.starts_dense else SparseMLP)
    generator = torch.Generator().manual_seed(0)
    data = (torch.randn(50, SIZES[0], generator=generator), torch.randint(0, 10, (50,), generator=generator))
    strategy = build_strategy(config, SIZES, data)
    assert type(strategy) is EXPECTED[name]
    flat = set(TrainConfig.flat_names())
    assert set(spec.settings) <= flat, set(spec.settings) - flat  # the settings it reads are real fields


def test_the_strategies_read_their_own_settings():
    imp = build_strategy(config_of("imp").replace(rewind_epoch=0), SIZES)
    assert (imp.pruning.kind, imp.pruning.cycles, imp.rewind_epoch, imp.l1) == ("iterative", 4, 0, 0.0)
    gmp = build_strategy(config_of("gmp"), SIZES)
    assert (gmp.pruning.kind, gmp.rewind_epoch) == ("cubic", None)
    l1 = build_strategy(config_of("l1").replace(l1=0.01), SIZES)
    assert (l1.pruning.kind, l1.l1) == ("one_shot", 0.01)
    data = (torch.zeros(3, 64), torch.zeros(3, dtype=torch.long))
    assert build_strategy(config_of("obd"), SIZES, data).criterion == "obd"
    rigl = build_strategy(config_of("rigl").replace(zeta=0.2, update_unit="step", update_every=100, stop_after=3000))
    assert (rigl.zeta, rigl.schedule.every, rigl.schedule.unit, rigl.schedule.decay) == (0.2, 100, "step", "cosine")
    assert build_strategy(config_of("set").replace(zeta=0.0)) is None
    with pytest.raises(ValueError, match="strategy 'magnitude' starts dense and needs the layer sizes"):
        build_strategy(config_of("magnitude"))
    with pytest.raises(ValueError, match="strategy 'snip' needs training data"):
        build_strategy(config_of("snip"), SIZES)
    assert build_strategy(config_of("rigl").replace(model="dense")) is None


def test_the_readme_shows_the_table_as_it_is():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme  # print(markdown_table()) regenerates it
    assert all(f"| `{name}` |" in markdown_table() for name in REGISTRY)
