"""Load forecasting 1-24 h ahead: CRBM / FCRBM (dense, static sparse, SET) against persistence, seasonal naive,
ridge, MLP and LSTM on CityLearn 2022 buildings and pymgrid DOE reference buildings.

    python benchmarks/bench_rbm_forecast.py run --out-dir DIR [--series citylearn:1,...,pymgrid:hospital,...]
        [--citylearn-dir D] [--pymgrid-dir D] [--threads 1] [--set FIELD=VALUE ...]
    python benchmarks/bench_rbm_forecast.py table --out-dir DIR

1. **run**: :func:`evosparse.rbm.forecast.run_forecast` on each series with the default
   :class:`ForecastConfig` (24 past hours + hour-of-day and weekday one-hots in, 24 hours out; last 25 % of
   the year tested, the 10 % before it for validation), one ``DIR/<series>.json`` per series (a finished
   series is skipped, so the runner can be stopped and started again).
2. **table**: markdown of the RMSE per horizon, normalised by each series' mean load (so buildings of any
   size average), averaged over the series; the mean MAE likewise; how many series each forecaster wins
   (lowest mean RMSE); parameter counts; and the best sparse model against its dense twin.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from evosparse.rbm.forecast import FORECASTERS, ForecastConfig, run_forecast
from evosparse.sparse import set_num_threads

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "energy"
DEFAULT_SERIES = tuple(f"citylearn:{n}" for n in range(1, 6)) + tuple(
    f"pymgrid:{name}" for name in ("restaurant", "hospital", "hotel", "office", "school")
)
SHOWN_HORIZONS = (1, 6, 12, 24)


def command_run(args) -> None:
    torch.set_num_threads(args.threads)
    set_num_threads(args.threads)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    changes = dict(item.split("=", 1) for item in args.set)
    for spec in args.series.split(","):
        target = out / f"{spec.replace(':', '-')}.json"
        if target.exists():
            print(f"{spec}: done earlier ({target})", flush=True)
            continue
        data_dir = args.citylearn_dir if spec.startswith("citylearn") else args.pymgrid_dir
        config = ForecastConfig(series=spec, data_dir=str(data_dir), models=tuple(args.models.split(",")))
        config = config.replace(**{key: _value(config, key, text) for key, text in changes.items()})
        start = time.perf_counter()
        results = run_forecast(config, log=lambda line: print(line, flush=True))
        results["config"] = config.to_dict()
        results["seconds"] = time.perf_counter() - start
        target.with_suffix(".tmp").write_text(json.dumps(results, indent=2) + "\n")
        target.with_suffix(".tmp").rename(target)


def _value(config: ForecastConfig, key: str, text: str):
    current = config.to_flat()[key]
    if isinstance(current, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(current, tuple):
        return tuple(text.split(","))
    return type(current)(text) if current is not None else text


def table(out_dir: Path) -> str:
    runs = [json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json"))]
    if not runs:
        raise SystemExit(f"no results in {out_dir}")
    names = [name for name in FORECASTERS if all(name in run["forecasters"] for run in runs)]
    horizon = len(runs[0]["forecasters"][names[0]]["rmse"])
    shown = [h for h in SHOWN_HORIZONS if h <= horizon]

    def normalised(run, name, metric):
        return np.asarray(run["forecasters"][name][metric]) / run["load_mean"]

    wins = {name: 0 for name in names}
    for run in runs:
        wins[min(names, key=lambda name: run["forecasters"][name]["rmse_mean"])] += 1
    lines = [
        f"{len(runs)} series: {', '.join(run['series'] for run in runs)}. RMSE and MAE divided by each series' mean "
        "load, then averaged over the series (test: last 25 % of the year).",
        "",
        "| forecaster | " + " | ".join(f"nRMSE h{h}" for h in shown) + " | nRMSE mean 1-24 | nMAE mean 1-24 | "
        "wins | parameters | fit s (mean) |",
        "|---|" + "---:|" * (len(shown) + 5),
    ]
    scores = {}
    for name in names:
        rmse = np.mean([normalised(run, name, "rmse") for run in runs], axis=0)
        mae = np.mean([normalised(run, name, "mae") for run in runs], axis=0)
        scores[name] = float(rmse.mean())
        params = sorted({run["forecasters"][name]["n_parameters"] for run in runs})
        params_text = f"{params[0]:,}" if len(params) == 1 else f"{params[0]:,}-{params[-1]:,}"
        seconds = np.mean([run["forecasters"][name]["fit_seconds"] for run in runs])
        cells = " | ".join(f"{rmse[h - 1]:.4f}" for h in shown)
        lines.append(
            f"| {name} | {cells} | {rmse.mean():.4f} | {mae.mean():.4f} | {wins[name]} | {params_text} | "
            f"{seconds:.1f} |"
        )
    sparse = [name for name in names if name.endswith(("-set", "-fixprob"))]
    if sparse:
        best = min(sparse, key=scores.get)
        dense = best.split("-")[0]
        p_sparse = runs[0]["forecasters"][best]["n_parameters"]
        lines += ["", f"Best sparse model: **{best}**, nRMSE mean {scores[best]:.4f} with {p_sparse:,} parameters"]
        if dense in scores:
            p_dense = runs[0]["forecasters"][dense]["n_parameters"]
            lines[-1] += (
                f", against its dense twin {dense}: {scores[dense]:.4f} with {p_dense:,} parameters "
                f"({p_dense / p_sparse:.1f}x more)."
            )
    lines += ["", "Mean RMSE over horizons 1-24 per series (load units: kWh for CityLearn, kW for pymgrid):", ""]
    lines.append("| series | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for run in runs:
        best = min(names, key=lambda name: run["forecasters"][name]["rmse_mean"])
        cells = [
            (
                f"**{run['forecasters'][n]['rmse_mean']:.4g}**"
                if n == best
                else f"{run['forecasters'][n]['rmse_mean']:.4g}"
            )
            for n in names
        ]
        lines.append(f"| {run['series']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="fit and score every forecaster on each series")
    run.add_argument("--out-dir", required=True)
    run.add_argument("--series", default=",".join(DEFAULT_SERIES))
    run.add_argument("--models", default=",".join(FORECASTERS))
    run.add_argument("--citylearn-dir", default=str(SHARED / "citylearn_challenge_2022_phase_all"))
    run.add_argument("--pymgrid-dir", default=str(SHARED / "pymgrid"))
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a ForecastConfig setting")
    show = commands.add_parser("table", help="the markdown table of the results in --out-dir")
    show.add_argument("--out-dir", required=True)
    args = parser.parse_args(argv)
    if args.command == "run":
        command_run(args)
    else:
        print(table(Path(args.out_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
