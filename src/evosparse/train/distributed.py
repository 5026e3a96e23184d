"""Data-parallel training of one truly sparse network on ``torch.distributed`` (gloo on the CPU).

Every worker (rank) holds a full replica: the same topology and weights (same seed), the same optimizer
state, the same random generators. Per step:

1. **Shard**: every rank draws the same data order and takes its contiguous slice of the global batch
   (``batch_size`` examples, split as evenly as possible), so the ranks together see exactly the examples
   single-process training sees. Dropout layers are told where the slice starts, so they draw the masks
   single-process training draws for those rows.
2. **All-reduce**: each rank's loss is its examples' summed cross-entropy over the *global* batch size;
   the gradients of every parameter (the sparse ``values``, length nnz per layer, and the biases) plus the
   loss and the hits go into one flat buffer, summed by one ``all_reduce``: every rank then holds the
   gradient of the whole batch's mean loss, and takes the identical optimizer step.
3. **Rewire** at the same step everywhere through the usual :class:`TopologyCallback`: SET's drop is a
   function of the (identical) weights and its regrowth of the strategy's generator (same seed, same
   draws on every rank); RigL's growth scores ``|dL/dW|`` come from the gradient probe, whose rows are
   all-gathered first (:meth:`Replicas.gather_rows`), so every rank scores the whole global batch: that
   costs ``batch x (n_in + n_out)`` floats per layer per update instead of an ``n_in x n_out`` dense
   score matrix.
4. **Check** (:class:`ReplicaCheckCallback`): every ``check_every`` steps, after every rewiring and at
   every epoch end, the ranks compare a digest of every parameter and every layer's indices; a mismatch
   stops all ranks with :class:`ReplicaDivergenceError`, naming the tensor and the ranks.

Only rank 0 owns the run folder (lock, manifest, history, atomic checkpoints, summary): it opens the
folder (or reads the checkpoint to resume) as :func:`evosparse.train.train` does, then broadcasts the
config and the checkpoint to the other ranks (:meth:`Replicas.start`), which build the same trainer
without a folder. Evaluation is sharded: each rank scores its slice of the test set, the sums are
all-reduced. A checkpoint does not depend on the number of workers: a run may resume with another
world size, or without ``--distributed``.

Launch with ``torchrun --nproc-per-node N -m evosparse train ... --distributed`` (any number of nodes), or
``evosparse train --distributed N`` (N local worker processes, :func:`launch_local`).

Paper (the asynchronous alternative, not implemented here): Curci, Mocanu, Pechenizkiy, "Truly sparse
neural networks at scale", 2021 (WASAP-SGD).
"""

from __future__ import annotations

import hashlib
import math
import os
import queue
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evosparse.nn.dropout import SeededDropout
from evosparse.topology.strategy import sparse_layers
from evosparse.train.callbacks import Callback, EvaluationCallback, TopologyCallback
from evosparse.train.config import TrainConfig
from evosparse.train.loop import DivergenceError, Trainer
from evosparse.train.metrics import connection_metrics, evaluate

BACKENDS = ("gloo", "nccl")
ENVIRONMENT = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets for every worker
CHECK_EVERY = 100  # steps between two replica checks (besides every rewiring and every epoch end)


class DistributedError(ValueError):
    """Data-parallel training cannot start or go on as asked (environment, world size, a failed worker)."""


class ReplicaDivergenceError(DivergenceError):
    """The replicas' weights or topologies differ: training would no longer be one model."""


def shard_bounds(n: int, world_size: int, rank: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s contiguous slice of ``n`` items (the first ``n % world_size`` ranks
    take one more, as ``numpy.array_split``)."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def check_world_size(world_size: int, batch_size: int, *, flag: str = "--distributed") -> None:
    """Every worker needs at least one example of every full batch: a one-line error otherwise."""
    if world_size < 1:
        raise DistributedError(f"{flag} needs at least 1 worker, got {world_size}")
    if world_size > batch_size:
        raise DistributedError(
            f"{flag} runs {world_size} workers but --batch-size is {batch_size}: every worker needs at least one "
            f"example of each batch; give --batch-size >= {world_size}, or 1..{batch_size} workers"
        )


def check_threads(threads: int | None, local_workers: int, cores: int | None = None) -> None:
    """``threads`` per worker times the workers on this machine must fit in its cores (else they only slow down)."""
    cores = cores or os.cpu_count() or 1
    if local_workers > cores:
        raise DistributedError(
            f"--distributed {local_workers} starts {local_workers} workers on this machine's {cores} cores; "
            f"give --distributed 1..{cores} (more workers than cores only slow down)"
        )
    if threads is not None and threads * local_workers > cores:
        allowed = max(1, cores // local_workers)
        raise DistributedError(
            f"--threads {threads} with {local_workers} workers on this machine runs {threads * local_workers} "
            f"threads on {cores} cores; give --threads 1..{allowed} (or leave it out: {allowed} per worker)"
        )


@dataclass
class Replicas:
    """This process's place in a data-parallel group, and the collective operations training needs.

    Build it with :func:`init_replicas` (from torchrun's environment) or let :func:`launch_local` do it.

    Attributes:
        rank, world_size: this worker's number and the number of workers.
        local_world_size: workers on this machine (they share its cores).
        check_every: steps between two replica checks (:class:`ReplicaCheckCallback`).
        reduced_bytes: bytes this rank all-reduced for gradients so far; gathered_bytes: bytes all-gathered
            for RigL's growth scores so far (communication volume, see BENCHMARKS.md section 16).
        steps: optimizer steps synchronised so far; reduce_seconds: time spent in those all-reduces
            (waiting for the slowest rank included).
    """

    rank: int
    world_size: int
    local_world_size: int = 1
    check_every: int = CHECK_EVERY
    reduced_bytes: int = 0
    gathered_bytes: int = 0
    steps: int = 0
    reduce_seconds: float = 0.0
    started: bool = False
    _shard_sizes: list[int] = field(default_factory=list)
    _dropouts: list[SeededDropout] = field(default_factory=list)

    @property
    def is_main(self) -> bool:
        """Rank 0: the worker that owns the run folder and prints."""
        return self.rank == 0

    # ---- step 1: shards ---------------------------------------------------------------------------------
    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's slice of the global batch ``index`` (and the dropout layers told where it starts)."""
        n = index.shape[0]
        bounds = [shard_bounds(n, self.world_size, rank) for rank in range(self.world_size)]
        self._shard_sizes = [stop - start for start, stop in bounds]
        start, stop = shard_bounds(n, self.world_size, self.rank)
        for dropout in self._dropouts:
            dropout.row_offset = start
        return index[start:stop]

    # ---- step 2: one all-reduce per step ------------------------------------------------------------------
    def all_reduce_gradients(self, model: nn.Module, loss: torch.Tensor, hits: int) -> tuple[float, int]:
        """Sum every parameter's gradient, the loss and the hits over the ranks, in one flat buffer.

        Returns the global batch's mean loss and its number of correct predictions. A parameter without a
        gradient on this rank (an empty shard) contributes zeros; afterwards every parameter has the summed one.
        """
        import torch.distributed as dist

        params = [p for p in model.parameters() if p.requires_grad]
        dtype = params[0].dtype if params else torch.float32
        parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(dtype) for p in params]
        parts.append(torch.stack([loss.to(dtype).reshape(()), torch.tensor(float(hits), dtype=dtype)]))
        buffer = torch.cat(parts)
        start = time.perf_counter()
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        self.reduce_seconds += time.perf_counter() - start  # includes waiting for the slowest rank
        self.reduced_bytes += buffer.numel() * buffer.element_size()
        self.steps += 1
        offset = 0
        for p in params:
            chunk = buffer[offset : offset + p.numel()].view_as(p)
            if p.grad is None:
                p.grad = chunk.clone()
            else:
                p.grad.copy_(chunk)
            offset += p.numel()
        return float(buffer[offset]), int(round(float(buffer[offset + 1])))

    # ---- step 3: RigL's growth scores on the global batch ----------------------------------------------------
    def gather_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's rows of ``tensor`` (its shard of the latest batch), concatenated in rank order."""
        import torch.distributed as dist

        sizes = self._shard_sizes or [tensor.shape[0]] * self.world_size
        if tensor.shape[0] != sizes[self.rank]:
            raise DistributedError(f"rank {self.rank} holds {tensor.shape[0]} rows, its shard has {sizes[self.rank]}")
        widest = max(sizes)
        padded = torch.zeros((widest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
        padded[: tensor.shape[0]] = tensor
        pieces = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(pieces, padded.contiguous())  # gloo gathers equal sizes only: pad, then trim
        self.gathered_bytes += padded.numel() * padded.element_size() * self.world_size
        return torch.cat([piece[:size] for piece, size in zip(pieces, sizes)])

    # ---- step 4: the replica check --------------------------------------------------------------------------
    def check_replicas(self, model: nn.Module, *, where: str) -> None:
        """Raise :class:`ReplicaDivergenceError` on every rank if any rank's weights or indices differ from rank 0's."""
        import torch.distributed as dist

        names, digests = replica_digests(model)
        mine = torch.tensor(digests, dtype=torch.int64)
        everyone = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(everyone, mine)
        lengths = {int(d.shape[0]) for d in everyone}
        for rank, theirs in enumerate(everyone[1:], start=1):
            if len(lengths) > 1:
                raise ReplicaDivergenceError(f"replicas diverged {where}: rank {rank} has another number of layers")
            differ = np.flatnonzero((theirs != everyone[0]).numpy())
            if differ.size:
                raise ReplicaDivergenceError(
                    f"replicas diverged {where}: rank {rank}'s {names[differ[0]]} differs from rank 0's "
                    f"({differ.size} of {len(names)} tensors differ); the run stops rather than train "
                    "several different models (a non-deterministic kernel, or workers on different hardware)"
                )

    # ---- the start of a run ----------------------------------------------------------------------------------
    def start(
        self, config: TrainConfig, state: Mapping[str, Any] | None, data: Mapping[str, str] | None = None
    ) -> tuple[TrainConfig, Any, dict[str, str]]:
        """Rank 0 sends the run's config, the trainer state to resume from (or None) and its data digests to
        every rank; the others receive them (an error if rank 0 failed before: :meth:`abort_start`)."""
        import torch.distributed as dist

        message: list[Any] = [None]
        if self.is_main:
            message = [{"config": config.to_dict(), "state": state, "data": dict(data or {}), "error": None}]
        dist.broadcast_object_list(message, src=0)  # between this run's own processes; no file is unpickled
        self.started = True
        received = message[0]
        if received["error"] is not None:
            raise DistributedError(f"rank 0 stopped before training: {received['error']}")
        return TrainConfig.from_dict(received["config"], source="rank 0"), received["state"], received["data"]

    def abort_start(self, error: BaseException) -> None:
        """Rank 0 failed before :meth:`start` (a refused folder, bad data): tell the others, so none waits."""
        import torch.distributed as dist

        if self.started or not self.is_main:
            return
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        dist.broadcast_object_list([{"config": None, "state": None, "data": None, "error": text}], src=0)
        self.started = True

    def agree(self, problem: str | None) -> None:
        """All ranks learn whether any found a problem (e.g. other data than rank 0's); all raise if one did."""
        import torch.distributed as dist

        problems: list[Any] = [None] * self.world_size
        dist.all_gather_object(problems, problem)
        found = [(rank, text) for rank, text in enumerate(problems) if text is not None]
        if found:
            rank, text = found[0]
            raise DistributedError(f"rank {rank}: {text}")

    # ---- wiring a trainer ------------------------------------------------------------------------------------
    def attach(self, trainer: Trainer) -> Trainer:
        """Make ``trainer`` one worker of this group: sharded batches, all-reduced gradients, gathered growth
        scores, sharded evaluation and the replica check (placed before the history and the checkpoint)."""
        check_world_size(self.world_size, trainer.batch_size)
        trainer.replicas = self
        self._dropouts = [m for m in trainer.model.modules() if isinstance(m, SeededDropout)]
        callbacks = trainer.callbacks.callbacks
        for index, callback in enumerate(callbacks):
            if type(callback) is EvaluationCallback:
                callbacks[index] = ShardedEvaluationCallback(self, callback.x_test, callback.y_test)
            if isinstance(callback, TopologyCallback):
                probe = getattr(callback.strategy, "probe", None)
                if probe is not None:
                    probe.gather = self.gather_rows
        after = max((i for i, c in enumerate(callbacks) if isinstance(c, TopologyCallback | EvaluationCallback)))
        callbacks.insert(after + 1, ReplicaCheckCallback(self))
        return trainer

    def new_run(self) -> None:
        """Forget the previous run of this group (its start, its communication counters)."""
        self.started = False
        self.reduced_bytes = self.gathered_bytes = self.steps = 0
        self.reduce_seconds = 0.0

    def summary(self) -> dict[str, Any]:
        """Communication of this run so far, for ``summary.json``."""
        return {
            "world_size": self.world_size,
            "allreduce_bytes_per_step": self.reduced_bytes // max(self.steps, 1),
            "allreduce_seconds": self.reduce_seconds,
            "rigl_gather_bytes": self.gathered_bytes,
        }


def replica_digests(model: nn.Module) -> tuple[list[str], list[int]]:
    """An 8-byte BLAKE2b digest of every parameter's bytes and of every sparse layer's indices (as int64)."""
    names, digests = [], []

    def add(name: str, array: np.ndarray) -> None:
        digest = hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=8).digest()
        names.append(name)
        digests.append(int.from_bytes(digest, "little", signed=True))

    for name, parameter in model.named_parameters():
        add(name, parameter.detach().cpu().numpy())
    for index, layer in enumerate(sparse_layers(model), start=1):
        add(f"sparse layer {index} indices", np.concatenate([layer.pattern.indptr, layer.pattern.cols]))
    return names, digests


class ShardedEvaluationCallback(EvaluationCallback):
    """Test loss and accuracy: each rank scores its slice of the test set, the sums are all-reduced."""

    def __init__(self, replicas: Replicas, x_test: torch.Tensor, y_test: torch.Tensor, *, batch_size: int = 1024):
        super().__init__(x_test, y_test, batch_size=batch_size)
        self.replicas = replicas

    def _on_epoch_end(self) -> bool:
        import torch.distributed as dist

        start_time = time.perf_counter()
        start, stop = shard_bounds(self.x_test.shape[0], self.replicas.world_size, self.replicas.rank)
        n = stop - start
        totals = torch.zeros(3, dtype=torch.float64)
        if n:
            loss, accuracy = evaluate(
                self.trainer.model, self.x_test[start:stop], self.y_test[start:stop], batch_size=self.batch_size
            )
            totals = torch.tensor([loss * n, accuracy * n, n], dtype=torch.float64)
        dist.all_reduce(totals, op=dist.ReduceOp.SUM)
        total = float(totals[2])
        loss, accuracy = (float(totals[0]) / total, float(totals[1]) / total) if total else (math.nan, math.nan)
        self.trainer.logs.update(test_loss=loss, test_accuracy=accuracy, eval_seconds=time.perf_counter() - start_time)
        self.trainer.logs.update(connection_metrics(self.trainer.model))
        return True


class ReplicaCheckCallback(Callback):
    """Compares the replicas every ``check_every`` steps, after every topology update and at every epoch end."""

    def __init__(self, replicas: Replicas) -> None:
        super().__init__()
        self.replicas = replicas
        self._updates = 0

    def _topology_updates(self) -> int:
        for callback in self.trainer.callbacks.callbacks:
            if isinstance(callback, TopologyCallback):
                return callback.strategy.n_updates
        return 0

    def _on_step_end(self) -> bool:
        updates = self._topology_updates()
        if updates != self._updates or self.trainer.step % self.replicas.check_every == 0:
            self._updates = updates
            self.replicas.check_replicas(self.trainer.model, where=f"at step {self.trainer.step}")
        return True

    def _on_epoch_end(self) -> bool:
        self._updates = self._topology_updates()
        self.replicas.check_replicas(self.trainer.model, where=f"at the end of epoch {self.trainer.epoch}")
        return True


# ---- process groups -------------------------------------------------------------------------------------------
def init_replicas(
    *, backend: str = "gloo", timeout_seconds: float = 1800.0, check_every: int = CHECK_EVERY
) -> Replicas:
    """Join the process group torchrun (or :func:`launch_local`) described in the environment.

    Args:
        backend: "gloo" (CPU tensors: what the trainer computes on) or "nccl" (CUDA tensors; untested here).
        timeout_seconds: how long a collective waits for a missing worker before failing.
        check_every: steps between two replica checks.
    """
    import torch.distributed as dist

    if not dist.is_available():
        raise DistributedError("this torch build has no torch.distributed; install a torch wheel that has it")
    if backend not in BACKENDS:
        raise DistributedError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "nccl" and not torch.cuda.is_available():
        raise DistributedError("backend 'nccl' needs CUDA, which this machine lacks; use 'gloo'")
    missing = [name for name in ENVIRONMENT if name not in os.environ]
    if missing:
        raise DistributedError(
            f"--distributed without a number joins a torchrun job, but {', '.join(missing)} are not set: launch "
            "with 'torchrun --nproc-per-node N -m evosparse train ... --distributed', or give --distributed N to "
            "start N local workers"
        )
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_seconds))
    world_size = dist.get_world_size()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    return Replicas(rank=dist.get_rank(), world_size=world_size, local_world_size=local, check_every=check_every)


def close_replicas() -> None:
    """Leave the process group (end of a worker)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ---- a whole run on every rank ----------------------------------------------------------------------------------
def train_distributed(
    replicas: Replicas,
    config: TrainConfig | None = None,
    *,
    resume_dir: str | Path | None = None,
    changes: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    accept_data_change: bool = False,
    dataset: Any = None,
    progress: bool = True,
    log: Callable[[str], object] | None = print,
    callbacks: Iterable[Callback] = (),
) -> Any:
    """Run (``config``) or resume (``resume_dir``) a training run as one worker of ``replicas``.

    Every rank calls this with the same arguments. Rank 0 does what :func:`evosparse.train.train` /
    :func:`~evosparse.train.resume` do (folder, files, checkpoints, progress and log lines); the others train
    their replica and write nothing. Returns a :class:`~evosparse.train.run.RunResult` on every rank (its
    summary is rank 0's file's content; on the others, the same numbers unwritten).
    """
    from evosparse.train import run

    if (config is None) == (resume_dir is None):
        raise ValueError("give either config (a new run) or resume_dir (a run to continue)")
    replicas.new_run()
    if replicas.is_main:
        try:
            if config is not None:
                return run.train(
                    config, overwrite=overwrite, dataset=dataset, progress=progress, log=log,
                    callbacks=callbacks, replicas=replicas,
                )  # fmt: skip
            return run.resume(
                resume_dir, changes=changes, dataset=dataset, progress=progress, log=log, callbacks=callbacks,
                accept_data_change=accept_data_change, replicas=replicas,
            )  # fmt: skip
        except BaseException as error:
            replicas.abort_start(error)
            raise
    config, state, data = replicas.start(config or TrainConfig(), None)
    problem, tensors = None, None
    try:
        tensors = run.load_tensors(config, dataset)
        mine = run.data_digests(tensors)
        differ = sorted(name for name in mine if name in data and mine[name] != data[name])
        if differ:
            problem = f"its data differ from rank 0's ({', '.join(differ)}): every worker must load the same data set"
    except Exception as error:  # every rank must hear of it, or rank 0 would wait for this one forever
        problem = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    replicas.agree(problem)
    return run.execute_replica(config, tensors, state, replicas, callbacks=callbacks)


# ---- N local workers -------------------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port free on this machine now (the local group's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Job:
    """What every local worker runs: a new run (``config``) or the resume of ``resume_dir``; picklable."""

    config: dict[str, Any] | None = None
    resume_dir: str | None = None
    changes: dict[str, Any] | None = None
    overwrite: bool = False
    accept_data_change: bool = False
    quiet: bool = False
    check_every: int = CHECK_EVERY

    def train(self, replicas: Replicas, config: TrainConfig | None, *, progress: bool,
              log: Callable[[str], object] | None) -> Any:  # fmt: skip
        """:func:`train_distributed` of ``config`` (or of the resume) with this job's run options."""
        return train_distributed(replicas, config, resume_dir=self.resume_dir, changes=self.changes,
                                 overwrite=self.overwrite, accept_data_change=self.accept_data_change,
                                 progress=progress, log=log)  # fmt: skip


def run_job(replicas: Replicas, job: Job) -> dict[str, Any]:
    """:func:`train_distributed` of ``job`` on this rank; returns the summary and this replica's digests."""
    from evosparse.train.run import format_summary

    replicas.check_every = job.check_every
    log = None if job.quiet or not replicas.is_main else print
    config = None if job.config is None else TrainConfig.from_dict(job.config, source="the command line")
    result = job.train(replicas, config, progress=False, log=log)
    if replicas.is_main and not job.quiet:
        print(format_summary(result.summary), flush=True)
    names, digests = replica_digests(result.model)
    return {"rank": replicas.rank, "summary": result.summary, "digests": dict(zip(names, digests))}


def _worker(
    rank: int, world_size: int, port: int, target: Callable[..., Any], arguments: tuple, results: Any, threads: int
) -> None:
    """One local worker: the environment torchrun would set, the group, ``target(replicas, *arguments)``."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(threads)  # before any work: the workers share the cores
    try:
        replicas = init_replicas()
        try:
            results.put((rank, "ok", target(replicas, *arguments)))
        finally:
            close_replicas()
    except BaseException as error:  # reported to the parent as one line; the traceback only with EVOSPARSE_DEBUG
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if os.environ.get("EVOSPARSE_DEBUG"):
            traceback.print_exc()
        results.put((rank, type(error).__name__, text))
        raise SystemExit(1) from None


def launch_local(
    world_size: int, target: Callable[..., Any] = run_job, arguments: tuple = (), *, threads: int | None = None
) -> list[Any]:
    """Run ``target(replicas, *arguments)`` in ``world_size`` new local processes (gloo over 127.0.0.1).

    Returns the targets' results in rank order. If a worker fails, the others are stopped and a
    :class:`DistributedError` carries the first failure's one-line message (rank 0's if it failed).
    ``target`` and ``arguments`` must be picklable (a module-level function); results should hold no tensors
    (numpy arrays instead): a tensor sent between processes is shared memory its sender must keep alive.
    """
    import multiprocessing

    cores = os.cpu_count() or 1
    check_threads(threads, world_size, cores)
    threads = threads or max(1, cores // world_size)
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and locks
    results = context.Queue()
    port = free_port()
    processes = [
        context.Process(target=_worker, args=(rank, world_size, port, target, arguments, results, threads))
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    outcomes: dict[int, tuple[str, Any]] = {}
    deadline = None  # after a failure: how long the others get to report theirs (rank 0's says most)
    try:
        while len(outcomes) < world_size and (deadline is None or time.monotonic() < deadline):
            try:
                rank, status, value = results.get(timeout=0.5)
            except queue.Empty:
                silent = [r for r, p in enumerate(processes) if not p.is_alive() and r not in outcomes]
                if silent and deadline is None:  # died without a word (killed, out of memory)
                    deadline = time.monotonic() + 5
                continue
            outcomes[rank] = (status, value)
            if status != "ok" and deadline is None:
                deadline = time.monotonic() + 10
    finally:
        _stop(processes, grace_seconds=10 if len(outcomes) == world_size else 1)
    failures = sorted((rank, status, value) for rank, (status, value) in outcomes.items() if status != "ok")
    if failures:
        rank, status, text = failures[0]
        raise DistributedError(text if rank == 0 else f"worker {rank} failed ({status}): {text}")
    if len(outcomes) < world_size:
        silent = sorted(set(range(world_size)) - set(outcomes))
        codes = [processes[r].exitcode for r in silent]
        raise DistributedError(f"worker(s) {silent} exited without a result (exit codes {codes})")
    return [outcomes[rank][1] for rank in range(world_size)]


def _stop(processes: list[Any], *, grace_seconds: float) -> None:
    """Wait for our worker processes; those still running after the grace period are terminated (by their id)."""
    for process in processes:
        process.join(timeout=grace_seconds if grace_seconds else None)
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join()
