"""An RBM training run in a run folder, as ``evosparse rbm train`` does it; or the exact resume of one.

:func:`train_rbm`:

1. **Data** first (a bad data set leaves no trace): train and test arrays, their SHA-256 digests.
2. **Folder**: :class:`evosparse.io.RunFolder` of kind ``rbm`` (lock; refuse, resume or overwrite decided
   there); ``config.toml`` is written at the start.
3. **Build** the pattern (:data:`~evosparse.rbm.RBM_TOPOLOGIES`), the RBM and the CD learner, each from
   its own random stream derived from ``seed``.
4. **Every epoch**: one CD pass over the shuffled training set; the test reconstruction error; then SET
   (topology ``set``: remove and regrow, the last epoch remove only) -- the reference's order, so its
   reported error is that of the model before the epoch's rewiring; then ``history.csv``/``.json`` and,
   last, ``checkpoint.npz`` (weights, pattern, momentum, chains, every generator's state, the history: the
   commit point a resume continues from, bit for bit).
5. At the end, optionally the test log-likelihood by AIS, and ``summary.json``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evosparse.io import MANIFEST_FILE, RunFolder, RunFolderError, dump_arrays, load_arrays
from evosparse.io.atomic import atomic_write_text
from evosparse.io.digest import content_digest
from evosparse.rbm.cd import ContrastiveDivergence
from evosparse.rbm.config import RBMConfig
from evosparse.rbm.evaluation import ais_log_partition, log_likelihood, reconstruction_error
from evosparse.rbm.model import RBM
from evosparse.rbm.topology import RBM_TOPOLOGIES, evolve, make_pattern

RUN_KIND = "rbm"
CONFIG_FILE, CHECKPOINT_FILE, SUMMARY_FILE = "config.toml", "checkpoint.npz", "summary.json"
RUN_FILES = (MANIFEST_FILE, CONFIG_FILE, CHECKPOINT_FILE, "history.csv", "history.json", SUMMARY_FILE, "*.png")
CHECKPOINT_FORMAT = "evosparse-rbm-checkpoint"
# Settings a resumed run may change: they do not change the numbers it computes.
RESUMABLE_CHANGES = ("threads", "out_dir", "data_dir", "download")
STREAMS = {"topology": 0, "weights": 1, "sampling": 2, "shuffle": 3, "evaluation": 4, "evolution": 5, "ais": 6}
SUBSET_STREAM = 7  # the random stream of data_seed that picks train_samples
SMALL_STEP = 3_000_000  # connections x batch below which one thread is fastest (as evosparse.train.run)

EpochCallback = Callable[[int, dict[str, Any]], object]


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent generator for one random stream of a run (SeedSequence of (seed, stream id))."""
    return np.random.default_rng([int(seed), STREAMS[name]])


@dataclass(frozen=True)
class RBMData:
    """Training and test arrays (batch-major float32) and the shape of one sample (the visible geometry)."""

    x_train: np.ndarray
    x_test: np.ndarray
    feature_shape: tuple[int, ...]

    def digests(self) -> dict[str, str]:
        return {"x_train": content_digest(self.x_train), "x_test": content_digest(self.x_test)}


def load_data(config: RBMConfig) -> RBMData:
    """The run's data set (optionally a random subset of the training set, optionally binarised at 0.5).

    Bernoulli units need values in [0, 1] (images), so tables are refused for them.
    """
    from evosparse.data import load_dataset

    dataset = load_dataset(config.dataset, data_dir=config.data_dir, download=config.download, seed=config.data_seed)
    x_train, x_test = dataset.x_train, dataset.x_test
    if config.train_samples:
        if config.train_samples > x_train.shape[0]:
            raise ValueError(f"train_samples must be at most the {x_train.shape[0]} training samples of "
                             f"{config.dataset}, got {config.train_samples}")  # fmt: skip
        # Its own stream of data_seed: the subset does not move when other uses of the seed change.
        chosen = np.random.default_rng([config.data_seed, SUBSET_STREAM]).permutation(x_train.shape[0])
        x_train = x_train[np.sort(chosen[: config.train_samples])]
    if config.visible == "bernoulli":
        low, high = float(min(x_train.min(), x_test.min())), float(max(x_train.max(), x_test.max()))
        if low < 0 or high > 1:
            raise ValueError(
                f"visible='bernoulli' needs data in [0, 1], but {config.dataset} spans [{low:.3g}, {high:.3g}] "
                "(standardised features); use --visible gaussian"
            )
    if config.binarize:  # a fixed threshold (not a random draw per epoch): the test set's likelihood is defined
        x_train, x_test = ((x > 0.5).astype(np.float32) for x in (x_train, x_test))
    return RBMData(x_train, x_test, tuple(dataset.feature_shape))


def default_out_dir(config: RBMConfig, root: str | Path = "runs") -> Path:
    return Path(root) / "rbm" / f"{config.dataset}-{config.topology}-h{config.hidden}-s{config.seed}"


# ---- the state of a run -----------------------------------------------------------------------------------------
class RBMRun:
    """Model, learner, generators and history of a run: built from a config, saved to / loaded from a checkpoint."""

    def __init__(self, config: RBMConfig, data: RBMData) -> None:
        self.config, self.data = config, data
        n_visible = data.x_train.shape[1]
        shape = data.feature_shape if len(data.feature_shape) > 1 else None
        pattern = make_pattern(config.topology, n_visible, config.hidden, epsilon=config.epsilon,
                               visible_shape=shape, phi=config.phi, rewire=config.rewire,
                               rng=stream(config.seed, "topology"))  # fmt: skip
        self.rbm = RBM(n_visible, config.hidden, pattern=pattern, visible=config.visible, init_std=config.init_std,
                       dtype=np.dtype(config.dtype).type, seed=stream(config.seed, "weights"))  # fmt: skip
        self.learner = ContrastiveDivergence(lr=config.lr, k=config.cd_steps, persistent=config.persistent,
                                             momentum=config.momentum, weight_decay=config.weight_decay,
                                             seed=stream(config.seed, "sampling"))  # fmt: skip
        self.rngs = {name: stream(config.seed, name) for name in ("shuffle", "evaluation", "evolution")}
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    def train_epoch(self) -> dict[str, Any]:
        """One epoch: CD pass, test error, then (SET) rewiring; returns the history row."""
        config, rbm = self.config, self.rbm
        start = time.perf_counter()
        train_error = self.learner.epoch(rbm, self.data.x_train, batch_size=config.batch_size,
                                         rng=self.rngs["shuffle"])  # fmt: skip
        trained = time.perf_counter()
        test_error = reconstruction_error(rbm, self.data.x_test, rng=self.rngs["evaluation"])
        evaluated = time.perf_counter()
        self.epoch += 1
        if RBM_TOPOLOGIES[config.topology].evolves and config.zeta > 0:
            last = self.epoch == config.epochs
            gather = evolve(rbm, zeta=config.zeta, rng=self.rngs["evolution"], regrow=not last)
            self.learner.remap(gather)
        row = {
            "epoch": self.epoch,
            "train_reconstruction_error": train_error,
            "test_reconstruction_error": test_error,
            "nnz": rbm.nnz,
            "train_seconds": trained - start,
            "eval_seconds": evaluated - trained,
            "topology_seconds": time.perf_counter() - evaluated,
        }
        self.history.append(row)
        return row

    def checkpoint(self, run_id: str) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "model": self.rbm.state_dict(),
            "learner": self.learner.state_dict(),
            "rngs": {name: rng.bit_generator.state for name, rng in self.rngs.items()},
            "history": self.history,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.rbm = RBM.from_state_dict(state["model"])
        self.learner.load_state_dict(state["learner"])
        for name, rng in self.rngs.items():
            rng.bit_generator.state = state["rngs"][name]
        self.epoch = int(state["epoch"])
        self.history = [dict(row) for row in state["history"]]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A run's checkpoint (format tag and checksum verified; no pickle)."""
    return load_arrays(path, format=CHECKPOINT_FORMAT)


def load_run(out_dir: str | Path) -> tuple[RBMConfig, RBM, dict[str, Any]]:
    """(config, model at the last checkpoint, checkpoint) of the run in ``out_dir`` (for plots, evaluation)."""
    path = Path(out_dir) / CHECKPOINT_FILE
    state = load_checkpoint(path)
    config = RBMConfig.from_dict(state["config"], source=f"the config saved in {path}")
    return config, RBM.from_state_dict(state["model"]), state


# ---- files ------------------------------------------------------------------------------------------------------
def history_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _write_epoch(folder: RunFolder, run: RBMRun) -> None:
    folder.write_set(
        {
            "history.csv": history_csv(run.history).encode(),
            "history.json": (json.dumps(run.history, indent=1) + "\n").encode(),
            CHECKPOINT_FILE: dump_arrays(run.checkpoint(folder.run_id), format=CHECKPOINT_FORMAT),
        },
        last=[CHECKPOINT_FILE],
    )


def choose_threads(config: RBMConfig, rbm: RBM) -> int | None:
    if config.threads is not None:
        return config.threads
    return 1 if rbm.nnz * config.batch_size < SMALL_STEP else None


# ---- new run / resumed run ----------------------------------------------------------------------------------------
@dataclass
class RBMRunResult:
    config: RBMConfig
    out_dir: Path
    rbm: RBM
    history: list[dict[str, Any]]
    summary: dict[str, Any]


def train_rbm(
    config: RBMConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    changes: Mapping[str, Any] | None = None,
    log: Callable[[str], object] | None = print,
    on_epoch_end: EpochCallback | None = None,
    accept_data_change: bool = False,
) -> RBMRunResult:
    """Start ``config``'s run in ``config.out_dir`` (or resume the run there: then ``config`` only names the
    folder, the saved config is used, and ``changes`` may only set RESUMABLE_CHANGES or repeat saved values).

    ``on_epoch_end(epoch, row)`` is called after each epoch's files are written; returning False stops the
    run there (it can be resumed).
    """
    out_dir = Path(config.out_dir) if config.out_dir is not None else default_out_dir(config)
    if resume:
        saved, state = _resumable(out_dir, changes or {})
        config = saved
    else:
        config, state = config.replace(out_dir=str(out_dir)), None
    data = load_data(config)  # before the folder is touched: a bad data set writes nothing
    folder = RunFolder.open(out_dir, kind=RUN_KIND, files=RUN_FILES, config=config.to_dict(), data=data.digests(),
                            resume=resume, overwrite=overwrite, accept_data_change=accept_data_change)  # fmt: skip
    with folder:
        for warning in folder.warnings:
            if log is not None:
                log(f"warning: {warning}")
        run = RBMRun(config, data)
        if state is not None:
            folder.check_run_id(state["run_id"], out_dir / CHECKPOINT_FILE)
            run.restore(state)
        else:
            atomic_write_text(out_dir / CONFIG_FILE, config.to_toml())
        return _execute(run, folder, log=log, on_epoch_end=on_epoch_end)


def _resumable(out_dir: Path, changes: Mapping[str, Any]) -> tuple[RBMConfig, dict[str, Any]]:
    path = out_dir / CHECKPOINT_FILE
    if not path.exists():
        raise RunFolderError(f"{out_dir} holds no {CHECKPOINT_FILE} (no epoch finished); nothing to resume: "
                             "start again with --overwrite")  # fmt: skip
    state = load_checkpoint(path)
    saved = RBMConfig.from_dict(state["config"], source=f"the config saved in {path}")
    requested = saved.replace(**dict(changes))
    now, before = requested.to_flat(), saved.to_flat()
    conflicts = [f"{name}={now[name]!r} (saved: {before[name]!r})" for name in RBMConfig.flatten(dict(changes))
                 if name not in RESUMABLE_CHANGES and now[name] != before[name]]  # fmt: skip
    if conflicts:
        raise RunFolderError(f"--resume continues the run in {out_dir} with its saved settings, but you asked for "
                             f"{'; '.join(conflicts)}; drop those options, or start a new run")  # fmt: skip
    if int(state["epoch"]) >= saved.epochs:
        raise RunFolderError(f"the run in {out_dir} already finished its {saved.epochs} epochs; nothing to resume")
    return requested.replace(out_dir=str(out_dir)), state


def _execute(run: RBMRun, folder: RunFolder, *, log, on_epoch_end) -> RBMRunResult:
    config = run.config
    threads = choose_threads(config, run.rbm)
    from evosparse.sparse import set_num_threads

    try:
        from threadpoolctl import threadpool_limits  # BLAS threads of the dense RBM (scikit-learn's dependency)
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    if threads is not None:
        set_num_threads(threads)
    limits = threadpool_limits(threads) if (threads is not None and threadpool_limits is not None) else None
    try:
        while run.epoch < config.epochs:
            row = run.train_epoch()
            _write_epoch(folder, run)
            if log is not None:
                log(
                    f"epoch {row['epoch']:>4}: reconstruction error train {row['train_reconstruction_error']:.5f} "
                    f"test {row['test_reconstruction_error']:.5f}, nnz {row['nnz']:,}, {row['train_seconds']:.2f}s"
                )
            if on_epoch_end is not None and on_epoch_end(row["epoch"], row) is False:
                break
        summary = summarize(run, threads)
        if run.epoch >= config.epochs:
            if config.ais_runs:
                ais = ais_log_partition(run.rbm, n_runs=config.ais_runs, n_betas=config.ais_betas,
                                        data=run.data.x_train, rng=stream(config.seed, "ais"))  # fmt: skip
                result = log_likelihood(run.rbm, run.data.x_test, ais)
                summary.update({"log_z": ais.log_z, "log_z_interval": [ais.low, ais.high],
                                "test_log_likelihood": result.mean,
                                "test_log_likelihood_interval": [result.low, result.high]})  # fmt: skip
            folder.update_manifest(finished=True)
        folder.write(SUMMARY_FILE, (json.dumps(summary, indent=2) + "\n").encode())
    finally:
        if limits is not None:
            limits.unregister()
    return RBMRunResult(config, folder.path, run.rbm, run.history, summary)


def summarize(run: RBMRun, threads: int | None) -> dict[str, Any]:
    history = run.history
    last = history[-1] if history else {}
    best = min(history, key=lambda row: row["test_reconstruction_error"]) if history else {}
    train_seconds = [row["train_seconds"] for row in history]
    return {
        "out_dir": str(run.config.out_dir),
        "topology": run.config.topology,
        "epochs": run.epoch,
        "finished": run.epoch >= run.config.epochs,
        "final_test_reconstruction_error": last.get("test_reconstruction_error"),
        "best_test_reconstruction_error": best.get("test_reconstruction_error"),
        "best_epoch": best.get("epoch"),
        "final_train_reconstruction_error": last.get("train_reconstruction_error"),
        "nnz": run.rbm.nnz,
        "dense_connections": run.rbm.n_visible * run.rbm.n_hidden,
        "density": run.rbm.density,
        "seconds_per_epoch": float(np.median(train_seconds)) if train_seconds else None,
        "train_seconds": float(np.sum(train_seconds)),
        "threads": threads,
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    lines = [
        f"{summary['topology']} RBM after {summary['epochs']} epochs: test reconstruction error "
        f"{summary['final_test_reconstruction_error']:.5f} (best {summary['best_test_reconstruction_error']:.5f}, "
        f"epoch {summary['best_epoch']})",
        f"connections {summary['nnz']:,} of {summary['dense_connections']:,} (density {100 * summary['density']:.2f}%)"
        f"; {summary['seconds_per_epoch']:.3f}s per epoch (median), {summary['train_seconds']:.1f}s training",
    ]
    if "test_log_likelihood" in summary:
        low, high = summary["test_log_likelihood_interval"]
        lines.append(f"test log-likelihood (AIS) {summary['test_log_likelihood']:.2f} nats [{low:.2f}, {high:.2f}]")
    lines.append(f"results in {summary['out_dir']}")
    return "\n".join(lines)
