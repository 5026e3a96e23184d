"""``evosparse rbm forecast``: (F)CRBMs against persistence, seasonal naive, ridge, MLP and LSTM on one load series.

    evosparse rbm forecast [--series citylearn:1 | pymgrid:hospital] [--data-dir DIR] [--models a,b,...]
        [--horizon 24] [--n-past 24] [--config FILE.toml] [--out-dir DIR [--overwrite | --resume]] [--json]
        [--<ForecastConfig setting> VALUE ...]

Every setting of :class:`evosparse.rbm.forecast.ForecastConfig` (its ``[rbm]`` table included) is a flag
named after its flat name. The table printed has, per forecaster, the RMSE at horizons 1, 6, 12 and the
last, the mean RMSE and MAE over all horizons (in the load's unit), the parameter count and the fit time.
``--out-dir`` writes ``config.toml`` and ``results.json`` (per-horizon RMSE and MAE) in a run folder;
``results.json`` is rewritten after each forecaster, so an interrupted run continues with ``--resume
--out-dir DIR``: the forecasters already scored are kept, the others fitted with the saved settings (each
forecaster is seeded from ``seed`` alone, so the results equal an uninterrupted run's but for the fit times).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evosparse.cli._flags import CommandError, add_config_flags, cap_threads, file_and_flags


def format_table(results: dict, horizon: int) -> str:
    """The forecasting table: one row per forecaster."""
    shown = [h for h in (1, 6, 12, horizon) if h <= horizon]
    shown = list(dict.fromkeys(shown))
    head = f"{'forecaster':>14} " + " ".join(f"{'RMSE h' + str(h):>9}" for h in shown)
    lines = [
        f"{results['series']}: test windows {results['n_windows'][2]:,} (train {results['n_windows'][0]:,}, "
        f"validation {results['n_windows'][1]:,}); mean load {results['load_mean']:.4g}",
        f"{head} {'RMSE mean':>9} {'MAE mean':>9} {'params':>8} {'fit s':>7}",
    ]
    for name, entry in results["forecasters"].items():
        cells = " ".join(f"{entry['rmse'][h - 1]:>9.4f}" for h in shown)
        lines.append(
            f"{name:>14} {cells} {entry['rmse_mean']:>9.4f} {entry['mae_mean']:>9.4f} "
            f"{entry['n_parameters']:>8,} {entry['fit_seconds']:>7.1f}"
        )
    return "\n".join(lines)


def command_forecast(args: argparse.Namespace) -> int:
    import torch

    from evosparse.io.run_folder import RunFolder
    from evosparse.rbm.forecast import ForecastConfig, run_forecast
    from evosparse.sparse import set_num_threads

    changes = file_and_flags(args, ForecastConfig)
    if args.resume and args.out_dir is None:
        raise CommandError("--resume needs --out-dir, the folder of the forecast run to continue")
    if args.resume and args.overwrite:
        raise CommandError("--resume continues a run and --overwrite replaces it; give one of them")
    config = ForecastConfig.from_dict(changes, source="the command line")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    threads = cap_threads(args, args.threads)
    if threads is not None:
        torch.set_num_threads(threads)
        set_num_threads(threads)
    log = None if args.quiet or args.json else (lambda line: print(line, file=sys.stderr))
    if args.out_dir is None:
        results = run_forecast(config, log=log)
    else:
        out = Path(args.out_dir)
        with RunFolder.open(out, kind=RUN_KIND, files=RUN_FILES, config=config.to_dict(), overwrite=args.overwrite,
                            resume=args.resume) as folder:  # fmt: skip
            done = None
            if args.resume:
                config, done = _resumable(folder, changes)
            else:
                folder.write("config.toml", config.to_toml().encode())

            def save(results: dict, finished: bool = False) -> None:
                record = {**results, "run_id": folder.run_id, "finished": finished}
                folder.write("results.json", (json.dumps(record, indent=2) + "\n").encode())

            results = run_forecast(config, log=log, done=done, on_forecaster_end=save)
            save(results, finished=True)
            folder.update_manifest(finished=True)
    print(json.dumps(results, indent=2) if args.json else format_table(results, config.horizon))
    return 0


RUN_KIND, RUN_FILES = "rbm-forecast", ("config.toml", "results.json")


def _resumable(folder, changes: dict) -> tuple:
    """(saved config, the forecasters already scored) of the interrupted run in ``folder``."""
    from evosparse.io.run_folder import RunFolderError
    from evosparse.rbm.forecast import ForecastConfig

    saved = ForecastConfig.from_dict(folder.manifest["config"], source=f"the config saved in {folder.path}")
    now, before = saved.replace(**changes).to_flat(), saved.to_flat()
    conflicts = [f"{name}={now[name]!r} (saved: {before[name]!r})" for name in ForecastConfig.flatten(changes)
                 if now[name] != before[name]]  # fmt: skip
    if conflicts:
        raise RunFolderError(f"--resume continues the run in {folder.path} with its saved settings, but you asked "
                             f"for {'; '.join(conflicts)}; drop those options, or start a new run")  # fmt: skip
    path = folder.path / "results.json"
    if not path.exists():
        return saved, None  # interrupted before its first forecaster finished
    results = json.loads(path.read_text())
    folder.check_run_id(results.get("run_id"), path)
    if results.get("finished"):
        raise RunFolderError(f"the forecast run in {folder.path} already finished; nothing to resume")
    return saved, results["forecasters"]


def add_forecast_command(subcommands, parser_class) -> None:
    """Add ``forecast`` to the ``rbm`` command's subcommands."""
    from evosparse.rbm.forecast import ForecastConfig

    forecast = subcommands.add_parser(
        "forecast",
        help="CRBM / FCRBM (dense or sparse) load forecasts against persistence, ridge, MLP, LSTM",
        description="Forecast an hourly building load 1..horizon hours ahead with CRBMs and FCRBMs (dense, "
        "static sparse, SET) and the baselines (persistence, seasonal naive, ridge, MLP, LSTM) on the same "
        "inputs; print RMSE / MAE per horizon on the last part of the series.",
    )
    forecast.add_argument("--config", metavar="FILE", help="TOML (or .json) config file; flags override it")
    forecast.add_argument("--out-dir", help="run folder for config.toml and results.json (optional)")
    forecast.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out-dir")
    forecast.add_argument("--resume", action="store_true",
                          help="continue the interrupted run in --out-dir (its saved settings)")  # fmt: skip
    forecast.add_argument("--threads", type=int, help="threads of torch and the sparse kernels [unchanged]")
    forecast.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    forecast.add_argument("--quiet", action="store_true", help="no per-forecaster progress lines")
    add_config_flags(forecast, ForecastConfig, title="ForecastConfig")
    forecast.set_defaults(handler=command_forecast, resume_hint="rbm forecast --resume")


def register(commands, parser_class) -> None:
    """``evosparse rbm forecast`` (the ``rbm`` command itself is :mod:`evosparse.cli.rbm`'s)."""
    from evosparse.cli.rbm import rbm_commands

    add_forecast_command(rbm_commands(commands, parser_class), parser_class)
