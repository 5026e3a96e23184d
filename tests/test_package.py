"""The package's public face: ``evosparse.train`` stays the subpackage, every exported name exists."""

from __future__ import annotations

import types

import evosparse


def test_train_is_the_subpackage_and_its_function_is_run_training():
    import evosparse.train as train_package

    assert isinstance(train_package, types.ModuleType) and evosparse.train is train_package
    assert evosparse.run_training is train_package.train and callable(evosparse.run_training)


def test_every_exported_name_exists():
    assert all(hasattr(evosparse, name) for name in evosparse.__all__)
