"""Callbacks: everything the training loop does besides minibatch SGD.

As in Stable-Baselines3's ``BaseCallback``, the loop calls the public hooks (``on_train_start``,
``on_step_end``, ``on_epoch_end``, ``on_train_end``), which keep counters and call the private template
methods (``_on_step_end``, ...) subclasses override. An ``_on_step_end`` / ``_on_epoch_end`` returning
False stops training (None or True continue).

The loop runs the callbacks in list order; :func:`default_callbacks` orders them so that, at the end of
an epoch, the model is evaluated *before* the topology changes (the reported accuracy is that of the
trained network, as in the SET code), the history row is complete before it is written, and the
checkpoint comes last (it saves the history and every generator after the epoch's rewiring).

A callback with state that must survive a resume (the topology strategy's random generator) returns it
from ``state_dict`` and takes it back in ``load_state_dict``; the trainer stores it in checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from evosparse.io import FileFormatError, MissingFileError
from evosparse.io.atomic import atomic_write
from evosparse.topology.strategy import TopologyStrategy, sparse_layers
from evosparse.train.checkpoint import save_checkpoint
from evosparse.train.metrics import connection_metrics, evaluate, inference_flops, training_flops_per_example

if TYPE_CHECKING:
    from evosparse.train.loop import Trainer


class Callback:
    """Base class. Override the ``_on_...`` template methods, not the public hooks."""

    def __init__(self) -> None:
        self.trainer: Trainer | None = None
        self.n_calls = 0  # steps seen by this callback

    @property
    def name(self) -> str:
        """Key of this callback's state in checkpoints."""
        return type(self).__name__

    # ---- public hooks, called by the loop ---------------------------------------------------------------
    def init_callback(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self._init_callback()

    def on_train_start(self) -> None:
        self._on_train_start()

    def on_step_end(self) -> bool:
        self.n_calls += 1
        return self._on_step_end() is not False

    def on_epoch_end(self) -> bool:
        return self._on_epoch_end() is not False

    def on_train_end(self) -> None:
        self._on_train_end()

    # ---- template methods -------------------------------------------------------------------------------
    def _init_callback(self) -> None:
        pass

    def _on_train_start(self) -> None:
        pass

    def _on_step_end(self) -> bool | None:
        return True

    def _on_epoch_end(self) -> bool | None:
        return True

    def _on_train_end(self) -> None:
        pass

    # ---- checkpointing ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any] | None:
        """State to checkpoint, or None for a stateless callback."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class CallbackList(Callback):
    """Several callbacks run in order. Every callback sees every hook; training stops if any asks to."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        super().__init__()
        self.callbacks = list(callbacks)
        names = [c.name for c in self.callbacks if c.state_dict() is not None]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"stateful callbacks need distinct names, got several {', '.join(duplicates)}")

    def _init_callback(self) -> None:
        for callback in self.callbacks:
            callback.init_callback(self.trainer)

    def _on_train_start(self) -> None:
        for callback in self.callbacks:
            callback.on_train_start()

    def _on_step_end(self) -> bool:
        keep_going = True
        for callback in self.callbacks:
            keep_going = callback.on_step_end() and keep_going
        return keep_going

    def _on_epoch_end(self) -> bool:
        keep_going = True
        for callback in self.callbacks:
            keep_going = callback.on_epoch_end() and keep_going
        return keep_going

    def _on_train_end(self) -> None:
        for callback in self.callbacks:
            callback.on_train_end()

    def state_dict(self) -> dict[str, Any]:
        states = {c.name: c.state_dict() for c in self.callbacks}
        return {name: state for name, state in states.items() if state is not None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for callback in self.callbacks:
            if callback.state_dict() is None:
                continue
            if callback.name not in state:
                raise KeyError(f"the checkpoint has no state for callback {callback.name}")
            callback.load_state_dict(state[callback.name])


class TopologyCallback(Callback):
    """Drives a :class:`TopologyStrategy` (e.g. SET) from the loop's step and epoch counters.

    As in the SET code, nothing is rewired after the last epoch (or the last step): the final network is
    the trained one, not one with freshly regrown, untrained connections.

    History columns: ``topology_seconds`` (all updates of the epoch) and ``rewired_fraction`` (sum of the
    fractions of connections this epoch's updates changed or removed).
    """

    def __init__(self, strategy: TopologyStrategy) -> None:
        super().__init__()
        self.strategy = strategy
        self._seconds = 0.0
        self._fraction = 0.0

    def _on_train_start(self) -> None:
        start = time.perf_counter()
        self.strategy.on_train_start(self.trainer.model, self.trainer.optimizer)
        self._seconds += time.perf_counter() - start

    def _update(self, hook: Callable[..., bool], t: int) -> None:
        trainer = self.trainer
        start = time.perf_counter()
        if hook(trainer.model, trainer.optimizer, t):
            self._fraction += self.strategy.last_fraction
        self._seconds += time.perf_counter() - start

    def _on_step_end(self) -> bool:
        if self.trainer.step < self.trainer.total_steps:
            self._update(self.strategy.on_step_end, self.trainer.step)
        return True

    def _on_epoch_end(self) -> bool:
        if self.trainer.epoch < self.trainer.epochs:
            self._update(self.strategy.on_epoch_end, self.trainer.epoch)
        self.trainer.logs.update(rewired_fraction=self._fraction, topology_seconds=self._seconds)
        self._seconds, self._fraction = 0.0, 0.0
        return True

    def state_dict(self) -> dict[str, Any]:
        return self.strategy.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.strategy.load_state_dict(state)


class FlopsCallback(Callback):
    """Counts the arithmetic of training and inference (multiply-adds x 2 of the weight layers).

    Each step adds ``batch x training_flops_per_example(model)`` at the model's current size (the pruning
    methods get cheaper as they prune); the topology strategy's own work (RigL's dense gradients, OBD's
    Hessian passes, SNIP's scoring) is added from its ``extra_flops``. History columns: ``train_flops``
    (cumulative) and ``inference_flops`` (per example, at the end of the epoch).
    """

    def __init__(self, strategy: TopologyStrategy | None = None) -> None:
        super().__init__()
        self.strategy = strategy
        self.flops = 0

    def _on_step_end(self) -> bool:
        trainer = self.trainer
        n = trainer.x_train.shape[0]
        begin = ((trainer.step - 1) % trainer.steps_per_epoch) * trainer.batch_size
        self.flops += min(trainer.batch_size, n - begin) * training_flops_per_example(trainer.model)
        return True

    def _on_epoch_end(self) -> bool:
        extra = self.strategy.extra_flops if self.strategy is not None else 0
        self.trainer.logs.update(train_flops=self.flops + extra, inference_flops=inference_flops(self.trainer.model))
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"flops": self.flops}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.flops = int(state["flops"])


class ConnectivityCallback(Callback):
    """Records, after every epoch, how many connections each input neuron of the first sparse layer has.

    That degree map over time is the SET paper's picture of topology evolution (see
    :func:`evosparse.report.plots.plot_input_degree_maps`). Given a folder, the record is rewritten to
    ``connectivity.npz`` (arrays ``epochs`` and ``input_degrees``) every epoch; the checkpoint carries it too.
    """

    FILE = "connectivity.npz"

    def __init__(self, folder: str | Path | None = None) -> None:
        super().__init__()
        self.folder = None if folder is None else Path(folder)
        self.epochs: list[int] = []
        self.degrees: list[np.ndarray] = []

    def _on_epoch_end(self) -> bool:
        layers = sparse_layers(self.trainer.model)
        if not layers:  # a dense network (the baseline, or a pruning method before its first event)
            return True
        self.epochs.append(self.trainer.epoch)
        self.degrees.append(layers[0].pattern.col_degrees().astype(np.int32))
        if self.folder is not None:
            epochs, degrees = np.asarray(self.epochs), np.stack(self.degrees)
            atomic_write(self.folder / self.FILE, lambda f: np.savez(f, epochs=epochs, input_degrees=degrees))
        return True

    def state_dict(self) -> dict[str, Any]:
        # Tensors, not numpy arrays: checkpoints are read with torch.load(weights_only=True).
        return {"epochs": list(self.epochs), "degrees": [torch.from_numpy(d.copy()) for d in self.degrees]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs, self.degrees = list(state["epochs"]), [d.numpy() for d in state["degrees"]]


def read_connectivity(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(epochs, input_degrees)`` of a ``connectivity.npz`` that :class:`ConnectivityCallback` wrote.

    Read with ``numpy.load(allow_pickle=False)``; a missing, truncated, foreign or inconsistent file raises
    :class:`evosparse.io.FileFormatError` (one line, naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} not found: give the folder of a sparse run of evosparse train")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise FileFormatError(f"{path} is not a connectivity record (.npz) of evosparse train")
            missing = [name for name in ("epochs", "input_degrees") if name not in data.files]
            if missing:
                raise FileFormatError(f"{path} is not a connectivity record of evosparse train (no {missing[0]})")
            epochs, degrees = np.asarray(data["epochs"]), np.asarray(data["input_degrees"])
    except FileFormatError:
        raise
    except Exception as error:  # BadZipFile, EOFError, zlib.error, ValueError (pickled objects), ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileFormatError(
            f"{path} is not a readable connectivity record (truncated or corrupt: {reason})"
        ) from None
    if epochs.ndim != 1 or degrees.ndim != 2 or len(epochs) != len(degrees) or not len(epochs):
        raise FileFormatError(f"{path} is damaged: {len(epochs)} epochs but input_degrees of shape {degrees.shape}")
    return epochs, degrees


class EvaluationCallback(Callback):
    """Test loss and accuracy (evaluation mode, batches, no gradient) and connection counts, every epoch."""

    def __init__(self, x_test: torch.Tensor, y_test: torch.Tensor, *, batch_size: int | None = None) -> None:
        super().__init__()
        self.x_test, self.y_test, self.batch_size = x_test, y_test, batch_size

    def _on_epoch_end(self) -> bool:
        start = time.perf_counter()
        loss, accuracy = evaluate(self.trainer.model, self.x_test, self.y_test, batch_size=self.batch_size)
        self.trainer.logs.update(test_loss=loss, test_accuracy=accuracy, eval_seconds=time.perf_counter() - start)
        self.trainer.logs.update(connection_metrics(self.trainer.model))
        return True


class HistoryCallback(Callback):
    """Appends each epoch's row to ``trainer.history`` and, given a folder, rewrites history.csv / .json."""

    def __init__(self, folder: str | Path | None = None) -> None:
        super().__init__()
        self.folder = None if folder is None else Path(folder)

    def _on_epoch_end(self) -> bool:
        self.trainer.history.append(self.trainer.logs)
        if self.folder is not None:
            self.trainer.history.save(self.folder)
        return True


class ProgressBarCallback(Callback):
    """A tqdm bar over the minibatches of each epoch (on stderr; ``disable=True`` for none)."""

    def __init__(self, *, disable: bool = False) -> None:
        super().__init__()
        self.disable = disable
        self.bar = None

    def _on_step_end(self) -> bool:
        trainer = self.trainer
        if self.bar is None:
            self.bar = tqdm(
                total=trainer.steps_per_epoch,
                desc=f"epoch {trainer.epoch}/{trainer.epochs}",
                unit="batch",
                leave=False,
                disable=self.disable,
                dynamic_ncols=True,
            )
        self.bar.update(1)
        if self.n_calls % 10 == 0:
            self.bar.set_postfix(loss=f"{trainer.batch_loss:.4f}", refresh=False)
        return True

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _on_epoch_end(self) -> bool:
        self._close()
        return True

    def _on_train_end(self) -> None:
        self._close()


def format_epoch(row: dict[str, Any], epochs: int) -> str:
    """One line per epoch: losses, accuracies, connections and timings."""
    parts = [f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}"]
    if "train_loss" in row:
        parts.append(f"train loss {row['train_loss']:.4f} acc {100 * row['train_accuracy']:6.2f}%")
    if "test_loss" in row:
        parts.append(f"test loss {row['test_loss']:.4f} acc {100 * row['test_accuracy']:6.2f}%")
    if "nnz" in row:
        parts.append(f"nnz {row['nnz']:,} ({100 * row['density']:.2f}%)")
    seconds = f"{row.get('train_seconds', 0.0):.2f}s"
    if "topology_seconds" in row:
        seconds += f" +{row['topology_seconds']:.2f}s rewiring"
    parts.append(seconds)
    return " | ".join(parts)


class LogCallback(Callback):
    """Prints :func:`format_epoch` of each epoch's row through ``out``."""

    def __init__(self, out: Callable[[str], object] = print) -> None:
        super().__init__()
        self.out = out

    def _on_epoch_end(self) -> bool:
        self.out(format_epoch(self.trainer.logs, self.trainer.epochs))
        return True


class CheckpointCallback(Callback):
    """Saves :meth:`Trainer.state_dict` (plus the run's config) atomically every ``every`` epochs and at the end.

    Args:
        path: the checkpoint file (overwritten in place, atomically).
        config: the run's config as a dict, stored in the checkpoint so ``--resume`` can rebuild the run.
        every: save every this many epochs (the last epoch and the end of training are always saved).
        run_id: the run folder's id (:class:`evosparse.io.RunFolder`), stored so a checkpoint left by an
            earlier run in the folder is never resumed as this one.
    """

    def __init__(self, path: str | Path, *, config: dict[str, Any], every: int = 1, run_id: str | None = None) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.path, self.config, self.every, self.run_id = Path(path), config, every, run_id
        self.saved_epoch: int | None = None

    def save(self) -> Path:
        trainer = self.trainer
        finished = trainer.epoch >= trainer.epochs
        state = trainer.state_dict()
        path = save_checkpoint(self.path, config=self.config, trainer=state, finished=finished, run_id=self.run_id)
        self.saved_epoch = trainer.epoch
        return path

    def _on_epoch_end(self) -> bool:
        if self.trainer.epoch % self.every == 0 or self.trainer.epoch >= self.trainer.epochs:
            self.save()
        return True

    def _on_train_end(self) -> None:
        if self.saved_epoch != self.trainer.epoch:
            self.save()


def default_callbacks(
    *,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    strategy: TopologyStrategy | None = None,
    folder: str | Path | None = None,
    config: dict[str, Any] | None = None,
    progress: bool = True,
    log: Callable[[str], object] | None = print,
    run_id: str | None = None,
) -> list[Callback]:
    """Evaluation, topology, history, progress bar, epoch log and checkpoint, in that (meaningful) order.

    ``folder`` None: nothing is written (no history files, no checkpoint). ``log`` None: no epoch lines.
    """
    callbacks: list[Callback] = [EvaluationCallback(x_test, y_test)]
    if strategy is not None:
        callbacks.append(TopologyCallback(strategy))
    callbacks.append(FlopsCallback(strategy))
    callbacks.append(ConnectivityCallback(folder))
    callbacks.append(HistoryCallback(folder))
    callbacks.append(ProgressBarCallback(disable=not progress))
    if log is not None:
        callbacks.append(LogCallback(log))
    if folder is not None:
        callbacks.append(CheckpointCallback(Path(folder) / "checkpoint.pt", config=config or {}, run_id=run_id))
    return callbacks
