"""A whole run, as ``evosparse train`` does it: folder, data, model, training, files; or the resume of one.

:func:`train` starts a new run:

1. **Data** first: a bad data set leaves no trace; its arrays' SHA-256 digests are recorded.
2. **Folder**: :class:`evosparse.io.RunFolder` of kind ``train`` takes the folder's lock for the whole run
   (a second run into the same folder fails at once) and refuses a folder that holds a run or foreign
   files unless ``overwrite=True`` (and even then only a train run); the manifest ``run.json`` records the
   config and the data digests.
3. **Build** model, optimizer and SET strategy from the config (:mod:`evosparse.train.build`).
4. **Train** with the default callbacks; ``config.toml`` is written first, then every epoch
   ``history.csv``, ``history.json``, ``connectivity.npz`` and, last, ``checkpoint.pt`` (the commit point:
   the other files are rebuilt from it on resume), and ``summary.json`` at the end. A diverging run
   (non-finite loss or weights) stops with :class:`DivergenceError`; its last good checkpoint stays.

:func:`resume` continues the run a folder holds from its checkpoint (checksum verified, run id matching
the manifest), with the config saved there, on data whose digests match the recorded ones, and ends
exactly where the uninterrupted run would have (bit for bit, timings aside).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from evosparse._threading import threads_from_environment
from evosparse.io import MANIFEST_FILE, RunFolder, RunFolderError
from evosparse.io.atomic import atomic_write_text
from evosparse.io.digest import file_sha256
from evosparse.io.torch_files import tensor_digest
from evosparse.nn.linear import SparseLinear
from evosparse.train.build import build_model, build_optimizer, build_strategy, derive_seed, layer_sizes
from evosparse.train.callbacks import Callback, CheckpointCallback, default_callbacks
from evosparse.train.checkpoint import CheckpointError, load_checkpoint
from evosparse.train.config import TrainConfig
from evosparse.train.history import History
from evosparse.train.loop import DivergenceError, Trainer
from evosparse.train.metrics import layer_connections
from evosparse.train.thread_tuner import ThreadTuner

if TYPE_CHECKING:
    from evosparse.train.distributed import Replicas

CONFIG_FILE, CHECKPOINT_FILE, SUMMARY_FILE = "config.toml", "checkpoint.pt", "summary.json"
RUN_KIND = "train"
RUN_FILES = (
    MANIFEST_FILE,
    CONFIG_FILE,
    CHECKPOINT_FILE,
    "history.csv",
    "history.json",
    SUMMARY_FILE,
    "connectivity.npz",
)
# What a train run folder may hold besides: the pictures 'evosparse plot degrees' writes beside the files.
OWNED_FILES = (*RUN_FILES, "*.png")
# Settings that may differ on --resume: they do not change the numbers a run computes (a different data
# set under another data_dir, or a moved --data file that is not the same file, is caught by the data digests).
RESUMABLE_CHANGES = ("threads", "out_dir", "data_dir", "download", "data")

# A run cannot start or continue as asked (its folder holds another run, is in use, nothing to resume, ...).
RunError = RunFolderError


@dataclass
class RunResult:
    """What :func:`train` and :func:`resume` return."""

    config: TrainConfig
    out_dir: Path
    trainer: Trainer
    summary: dict[str, Any]

    @property
    def model(self) -> nn.Module:
        return self.trainer.model

    @property
    def history(self) -> History:
        return self.trainer.history


# ---- folders -------------------------------------------------------------------------------------------
def run_files(folder: str | Path) -> list[str]:
    """Names of the run files ``folder`` already holds."""
    folder = Path(folder)
    return [name for name in RUN_FILES if (folder / name).exists()]


def default_out_dir(config: TrainConfig, root: str | Path = "runs") -> Path:
    """``runs/<dataset>-<model>-s<seed>``, or the first of ``...-2``, ``...-3``, ... that holds no run."""
    base = Path(root) / f"{data_name(config)}-{config.model.kind}-s{config.run.seed}"
    candidate, number = base, 1
    while run_files(candidate):
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


# Below this many multiply-adds per forward pass (connections x batch size, all layers), a second thread
# costs more in synchronisation than it saves, and much more when other processes share the cores (see
# benchmarks/digits_defaults.md and BENCHMARKS.md section 12): the digits default does ~0.6M (sparse) / 2.7M
# (dense), the SET tutorial's Fashion-MNIST recipe (3 x 1000 hidden, epsilon 13, batch 40) 3.4M, MNIST's
# SET-MLP at batch 100 13M. At 3.4M one thread trained an epoch as fast as two spinning threads on a quiet
# machine (7.3 vs 7.5 s) and kept 8.6 s with a busy process beside it (two passive threads: 10.2 s quiet
# and busy; two spinning: 33.7 s busy), so the limit sits above it; 5M is a choice between the measured 3.4M
# and 13M, where the second thread pays. Since the sixteenth session this is only where a sparse model's run
# starts (its kernels' count then follows a measurement, ThreadTuner; on that session's machine one thread was
# as fast as two up to at least 34M); for a dense model it is the whole rule.
SMALL_STEP = 5_000_000


def choose_threads(config: TrainConfig, model: nn.Module, *, workers: int = 1) -> int | None:
    """``config.run.threads``, else ``EVOSPARSE_THREADS``, else 1 for a small model (see SMALL_STEP), else None
    (all cores). More threads than cores are capped to the cores (they only slow down). With neither set, the
    sparse kernels' count then follows a measurement of one thread against all cores on the run's own steps
    (:func:`thread_tuner`), this pick being where they start, and torch runs on one thread.

    ``workers``: data-parallel processes of this run on this machine; they share its cores, so the default
    is then ``cores // workers`` threads each, for a step of ``batch_size / workers`` examples.
    """
    if config.run.threads is not None:
        return config.run.threads
    cores = max(1, (os.cpu_count() or 1) // max(workers, 1))
    from_environment = threads_from_environment()
    if from_environment is not None:
        return min(from_environment, cores)
    work = sum(nnz for nnz, _ in layer_connections(model)) * config.optimizer.batch_size // max(workers, 1)
    return 1 if work < SMALL_STEP else (None if workers == 1 else cores)


def set_threads(threads: int | None) -> None:
    """CPU threads of torch and of the compiled sparse kernels (None: leave both as they are)."""
    if threads is None:
        return
    from evosparse.sparse import set_num_threads

    torch.set_num_threads(threads)
    set_num_threads(threads)


# ---- data ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tensors:
    """A data set as training tensors."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_features: int
    n_classes: int


def data_name(config: TrainConfig) -> str:
    """The data's short name: the registered data set's, or the ``--data`` file's name without its suffix."""
    if config.data.file is None:
        return config.data.dataset
    from evosparse.data.files import file_format

    name = Path(config.data.file).name
    return name[: -len(file_format(name))] or "data"


def load_tensors(config: TrainConfig, dataset: Any = None) -> Tensors:
    """Load ``config.data.file`` (:func:`evosparse.data.files.load_file`) or ``config.data.dataset``
    (:func:`evosparse.data.load_dataset`), or use ``dataset``, as tensors."""
    if dataset is None and config.data.file is not None:
        from evosparse.data.files import load_file

        dataset = load_file(config.data.file, label_column=config.data.label_column, seed=config.data.data_seed)
    if dataset is None:
        from evosparse.data import DATASETS, load_dataset

        if config.data.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {config.data.dataset!r}; choose one of {', '.join(sorted(DATASETS))}")
        dataset = load_dataset(
            config.data.dataset,
            data_dir=config.data.data_dir,
            download=config.data.download,
            seed=config.data.data_seed,
        )

    def features(x: Any) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        return x.reshape(x.shape[0], -1)

    def labels(y: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(y), dtype=torch.int64).reshape(-1)

    x_train, x_test = features(dataset.x_train), features(dataset.x_test)
    return Tensors(
        x_train, labels(dataset.y_train), x_test, labels(dataset.y_test), x_train.shape[1], int(dataset.n_classes)
    )


# ---- new run / resumed run -------------------------------------------------------------------------------
def train(
    config: TrainConfig,
    *,
    overwrite: bool = False,
    dataset: Any = None,
    progress: bool = True,
    log: Callable[[str], object] | None = print,
    callbacks: Iterable[Callback] = (),
    replicas: Replicas | None = None,
) -> RunResult:
    """Start a new run of ``config`` in ``config.run.out_dir`` (default: :func:`default_out_dir`).

    Args:
        overwrite: replace the run files of an earlier run in the folder (otherwise: :class:`RunError`).
        dataset: an already loaded data set (attributes as :func:`evosparse.data.load_dataset` returns).
        progress: show a progress bar; log: where epoch lines go (None: nowhere).
        callbacks: extra callbacks, run after the built-in ones.
        replicas: rank 0 of a data-parallel group (see :func:`evosparse.train.distributed.train_distributed`).
    """
    out_dir = Path(config.run.out_dir) if config.run.out_dir is not None else default_out_dir(config)
    existing = run_files(out_dir)
    if existing and not overwrite:  # a quick answer before the data is loaded; RunFolder decides for good
        raise RunError(
            f"{out_dir} already holds a run ({', '.join(existing)}); add --resume to continue it, "
            "--overwrite to replace it, or choose another --out-dir"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise RunError(f"--out-dir {out_dir} is a file, not a folder; choose another --out-dir")
    config = config.replace(out_dir=str(out_dir))
    tensors = load_tensors(config, dataset)  # before touching the folder: a bad data set writes nothing
    folder = RunFolder.open(
        out_dir,
        kind=RUN_KIND,
        files=OWNED_FILES,
        config=config.to_dict(),
        data=data_digests(tensors, config if dataset is None else None),
        overwrite=overwrite,
    )
    with folder:
        if config.data.file is not None and dataset is None:
            folder.update_manifest(data_file=str(Path(config.data.file).resolve()))
        atomic_write_text(out_dir / CONFIG_FILE, config.to_toml())
        return _execute(
            config, folder, tensors, None, progress=progress, log=log, callbacks=callbacks, replicas=replicas
        )


def resume(
    out_dir: str | Path,
    *,
    changes: Mapping[str, Any] | None = None,
    dataset: Any = None,
    progress: bool = True,
    log: Callable[[str], object] | None = print,
    callbacks: Iterable[Callback] = (),
    accept_data_change: bool = False,
    replicas: Replicas | None = None,
) -> RunResult:
    """Continue the run in ``out_dir`` from its checkpoint, with the config saved there (``replicas``: as
    :func:`train`; a checkpoint does not depend on the number of workers).

    ``changes`` may only set fields in RESUMABLE_CHANGES or repeat saved values: anything else would make
    the resumed run a different experiment, so it raises :class:`RunError`. The data must have the digests
    recorded when the run started (else :class:`RunError`), unless ``accept_data_change`` (then a warning
    goes to ``log``).
    """
    out_dir = Path(out_dir)
    if not (out_dir / CHECKPOINT_FILE).exists():
        if (out_dir / CONFIG_FILE).exists():
            raise RunError(
                f"the run in {out_dir} stopped before its first checkpoint (end of epoch 1); nothing to resume: "
                "start it again with --overwrite"
            )
        load_checkpoint(out_dir / CHECKPOINT_FILE)  # raises the error that says there is nothing to resume
    folder = RunFolder.open(out_dir, kind=RUN_KIND, files=OWNED_FILES, resume=True)
    with folder:
        config, checkpoint = _resumable(folder, changes)
        if dataset is None and not accept_data_change:
            _check_data_file(folder, config)  # before reading it: a clear message about the file itself
        tensors = load_tensors(config, dataset)
        changed = folder.check_data(
            data_digests(tensors, config if dataset is None else None), accept=accept_data_change
        )
        if changed and log is not None:
            log(f"warning: {changed}")
        return _execute(
            config, folder, tensors, checkpoint, progress=progress, log=log, callbacks=callbacks, replicas=replicas
        )


def _resumable(folder: RunFolder, changes: Mapping[str, Any] | None) -> tuple[TrainConfig, dict[str, Any]]:
    """The config to continue with and the checkpoint (read under the folder's lock), or an error."""
    out_dir = folder.path
    checkpoint = load_checkpoint(out_dir / CHECKPOINT_FILE)
    # Every checkpoint a run folder's run writes carries its run id; one written by save_checkpoint alone
    # (no id) is taken as this run's. An id of another run is an earlier run's file: never resumed.
    if checkpoint["run_id"] is not None:
        folder.check_run_id(checkpoint["run_id"], out_dir / CHECKPOINT_FILE)
    try:
        saved = TrainConfig.from_dict(checkpoint["config"], source=f"the config saved in {out_dir / CHECKPOINT_FILE}")
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{error}; the checkpoint cannot be resumed") from None
    config = _resumed_config(saved, dict(changes or {}), out_dir)
    if checkpoint["finished"] or checkpoint["trainer"]["epoch"] >= config.run.epochs:
        raise RunError(
            f"the run in {out_dir} already finished its {config.run.epochs} epochs; nothing to resume "
            "(start a new run with another --out-dir)"
        )
    return config, checkpoint


def data_digests(tensors: Tensors, config: TrainConfig | None = None) -> dict[str, str]:
    """SHA-256 of the arrays a run trains and tests on, and of the ``--data`` file's bytes if ``config`` has one
    (``file_sha256``); recorded in the manifest, compared on resume."""
    digests = {name: tensor_digest(getattr(tensors, name)) for name in ("x_train", "y_train", "x_test", "y_test")}
    if config is not None and config.data.file is not None:
        digests["file_sha256"] = file_sha256(config.data.file)
    return digests


def _check_data_file(folder: RunFolder, config: TrainConfig) -> None:
    """A resumed ``--data`` run: its file must still be there with the SHA-256 the run recorded."""
    recorded = (folder.manifest.get("data") or {}).get("file_sha256")
    if config.data.file is None or recorded is None:
        return
    path = Path(config.data.file)
    where = folder.manifest.get("data_file", str(path))
    if not path.is_file():
        raise RunError(
            f"the run in {folder.path} trained on {where}, which is gone; give its new place with --data FILE"
        )
    if file_sha256(path) != recorded:
        raise RunError(
            f"the data file {path} changed since the run in {folder.path} started (SHA-256 {recorded[:12]}... "
            "recorded in its run.json); resuming would train on other data: restore the file, or add "
            "--accept-data-change"
        )


def _resumed_config(saved: TrainConfig, changes: dict[str, Any], out_dir: Path) -> TrainConfig:
    requested = saved.replace(**changes)  # validates the changed values and rejects unknown names
    now, before = requested.to_flat(), saved.to_flat()
    conflicts = [
        f"{name}={now[name]!r} (saved: {before[name]!r})"
        for name in TrainConfig.flatten(changes)
        if name not in RESUMABLE_CHANGES and now[name] != before[name]
    ]
    if conflicts:
        raise RunError(
            f"--resume continues the run in {out_dir} with its saved settings, but you asked for "
            f"{'; '.join(conflicts)}; drop those options, or start a new run with another --out-dir"
        )
    return requested.replace(out_dir=str(out_dir))


def build_trainer(
    config: TrainConfig,
    tensors: Tensors,
    *,
    folder: Path | None = None,
    progress: bool = False,
    log: Callable[[str], object] | None = None,
    callbacks: Iterable[Callback] = (),
    run_id: str | None = None,
    empty_model: bool = False,
) -> Trainer:
    """Model, optimizer, SET strategy and the default callbacks of ``config``, assembled into a Trainer.

    ``empty_model``: sparse layers without connections, for a trainer whose state is loaded next (a resume).
    """
    model = build_model(config, tensors.n_features, tensors.n_classes, empty=empty_model)
    built_in = default_callbacks(
        x_test=tensors.x_test,
        y_test=tensors.y_test,
        strategy=build_strategy(
            config,
            layer_sizes(config, tensors.n_features, tensors.n_classes),
            (tensors.x_train, tensors.y_train),
        ),
        folder=folder,
        config=config.to_dict(),
        progress=progress,
        log=log,
        run_id=run_id,
    )
    return Trainer(
        model,
        build_optimizer(config, model),
        tensors.x_train,
        tensors.y_train,
        epochs=config.run.epochs,
        batch_size=config.optimizer.batch_size,
        seed=derive_seed(config.run.seed, "shuffle"),
        callbacks=[*built_in, *callbacks],
        fused_step=config.optimizer.fused_step,
    )


def _execute(
    config: TrainConfig,
    folder: RunFolder,
    tensors: Tensors,
    checkpoint: dict[str, Any] | None,
    *,
    progress: bool,
    log: Callable[[str], object] | None,
    callbacks: Iterable[Callback],
    replicas: Replicas | None = None,
) -> RunResult:
    start, out_dir = time.perf_counter(), folder.path
    state = None if checkpoint is None else checkpoint["trainer"]
    resumed_epoch = None if state is None else int(state["epoch"])
    if replicas is not None:  # rank 0: the other workers start from the same config, state and data
        replicas.start(config, state, data_digests(tensors))
        replicas.agree(None)
    # A resume builds the sparse layers empty: the checkpoint brings their connections, and a random network
    # drawn first would sit in memory beside it (the Liu shape: 0.8 GiB next to the checkpoint's 0.7).
    trainer = build_trainer(
        config, tensors, folder=out_dir, progress=progress, log=log, callbacks=callbacks, run_id=folder.run_id,
        empty_model=state is not None and replicas is None,
    )  # fmt: skip
    threads = _prepare(trainer, config, state, replicas, out_dir)
    if checkpoint is not None:  # loaded: drop the file's tensors the model copied (its values) for the run
        state = None
        checkpoint.clear()
    try:
        trainer.fit()
    except DivergenceError as error:
        saved = next((c.saved_epoch for c in trainer.callbacks.callbacks if isinstance(c, CheckpointCallback)), None)
        if saved is None and resumed_epoch is not None:
            saved = resumed_epoch
        kept = (
            f"{out_dir / CHECKPOINT_FILE} still holds epoch {saved}, the last good one"
            if saved
            else "no checkpoint was written"
        )
        raise type(error)(f"{error}; {kept}") from None
    summary = summarize(trainer, out_dir=out_dir, wall_seconds=time.perf_counter() - start)
    summary["threads"] = threads if threads is not None else torch.get_num_threads()
    for tuner in (c for c in trainer.callbacks.callbacks if isinstance(c, ThreadTuner)):
        summary.update(tuner.summary())
    if replicas is not None:
        summary.update(replicas.summary())
    atomic_write_text(out_dir / SUMMARY_FILE, _json(summary))
    return RunResult(config, out_dir, trainer, summary)


def _prepare(
    trainer: Trainer, config: TrainConfig, state: dict[str, Any] | None, replicas: Replicas | None, where: Path
) -> int | None:
    """Join ``replicas`` (if any), set the threads, load ``state`` (if resuming); returns the threads."""
    workers = 1
    if replicas is not None:
        from evosparse.train.distributed import check_threads

        replicas.attach(trainer)
        workers = replicas.local_world_size
        check_threads(config.run.threads, workers)
    if state is not None:
        try:
            trainer.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            raise CheckpointError(
                f"checkpoint in {where} does not match the model of its own config ({error}); it is damaged"
            ) from None
    threads = choose_threads(config, trainer.model, workers=workers)  # after loading: it counts the connections
    set_threads(threads)
    tuner = thread_tuner(config, trainer.model, threads, workers)
    if tuner is not None:
        # A sparse model leaves torch element-wise work on activations; its parallel regions cost more in
        # waking threads than they save (SET tutorial model at batch 100: 1.56 s per epoch with torch on 2
        # threads, kernels tuned, against 1.02 s all on one; BENCHMARKS.md section 12, sixteenth session).
        torch.set_num_threads(1)
        trainer.callbacks.callbacks.append(tuner)
    return threads


def thread_tuner(config: TrainConfig, model: nn.Module, threads: int | None, workers: int) -> ThreadTuner | None:
    """The run's :class:`ThreadTuner` of the sparse kernels' threads, between ``threads`` (``choose_threads``' pick,
    None: all cores) and the other of one thread / all cores; None when the count is fixed (``--threads``,
    ``EVOSPARSE_THREADS``), the run has several local workers (they share the cores by design), there is one
    core, or the model has no sparse layer.

    Only the kernels' count changes during the run: they give the same bits on any count, while torch's own
    reductions (a sum over more than ~32k elements, some matrix products) split their work by threads, so
    torch keeps one count (one thread, set by ``_prepare``) for the whole run and a seed gives the same run
    every time.
    """
    from evosparse.sparse import set_num_threads

    cores = os.cpu_count() or 1
    fixed = config.run.threads is not None or threads_from_environment() is not None
    if fixed or workers != 1 or cores < 2 or not any(isinstance(m, SparseLinear) for m in model.modules()):
        return None
    first = cores if threads is None else threads
    return ThreadTuner((first, cores if first == 1 else 1), set_num_threads)


def execute_replica(
    config: TrainConfig,
    tensors: Tensors,
    state: dict[str, Any] | None,
    replicas: Replicas,
    *,
    callbacks: Iterable[Callback] = (),
) -> RunResult:
    """A data-parallel worker other than rank 0: the same trainer as rank 0's, writing nothing."""
    start = time.perf_counter()
    trainer = build_trainer(config, tensors, folder=None, progress=False, log=None, callbacks=callbacks)
    threads = _prepare(trainer, config, state, replicas, Path(config.run.out_dir or "."))
    trainer.fit()
    summary = summarize(trainer, out_dir=None, wall_seconds=time.perf_counter() - start)
    summary["threads"] = threads if threads is not None else torch.get_num_threads()
    summary.update(replicas.summary())
    return RunResult(config, Path(config.run.out_dir or "."), trainer, summary)


# ---- summary -------------------------------------------------------------------------------------------
def summarize(trainer: Trainer, *, out_dir: Path | None = None, wall_seconds: float | None = None) -> dict[str, Any]:
    """Best and final test accuracy, connections and time of a (possibly resumed) run."""
    history = trainer.history
    last = history[-1] if len(history) else {}
    best = history.best("test_accuracy") or {}
    counts = layer_connections(trainer.model)
    total = sum(t for _, t in counts)
    initial = getattr(trainer.model, "initial_layer_sizes", None)
    if initial is not None:  # density against the architecture the run started with (neurons may be gone)
        total = sum(a * b for a, b in zip(initial[:-1], initial[1:]))
    return {
        "out_dir": None if out_dir is None else str(out_dir),
        "epochs": trainer.epoch,
        "finished": trainer.finished,
        "final_test_accuracy": last.get("test_accuracy"),
        "best_test_accuracy": best.get("test_accuracy"),
        "best_epoch": best.get("epoch"),
        "final_train_accuracy": last.get("train_accuracy"),
        "nnz": sum(n for n, _ in counts),
        "dense_connections": total,
        "density": sum(n for n, _ in counts) / max(total, 1),
        "nnz_per_layer": [n for n, _ in counts],
        "train_seconds": sum(row.get("train_seconds", 0.0) for row in history),
        "topology_seconds": sum(row.get("topology_seconds", 0.0) for row in history),
        "eval_seconds": sum(row.get("eval_seconds", 0.0) for row in history),
        "wall_seconds": wall_seconds,
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """A few lines for the terminal."""

    def percent(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}%"

    per_layer = ", ".join(f"{n:,}" for n in summary["nnz_per_layer"])
    wall = summary.get("wall_seconds")
    return "\n".join(
        [
            f"final test accuracy {percent(summary['final_test_accuracy'])}, "
            f"best {percent(summary['best_test_accuracy'])} (epoch {summary['best_epoch']}), "
            f"after {summary['epochs']} epochs",
            f"connections {summary['nnz']:,} of {summary['dense_connections']:,} dense "
            f"(density {100 * summary['density']:.2f}%; per layer {per_layer})",
            f"time: training {summary['train_seconds']:.1f}s, rewiring {summary['topology_seconds']:.2f}s, "
            f"evaluation {summary['eval_seconds']:.2f}s" + ("" if wall is None else f", this command {wall:.1f}s"),
            f"results in {summary['out_dir']}",
        ]
    )


def _json(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(values), indent=2) + "\n"
