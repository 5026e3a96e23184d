"""The training loop and its callbacks: learning, determinism, hook order, stopping, evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evosparse.nn import DenseMLP, SparseMLP
from evosparse.topology import SET, UpdateSchedule
from evosparse.train import Callback, History, TrainConfig, Trainer, evaluate
from evosparse.train.callbacks import TopologyCallback, format_epoch
from evosparse.train.metrics import connection_metrics


def callback_of(trainer: Trainer, kind: type[Callback]) -> Callback:
    """The trainer's one callback of type ``kind`` (by type, not by its place in the list)."""
    (found,) = [callback for callback in trainer.callbacks.callbacks if isinstance(callback, kind)]
    return found


def weights_and_patterns(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """Every tensor of the state dict (values, biases, SReLU parameters, and rows / cols of sparse layers)."""
    return {key: value.detach().cpu().numpy().copy() for key, value in model.state_dict().items()}


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_few_epochs_learn_digits_well_above_chance(make_trainer, small_config):
    trainer = make_trainer(small_config.replace(epochs=5, dropout=0.0)).fit()
    accuracies = trainer.history.column("test_accuracy")
    assert len(accuracies) == 5
    assert accuracies[-1] > 0.85  # chance is 0.10
    assert trainer.history[-1]["train_loss"] < trainer.history[0]["train_loss"]


def test_dense_twin_trains_too(make_trainer, small_config):
    trainer = make_trainer(small_config.replace(model="dense", epochs=3)).fit()
    assert isinstance(trainer.model, DenseMLP)
    row = trainer.history[-1]
    assert row["test_accuracy"] > 0.85 and row["density"] == 1.0
    assert "topology_seconds" not in row  # no strategy, no rewiring columns


def test_history_row_has_every_documented_column(make_trainer, small_config):
    trainer = make_trainer(small_config.replace(epochs=1)).fit()
    row = trainer.history[0]
    expected = {
        "epoch", "step", "lr", "train_loss", "train_accuracy", "train_seconds", "test_loss", "test_accuracy",
        "eval_seconds", "nnz", "density", "rewired_fraction", "topology_seconds",
    }  # fmt: skip
    assert expected <= row.keys()
    layers = trainer.model.sparse_layers()
    assert [row[f"nnz_layer{i}"] for i in range(1, len(layers) + 1)] == [layer.nnz for layer in layers]
    assert row["nnz"] == sum(layer.nnz for layer in layers)
    assert row["step"] == trainer.steps_per_epoch == -(-1198 // 64)
    assert "epoch 1/1" in format_epoch(row, 1)


def test_same_seed_gives_identical_runs(make_trainer, small_config):
    first = make_trainer(small_config).fit()
    second = make_trainer(small_config).fit()
    assert_same_state(weights_and_patterns(first.model), weights_and_patterns(second.model))
    assert first.history.without_timings() == second.history.without_timings()


def test_other_seed_gives_another_run(make_trainer, small_config):
    first = make_trainer(small_config).fit()
    other = make_trainer(small_config.replace(seed=4)).fit()
    assert not np.array_equal(first.model.sparse_layers()[0].pattern.cols, other.model.sparse_layers()[0].pattern.cols)
    assert first.history.without_timings() != other.history.without_timings()


def test_set_rewires_every_epoch_but_the_last(make_trainer, small_config):
    config = small_config.replace(epochs=3)
    patterns = []

    class Record(Callback):  # runs after the topology callback
        def _on_epoch_end(self):
            patterns.append([layer.pattern.keys().copy() for layer in self.trainer.model.sparse_layers()])

    trainer = make_trainer(config, callbacks=[Record()]).fit()
    initial_nnz = [trainer.history[0][f"nnz_layer{i}"] for i in (1, 2, 3)]
    # Epochs 1 and 2 rewire (hidden layers; the small output layer is fully dense and left alone) ...
    assert not np.array_equal(patterns[0][0], patterns[1][0])
    assert trainer.history.column("rewired_fraction") == [0.3, 0.3, 0.0]
    # ... epoch 3 (the last) does not: the final network is the trained one.
    for before, after in zip(patterns[1], patterns[2]):
        np.testing.assert_array_equal(before, after)
    assert [layer.nnz for layer in trainer.model.sparse_layers()] == initial_nnz  # SET keeps nnz


def test_step_schedule_rewires_during_epochs(make_trainer, small_config):
    config = small_config.replace(epochs=2, update_unit="step", update_every=5, zeta=0.1)
    trainer = make_trainer(config).fit()
    n = trainer.steps_per_epoch
    # Updates at global steps 5, 10, 15, ...; none after the very last step of training.
    per_epoch = [sum(t % 5 == 0 for t in range(1, n + 1)), sum(t % 5 == 0 for t in range(n + 1, 2 * n))]
    assert trainer.history.column("rewired_fraction") == pytest.approx([0.1 * count for count in per_epoch])
    assert callback_of(trainer, TopologyCallback).strategy.n_updates == sum(per_epoch)


def test_hooks_are_called_in_order_with_counters(make_trainer, small_config):
    calls = []

    class Spy(Callback):
        def _on_train_start(self):
            calls.append(("start", self.trainer.epoch, self.trainer.step))

        def _on_step_end(self):
            calls.append(("step", self.trainer.epoch, self.trainer.step))

        def _on_epoch_end(self):
            calls.append(("epoch", self.trainer.epoch, self.trainer.step))

        def _on_train_end(self):
            calls.append(("end", self.trainer.epoch, self.trainer.step))

    spy = Spy()
    trainer = make_trainer(small_config.replace(epochs=2), callbacks=[spy]).fit()
    n = trainer.steps_per_epoch
    expected = (
        [("start", 0, 0)]
        + [("step", 1, s) for s in range(1, n + 1)]
        + [("epoch", 1, n)]
        + [("step", 2, s) for s in range(n + 1, 2 * n + 1)]
        + [("epoch", 2, 2 * n), ("end", 2, 2 * n)]
    )
    assert calls == expected
    assert spy.n_calls == 2 * n


def test_epoch_callback_returning_false_stops_after_that_epoch(make_trainer, small_config):
    class StopAtTwo(Callback):
        def _on_epoch_end(self):
            return self.trainer.epoch < 2

    trainer = make_trainer(small_config.replace(epochs=5), callbacks=[StopAtTwo()]).fit()
    assert trainer.epoch == 2 and len(trainer.history) == 2 and not trainer.finished


def test_step_callback_returning_false_cuts_the_epoch_short(make_trainer, small_config):
    class StopAtStepThree(Callback):
        def _on_step_end(self):
            return self.trainer.step < 3

    trainer = make_trainer(small_config.replace(epochs=5), callbacks=[StopAtStepThree()]).fit()
    assert trainer.step == 3 and trainer.epoch == 1
    assert len(trainer.history) == 1  # the partial epoch is still evaluated and recorded


def test_evaluation_batches_shrink_for_wide_layers():
    """A 300,000-neuron layer: batches of 27 rows (32 MiB of activations), not 1,024 (1.2 GB); same results."""
    from evosparse.train.metrics import EVAL_ACTIVATION_BYTES, EVAL_MIN_BATCH, eval_batch_size

    wide = SparseMLP((6, 300_000, 3), epsilon=1, seed=0)
    assert eval_batch_size(wide) == EVAL_ACTIVATION_BYTES // (300_000 * 4) == 27
    assert eval_batch_size(SparseMLP((784, 1000, 10), epsilon=5, seed=0)) == 1024
    assert eval_batch_size(DenseMLP((20, 75_000, 2))) == EVAL_ACTIVATION_BYTES // (75_000 * 4) == 111
    assert eval_batch_size(SparseMLP((6, 3_000_000, 3), epsilon=0.1, seed=0)) == EVAL_MIN_BATCH  # 2 by the budget
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    y = torch.arange(40) % 3
    assert evaluate(wide, x, y) == pytest.approx(evaluate(wide, x, y, batch_size=40), rel=1e-6)


def test_evaluate_is_side_effect_free():
    model = SparseMLP((64, 32, 10), dropout=0.5, epsilon=5, seed=0)
    x, y = torch.rand(300, 64), torch.randint(0, 10, (300,))
    generator_state = model.generator.get_state()
    first = evaluate(model, x, y, batch_size=64)
    assert model.training  # mode restored
    assert torch.equal(model.generator.get_state(), generator_state)  # no dropout mask drawn
    assert evaluate(model, x, y, batch_size=1000) == pytest.approx(first)  # batching does not matter
    assert 0.0 <= first[1] <= 1.0


def test_connection_metrics_of_dense_and_sparse_models():
    sparse = SparseMLP((64, 32, 10), epsilon=5, seed=0)
    dense = DenseMLP((64, 32, 10), seed=0)
    assert connection_metrics(dense) == {
        "nnz": 64 * 32 + 32 * 10, "density": 1.0, "nnz_layer1": 2048, "density_layer1": 1.0,
        "nnz_layer2": 320, "density_layer2": 1.0,
    }  # fmt: skip
    metrics = connection_metrics(sparse)
    assert metrics["nnz_layer1"] == sparse.sparse_layers()[0].nnz
    assert metrics["density"] == pytest.approx(metrics["nnz"] / (64 * 32 + 32 * 10))


def test_trainer_rejects_mismatched_data():
    model = SparseMLP((4, 3), epsilon=1, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="need as many labels as inputs"):
        Trainer(model, optimizer, torch.zeros(5, 4), torch.zeros(4, dtype=torch.long), epochs=1, batch_size=2)


def test_adam_runs(make_trainer, small_config):
    trainer = make_trainer(small_config.replace(optimizer="adam", lr=0.01, epochs=3)).fit()
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    assert trainer.history[-1]["test_accuracy"] > 0.5  # chance: 0.1


def test_history_csv_and_json(tmp_path):
    history = History([{"epoch": 1, "test_accuracy": 0.5, "train_seconds": 1.0}])
    history.append({"epoch": 2, "test_accuracy": 0.7, "train_seconds": 2.0})
    csv_path, json_path = history.save(tmp_path)
    assert csv_path.read_text().splitlines() == ["epoch,test_accuracy,train_seconds", "1,0.5,1.0", "2,0.7,2.0"]
    assert History.from_json(json_path.read_text()).rows == history.rows
    assert history.best()["epoch"] == 2
    assert history.without_timings() == [{"epoch": 1, "test_accuracy": 0.5}, {"epoch": 2, "test_accuracy": 0.7}]
    assert History().best() is None


def test_threads_setting():
    from evosparse.train.run import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_config_is_what_builds_the_run(small_config):
    from evosparse.train import build_model, build_strategy

    model = build_model(small_config, 64, 10)
    assert [m.out_features for m in model.sparse_layers()] == [32, 32, 10]
    strategy = build_strategy(small_config)
    assert strategy.schedule.zeta == 0.3 and strategy.rule == "set"
    assert build_strategy(small_config.replace(model="dense")) is None
    assert build_strategy(small_config.replace(zeta=0.0)) is None
    # The defaults build the documented run: SET, zeta 0.3 cosine-decayed to 0 at epoch 20, every epoch.
    default = build_strategy(TrainConfig())
    assert type(default) is SET and default.rule == "set" and default.new_weights == "init"
    assert default.schedule == UpdateSchedule(zeta=0.3, every=1, unit="epoch", decay="cosine", stop_after=20)


def test_progress_bar_and_log_lines(make_trainer, small_config, capsys):
    from evosparse.train import LogCallback, ProgressBarCallback

    lines = []
    progress = ProgressBarCallback(disable=False)
    make_trainer(small_config.replace(epochs=2), callbacks=[progress, LogCallback(lines.append)]).fit()
    assert [line.split(" | ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "epoch 2/2" in capsys.readouterr().err  # the tqdm bar, on stderr
    assert progress.bar is None  # closed


def test_small_models_train_on_one_thread():
    from evosparse.train import build_model
    from evosparse.train.run import choose_threads

    digits_default = build_model(TrainConfig(), 64, 10)
    assert choose_threads(TrainConfig(), digits_default) == 1
    assert (
        choose_threads(TrainConfig().replace(model="dense"), build_model(TrainConfig().replace(model="dense"), 64, 10))
        == 1
    )
    # The SET tutorial's recipe (3.4M multiply-adds per step): one thread, as fast when quiet and robust when busy.
    tutorial = SparseMLP((784, 1000, 1000, 1000, 10), epsilon=13, seed=0)
    assert choose_threads(TrainConfig().replace(batch_size=40), tutorial) == 1
    mnist = SparseMLP((784, 1000, 1000, 1000, 10), epsilon=20, seed=0)
    assert choose_threads(TrainConfig().replace(batch_size=100), mnist) is None  # large: leave all cores
    assert choose_threads(TrainConfig().replace(threads=2), digits_default) == 2  # an explicit choice wins


def test_fused_step_trains_like_the_optimizer(make_trainer, small_config):
    """optimizer.fused_step: the same run (SET rewiring, dropout, momentum carried through rewiring) to rounding."""
    # batch 4: the one-sweep kernel (~300 steps, rounding grows to ~1e-5); batch 64 over a rewiring.
    for batch_size, epochs, atol in ((4, 1, 1e-4), (64, 2, 1e-5)):
        plain = make_trainer(small_config.replace(batch_size=batch_size, epochs=epochs)).fit()
        fused = make_trainer(small_config.replace(batch_size=batch_size, epochs=epochs, fused_step=True)).fit()
        assert fused.fusion is not None and plain.fusion is None
        for (name, a), (_, b) in zip(fused.model.named_parameters(), plain.model.named_parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=atol, msg=name)
        for a, b in zip(fused.model.sparse_layers(), plain.model.sparse_layers(), strict=True):
            assert np.array_equal(a.pattern.cols, b.pattern.cols)
    with pytest.raises(ValueError, match="fused_step=True needs optimizer='sgd'"):
        small_config.replace(optimizer="adam", fused_step=True)


def test_training_without_autograd_is_bit_identical_and_used(make_trainer, small_config, monkeypatch):
    from evosparse.nn import backprop

    runs = []
    original = backprop.CrossEntropyPass.backward
    monkeypatch.setattr(backprop.CrossEntropyPass, "backward", lambda self: runs.append(1) or original(self))
    by_hand = make_trainer(small_config.replace(epochs=2)).fit()
    assert len(runs) == by_hand.step  # every step of the SET recipe skipped autograd
    by_autograd = make_trainer(small_config.replace(epochs=2))
    by_autograd.skip_autograd = False
    by_autograd.fit()
    assert len(runs) == by_hand.step
    assert_same_state(weights_and_patterns(by_hand.model), weights_and_patterns(by_autograd.model))
    for column in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "nnz"):
        assert by_hand.history.column(column) == by_autograd.history.column(column), column


def test_direct_sgd_step_is_used_and_bit_identical_over_rewiring(make_trainer, small_config, monkeypatch):
    """The loop's direct fused SGD call: every step but the first (which makes the momentum buffers) takes it,
    and two epochs with SET rewiring between them end in the same bits as optimizer.step() every step."""
    from evosparse.train import sgd_step

    taken = []
    direct = sgd_step.step
    monkeypatch.setattr(sgd_step, "step", lambda optimizer: taken.append(direct(optimizer)) or taken[-1])
    fast = make_trainer(small_config.replace(epochs=2)).fit()
    assert taken[0] is False and all(taken[1:]) and len(taken) == fast.step
    monkeypatch.setattr(sgd_step, "step", lambda optimizer: optimizer.step() or False)
    full = make_trainer(small_config.replace(epochs=2)).fit()
    assert_same_state(weights_and_patterns(fast.model), weights_and_patterns(full.model))
    assert fast.history.column("train_loss") == full.history.column("train_loss")
