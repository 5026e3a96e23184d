"""Hyperparameter search on Ray Tune: sample recipes, train each as a trial, stop the weak ones early (ASHA).

1. **Search space**: one :class:`Dimension` per searched setting, written ``NAME=FORM(...)`` with NAME a
   flat name of :class:`TrainConfig` (the ``evosparse train`` flags: ``lr``, ``hidden``, ``batch_size``,
   ...) and FORM one of :data:`FORMS`: ``uniform(a,b)`` / ``loguniform(a,b)`` (or ``log(a,b)``) for real
   settings, ``randint(a,b)`` (a <= n <= b) for integer ones, ``choice(v1,v2,...)`` (one at random per
   trial) and ``grid(v1,v2,...)`` (every value, times ``samples``) for any. A list value is written in
   brackets: ``hidden=choice([64],[128,128])``. Every bound and choice is checked against the setting's own
   rule before anything runs. A recipe file may hold the same in a ``[tune]`` table (:func:`read_recipe`).
2. **Trials**: Ray Tune samples ``samples`` recipes (seeded: the same ``search_seed`` gives the same
   recipes) and runs each as :func:`evosparse.train.train` into ``<out>/trials/<trial id>`` on one CPU and
   one thread; a callback reports each epoch's test accuracy to Tune.
3. **Early stopping**: ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys
   2020) stops a trial at epochs grace_period, grace_period x reduction_factor, ... unless its accuracy is in
   the best 1 / reduction_factor of the trials that reached that epoch; ``scheduler="none"`` runs all.
4. **Report** (a :class:`evosparse.io.RunFolder` of kind ``tune``): ``trials.csv`` (one row per trial: its
   values, best and final accuracy, epochs run, stopped early or not), ``best.toml`` (the best trial's
   recipe, with the full epoch count: ``evosparse train --config best.toml`` trains it) and ``tune.json``.

The metric is the test accuracy the training loop reports each epoch (evosparse's data sets have a train
and a test split and no third one): the best accuracy of a search is an optimistic estimate; confirm the
chosen recipe with other seeds.

What is searched, how a trial runs and what it reports is a :class:`SearchTarget`: :class:`TrainSearch`
here (``evosparse tune``); :class:`evosparse.rl.tune.RLSearch` searches the RL agents (``evosparse rl tune``)
with this same engine.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evosparse.io import RunFolder
from evosparse.io.atomic import atomic_write_text
from evosparse.train.callbacks import Callback
from evosparse.train.config import TrainConfig

FORMS = {
    "uniform": "uniform(a,b)",
    "loguniform": "loguniform(a,b)",
    "log": "log(a,b)",
    "randint": "randint(a,b)",
    "choice": "choice(v1,v2,...)",
    "grid": "grid(v1,v2,...)",
}
ALLOWED_FORMS = ", ".join(f"NAME={form}" for form in FORMS.values())
SCHEDULERS = ("asha", "none")
METRIC = "test_accuracy"
# Settings a search may not set: where a trial writes and how many threads it uses are the search's choice.
NOT_SEARCHED = ("out_dir", "threads", "download")
TUNE_KIND = "tune"
TUNE_FILES = ("trials.csv", "best.toml", "tune.json", "trials", "ray")
TUNE_TABLE_KEYS = ("samples", "scheduler", "grace_period", "reduction_factor", "search_seed", "search")


class SearchTarget:
    """What a search tunes: its settings, the trial that trains one recipe, and the metric the trial reports.

    A subclass sets the class attributes and implements the methods; :func:`tune` and
    :func:`parse_dimension` do the rest. The metric is maximised; a trial reports it ``reports`` times
    (ASHA's time unit), each report tagged with a ``time`` (the epoch, the environment step, ...).
    """

    command: str  # the command that trains a recipe, for the best recipe's header ("evosparse train")
    search_command: str  # the evosparse command that searches, for messages ("tune")
    metric: str  # the reported metric (maximised)
    time: str  # the name of a report's time ("epoch", "step")
    count: str  # the name of a trial's number of reports ("epochs", "evaluations")
    not_searched: tuple[str, ...] = ()

    def leaves(self) -> dict[str, Any]:
        """Flat setting name -> leaf (``base_type``, ``optional``) of every setting a search may set."""
        raise NotImplementedError

    def check(self, name: str, value: Any) -> None:
        """Raise a one-line ValueError if ``value`` is not allowed for setting ``name`` (by its own rule)."""
        raise NotImplementedError

    @property
    def reports(self) -> int:
        """How many times an unstopped trial reports the metric."""
        raise NotImplementedError

    def trainable(self, out_dir: Path) -> Callable[[Mapping[str, Any]], None]:
        """The function a Ray worker calls with one trial's sampled values (trains into out_dir/trials/<id>)."""
        raise NotImplementedError

    def scores(self, folder: Path) -> list[tuple[float, int]]:
        """(metric, time) of every report of the trial in ``folder`` (empty if it wrote none)."""
        raise NotImplementedError

    def recipe(self, values: Mapping[str, Any]) -> Any:
        """The full recipe (a config with ``to_toml``) of the base with ``values``."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The base recipe, for the search's manifest."""
        raise NotImplementedError

    def show(self, score: float) -> str:
        return f"{self.metric} {score:.4g}"

    def grace_period(self, search: Sequence[Dimension]) -> int:
        """ASHA's first rung when the user gives none: the first report that can tell recipes apart."""
        return 1


# ---- 1. search space -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dimension:
    """One searched setting: its flat name, the form ("uniform", "loguniform", "randint", "choice", "grid")
    and the bounds (low, high) or the values."""

    name: str
    form: str
    values: tuple[Any, ...]

    def domain(self) -> Any:
        """The Ray Tune search space of this dimension."""
        from ray import tune

        if self.form == "uniform":
            return tune.uniform(*self.values)
        if self.form == "loguniform":
            return tune.loguniform(*self.values)
        if self.form == "randint":
            return tune.randint(self.values[0], self.values[1] + 1)  # Tune's upper bound is exclusive
        if self.form == "choice":
            return tune.choice(list(self.values))
        return tune.grid_search(list(self.values))

    def text(self) -> str:
        shown = ",".join(_show(value) for value in self.values)
        return f"{self.name}={self.form}({shown})"


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(map(str, value)) + "]"
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


_SEARCH = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*=\s*([A-Za-z]+)\s*\((.*)\)\s*$", re.DOTALL)


def parse_dimension(
    text: str, base: TrainConfig | SearchTarget | None = None, *, source: str = "--search"
) -> Dimension:
    """``"lr=loguniform(1e-3,1e-1)"`` -> a :class:`Dimension`, every value checked by the setting's rule.

    ``base`` is the recipe searched around (a TrainConfig, or any :class:`SearchTarget`). Errors are one
    ValueError line naming ``source`` (the flag or file), the text and the allowed forms.
    """
    target = base if isinstance(base, SearchTarget) else TrainSearch(TrainConfig() if base is None else base)
    where = f"{source} {text!r}"
    match = _SEARCH.match(text)
    if match is None:
        raise ValueError(f"{where}: expected NAME=FORM(...), one of {ALLOWED_FORMS}")
    name, form, inside = match.group(1).replace("-", "_"), match.group(2).lower(), match.group(3)
    leaves = target.leaves()
    if name not in leaves:
        close = difflib.get_close_matches(name, list(leaves), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"{where}: {name!r} is not a setting a search can set; {hint}the settings are the "
                         f"`{target.command}` flags but {', '.join(target.not_searched)}")  # fmt: skip
    if form not in FORMS:
        raise ValueError(f"{where}: unknown form {form!r}; allowed forms: {ALLOWED_FORMS}")
    form = "loguniform" if form == "log" else form
    leaf = leaves[name]
    items = _split(inside)
    if not items or any(not item for item in items):
        raise ValueError(f"{where}: empty value in {form}(...); allowed forms: {ALLOWED_FORMS}")
    kind = leaf.base_type
    if form in ("uniform", "loguniform", "randint"):
        wanted = int if form == "randint" else float
        if kind is not wanted or len(items) != 2:
            use = "uniform(a,b) or loguniform(a,b)" if kind is float else "randint(a,b)" if kind is int else None
            if len(items) != 2 and kind is wanted:
                raise ValueError(f"{where}: {form} takes two bounds, a low and a high; got {len(items)} values")
            other = f"{use}, choice(...) or grid(...)" if use else "choice(...) or grid(...)"
            raise ValueError(f"{where}: {form} draws {'integers' if wanted is int else 'real numbers'}, but "
                             f"{name} is {_kind_name(kind)} setting; use {other}")  # fmt: skip
        low, high = (_value(item, kind, where) for item in items)
        if not low < high:
            raise ValueError(f"{where}: the low bound must be below the high one, got {low} and {high}")
        if form == "loguniform" and low <= 0:
            raise ValueError(f"{where}: loguniform needs bounds > 0 (a log scale), got {low}")
        values: tuple[Any, ...] = (low, high)
    else:
        values = tuple(_value(item, kind, where, optional=leaf.optional) for item in items)
    for value in values:
        try:
            target.check(name, value)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    return Dimension(name, form, values)


def _kind_name(kind: type) -> str:
    return {float: "a real", int: "an integer", bool: "a true/false", str: "a text", tuple: "a list"}.get(kind, "a")


def _split(inside: str) -> list[str]:
    """Top-level comma-separated items (commas inside [...] belong to a list value)."""
    items, depth, current = [], 0, []
    for char in inside:
        if char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        depth += {"[": 1, "]": -1}.get(char, 0)
        current.append(char)
    items.append("".join(current).strip())
    return [] if items == [""] else items


def _value(item: str, kind: type, where: str, *, optional: bool = False) -> Any:
    """One value of a setting of type ``kind``, written as on the command line."""
    if optional and item.lower() in ("none", "null"):
        return None
    try:
        if kind is bool:
            if item.lower() not in ("true", "false"):
                raise ValueError
            return item.lower() == "true"
        if kind is tuple:
            inner = item[1:-1] if item.startswith("[") and item.endswith("]") else item
            return tuple(int(part) for part in inner.split(","))
        if kind is str:
            return item.strip("'\"")
        if kind is int:
            return int(item)
        value = float(item)
        if not math.isfinite(value):
            raise ValueError
        return value
    except ValueError:
        example = {bool: "true or false", tuple: "a list such as [64,64]", int: "an integer", float: "a number"}
        raise ValueError(f"{where}: {item!r} is not {example.get(kind, 'a value')}") from None


def read_recipe(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the TrainConfig settings, the ``[tune]`` table) of a recipe file (TOML, or JSON with a "tune" key).

    The ``[tune]`` table may set ``samples``, ``scheduler``, ``grace_period``, ``reduction_factor``,
    ``search_seed`` and a ``[tune.search]`` table of ``NAME = "FORM(...)"`` strings.
    """
    path = Path(path)
    document, table = split_recipe(path)
    try:
        TrainConfig.from_dict(document, source=str(path))
    except ValueError as error:
        message = str(error)
        raise ValueError(message if str(path) in message else f"{path}: {message}") from None
    return TrainConfig.flatten(document), table


def split_recipe(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the document without its ``[tune]`` table, the checked ``[tune]`` table) of a TOML or JSON file."""
    from evosparse._config import read_text

    try:  # Python 3.11+
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover
        import tomli as tomllib

    path = Path(path)
    text = read_text(path)
    try:
        document = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise ValueError(
            f"{path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {error}"
        ) from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a table of settings")
    table = document.pop("tune", {})
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [tune] must be a table")
    unknown = [key for key in table if key not in TUNE_TABLE_KEYS]
    if unknown:
        raise ValueError(f"{path}: [tune] has unknown key {unknown[0]!r}; allowed: {', '.join(TUNE_TABLE_KEYS)}")
    search = table.get("search", {})
    if not isinstance(search, dict) or not all(isinstance(v, str) for v in search.values()):
        raise ValueError(f'{path}: [tune.search] must map setting names to texts such as lr = "loguniform(1e-3,1e-1)"')
    return document, table


# ---- 2. trials ------------------------------------------------------------------------------------------
class ReportToTune(Callback):
    """Reports each epoch's test accuracy (and the epoch) to the Ray Tune trial this training runs in."""

    def _on_epoch_end(self) -> bool:
        from ray import tune

        row = self.trainer.history[-1]
        tune.report({METRIC: float(row["test_accuracy"]), "epoch": int(row["epoch"])})
        return True


def trial_folder(out_dir: str | Path) -> Path:
    """The folder of the Ray Tune trial this process runs: ``<out_dir>/trials/<trial id>``."""
    from ray import tune

    return Path(out_dir) / "trials" / tune.get_context().get_trial_id()


def run_trial(params: Mapping[str, Any], *, base: Mapping[str, Any], out_dir: str) -> None:
    """One trial (in a Ray worker): ``base`` with the sampled ``params``, trained into ``<out_dir>/trials/<id>``."""
    from evosparse.train.run import train

    config = TrainConfig.from_dict(base).replace(**dict(params), out_dir=str(trial_folder(out_dir)))
    train(config, overwrite=True, progress=False, log=None, callbacks=[ReportToTune()])


class TrainSearch(SearchTarget):
    """A search of ``evosparse train`` recipes around ``base``; the metric is the per-epoch test accuracy."""

    command, search_command, metric, time, count = "evosparse train", "tune", METRIC, "epoch", "epochs"
    not_searched = NOT_SEARCHED

    def __init__(self, base: TrainConfig) -> None:
        self.base = _absolute_paths(base)

    def leaves(self) -> dict[str, Any]:
        return {leaf.flat: leaf for leaf in TrainConfig.leaves() if leaf.flat not in NOT_SEARCHED}

    def check(self, name: str, value: Any) -> None:
        self.base.replace(**{name: value})

    @property
    def reports(self) -> int:
        return self.base.run.epochs

    def trainable(self, out_dir: Path) -> Callable[[Mapping[str, Any]], None]:
        from ray import tune as ray_tune

        return ray_tune.with_parameters(run_trial, base=self.base.replace(threads=1).to_dict(), out_dir=str(out_dir))

    def scores(self, folder: Path) -> list[tuple[float, int]]:
        return [(row["test_accuracy"], row["epoch"]) for row in read_history(folder / "history.json")]

    def recipe(self, values: Mapping[str, Any]) -> TrainConfig:
        return self.base.replace(**dict(values), out_dir=None)

    def describe(self) -> dict[str, Any]:
        return self.base.to_dict()

    def show(self, score: float) -> str:
        return f"test {100 * score:.2f}%"


def read_history(path: Path) -> list[dict[str, Any]]:
    """A trial's history.json rows ([] when the file is missing or unreadable: a trial that failed early)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # the trial failed before its first report


@dataclass
class TuneResult:
    """What :func:`tune` returns: one row per trial, the best row and its full recipe."""

    rows: list[dict[str, Any]]
    best: dict[str, Any]
    best_config: Any
    wall_seconds: float


def tune(
    base: TrainConfig | SearchTarget,
    search: Sequence[Dimension],
    out_dir: str | Path,
    *,
    samples: int = 8,
    scheduler: str = "asha",
    grace_period: int | None = None,
    reduction_factor: float = 3.0,
    search_seed: int = 0,
    jobs: int | None = None,
    ray: str | None = None,
    overwrite: bool = False,
    log: Callable[[str], object] | None = print,
) -> TuneResult:
    """Search ``search`` around ``base`` (see the module docstring) and write the reports into ``out_dir``.

    Args:
        base: the recipe searched around: a TrainConfig, or a :class:`SearchTarget` (e.g. the RL agents').
        samples: recipes drawn (with ``grid`` dimensions: drawn for every grid point).
        scheduler: "asha" (early stopping) or "none" (every trial runs all its epochs).
        grace_period, reduction_factor: ASHA's first rung (reports: epochs, evaluations; None: the target's
            default, 1 epoch for train) and its factor between rungs.
        search_seed: seed of the sampling (the trials' own seed is ``base``'s ``seed``).
        jobs: CPUs of the local Ray started for the search (None: all cores); ray: a cluster's address
            to use instead.
        overwrite: replace the results of an earlier search in ``out_dir``.
    """
    target = base if isinstance(base, SearchTarget) else TrainSearch(base)
    if not search:
        raise ValueError("search: give at least one setting to search, e.g. --search lr=loguniform(1e-3,1e-1)")
    names = [dimension.name for dimension in search]
    if len(set(names)) < len(names):
        raise ValueError(f"search: {next(n for n in names if names.count(n) > 1)} is searched twice; give it once")
    if samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples}")
    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}; got {scheduler!r}")
    if grace_period is None:
        grace_period = min(target.grace_period(search), target.reports)
    if grace_period < 1 or grace_period > target.reports:
        raise ValueError(f"grace_period must be in [1, {target.count}={target.reports}], got {grace_period}")
    if not reduction_factor > 1:
        raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
    from evosparse._ray import ray_session, require_ray

    require_ray(target.search_command)
    out_dir = Path(out_dir).resolve()
    request = {"base": target.describe(), "search": [d.text() for d in search], "samples": samples,
               "scheduler": scheduler, "grace_period": grace_period, "reduction_factor": reduction_factor,
               "search_seed": search_seed}  # fmt: skip
    start = time.perf_counter()
    with RunFolder.open(out_dir, kind=TUNE_KIND, files=TUNE_FILES, config=request, overwrite=overwrite):
        with ray_session(ray, num_cpus=jobs, what="tune"):
            grid = _fit(target, search, out_dir, samples, scheduler, grace_period, reduction_factor, search_seed)
        rows = _rows(target, grid, search, out_dir)
        key = f"best_{target.metric}"
        best = max((r for r in rows if r[key] is not None), key=lambda r: r[key], default=None)
        if best is None:
            raise RuntimeError(f"every trial failed (first: {rows[0]['status']}); see {out_dir / 'trials.csv'}")
        best_config = target.recipe({name: best[name] for name in names})
        wall = time.perf_counter() - start
        _write(target, out_dir, rows, search, best, best_config, request, wall)
    if log is not None:
        stopped = sum(1 for r in rows if r["stopped_early"])
        chosen = ", ".join(f"{n}={_show(best[n])}" for n in names)
        log(f"{len(rows)} trials, {stopped} stopped early by {scheduler}; best {best['trial']}: "
            f"{target.show(best[key])} with {chosen}")  # fmt: skip
    return TuneResult(rows, best, best_config, wall)


def _absolute_paths(base: TrainConfig) -> TrainConfig:
    """Trials run in other folders (and maybe on other machines): relative data paths would not resolve."""
    changes = {}
    if base.data.file is not None:
        changes["data"] = str(Path(base.data.file).resolve())
    if base.data.data_dir is not None:
        changes["data_dir"] = str(Path(base.data.data_dir).resolve())
    return base.replace(**changes) if changes else base


def _fit(target: SearchTarget, search, out_dir: Path, samples, scheduler, grace_period, reduction_factor, search_seed):
    from ray import tune as ray_tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    trainable = ray_tune.with_resources(target.trainable(out_dir), {"cpu": 1})
    chosen = (
        ASHAScheduler(
            time_attr="training_iteration",  # one report per epoch / evaluation
            max_t=target.reports,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
        )
        if scheduler == "asha"
        else FIFOScheduler()
    )
    tuner = ray_tune.Tuner(
        trainable,
        param_space={d.name: d.domain() for d in search},
        tune_config=ray_tune.TuneConfig(
            metric=target.metric,
            mode="max",
            num_samples=samples,
            scheduler=chosen,
            search_alg=BasicVariantGenerator(random_state=search_seed),
            reuse_actors=True,  # a new actor per trial costs a Python start and the imports (seconds each)
        ),
        run_config=ray_tune.RunConfig(name="search", storage_path=str(out_dir / "ray"), verbose=0),
    )
    return tuner.fit()


# ---- 4. reports -----------------------------------------------------------------------------------------
def _columns(target: SearchTarget) -> tuple[str, ...]:
    """The report columns of a trial after its searched values (train: best_test_accuracy, best_epoch, ...)."""
    metric = target.metric
    return f"best_{metric}", f"best_{target.time}", f"final_{metric}", target.count, "stopped_early", "out_dir"


def _rows(target: SearchTarget, grid, search, out_dir: Path) -> list[dict[str, Any]]:
    best_metric, best_time, final_metric, count, _, _ = _columns(target)
    rows = []
    for result in grid:
        trial = (result.metrics or {}).get("trial_id") or Path(result.path).name
        folder = out_dir / "trials" / str(trial)
        scores = target.scores(folder)
        best = max(scores, key=lambda s: (s[0], -s[1]), default=(None, None))
        error = result.error
        ran = len(scores)
        row = {name: result.config.get(name) for name in (d.name for d in search)}
        rows.append(
            {
                "trial": str(trial),
                "status": f"error: {' '.join(str(error).split())[:200]}" if error else
                ("stopped early" if ran < target.reports else "finished"),
                **row,
                best_metric: best[0],
                best_time: best[1],
                final_metric: scores[-1][0] if scores else None,
                count: ran,
                "stopped_early": error is None and ran < target.reports,
                "out_dir": str(folder),
            }
        )  # fmt: skip
    return sorted(rows, key=lambda r: r["trial"])


def _write(target: SearchTarget, out_dir: Path, rows, search, best, best_config, request, wall: float) -> None:
    names = [d.name for d in search]
    columns = ["trial", "status", *names, *_columns(target)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({**row, **{n: _show(row[n]) for n in names}} for row in rows)
    atomic_write_text(out_dir / "trials.csv", buffer.getvalue())
    best_metric, best_time = f"best_{target.metric}", f"best_{target.time}"
    header = (f"# The best recipe of the search in {out_dir} (trial {best['trial']}, best "
              f"{target.show(best[best_metric])} at {target.time} {best[best_time]}).\n"
              f"# Train it: {target.command} --config best.toml --out-dir DIR\n")  # fmt: skip
    atomic_write_text(out_dir / "best.toml", header + best_config.to_toml())
    summary = {
        "search": request["search"],
        "samples": request["samples"],
        "scheduler": request["scheduler"],
        "trials": len(rows),
        "stopped_early": sum(1 for r in rows if r["stopped_early"]),
        "failed": sum(1 for r in rows if r["status"].startswith("error")),
        "best": {"trial": best["trial"], "values": {n: best[n] for n in names},
                 best_metric: best[best_metric], best_time: best[best_time]},
        "wall_seconds": wall,
    }  # fmt: skip
    atomic_write_text(out_dir / "tune.json", json.dumps(summary, indent=2, default=list) + "\n")
