"""Building load forecasting, 1 to H hours ahead: (F)CRBMs against the usual baselines, on equal inputs.

The experiment, top to bottom (:func:`run_forecast`):

1. **Series**: an hourly load with its calendar (:func:`load_energy_series`: a CityLearn 2022 building or a
   pymgrid DOE reference building).
2. **Windows** (:func:`make_windows`): at each origin ``t`` the inputs are the past ``n_past`` loads and the
   context of hour ``t + 1`` (one-hot hour of day and weekday / day type); the target is the next
   ``horizon`` loads. Chronological split into train / validation / test parts; a window lies wholly in one
   part. Loads are standardised with the training part's mean and standard deviation.
3. **Forecasters** (:data:`FORECASTERS`, one registry): persistence, seasonal naive (the same hour one
   season earlier), ridge regression, an MLP and an LSTM (torch), the CRBM and the FCRBM, dense, sparse
   static (``-fixprob``) or sparse evolved (``-set``). Every learned model picks its epoch (ridge: its
   alpha) on the validation part.
4. **Scores** (:func:`horizon_errors`): RMSE and MAE per horizon on the test part, in the load's unit.

Paper: Mocanu, Nguyen, Gibescu and Kling, "Deep learning for estimating building energy consumption",
Sustainable Energy, Grids and Networks 6 (2016) 91-99.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from evosparse._config import Config, at_least, between, param, positive, section, subset_of
from evosparse.envs.data import load_citylearn_building, load_pymgrid_load
from evosparse.rbm.crbm import MODELS, TOPOLOGIES, ConditionalRBMConfig, build_conditional_rbm, fit_epoch

PYMGRID_BUILDINGS = ("restaurant", "hospital", "hotel", "office", "school")
__all__ = [
    "FORECASTERS",
    "PYMGRID_BUILDINGS",
    "EnergySeries",
    "ForecastConfig",
    "Windows",
    "horizon_errors",
    "load_energy_series",
    "make_windows",
    "run_forecast",
]


# ---- 1. series -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnergySeries:
    """An hourly load with its calendar: ``hour`` in 0..23, ``day`` in 0..n_days-1 (weekday or day type)."""

    name: str
    load: np.ndarray
    hour: np.ndarray
    day: np.ndarray
    n_days: int

    def __post_init__(self):
        n = self.load.shape[0]
        if self.load.ndim != 1 or n < 2:
            raise ValueError(f"{self.name}: load must be a series of at least 2 hours, got shape {self.load.shape}")
        for name in ("hour", "day"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{self.name}: {name} has shape {getattr(self, name).shape}, expected ({n},)")
        if not np.all(np.isfinite(self.load)):
            raise ValueError(f"{self.name}: load holds non-finite values")
        if self.hour.min() < 0 or self.hour.max() > 23:
            raise ValueError(f"{self.name}: hour must be in [0, 23]")
        if self.day.min() < 0 or self.day.max() >= self.n_days:
            raise ValueError(f"{self.name}: day must be in [0, {self.n_days - 1}]")

    @classmethod
    def hourly(cls, name: str, load: np.ndarray, *, first_hour: int = 0, first_day: int = 0) -> EnergySeries:
        """A series with a plain calendar: hour = (first_hour + i) mod 24, weekday counted from ``first_day``."""
        load = np.asarray(load, dtype=np.float64)
        index = np.arange(load.shape[0]) + first_hour
        return cls(name, load, index % 24, (first_day + index // 24) % 7, 7)


def load_energy_series(spec: str, data_dir: str | Path | None = None) -> EnergySeries:
    """``citylearn:N`` (building N of CityLearn 2022) or ``pymgrid:NAME`` (NAME one of PYMGRID_BUILDINGS).

    ``data_dir``: for CityLearn the folder of ``Building_N.csv`` (None: the bundled buildings 1-3); for
    pymgrid the folder holding ``load/*.csv`` (required). pymgrid files carry no dates: hour and weekday
    count from the first row (the weekday up to a fixed shift, all a one-hot input needs).
    """
    source, _, name = spec.partition(":")
    if source == "citylearn":
        if not name.isdigit():
            raise ValueError(f"series must be citylearn:N with N a building number, got {spec!r}")
        data = load_citylearn_building(int(name), data_dir)
        # CityLearn: hour 1..24 (24 = midnight), day_type 1..7 Monday..Sunday, 8 = holiday
        return EnergySeries(f"citylearn:{name}", data.load, data.hour % 24, data.day_type - 1, 8)
    if source == "pymgrid":
        if name not in PYMGRID_BUILDINGS:
            raise ValueError(f"series pymgrid:NAME needs NAME in {', '.join(PYMGRID_BUILDINGS)}, got {spec!r}")
        if data_dir is None:
            raise ValueError(
                "pymgrid series need data_dir, the folder holding load/*.csv (e.g. shared/data/energy/pymgrid)"
            )
        matches = sorted(p for p in (Path(data_dir) / "load").glob("*.csv*") if name in p.name.lower())
        if not matches:
            raise FileNotFoundError(f"no load/*{name}*.csv file in {data_dir}")
        return EnergySeries.hourly(spec, load_pymgrid_load(matches[0]))
    raise ValueError(f"series must be citylearn:N or pymgrid:NAME, got {spec!r}")


# ---- 2. windows ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Windows:
    """Forecast cases: ``history`` (n, n_past) oldest first, ``context`` (n, n_context), ``target`` (n, horizon)."""

    history: np.ndarray
    context: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return self.history.shape[0]

    def scaled(self, mean: float, std: float) -> Windows:
        return Windows((self.history - mean) / std, self.context, (self.target - mean) / std)


def make_windows(series: EnergySeries, n_past: int, horizon: int, start: int = 0, stop: int | None = None) -> Windows:
    """Every window lying wholly in hours [start, stop): ``n_past`` inputs, then ``horizon`` targets."""
    for name, value in (("n_past", n_past), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    stop = series.load.shape[0] if stop is None else stop
    n = stop - start - n_past - horizon + 1
    if n < 1:
        raise ValueError(
            f"hours [{start}, {stop}) hold no window of n_past={n_past} + horizon={horizon} hours; use a longer part"
        )
    origins = start + n_past - 1 + np.arange(n)  # the last observed hour of each window
    steps = np.arange(1, horizon + 1)
    history = series.load[origins[:, None] - np.arange(n_past - 1, -1, -1)]
    target = series.load[origins[:, None] + steps]
    first = origins + 1  # the context describes the first hour forecast
    context = np.concatenate([np.eye(24)[series.hour[first]], np.eye(series.n_days)[series.day[first]]], axis=1)
    return Windows(history, context, target)


def horizon_errors(prediction: np.ndarray, target: np.ndarray) -> dict[str, list[float]]:
    """RMSE and MAE of each horizon (column), in the target's unit."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from target shape {target.shape}")
    error = prediction - target
    return {"rmse": np.sqrt(np.mean(error**2, axis=0)).tolist(), "mae": np.mean(np.abs(error), axis=0).tolist()}


# ---- 3. forecasters ------------------------------------------------------------------------------------------
class Forecaster:
    """``fit(train, val)`` on standardised windows, then ``predict(windows)`` -> (n, horizon)."""

    n_parameters = 0

    def fit(self, train: Windows, val: Windows) -> Forecaster:
        return self

    def predict(self, windows: Windows) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class Persistence(Forecaster):
    """Every horizon repeats the last observed value."""

    def predict(self, windows: Windows) -> np.ndarray:
        return np.repeat(windows.history[:, -1:], windows.target.shape[1], axis=1)


class SeasonalNaive(Forecaster):
    """Hour ``t + h`` repeats hour ``t + h - season`` (the same hour yesterday for ``season = 24``)."""

    def __init__(self, season: int = 24) -> None:
        self.season = season

    def predict(self, windows: Windows) -> np.ndarray:
        n_past, horizon = windows.history.shape[1], windows.target.shape[1]
        if self.season > n_past or horizon > self.season:
            raise ValueError(
                f"seasonal naive needs horizon <= season <= n_past, got {horizon}, {self.season}, {n_past}"
            )
        # history[:, -1] is hour t, so hour t + h - season is column n_past - 1 + h - season
        columns = n_past - 1 + np.arange(1, horizon + 1) - self.season
        return windows.history[:, columns]


def _features(windows: Windows) -> np.ndarray:
    return np.concatenate([windows.history, windows.context], axis=1)


class Ridge(Forecaster):
    """Linear least squares with an L2 penalty on the weights (not the intercept); alpha picked on validation."""

    def __init__(self, alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)) -> None:
        self.alphas = alphas

    def _solve(self, x, y, alpha):
        x1 = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
        penalty = alpha * np.eye(x1.shape[1])
        penalty[-1, -1] = 0.0
        return np.linalg.solve(x1.T @ x1 + penalty, x1.T @ y)

    def fit(self, train: Windows, val: Windows) -> Ridge:
        x, xv = _features(train), _features(val)
        scores = []
        for alpha in self.alphas:
            coef = self._solve(x, train.target, alpha)
            scores.append(np.mean((np.concatenate([xv, np.ones((len(xv), 1))], 1) @ coef - val.target) ** 2))
        self.alpha_ = self.alphas[int(np.argmin(scores))]
        self.coef_ = self._solve(x, train.target, self.alpha_)
        self.n_parameters = int(self.coef_.size)
        return self

    def predict(self, windows: Windows) -> np.ndarray:
        x = _features(windows)
        return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1) @ self.coef_


class _TorchForecaster(Forecaster):
    """Adam on the MSE, mini-batches, the epoch with the best validation MSE kept; seeded, no global seeding."""

    def __init__(self, *, hidden: int, epochs: int, lr: float, batch_size: int, seed: int) -> None:
        self.hidden, self.epochs, self.lr, self.batch_size, self.seed = hidden, epochs, lr, batch_size, seed

    def _build(self, n_past: int, n_context: int, horizon: int) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def _tensors(self, windows: Windows):
        as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        return as_tensor(windows.history), as_tensor(windows.context), as_tensor(windows.target)

    def fit(self, train: Windows, val: Windows) -> _TorchForecaster:
        generator = torch.Generator().manual_seed(self.seed)
        self.net = self._build(train.history.shape[1], train.context.shape[1], train.target.shape[1])
        with torch.no_grad():  # PyTorch's default init, but from our generator rather than the global one
            for p in self.net.parameters():
                bound = 1.0 / np.sqrt(p.shape[-1] if p.dim() > 1 else p.shape[0])
                p.uniform_(-bound, bound, generator=generator)
        self.n_parameters = sum(p.numel() for p in self.net.parameters())
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        history, context, target = self._tensors(train)
        val_tensors = self._tensors(val)
        best, best_state = np.inf, None
        for _ in range(self.epochs):
            self.net.train()
            order = torch.randperm(len(train), generator=generator)
            for start in range(0, len(train), self.batch_size):
                batch = order[start : start + self.batch_size]
                loss = torch.mean((self.net(history[batch], context[batch]) - target[batch]) ** 2)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                self.net.eval()
                score = float(torch.mean((self.net(*val_tensors[:2]) - val_tensors[2]) ** 2))
            if score < best:
                best, best_state = score, copy.deepcopy(self.net.state_dict())
        self.net.load_state_dict(best_state)
        return self

    def predict(self, windows: Windows) -> np.ndarray:
        history, context, _ = self._tensors(windows)
        with torch.no_grad():
            self.net.eval()
            return self.net(history, context).numpy().astype(np.float64)


class _MLPNet(nn.Module):
    def __init__(self, n_in: int, hidden: int, n_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_out)

    def forward(self, history, context):
        return self.head(self.body(torch.cat([history, context], dim=1)))


class MLP(_TorchForecaster):
    """Two ReLU hidden layers on [history, context], all horizons at once."""

    def _build(self, n_past, n_context, horizon):
        return _MLPNet(n_past + n_context, self.hidden, horizon)


class _LSTMNet(nn.Module):
    def __init__(self, n_context: int, hidden: int, n_out: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden + n_context, n_out)

    def forward(self, history, context):
        _, (state, _) = self.lstm(history[:, :, None])
        return self.head(torch.cat([state[-1], context], dim=1))


class LSTM(_TorchForecaster):
    """An LSTM reads the past loads one hour at a time; its last state and the context give all horizons."""

    def _build(self, n_past, n_context, horizon):
        return _LSTMNet(n_context, self.hidden, horizon)


class ConditionalRBMForecaster(Forecaster):
    """A CRBM / FCRBM (:mod:`evosparse.rbm.crbm`) trained by CD-k; SET rewires after every epoch but the last."""

    def __init__(self, model: str, topology: str, config: ConditionalRBMConfig, *, seed: int) -> None:
        self.model, self.topology, self.config, self.seed = model, topology, config, seed

    def fit(self, train: Windows, val: Windows) -> ConditionalRBMForecaster:
        config = self.config
        rng = np.random.default_rng([self.seed, 1])
        rbm = build_conditional_rbm(
            self.model, self.topology, config, train.target.shape[1], train.history.shape[1],
            train.context.shape[1], seed=np.random.default_rng([self.seed, 0]),
        )  # fmt: skip
        best, self.rbm_ = np.inf, rbm
        self.val_curve_ = []
        for epoch in range(config.epochs):
            fit_epoch(rbm, train.target, train.history, train.context, config, rng)
            prediction = rbm.predict(val.history, val.context, steps=config.mean_field_steps)
            score = float(np.mean((prediction - val.target) ** 2))
            self.val_curve_.append(score)
            if score < best:
                best, self.rbm_, self.best_epoch_ = score, copy.deepcopy(rbm), epoch + 1
            if self.topology == "set" and epoch < config.epochs - 1:
                rbm.evolve(config.zeta, rng)
        self.n_parameters = self.rbm_.n_parameters()
        return self

    def predict(self, windows: Windows) -> np.ndarray:
        return self.rbm_.predict(windows.history, windows.context, steps=self.config.mean_field_steps).astype(
            np.float64
        )


# ---- the registry and the configuration ----------------------------------------------------------------------
BASELINES = ("persistence", "seasonal", "ridge", "mlp", "lstm")
RBM_FORECASTERS = tuple(m if t == "dense" else f"{m}-{t}" for m in MODELS for t in TOPOLOGIES)
FORECASTERS: tuple[str, ...] = BASELINES + RBM_FORECASTERS


@dataclass(frozen=True)
class ForecastConfig(Config):
    """A forecasting comparison on one series (``evosparse rbm forecast``)."""

    series: str = param("citylearn:1", "citylearn:N or pymgrid:NAME (restaurant, hospital, hotel, office, school)")
    data_dir: str | None = param(None, "folder of the series' files (None: the bundled CityLearn buildings 1-3)")
    models: tuple[str, ...] = param(FORECASTERS, "forecasters to compare", rule=subset_of(FORECASTERS))
    n_past: int = param(24, "past hours given to every forecaster", rule=at_least(1))
    horizon: int = param(24, "hours ahead forecast (1..horizon)", rule=at_least(1))
    season: int = param(24, "seasonal naive: hours per season", rule=at_least(1))
    val_fraction: float = param(
        0.1, "fraction of the hours for validation (after training)", rule=between(0, 1, low_open=True, high_open=True)
    )
    test_fraction: float = param(
        0.25, "fraction of the hours for the test (the last ones)", rule=between(0, 1, low_open=True, high_open=True)
    )
    nn_hidden: int = param(64, "MLP / LSTM hidden units", rule=at_least(1))
    nn_epochs: int = param(40, "MLP / LSTM epochs (the best on validation is kept)", rule=at_least(1))
    nn_lr: float = param(1e-3, "MLP / LSTM Adam learning rate", rule=positive)
    nn_batch_size: int = param(64, "MLP / LSTM mini-batch size", rule=at_least(1))
    seed: int = param(0, "seed of every learned model", rule=at_least(0))
    rbm: ConditionalRBMConfig = section(ConditionalRBMConfig, "CRBM / FCRBM settings")

    def validate(self) -> None:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"val_fraction + test_fraction must be < 0.9 to leave hours to train on, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        if "seasonal" in self.models and not self.horizon <= self.season <= self.n_past:
            raise ValueError(
                f"seasonal needs horizon <= season <= n_past, got horizon {self.horizon}, season {self.season}, "
                f"n_past {self.n_past}"
            )


def build_forecaster(name: str, config: ForecastConfig) -> Forecaster:
    """The forecaster ``name`` (one of :data:`FORECASTERS`) with ``config``'s settings."""
    if name not in FORECASTERS:
        raise ValueError(f"forecaster must be one of {', '.join(FORECASTERS)}, got {name!r}")
    torch_settings = {"hidden": config.nn_hidden, "epochs": config.nn_epochs, "lr": config.nn_lr}
    torch_settings |= {"batch_size": config.nn_batch_size, "seed": config.seed}
    builders: dict[str, Callable[[], Forecaster]] = {
        "persistence": Persistence,
        "seasonal": lambda: SeasonalNaive(config.season),
        "ridge": Ridge,
        "mlp": lambda: MLP(**torch_settings),
        "lstm": lambda: LSTM(**torch_settings),
    }
    if name in builders:
        return builders[name]()
    model, _, topology = name.partition("-")
    return ConditionalRBMForecaster(model, topology or "dense", config.rbm, seed=config.seed)


def split_hours(n_hours: int, config: ForecastConfig) -> tuple[int, int]:
    """(end of training, end of validation): chronological parts of the series."""
    n_test = int(round(config.test_fraction * n_hours))
    n_val = int(round(config.val_fraction * n_hours))
    return n_hours - n_test - n_val, n_hours - n_test


def run_forecast(
    config: ForecastConfig,
    series: EnergySeries | None = None,
    *,
    log: Callable[[str], None] | None = None,
    done: Mapping[str, dict] | None = None,
    on_forecaster_end: Callable[[dict], object] | None = None,
) -> dict:
    """Fit every forecaster of ``config`` on one series and score it on the test part.

    Returns a dict: ``series``, ``n_windows`` per part, and per forecaster ``rmse`` / ``mae`` (per horizon,
    in the load's unit), their means over the horizons, ``n_parameters`` and ``fit_seconds``.

    Resuming: ``done`` holds the entries of forecasters an interrupted run already scored (its
    ``results["forecasters"]``); they are kept, not refitted. Every forecaster draws its randomness from
    ``config.seed`` alone, never from the ones before it, so the resumed results equal an uninterrupted
    run's (but for the fit times). ``on_forecaster_end(results)`` is called after each new forecaster.
    """
    series = load_energy_series(config.series, config.data_dir) if series is None else series
    end_train, end_val = split_hours(series.load.shape[0], config)
    parts = [(0, end_train), (end_train, end_val), (end_val, series.load.shape[0])]
    raw = [make_windows(series, config.n_past, config.horizon, a, b) for a, b in parts]
    mean, std = float(series.load[:end_train].mean()), float(series.load[:end_train].std())
    std = std if std > 0 else 1.0
    train, val, test = (w.scaled(mean, std) for w in raw)
    results = {"series": series.name, "n_windows": [len(w) for w in raw], "load_mean": mean, "forecasters": {}}
    for name in config.models:
        if done is not None and name in done:
            results["forecasters"][name] = dict(done[name])
            continue
        start = time.perf_counter()
        forecaster = build_forecaster(name, config).fit(train, val)
        seconds = time.perf_counter() - start
        prediction = forecaster.predict(test) * std + mean
        errors = horizon_errors(prediction, raw[2].target)
        entry = {
            **errors,
            "rmse_mean": float(np.mean(errors["rmse"])),
            "mae_mean": float(np.mean(errors["mae"])),
            "n_parameters": int(forecaster.n_parameters),
            "fit_seconds": seconds,
        }
        if hasattr(forecaster, "best_epoch_"):
            entry["best_epoch"] = forecaster.best_epoch_
        results["forecasters"][name] = entry
        if log is not None:
            log(
                f"{series.name} {name:>14}: RMSE h1 {errors['rmse'][0]:.4f} h{config.horizon} "
                f"{errors['rmse'][-1]:.4f} mean {entry['rmse_mean']:.4f}  MAE mean {entry['mae_mean']:.4f}  "
                f"params {entry['n_parameters']:,}  fit {seconds:.1f}s"
            )
        if on_forecaster_end is not None:
            on_forecaster_end(results)
    return results
