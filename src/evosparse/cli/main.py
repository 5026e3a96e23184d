"""``evosparse``: train a SET-MLP, show an architecture's size, benchmark the kernels.

    evosparse train [--config FILE.toml] [--resume | --overwrite] [--out-dir DIR] [--quiet] [--<field> VALUE ...]
                    [--distributed [N]]   (data parallel: N local workers, or one worker of a torchrun job)
    evosparse info  [--layers 784,1000,1000,1000,10 | --dataset NAME --hidden 1000,1000,1000] [--epsilon 20]
    evosparse bench [--quick] [--threads 1,2] [--repeats N]
    evosparse compare --strategies set,rigl,... --densities 0.01,0.05 --seeds 0,1,2 --out-dir DIR [--jobs N] [--ray]
    evosparse tune [CONFIG] --search lr=loguniform(1e-3,1e-1) ... --out-dir DIR [--samples N] [--scheduler asha]
    evosparse plot degrees RUN_DIR
    evosparse neat run --task xor|double-pole|cartpole|... [CONFIG] [--out-dir DIR] [--resume]
    evosparse grid run ENV --controller {none,rule,optimal,random} [--plot FILE.png]

Every setting of :class:`TrainConfig` is a ``train`` flag named after its flat name (``lr`` -> ``--lr``,
``batch_size`` -> ``--batch-size``; see :mod:`evosparse.train.config`); flags override ``--config``, which
overrides the defaults. Bad input, for every command, ends with one ``error: ...`` line on stderr and exit
code 2, never a traceback, and never touches earlier results (set ``EVOSPARSE_DEBUG=1`` to see the
traceback anyway): the flag helpers and that single error path are in :mod:`evosparse.cli._flags`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from evosparse.cli._flags import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    CommandError,
    Parser,
    add_config_flags,
    cap_threads,
    one_line,
    parse_sizes,
    run_command,
    train_changes,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "CommandError", "build_parser", "main"]

# The modules that add commands beside train / info / bench: each has ``register(commands, parser_class)``,
# and ``main`` runs every handler through the one error path. A new command is one line here.
COMMAND_MODULES = (
    "evosparse.cli.compare",
    "evosparse.cli.tune",
    "evosparse.cli.neat",
    "evosparse.cli.grid",
    "evosparse.cli.rl",
    "evosparse.cli.rbm",
    "evosparse.cli.rbm_forecast",
)


# ---- train ---------------------------------------------------------------------------------------------
def command_train(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from evosparse._memory import keep_freed_memory
    from evosparse.train import TrainConfig, resume
    from evosparse.train import train as run_training
    from evosparse.train.run import default_out_dir, format_summary

    if args.resume and args.overwrite:
        raise CommandError("--resume continues a run and --overwrite replaces it; give one of them")
    changes = train_changes(args)
    if hasattr(args, "data") and hasattr(args, "dataset"):
        raise CommandError("--data FILE trains on your own file and --dataset NAME on a registered one; give one")
    try:  # freed arrays stay in the process for the next topology update (evosparse._memory: why)
        keep_freed_memory()
    except ValueError as error:
        raise CommandError(str(error)) from None
    progress = not args.quiet and sys.stderr.isatty()
    log = None if args.quiet else (lambda line: tqdm.write(line, file=sys.stdout))

    if args.resume:
        if not changes.get("out_dir"):
            raise CommandError("--resume needs --out-dir, the folder of the run to continue")
        if args.print_config:
            raise CommandError("--print-config shows a new run's settings; a resumed run uses the ones in its folder")
        args.out_dir = changes["out_dir"]
        if args.distributed is not None:
            return _train_distributed(args, None, changes)
        result = resume(
            changes["out_dir"],
            changes=changes,
            progress=progress,
            log=log,
            accept_data_change=args.accept_data_change,
        )
    else:
        config = TrainConfig.from_dict(changes, source="the command line")
        if args.print_config:
            sys.stdout.write(config.to_toml())
            return 0
        if config.run.out_dir is None:
            config = config.replace(out_dir=str(default_out_dir(config)))
        if args.accept_data_change:
            raise CommandError("--accept-data-change goes with --resume (a new run records its data)")
        args.out_dir = config.run.out_dir  # for the message if the run is interrupted
        if args.distributed is not None:
            return _train_distributed(args, config, changes)
        result = run_training(config, overwrite=args.overwrite, progress=progress, log=log)
    print(format_summary(result.summary))
    return 0


def _train_distributed(args: argparse.Namespace, config: Any, changes: dict[str, Any]) -> int:
    """``train --distributed``: N local workers (``--distributed N``), or this process as one worker of the
    torchrun job it belongs to (``--distributed`` alone); see :mod:`evosparse.train.distributed`."""
    from evosparse.train import distributed
    from evosparse.train.run import format_summary

    job = distributed.Job(
        config=None if config is None else config.to_dict(),
        resume_dir=None if config is not None else changes["out_dir"],
        changes=None if config is not None else changes,
        overwrite=args.overwrite,
        accept_data_change=args.accept_data_change,
        quiet=args.quiet,
    )
    if args.distributed != TORCHRUN:
        workers = args.distributed
        if workers < 1:
            raise CommandError(f"--distributed needs a number of workers >= 1, got {workers}")
        threads = changes.get("threads")
        distributed.check_threads(threads, workers)
        if config is not None:
            distributed.check_world_size(workers, config.optimizer.batch_size)
        distributed.launch_local(workers, distributed.run_job, (job,), threads=threads)
        return 0  # rank 0 printed the epoch lines and the summary
    replicas = distributed.init_replicas()
    try:
        progress = replicas.is_main and not args.quiet and sys.stderr.isatty()
        log = None if args.quiet or not replicas.is_main else print
        result = job.train(replicas, config, progress=progress, log=log)
    finally:
        distributed.close_replicas()
    if replicas.is_main:
        print(format_summary(result.summary))
    return 0


def _workers(text: str) -> int | str:
    if text == TORCHRUN:  # argparse passes the const of a bare --distributed through this too
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--distributed takes a number of local workers, got {text!r}") from None


TORCHRUN = "torchrun"  # --distributed without a number: join the torchrun job of this process


# ---- info ------------------------------------------------------------------------------------------------
def _dataset_sizes(name: str, data_dir: str | None) -> tuple[int, int]:
    """(n_features, n_classes) of a data set, read from its files (never downloaded for ``info``)."""
    from evosparse import data

    if name not in data.DATASETS:
        raise CommandError(f"unknown dataset {name!r}; choose one of {', '.join(sorted(data.DATASETS))}")
    try:
        dataset = data.load_dataset(name, data_dir=data_dir, download=False)
    except FileNotFoundError as error:
        raise CommandError(f"{one_line(error)} (or give the layer sizes with --layers)") from None
    return int(dataset.n_features), int(dataset.n_classes)


def _bytes(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def format_architecture(info: dict[str, Any]) -> str:
    """The table ``evosparse info`` prints, from :func:`evosparse.train.architecture.architecture`."""
    lines = [
        f"SET-MLP {'-'.join(map(str, info['layers']))} ({info['total']['neurons']:,} neurons), "
        f"epsilon {info['epsilon']:g}, float32 weights",
        f"{'layer':>5}  {'in -> out':>15}  {'connections':>12}  {'dense':>12}  {'density':>8}  "
        f"{'sparse bytes':>12}  {'dense bytes':>12}",
    ]
    for row in info["per_layer"]:
        lines.append(
            f"{row['layer']:>5}  {row['n_in']:>6} -> {row['n_out']:<6}  {row['connections']:>12,}  "
            f"{row['dense_connections']:>12,}  {100 * row['density']:>7.2f}%  {_bytes(row['bytes']):>12}  "
            f"{_bytes(row['dense_bytes']):>12}"
        )
    total = info["total"]
    lines.append(
        f"{'total':>5}  {'':>15}  {total['connections']:>12,}  {total['dense_connections']:>12,}  "
        f"{100 * total['density']:>7.2f}%  {_bytes(total['bytes']):>12}  {_bytes(total['dense_bytes']):>12}"
    )
    lines.append(
        f"{total['dense_connections'] / total['connections']:.1f}x fewer connections, "
        f"{total['dense_bytes'] / total['bytes']:.1f}x less memory than the dense MLP "
        "(sparse bytes: values, CSR indices, biases; training at batch > 4 adds a CSC view, 8 bytes per connection)"
    )
    return "\n".join(lines)


def command_info(args: argparse.Namespace) -> int:
    from evosparse.train.architecture import architecture
    from evosparse.train.config import TrainConfig

    if not (args.epsilon > 0 and args.epsilon < float("inf")):
        raise CommandError(f"epsilon must be a finite number > 0, got {args.epsilon}")
    if args.layers is not None:
        if args.hidden is not None or args.dataset is not None:
            raise CommandError("--layers gives every size; drop --hidden / --dataset, or drop --layers")
        layers = list(args.layers)
        if len(layers) < 2 or any(size < 1 for size in layers):
            raise CommandError(f"--layers needs two or more positive sizes (input, ..., output), got {layers}")
    else:
        defaults = TrainConfig()
        hidden = defaults.model.hidden if args.hidden is None else args.hidden
        if not hidden or any(size < 1 for size in hidden):
            raise CommandError(f"hidden must be one or more positive integers (e.g. 256,256), got {list(hidden)}")
        n_features, n_classes = _dataset_sizes(args.dataset or defaults.data.dataset, args.data_dir)
        layers = [n_features, *hidden, n_classes]
    info = architecture(layers, args.epsilon)  # computed from the sizes: nothing is allocated
    print(json.dumps(info, indent=2) if args.json else format_architecture(info))
    return 0


# ---- bench -----------------------------------------------------------------------------------------------
def command_bench(args: argparse.Namespace) -> int:
    if args.threads is not None and (not args.threads or any(n < 1 for n in args.threads)):
        raise CommandError(f"--threads needs positive counts, got {list(args.threads)}")
    if args.threads is not None:
        args.threads = tuple(dict.fromkeys(cap_threads(args, n) for n in args.threads))
    if args.repeats is not None and args.repeats < 1:
        raise CommandError(f"--repeats must be >= 1, got {args.repeats}")
    try:
        from evosparse.bench.kernels import run_kernel_benchmark
    except ImportError as error:
        raise CommandError(f"the kernel benchmark is not available in this installation ({one_line(error)})") from None
    kwargs: dict[str, Any] = {"out": print, "quick": args.quick, "repeats": args.repeats}
    if args.threads is not None:
        kwargs["threads"] = tuple(args.threads)
    results = run_kernel_benchmark(**kwargs)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


# ---- parser ----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from evosparse import __version__
    from evosparse.train.config import TrainConfig

    parser = Parser(prog="evosparse", description="Truly sparse neural networks that evolve their own wiring (SET).")
    parser.add_argument("--version", action="version", version=f"evosparse {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="train a SET-MLP (or its dense twin) and save history, checkpoint and config",
        description="Train a SET-MLP. With no option: digits (bundled, no download), defaults tuned to match a "
        "dense MLP. Writes config.toml, history.csv/.json, checkpoint.pt (every epoch) and summary.json "
        "into --out-dir (default runs/<dataset>-<model>-s<seed>, numbered if taken).",
    )
    train.add_argument("--config", metavar="FILE", help="TOML (or .json) config file; flags override it")
    train.add_argument("--resume", action="store_true", help="continue the run in --out-dir from its checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out-dir")
    train.add_argument(
        "--accept-data-change",
        action="store_true",
        help="with --resume: continue although the data differ from the checksums the run recorded (warns)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    train.add_argument("--print-config", action="store_true", help="print the run's config as TOML and exit")
    train.add_argument(
        "--distributed",
        nargs="?",
        const=TORCHRUN,
        type=_workers,
        metavar="N",
        help="data-parallel training: N local worker processes (gloo), each on its shard of every batch; without "
        "N, this process is one worker of a torchrun job (torchrun --nproc-per-node N -m evosparse train ... "
        "--distributed). Same numbers as one process, up to float rounding",
    )
    add_config_flags(train, TrainConfig, title="TrainConfig")
    train.set_defaults(handler=command_train)

    info = commands.add_parser(
        "info",
        help="neurons, connections, density and memory of a SET-MLP, without training",
        description="Build a SET-MLP's sparse layers (Erdos-Renyi, no training) and report, per layer and in "
        "total, neurons, connections, density and bytes against the dense equivalent.",
    )
    info.add_argument(
        "--layers",
        type=parse_sizes,
        metavar="N,N,...",
        help="every layer size, input first and classes last, e.g. 784,1000,1000,1000,10",
    )
    info.add_argument("--dataset", help="take the input and output sizes from this data set [digits]")
    info.add_argument("--data-dir", help="folder of the data set files (when the sizes must be read from them)")
    info.add_argument("--hidden", type=parse_sizes, metavar="N,N,...", help="hidden sizes [the train default]")
    info.add_argument("--epsilon", type=float, default=20.0, help="Erdos-Renyi sparsity parameter [20]")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(handler=command_info)

    bench = commands.add_parser(
        "bench",
        help="benchmark the sparse kernels against dense matrix products",
        description="Time the sparse layer kernels (forward, backward) against dense products.",
    )
    bench.add_argument("--quick", action="store_true", help="one small size, one repeat (a smoke test)")
    bench.add_argument("--threads", type=parse_sizes, metavar="N,N,...", help="thread counts to try, e.g. 1,2")
    bench.add_argument("--repeats", type=int, help="timed repeats per measurement")
    bench.add_argument("--json", action="store_true", help="also print the results as JSON")
    bench.set_defaults(handler=command_bench)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands, Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evosparse`` console script; returns the exit code.

    Every command's handler runs through :func:`evosparse.cli._flags.run_command`: bad input is one
    ``error: ...`` line on stderr and exit code 2 (``EVOSPARSE_DEBUG=1``: the traceback).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
