"""Comparing topology strategies: one data set, one recipe, several strategies x densities x seeds.

1. **Plan**: the dense baseline once per seed, then every (strategy, density) pair, seeds outermost, so a
   comparison stopped early still holds complete seeds.
2. **Run** each with :func:`evosparse.train.train` in its own folder (``<out>/<strategy>-d<density>-s<seed>``).
   A folder whose run recorded *the same config* (``run.json``; threads and folder aside) on the same data
   (the recorded data digests) is read back if finished, or resumed if interrupted, so an interrupted
   comparison continues where it stopped; a run of any other recipe is trained again (never reused as if
   it were this one). ``jobs > 1`` runs that many processes of one thread each; ``ray`` runs every run as a
   Ray task of one thread instead, on a local Ray or a cluster (:mod:`evosparse.train.ray_backend`), with
   the same folders, the same reuse and resume, and the same rows. The comparison folder is a
   :class:`evosparse.io.RunFolder` of kind ``compare``: locked while it runs, never mixed with other files.
3. **Report**: ``results.csv`` (one row per run), ``table.md`` / ``table.csv`` (mean, spread over seeds) and
   the plots accuracy-vs-density and accuracy-vs-training-FLOPs (:mod:`evosparse.report.plots`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from evosparse.io import FileFormatError, RunFolder, read_manifest
from evosparse.io.atomic import atomic_write_text
from evosparse.train.config import STRATEGIES, TrainConfig

RESULT_COLUMNS = (
    "strategy",
    "target_density",
    "seed",
    "final_test_accuracy",
    "best_test_accuracy",
    "density",
    "nnz",
    "train_seconds",
    "train_flops",
    "inference_flops",
    "out_dir",
)
_DATASETS: dict[tuple[str, str | None], Any] = {}  # one load per process
# Settings that do not change a run's numbers: a run that differs only in these is the same recipe.
SAME_RECIPE_IGNORES = ("threads", "out_dir", "download")
COMPARE_KIND = "compare"
COMPARE_FILES = ("results.csv", "table.csv", "table.md", "*.png", "dense-s*", "*-d*-s*")


def plan_runs(
    strategies: Sequence[str], densities: Sequence[float], seeds: Sequence[int], *, dense: bool = True
) -> list[tuple[str, float | None, int]]:
    """(strategy, density, seed) of every run; the dense baseline has strategy "dense" and density None.

    A value given twice counts once: ``--seeds 0,0`` is one seed, not two runs of the same one.
    """
    strategies = list(dict.fromkeys(strategies))
    densities = list(dict.fromkeys(float(d) for d in densities))
    seeds = list(dict.fromkeys(int(seed) for seed in seeds))
    for name in strategies:
        if name not in STRATEGIES:
            raise ValueError(f"strategies: {name!r} is not one of {', '.join(STRATEGIES)}")
    for density in densities:
        if not 0 < density <= 1:
            raise ValueError(f"densities must be in (0, 1], got {density}")
    runs: list[tuple[str, float | None, int]] = []
    for seed in seeds:
        if dense:
            runs.append(("dense", None, seed))
        runs.extend((name, float(density), seed) for density in densities for name in strategies)
    return runs


def run_folder(out_dir: Path, strategy: str, density: float | None, seed: int) -> Path:
    label = "dense" if density is None else f"{strategy}-d{density:g}"
    return out_dir / f"{label}-s{seed}"


def run_config(base: TrainConfig, strategy: str, density: float | None, seed: int, folder: Path) -> TrainConfig:
    if strategy == "dense":
        return base.replace(model="dense", density=None, seed=seed, out_dir=str(folder))
    return base.replace(model="sparse", strategy=strategy, density=density, seed=seed, out_dir=str(folder))


def run_one(config_values: dict[str, Any], strategy: str, density: float | None) -> dict[str, Any]:
    """Train one configuration (or read back / resume its run of the same recipe) and return its results row.

    The row's ``note`` says what happened: "new", "reused", "resumed" or why an earlier run was replaced.
    """
    from evosparse.data import load_dataset, load_file
    from evosparse.train.checkpoint import CheckpointError
    from evosparse.train.run import data_digests, load_tensors, resume, train

    config = TrainConfig.from_dict(config_values)
    folder = Path(config.run.out_dir)
    data = config.data
    key = (data.dataset, data.data_dir) if data.file is None else (data.file, data.label_column, data.data_seed)
    if key not in _DATASETS:
        _DATASETS[key] = (
            load_dataset(data.dataset, data_dir=data.data_dir, download=data.download)
            if data.file is None
            else load_file(data.file, label_column=data.label_column, seed=data.data_seed)
        )
    dataset = _DATASETS[key]
    note = "new"
    earlier = _earlier_run(folder)
    if earlier is not None:
        difference = recipe_difference(earlier, config, data_digests(load_tensors(config, dataset)))
        if difference is None:
            summary = _finished_summary(folder)
            if summary is not None:
                history = json.loads((folder / "history.json").read_text(encoding="utf-8"))
                row = _row(strategy, density, config.run.seed, summary, history[-1], folder)
                return {**row, "note": "reused"}
            try:
                result = resume(
                    folder, changes={"threads": config.run.threads}, dataset=dataset, progress=False, log=None
                )
            except (CheckpointError, ValueError):
                note = "rerun: the earlier run of this recipe could not be resumed"
            else:
                row = _row(strategy, density, config.run.seed, result.summary, result.history[-1], folder)
                return {**row, "note": "resumed"}
        else:
            note = f"rerun: the earlier run in {folder.name} had {difference}"
    result = train(config, dataset=dataset, overwrite=True, progress=False, log=None)
    return {**_row(strategy, density, config.run.seed, result.summary, result.history[-1], folder), "note": note}


def _earlier_run(folder: Path) -> dict[str, Any] | None:
    """The manifest of the train run ``folder`` holds, or None (no run, or a damaged manifest: train again)."""
    try:
        manifest = read_manifest(folder)
    except FileFormatError:
        return None
    return manifest if manifest is not None and manifest.get("kind") == "train" else None


def recipe_difference(manifest: dict[str, Any], config: TrainConfig, data: dict[str, str]) -> str | None:
    """None if a manifest records ``config`` on the same data (SAME_RECIPE_IGNORES aside), else what differs."""
    try:
        recorded = TrainConfig.from_dict(manifest["config"]).to_flat()
    except (TypeError, ValueError):
        return "a config this version cannot read"
    wanted = config.to_flat()
    changed = [name for name in wanted if name not in SAME_RECIPE_IGNORES and recorded.get(name) != wanted[name]]
    if changed:
        return ", ".join(f"{name} = {recorded.get(name)!r} (now {wanted[name]!r})" for name in changed[:4])
    if manifest.get("data") != data:
        return "other data"
    return None


def _finished_summary(folder: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        json.loads((folder / "history.json").read_text(encoding="utf-8"))[-1]
    except (OSError, ValueError, IndexError, KeyError):
        return None
    return summary if isinstance(summary, dict) and summary.get("finished") else None


def _row(strategy, density, seed, summary, last, folder) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "target_density": 1.0 if density is None else density,
        "seed": seed,
        "final_test_accuracy": summary["final_test_accuracy"],
        "best_test_accuracy": summary["best_test_accuracy"],
        "density": summary["density"],
        "nnz": summary["nnz"],
        "train_seconds": summary["train_seconds"],
        "train_flops": last.get("train_flops"),
        "inference_flops": last.get("inference_flops"),
        "out_dir": str(folder),
    }


def compare(
    base: TrainConfig,
    strategies: Sequence[str],
    densities: Sequence[float],
    seeds: Sequence[int],
    out_dir: str | Path,
    *,
    jobs: int | None = None,
    dense: bool = True,
    plots: bool = True,
    log: Callable[[str], object] | None = print,
    ray: bool | str = False,
    retries: int = 1,
) -> list[dict[str, Any]]:
    """Run the comparison (see the module docstring); returns the per-run rows.

    Args:
        jobs: runs at once: local processes (None: 1), or the CPUs of the local Ray that ``ray=True``
            starts (None: all cores); unused when ``ray`` is a cluster's address.
        ray: False: local processes; True: a local Ray; a string: the address of a Ray cluster to use.
        retries: with Ray, how often a run whose worker died is started again (it resumes from its
            checkpoint). Runs that still fail end the comparison with
            :class:`evosparse.train.ray_backend.RunsFailedError` after every other run finished.
    """
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if ray is not False:  # fail before the folder is touched
        from evosparse.train.ray_backend import require_ray

        require_ray("compare --ray")
    out_dir = Path(out_dir)
    plan = plan_runs(strategies, densities, seeds, dense=dense)
    request = {
        "base": base.to_dict(),
        "strategies": list(dict.fromkeys(strategies)),
        "densities": list(dict.fromkeys(float(d) for d in densities)),
        "seeds": list(dict.fromkeys(int(s) for s in seeds)),
        "dense": dense,
    }
    earlier = None
    if out_dir.is_dir():
        try:
            earlier = read_manifest(out_dir)
        except FileFormatError:
            earlier = None
    # Rerunning a comparison continues it: every run is reused only if its own recipe matches (run_one).
    continuing = earlier is not None and earlier.get("kind") == COMPARE_KIND
    with RunFolder.open(
        out_dir, kind=COMPARE_KIND, files=COMPARE_FILES, config=request, resume=continuing, adopt=True
    ) as folder:
        if continuing:
            folder.update_manifest(config=request)
        return _run_plan(base, plan, out_dir, jobs=jobs, plots=plots, log=log, ray=ray, retries=retries)


def _run_plan(base, plan, out_dir: Path, *, jobs, plots: bool, log, ray, retries) -> list[dict[str, Any]]:
    if ray is not False or (jobs or 1) > 1:
        base = base.replace(threads=1)
    work = [(run_config(base, s, d, seed, run_folder(out_dir, s, d, seed)).to_dict(), s, d) for s, d, seed in plan]
    rows: list[dict[str, Any]] = []

    def finished(row: dict[str, Any]) -> None:
        rows.append(row)
        write_reports(rows, out_dir, plots=False)
        if log is not None:
            note = "" if row.get("note", "new") == "new" else f"  ({row['note']})"
            log(
                f"[{len(rows)}/{len(work)}] {row['strategy']:>9} density {row['target_density']:<5g} "
                f"seed {row['seed']}: test {100 * row['final_test_accuracy']:.2f}%  {row['train_seconds']:.0f} s"
                f"{note}"
            )

    if ray is not False:
        _run_on_ray(work, finished, rows, out_dir, address=ray if isinstance(ray, str) else None, cpus=jobs,
                    retries=retries)  # fmt: skip
    elif (jobs or 1) == 1:
        for item in work:
            finished(run_one(*item))
    else:
        # spawn, not fork: forking after torch / numba thread pools started can deadlock.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            for future in as_completed([pool.submit(run_one, *item) for item in work]):
                finished(future.result())
    write_reports(rows, out_dir, plots=plots)
    return rows


def _run_on_ray(work, finished, rows, out_dir: Path, *, address, cpus, retries) -> None:
    from evosparse.train.ray_backend import RunsFailedError, ray_session, run_tasks

    def describe(item) -> str:
        return Path(item[0]["run"]["out_dir"]).name

    with ray_session(address, num_cpus=cpus, what="compare --ray"):
        try:
            run_tasks(run_one, work, finished, retries=retries, describe=describe)
        except RunsFailedError as error:
            names = ", ".join(describe(item) for item, _ in error.failures)
            raise RunsFailedError(
                f"{len(error.failures)} of {len(work)} runs did not finish ({names}; first: "
                f"{error.failures[0][1]}); the {len(rows)} finished runs are in {out_dir / 'results.csv'}: run the "
                "same command again to read them back and resume the rest",
                error.failures,
            ) from None


# ---- reports -----------------------------------------------------------------------------------------------
def aggregate(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (strategy, target density): mean and spread over seeds."""
    # Density against the dense baseline's connections when it ran: a network that lost neurons (neuron
    # importance pruning) reports its own nnz over its *shrunk* dense size, which hides how small it got.
    dense_nnz = [r["nnz"] for r in rows if r["strategy"] == "dense"]
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["strategy"], row["target_density"]), []).append(row)
    table = []
    for (strategy, density), group in groups.items():
        accuracy = [100 * r["final_test_accuracy"] for r in group]
        table.append(
            {
                "strategy": strategy,
                "target_density": density,
                "seeds": len(group),
                "accuracy_mean": statistics.fmean(accuracy),
                "accuracy_std": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0,
                "accuracy_min": min(accuracy),
                "accuracy_max": max(accuracy),
                "density": statistics.fmean(r["nnz"] / dense_nnz[0] if dense_nnz else r["density"] for r in group),
                "train_seconds": statistics.median(r["train_seconds"] for r in group),
                "train_flops": statistics.fmean(r["train_flops"] for r in group),
                "inference_flops": statistics.fmean(r["inference_flops"] for r in group),
            }
        )
    order = {name: i for i, name in enumerate(("dense", *STRATEGIES))}
    return sorted(table, key=lambda r: (r["target_density"], order.get(r["strategy"], 99)))


def markdown_table(table: Sequence[dict[str, Any]]) -> str:
    dense = {r["target_density"]: r for r in table if r["strategy"] == "dense"}
    dense_flops = next(iter(dense.values()))["train_flops"] if dense else math.nan
    lines = [
        "| density | strategy | seeds | test accuracy % (mean ± sd) | min-max | final density | train s (median) "
        "| train FLOPs (x dense) | inference FLOPs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['target_density']:g} | {r['strategy']} | {r['seeds']} | {r['accuracy_mean']:.2f} ± "
            f"{r['accuracy_std']:.2f} | {r['accuracy_min']:.2f}-{r['accuracy_max']:.2f} | {r['density']:.4f} | "
            f"{r['train_seconds']:.0f} | {r['train_flops']:.3g} ({r['train_flops'] / dense_flops:.3f}) | "
            f"{r['inference_flops']:.3g} |"
        )
    return "\n".join(lines) + "\n"


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_reports(rows: Sequence[dict[str, Any]], out_dir: Path, *, plots: bool = True) -> None:
    """results.csv, table.csv, table.md and (optionally) the two comparison plots."""
    atomic_write_text(out_dir / "results.csv", _csv(rows, RESULT_COLUMNS))
    table = aggregate(rows)
    if table:
        atomic_write_text(out_dir / "table.csv", _csv(table, list(table[0])))
        atomic_write_text(out_dir / "table.md", markdown_table(table))
    if plots and table:
        from evosparse.report.plots import plot_comparison

        plot_comparison(table, out_dir)
