"""The registries: every environment's spec, a new environment and a new controller added by one call each,
and the train / test split the RL agents train and are evaluated on."""

from __future__ import annotations

import json
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest

from evosparse._config import Config, param
from evosparse.cli.main import main
from evosparse.envs import (
    CONTROLLERS,
    ENVIRONMENTS,
    HELD_OUT_DAYS,
    EnergyCommunityParallelEnv,
    EnvSpec,
    base,
    compare_controllers,
    devices,
    make_controller,
    make_env,
    optimal,
    register_controller,
    register_environment,
    run_episode,
    spec_of,
)
from evosparse.envs.lp import ProgramBuilder
from evosparse.envs.policies import Controller, PriceMemory


# ---- a small environment, as a new module of the package would write it ----------------------------------
@dataclass(frozen=True)
class ArbitrageConfig(Config):
    """Settings of :class:`ArbitrageEnv`."""

    price_file: str | None = param(None, "day-ahead price CSV; None = the bundled Dutch prices")
    price_start: str = param("2023-08-01", "first hour of the prices", rule=base.iso_date("price_start"))
    start_hour: int = param(0, "first hour of an episode within the split", rule=base.START_HOUR)
    episode_hours: int = param(48, "steps per episode", rule=base.EPISODE_HOURS)
    random_start: bool = param(False, "draw the start day at reset among the days of the split")
    split: str = param("all", "all, train or test", rule=base.SPLIT)
    battery_kwh: float = param(10.0, "battery capacity", rule=base.SIZE)
    battery_kw: float = param(5.0, "battery power limit", rule=base.SIZE)
    charge_efficiency: float = param(0.9, "share of the charged energy stored", rule=base.EFFICIENCY)
    discharge_efficiency: float = param(0.9, "share of the stored energy delivered", rule=base.EFFICIENCY)
    initial_soc: float = param(0.5, "state of charge at reset", rule=base.FRACTION)
    degradation_cost: float = param(0.0, "currency per kWh of throughput", rule=base.PENALTY)


class ArbitrageEnv(gym.Env):
    """A battery that buys and sells at the day-ahead price, one action in [-1, 1] per hour."""

    metadata = {"render_modes": []}
    observation_names = ("price", "soc")
    action_names = ("battery",)

    def __init__(self, config: ArbitrageConfig | None = None, **overrides):
        self.config = config = (config or ArbitrageConfig()).replace(**overrides)
        prices = base.day_ahead_prices(config.price_file)
        self.prices = prices.window(config.price_start, 24 * 365)
        base.check_window(config, len(self.prices), prices.name)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), dtype=np.float32)
        self.episode = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        config, n = self.config, self.config.episode_hours
        start = base.episode_start(config, len(self.prices), self.np_random)
        self.episode = {"price": self.prices[start : start + n], "start": start}
        self._t, self._soc, self.clipped_actions = 0, config.initial_soc * config.battery_kwh, 0
        self.log = {name: np.zeros(n) for name in ("grid_import", "grid_export", "cost", "reward", "price", "soc")}
        return self._observation(), {}

    def _observation(self):
        t = min(self._t, self.config.episode_hours - 1)
        soc = self._soc / self.config.battery_kwh if self.config.battery_kwh > 0 else 0.0
        return np.array([self.episode["price"][t], soc], dtype=np.float32)

    def step(self, action):
        config, t = self.config, self._t
        base.require_running(t, config.episode_hours, self.episode)
        clipped, n_clipped = base.check_action(action, -1.0, 1.0, self.action_names)
        self.clipped_actions += n_clipped
        self._soc, power = devices.battery_step_scalar(
            self._soc, float(clipped[0]) * config.battery_kw, config.battery_kwh, config.battery_kw,
            config.charge_efficiency, config.discharge_efficiency, 1.0,
        )  # fmt: skip
        price = float(self.episode["price"][t])
        cost = power * price + config.degradation_cost * abs(power)
        for name, value in (("grid_import", max(power, 0.0)), ("grid_export", max(-power, 0.0)), ("cost", cost),
                            ("reward", -cost), ("price", price), ("soc", self._soc)):  # fmt: skip
            self.log[name][t] = value
        self._t += 1
        return self._observation(), -cost, False, self._t >= config.episode_hours, {}


class ArbitrageIdle(Controller):
    def act(self, observation):
        return np.zeros(1, dtype=np.float32)


class ArbitrageRule(Controller):
    def start(self, env):
        super().start(env)
        self.memory = PriceMemory()

    def act(self, observation):
        cheap, expensive = self.memory.classify(float(observation[0]))
        return np.array([1.0 if cheap else -1.0 if expensive else 0.0], dtype=np.float32)


def arbitrage_optimum(env) -> optimal.Plan:
    lp, n = ProgramBuilder(), env.config.episode_hours
    optimal.config_battery(lp, n, env.config, price=env.episode["price"])
    solution = lp.solve()
    power = solution.values["charge"] - solution.values["discharge"]
    actions = np.clip(optimal.fraction(power, np.full(n, env.config.battery_kw)), -1, 1)[:, None]
    return optimal.Plan(actions=actions, objective=solution.objective, bound=solution.bound, status=solution.status)


ARBITRAGE = EnvSpec(
    name="arbitrage",
    gym_id="evosparse/Arbitrage-v0",
    env=ArbitrageEnv,
    config=ArbitrageConfig,
    no_control=ArbitrageIdle,
    rule=ArbitrageRule,
    optimum=arbitrage_optimum,
    description="a battery trading at the day-ahead price",
)


@pytest.fixture
def arbitrage():
    """The spec registered for one test, then removed (the registries are process-wide)."""
    register_environment(ARBITRAGE)
    yield ARBITRAGE
    del ENVIRONMENTS[ARBITRAGE.name]
    del gym.registry[ARBITRAGE.gym_id]


# ---- the built-in specs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["building", "microgrid", "market", "community"])
def test_each_spec_names_a_matching_class_id_and_config(name):
    spec = ENVIRONMENTS[name]
    assert spec.gym_id == f"evosparse/{spec.env.__name__.removesuffix('Env')}-v0"
    env = gym.make(spec.gym_id, episode_hours=24)
    assert isinstance(env.unwrapped, spec.env) and isinstance(env.unwrapped.config, spec.config)
    assert spec_of(env) is spec and spec_of(make_env(name, episode_hours=24)) is spec
    assert spec.description and "\n" not in spec.description


def test_the_pettingzoo_view_is_named_after_the_same_id():
    spec = ENVIRONMENTS["community"]
    assert spec.parallel is EnergyCommunityParallelEnv
    view = spec.parallel(n_buildings=2, episode_hours=24)
    assert view.metadata["name"] == "evosparse_energy_community_v0"  # evosparse/EnergyCommunity-v0
    assert spec_of(view) is spec


def test_unregistered_environment_is_a_clear_error():
    with pytest.raises(ValueError, match="ArbitrageEnv is not a registered environment"):
        spec_of(ArbitrageEnv())
    with pytest.raises(ValueError, match="environment must be one of building, microgrid, market, community"):
        make_env("arbitrage")


# ---- a new environment: one register_environment call ----------------------------------------------------
def test_a_new_environment_gets_gymnasium_every_controller_and_the_gap(arbitrage):
    env = gym.make("evosparse/Arbitrage-v0", episode_hours=72, start_hour=24 * 30)
    comparison = compare_controllers(env, ["rule", "random"], seed=3)
    assert list(comparison.rows) == ["rule", "random"]
    optimum = arbitrage_optimum(env.unwrapped).objective
    none = run_episode(env, make_controller("none"), seed=3)
    assert -none["reward"].sum() == 0.0  # idle battery: no trade
    rule_cost = comparison.rows["rule"]["total_cost"]
    assert comparison.rows["rule"]["gap_closed"] == pytest.approx((0.0 - rule_cost) / (0.0 - optimum), rel=1e-6)
    assert rule_cost >= optimum - 1e-9 and comparison.rows["random"]["total_cost"] >= optimum - 1e-9


def test_a_new_environment_runs_from_the_command_line(arbitrage, capsys):
    code = main(["grid", "run", "arbitrage", "--days", "2", "--start-day", "40", "--json", "--set", "battery_kwh=20"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out["metrics"]) == {"none", "rule", "optimal"}
    assert out["metrics"]["optimal"]["gap_closed"] == pytest.approx(1.0, abs=1e-6)
    assert main(["grid", "run", "arbitrage", "--building", "2", "--days", "1"]) == 2
    assert "--building does not apply to the arbitrage environment" in capsys.readouterr().err


# ---- a new controller: the hook the RL agents use ----------------------------------------------------------
class Constant(Controller):
    def __init__(self, level: float):
        self.level = level

    def act(self, observation):
        return np.full(self.env.action_space.shape, self.level, dtype=np.float32)


@pytest.fixture
def constant_controller():
    def factory(argument, *, seed):
        return Constant(float(argument if argument is not None else 0.0))

    register_controller("constant", factory)
    yield factory
    del CONTROLLERS["constant"]


def test_a_registered_controller_is_played_with_the_gap(constant_controller, capsys):
    controller = make_controller("constant:0.25")
    assert isinstance(controller, Constant) and controller.level == 0.25
    code = main(["grid", "run", "market", "--days", "2", "--controller", "constant:0.5,rule", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and list(out["metrics"]) == ["constant:0.5", "rule"]
    for row in out["metrics"].values():
        assert isinstance(row["gap_closed"], float)  # none and optimal were played as references
    assert any("none (not listed)" in note for note in out["notes"])


def test_controller_registration_errors(constant_controller):
    with pytest.raises(ValueError, match="already registered"):
        register_controller("constant", lambda argument, *, seed: Constant(1.0))
    with pytest.raises(ValueError, match="must be an identifier"):
        register_controller("agent:x", constant_controller)
    with pytest.raises(ValueError, match="controller must be one of none, rule, optimal, random, constant"):
        make_controller("smart:x")
    with pytest.raises(ValueError, match="empty argument"):
        make_controller("constant:")


# ---- the train / test split ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["building", "microgrid", "market", "community"])
def test_training_never_sees_the_held_out_month(name):
    options = {"n_buildings": 2} if name == "community" else {}
    train = make_env(name, split="train", random_start=True, episode_hours=24 * 7, **options)
    n_hours = train.n_hours
    first_test_hour = n_hours - 24 * HELD_OUT_DAYS
    starts = set()
    for seed in range(40):
        train.reset(seed=seed)
        assert train.first_hour % 24 == 0 and train.first_hour + 24 * 7 <= first_test_hour
        starts.add(train.first_hour)
    assert len(starts) > 20  # the start days spread over the eleven training months
    test = make_env(name, split="test", episode_hours=24 * HELD_OUT_DAYS, **options)
    assert base.split_hours(n_hours, "test") == (first_test_hour, 24 * HELD_OUT_DAYS)
    test.reset(seed=0)  # the whole held-out month is one evaluation episode
    assert test.first_hour == first_test_hour
    with pytest.raises(ValueError, match=r"episode_hours must be <= 720 .*'test' split"):
        make_env(name, split="test", random_start=True, episode_hours=24 * 31, **options)


def test_the_test_split_is_the_grid_run_window():
    # grid run's default window (days 335-364) and split="test" are the same episode of the CityLearn year
    held_out = make_env("building", split="test", episode_hours=24 * 30)
    window = make_env("building", start_hour=24 * 335, episode_hours=24 * 30)
    for env in (held_out, window):
        run_episode(env, make_controller("rule"), seed=0)
    np.testing.assert_array_equal(held_out.log["reward"], window.log["reward"])


# ---- the configs on the one config base ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["building", "microgrid", "market", "community"])
def test_configs_round_trip_and_reject_unknown_keys(name, tmp_path):
    config_class = ENVIRONMENTS[name].config
    config = config_class(episode_hours=48, split="train", random_start=True)
    assert config_class.from_toml(config.to_toml()) == config
    assert config_class.from_json(config.to_json()) == config
    assert config_class.from_file(config.save(tmp_path / f"{name}.toml")) == config
    assert all(doc for doc in config_class.field_docs().values())  # every field documented
    with pytest.raises(
        ValueError, match=r"unknown key\(s\) in config: 'episode_hour' \(did you mean 'episode_hours'\?\)"
    ):
        config_class.from_dict({"episode_hour": 24})
    with pytest.raises(ValueError, match=r"episode_hours must be an integer in \[1, 1000000\], got 1.5"):
        config.replace(episode_hours=1.5)


def test_building_changes_round_trip_as_tables():
    from evosparse.envs import BuildingConfig

    config = BuildingConfig(
        changes=({"kind": "occupant", "hour": 3, "scale": 1.5}, {"kind": "battery_failure", "hour": 5})
    )
    assert "[[changes]]" in config.to_toml()
    assert BuildingConfig.from_toml(config.to_toml()) == config
    assert BuildingConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match=r"unknown key\(s\) in changes: 'hours' \(did you mean 'hour'\?\)"):
        BuildingConfig(changes=({"kind": "occupant", "hours": 3},))
