"""TrainConfig: every bad field has its error, TOML / JSON round trips, unknown keys are rejected."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.train import TrainConfig
from evosparse.train.config import field_docs, field_names, read_values


def test_defaults_are_valid_and_documented():
    config = TrainConfig()
    assert config.data.dataset == "digits"
    # The SET paper's values where the field has one.
    assert (config.model.epsilon, config.topology.zeta, config.optimizer.momentum, config.optimizer.weight_decay) == (
        20.0,
        0.3,
        0.9,
        0.0002,
    )
    docs = field_docs()
    assert set(docs) == set(field_names())
    assert all(doc and "\n" not in doc for doc in docs.values())


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().optimizer.lr = 0.1


# One bad value per field (and per rule), with the words the message must contain.
BAD_FIELDS = [
    ("dataset", "", "dataset must be a non-empty string"),
    ("dataset", 3, "dataset must be a non-empty string"),
    ("data_dir", "", "data_dir must be a non-empty string or None"),
    ("data_seed", -1, "data_seed must be an integer >= 0, got -1"),
    ("download", "yes", "download must be true or false"),
    ("data", "", "data must be a non-empty string or None"),
    ("data", "table.xlsx", "data file must end in one of .npz, .csv, .tsv, .csv.gz, .tsv.gz, .parquet, .mat"),
    ("label_column", "y", "label_column ('y') applies to a --data table; give data=FILE"),
    ("output_lr_fan_in", 0, "output_lr_fan_in must be an integer >= 1 or None, got 0"),
    ("model", "conv", "model must be one of sparse, dense; got 'conv'"),
    ("hidden", (), "hidden must be one or more positive integers"),
    ("hidden", (64, 0), "hidden must be one or more positive integers (e.g. 256,256), got [64, 0]"),
    ("hidden", (64, 2.5), "hidden must be one or more positive integers"),
    ("hidden", "64,64", "hidden must be one or more positive integers"),
    ("activation", "gelu", "activation must be one of relu, srelu, allrelu, tanh, sigmoid; got 'gelu'"),
    ("alpha", -0.1, "alpha must be a finite number >= 0, got -0.1"),
    ("dropout", 1.0, "dropout must be in [0, 1), got 1.0"),
    ("dropout", -0.1, "dropout must be in [0, 1), got -0.1"),
    ("epsilon", 0, "epsilon must be a finite number > 0, got 0"),
    ("epsilon", -3.0, "epsilon must be a finite number > 0, got -3.0"),
    ("epsilon", math.inf, "epsilon must be a finite number > 0, got inf"),
    ("weight_init", "xavier", "weight_init must be one of fan_in, paper; got 'xavier'"),
    ("backend", "cuda", "backend must be one of auto, numba, torch; got 'cuda'"),
    ("block_rows", -1, "block_rows must be 0 (automatic) or an integer in [1, 65536] (1: CSR order), got -1"),
    ("block_rows", 70000, "block_rows must be 0 (automatic) or an integer in [1, 65536] (1: CSR order), got 70000"),
    ("zeta", 1.2, "zeta must be in [0, 1), got 1.2"),
    ("zeta", 1.0, "zeta must be in [0, 1), got 1.0"),
    ("zeta", -0.1, "zeta must be in [0, 1), got -0.1"),
    ("zeta", math.nan, "zeta must be in [0, 1), got nan"),
    ("rule", "random", "rule must be one of set, magnitude; got 'random'"),
    ("new_weights", "ones", "new_weights must be one of init, zero; got 'ones'"),
    ("update_every", 0, "update_every must be an integer >= 1, got 0"),
    ("update_every", 1.5, "update_every must be an integer >= 1, got 1.5"),
    ("update_unit", "batch", "update_unit must be one of epoch, step; got 'batch'"),
    ("decay", "linear", "decay must be one of constant, cosine; got 'linear'"),
    ("stop_after", 0, "stop_after must be an integer >= 1 or None, got 0"),
    ("strategy", "lottery", "strategy must be one of set, rigl, static, snip, neuron, magnitude, imp, gmp, obd, l1"),
    ("density", 0.0, "density must be in (0, 1] or None, got 0.0"),
    ("density", 1.5, "density must be in (0, 1] or None, got 1.5"),
    ("prune_start", 0, "prune_start must be an integer >= 1, got 0"),
    ("prune_end", 0, "prune_end must be an integer >= 1, got 0"),
    ("prune_cycles", 0, "prune_cycles must be an integer >= 1, got 0"),
    ("scope", "model", "scope must be one of layer, global; got 'model'"),
    ("rewind_epoch", -1, "rewind_epoch must be an integer >= 0 or None, got -1"),
    ("l1", -1e-3, "l1 must be in [0, inf), got -0.001"),
    ("hessian", "exact", "hessian must be one of gauss_newton, lecun; got 'exact'"),
    ("saliency_samples", 0, "saliency_samples must be an integer >= 1, got 0"),
    ("neuron_fraction", 1.0, "neuron_fraction must be in [0, 1), got 1.0"),
    ("optimizer", "rmsprop", "optimizer must be one of sgd, adam; got 'rmsprop'"),
    ("lr", 0.0, "lr must be a finite number > 0, got 0.0"),
    ("lr", "fast", "lr must be a finite number > 0, got 'fast'"),
    ("momentum", 1.0, "momentum must be in [0, 1), got 1.0"),
    ("nesterov", 1, "nesterov must be true or false, got 1"),
    ("fused_step", "yes", "fused_step must be true or false, got 'yes'"),
    ("weight_decay", -1e-4, "weight_decay must be in [0, inf), got -0.0001"),
    ("epochs", 0, "epochs must be an integer >= 1, got 0"),
    ("epochs", True, "epochs must be an integer >= 1, got True"),
    ("batch_size", 0, "batch_size must be an integer >= 1, got 0"),
    ("seed", -5, "seed must be an integer >= 0, got -5"),
    ("threads", 0, "threads must be an integer >= 1 or None, got 0"),
    ("out_dir", "  ", "out_dir must be a non-empty string or None"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_FIELDS, ids=[f"{n}={v!r}" for n, v, _ in BAD_FIELDS])
def test_bad_field_names_field_value_and_range(name, value, message):
    with pytest.raises(ValueError) as error:
        TrainConfig.from_dict({name: value})
    assert message in str(error.value)


def test_every_field_has_a_bad_value_test():
    tested = {name for name, _, _ in BAD_FIELDS}
    assert tested == set(field_names())


PRUNING_RULES = [
    (dict(prune_start=10, prune_end=5), "prune_end (5) must be >= prune_start (10)"),
    (dict(strategy="magnitude", epochs=5, prune_start=5, prune_end=5), "prune_start (5) must be < epochs (5)"),
    (dict(strategy="gmp", epochs=10, prune_start=2, prune_end=10), "prune_end (10) must be < epochs (10)"),
    (dict(strategy="imp", epochs=20, prune_start=2, prune_end=9, prune_cycles=3), "evenly spaced"),
    (dict(strategy="imp", epochs=20, prune_start=5, prune_end=9, rewind_epoch=6), "rewind_epoch (6) must be <="),
]


@pytest.mark.parametrize(("changes", "message"), PRUNING_RULES)
def test_pruning_rules(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig.from_dict(changes)


def test_cosine_decay_needs_stop_after():
    with pytest.raises(ValueError, match="decay='cosine' needs stop_after"):
        TrainConfig.from_dict(dict(decay="cosine", stop_after=None))


def test_nesterov_needs_sgd_with_momentum():
    assert TrainConfig.from_dict(dict(nesterov=True)).optimizer.nesterov
    with pytest.raises(ValueError, match="nesterov=True needs optimizer='sgd' and momentum > 0"):
        TrainConfig.from_dict(dict(nesterov=True, momentum=0.0))
    with pytest.raises(ValueError, match="nesterov=True needs"):
        TrainConfig.from_dict(dict(nesterov=True, optimizer="adam"))


def test_containers_and_numbers_are_normalised():
    config = TrainConfig.from_dict(dict(hidden=[64, 32], lr=1, epsilon=10))
    assert config.model.hidden == (64, 32)
    assert isinstance(config.optimizer.lr, float) and isinstance(config.model.epsilon, float)


def test_replace_validates_and_rejects_unknown_names():
    assert TrainConfig().replace(lr=0.2).optimizer.lr == 0.2
    with pytest.raises(ValueError, match="zeta must be in"):
        TrainConfig().replace(zeta=2.0)
    with pytest.raises(ValueError, match="unknown key"):
        TrainConfig().replace(learning_rate=0.2)


# ---- round trips ---------------------------------------------------------------------------------------
UNUSUAL = TrainConfig.from_dict(
    dict(
        dataset="mnist",
        data_dir='C:\\data "shared"',
        model="dense",
        hidden=(1000, 1000, 1000),
        activation="allrelu",
        dropout=0.3,
        epsilon=13.5,
        zeta=0.25,
        decay="constant",
        stop_after=None,
        update_unit="step",
        optimizer="adam",
        lr=1e-05,
        weight_decay=0.0,
        nesterov=False,
        threads=2,
        out_dir="runs/ünïcode",
    )
)


@pytest.mark.parametrize("config", [TrainConfig(), UNUSUAL], ids=["defaults", "unusual"])
def test_toml_round_trip(config):
    text = config.to_toml()
    assert TrainConfig.from_toml(text) == config


@pytest.mark.parametrize("config", [TrainConfig(), UNUSUAL], ids=["defaults", "unusual"])
def test_json_round_trip(config):
    assert TrainConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["model"]["hidden"] == list(config.model.hidden)


def test_toml_writes_none_as_absent_folder_or_none_string():
    text = TrainConfig.from_dict(dict(stop_after=None, decay="constant")).to_toml()
    assert "\ndata_dir =" not in text and '\nstop_after = "none"' in text
    assert TrainConfig.from_toml(text).topology.stop_after is None
    assert TrainConfig.from_toml('threads = "None"\n').run.threads is None


@settings(max_examples=50, deadline=None)
@given(
    lr=st.floats(min_value=1e-12, max_value=1e6, allow_nan=False, allow_infinity=False),
    zeta=st.floats(min_value=0, max_value=1, exclude_max=True),
    hidden=st.lists(st.integers(1, 10**6), min_size=1, max_size=5),
)
def test_toml_and_json_round_trip_any_valid_numbers(lr, zeta, hidden):
    config = TrainConfig.from_dict(dict(lr=lr, zeta=zeta, hidden=tuple(hidden)))
    assert TrainConfig.from_toml(config.to_toml()) == config
    assert TrainConfig.from_json(config.to_json()) == config


def test_files_round_trip(tmp_path):
    for name in ("run.toml", "run.json"):
        path = UNUSUAL.save(tmp_path / name)
        assert TrainConfig.from_file(path) == UNUSUAL


# ---- unknown keys and broken files ------------------------------------------------------------------------
def test_unknown_key_lists_valid_keys_and_suggests():
    with pytest.raises(ValueError) as error:
        TrainConfig.from_dict({"lr": 0.1, "learnig_rate": 0.1, "zetta": 0.2})
    message = str(error.value)
    assert "'learnig_rate'" in message and "'zetta' (did you mean 'zeta'?)" in message
    assert "valid keys: dataset, data_dir" in message and "out_dir" in message


def test_unknown_key_in_toml_and_json():
    with pytest.raises(ValueError, match="unknown key.*'epoch' \\(did you mean 'epochs'\\?\\)"):
        TrainConfig.from_toml("epoch = 3\n")
    with pytest.raises(ValueError, match="unknown key.*'hiden'"):
        TrainConfig.from_json('{"hiden": [3]}')


def test_invalid_documents():
    with pytest.raises(ValueError, match="is not valid TOML"):
        TrainConfig.from_toml("lr = = 3")
    with pytest.raises(ValueError, match="is not valid JSON"):
        TrainConfig.from_json("{lr: 3}")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        TrainConfig.from_json("[1, 2]")


def test_read_values_keeps_only_the_keys_of_the_file(tmp_path):
    path = tmp_path / "partial.toml"
    path.write_text("lr = 0.2\nhidden = [16]\n")
    assert read_values(path) == {"lr": 0.2, "hidden": [16]}
    path.write_text("lr = 0.2\nbatchsize = 3\n")
    with pytest.raises(ValueError, match=f"unknown key.*in {path}"):
        read_values(path)
    path.write_text("zeta = 1.5\n")
    with pytest.raises(ValueError, match="zeta must be in"):
        read_values(path)
    with pytest.raises(FileNotFoundError, match="cannot read config file"):
        read_values(tmp_path / "absent.toml")


# ---- sections and the flat names of older files -------------------------------------------------------------
def test_sections_group_the_settings_by_component():
    config = TrainConfig()
    assert [f.name for f in dataclasses.fields(config)] == ["data", "model", "topology", "pruning", "optimizer", "run"]
    assert (config.model.kind, config.optimizer.name) == ("sparse", "sgd")  # the flags --model and --optimizer
    assert TrainConfig.from_dict({"model": {"kind": "dense"}}) == TrainConfig.from_dict({"model": "dense"})


def test_a_flat_file_of_before_the_sections_reads_as_the_sectioned_one(tmp_path):
    flat = {name: (list(value) if isinstance(value, tuple) else value) for name, value in UNUSUAL.to_flat().items()}
    assert TrainConfig.from_dict(flat) == UNUSUAL
    path = tmp_path / "old.json"
    path.write_text(json.dumps(flat))
    assert TrainConfig.from_file(path) == UNUSUAL


def test_a_checkpoint_with_a_flat_config_resumes(digits, small_config):
    """Runs saved before the sections existed hold a flat config in their checkpoint: they still resume."""
    from evosparse.train import Callback, load_checkpoint, resume, save_checkpoint
    from evosparse.train.run import train as train_run

    class StopAfterOne(Callback):
        def _on_epoch_end(self):
            return self.trainer.epoch < 1

    folder = small_config.run.out_dir
    train_run(small_config, dataset=digits, progress=False, log=None, callbacks=[StopAfterOne()])
    checkpoint = load_checkpoint(f"{folder}/checkpoint.pt")
    flat = {name: (list(v) if isinstance(v, tuple) else v) for name, v in small_config.to_flat().items()}
    save_checkpoint(
        f"{folder}/checkpoint.pt",
        config=flat,
        trainer=checkpoint["trainer"],
        finished=False,
        run_id=checkpoint["run_id"],
    )
    result = resume(folder, dataset=digits, progress=False, log=None)
    assert result.trainer.epoch == small_config.run.epochs and result.config == small_config


def test_block_rows_zero_means_row_blocked_at_tiny_batches_only():
    from evosparse.train.config import effective_block_rows

    assert effective_block_rows(TrainConfig()) == 1  # batch 32: CSR order
    assert effective_block_rows(TrainConfig.from_dict({"batch_size": 2})) == 0  # a size per wide layer
    assert effective_block_rows(TrainConfig.from_dict({"batch_size": 2, "block_rows": 1})) == 1
    assert effective_block_rows(TrainConfig.from_dict({"batch_size": 64, "block_rows": 512})) == 512
