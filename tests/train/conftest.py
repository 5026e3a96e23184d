"""Fixtures of the training tests: the digits data set and small, fast configs."""

from __future__ import annotations

import pytest

from evosparse.train import TrainConfig


def load_digits_dataset():
    """scikit-learn's bundled digits through evosparse.data (no download, no file)."""
    from evosparse.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits():
    return load_digits_dataset()


@pytest.fixture
def small_config(tmp_path) -> TrainConfig:
    """A run of a few tenths of a second: SET rewiring every epoch, dropout on, a fresh folder."""
    return TrainConfig.from_dict(
        dict(
            hidden=(32, 32),
            epsilon=5,
            zeta=0.3,
            decay="constant",
            stop_after=None,
            dropout=0.2,
            lr=0.05,
            epochs=4,
            batch_size=64,
            seed=3,
            out_dir=str(tmp_path / "run"),
        )
    )


@pytest.fixture
def make_trainer(digits):
    """``make_trainer(config, callbacks=(), folder=None)``: a Trainer of ``config`` on digits, default callbacks."""
    from evosparse.train.run import build_trainer, load_tensors

    def make(config: TrainConfig, callbacks=(), folder=None):
        return build_trainer(config, load_tensors(config, digits), folder=folder, callbacks=callbacks)

    return make


@pytest.fixture(autouse=True, scope="module")
def _tiny_models_use_one_thread(one_thread):
    yield
