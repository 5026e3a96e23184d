"""Microgrid and intraday market: API, balance and bounds, outages, clearing, MILP / LP optima."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.envs.controllers import make_controller, run_episode
from evosparse.envs.market import IntradayMarketEnv, MarketConfig
from evosparse.envs.metrics import episode_metrics
from evosparse.envs.microgrid import MicrogridConfig, MicrogridEnv
from evosparse.envs.optimal import market_optimum, microgrid_optimum

DAYS = dict(episode_hours=72, start_hour=24 * 100)


@pytest.fixture(scope="module")
def microgrid():
    return MicrogridEnv(outage_rate=0.05, **DAYS)


def test_check_env():
    check_env(MicrogridEnv(**DAYS), skip_render_check=True)
    check_env(IntradayMarketEnv(**DAYS), skip_render_check=True)
    check_env(IntradayMarketEnv(steps_per_hour=4, **DAYS), skip_render_check=True)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 1000),
    actions=st.lists(
        st.tuples(st.floats(-3, 3, allow_nan=False), st.floats(-1, 3, allow_nan=False)), min_size=48, max_size=48
    ),
)
def test_microgrid_balance_and_bounds(microgrid, seed, actions):
    env, config = microgrid, microgrid.config
    env.reset(seed=seed)
    for action in actions:
        _, _, _, _, info = env.step(np.array(action))
        assert 0.0 <= info["soc"] <= config.battery_kwh
    log, n = env.log, len(actions)
    supply = log["pv"] + log["generator"] + log["grid_import"] + log["shed"]
    demand = log["load"] + log["battery"] + log["grid_export"] + log["curtailed"]
    np.testing.assert_allclose(supply[:n], demand[:n], atol=1e-9)
    islanded = log["grid_available"][:n] == 0
    assert np.all(log["grid_import"][:n][islanded] == 0) and np.all(log["grid_export"][:n][islanded] == 0)
    running = log["generator"][:n] > 0
    assert np.all(log["generator"][:n][running] >= config.generator_min_kw - 1e-12)
    assert np.all(log["generator"][:n] <= config.generator_kw + 1e-12)


def test_outages_follow_the_seed_and_the_rate(microgrid):
    microgrid.reset(seed=1)
    first = microgrid.episode["grid_available"].copy()
    microgrid.reset(seed=1)
    np.testing.assert_array_equal(first, microgrid.episode["grid_available"])
    assert 0 < (first == 0).sum() < len(first)
    quiet = MicrogridEnv(outage_rate=0.0, **DAYS)
    quiet.reset(seed=1)
    assert np.all(quiet.episode["grid_available"] == 1)


def test_generator_start_is_charged_once_per_start():
    env = MicrogridEnv(outage_rate=0.0, **DAYS)
    env.reset(seed=0)
    on_off = [0.5, 0.5, 0.0, 0.5, 0.0, 0.0]
    for generator in on_off:
        env.step(np.array([0.0, generator]))
    assert env.log["starts"][: len(on_off)].tolist() == [1, 0, 0, 1, 0, 0]


def test_microgrid_milp_bounds_every_controller(microgrid):
    microgrid.reset(seed=3)
    plan = microgrid_optimum(microgrid)
    assert plan.bound <= plan.objective + 1e-6
    for name in ("none", "rule", "random", "optimal"):
        cost = episode_metrics(run_episode(microgrid, make_controller(name, seed=1), seed=3))["total_cost"]
        assert plan.bound <= cost + 1e-6, name


def test_market_clearing_settlement_and_imbalance():
    env = IntradayMarketEnv(**DAYS, market_noise=0.0, forecast_error=0.0, degradation_cost=0.0)
    env.reset(seed=0)
    clearing = env.episode["clearing_price"]
    # a buy with a limit below the clearing price does not clear
    _, reward, _, _, info = env.step(np.array([1.0, -0.5]))
    assert not info["cleared"] and reward == 0.0
    # a market order clears and settles at the clearing price
    _, reward, _, _, info = env.step(np.array([0.4, 1.0]))
    assert info["cleared"] and reward == pytest.approx(-0.4 * env.config.battery_kw * clearing[1])
    # selling more than the battery holds: the shortfall is bought back at the imbalance price
    env.reset(seed=0)
    env._soc = 1.0
    _, reward, _, _, info = env.step(np.array([-1.0, -1.0]))
    sold, delivered = -env.config.battery_kw, info["battery"]
    expected = sold * clearing[0] + (delivered - sold) * (clearing[0] + env.config.imbalance_spread)
    assert -reward == pytest.approx(expected)


@pytest.mark.parametrize("steps_per_hour", [1, 4])
def test_market_optimum_bounds_controllers_and_replays(steps_per_hour):
    env = IntradayMarketEnv(steps_per_hour=steps_per_hour, **DAYS)
    env.reset(seed=5)
    plan = market_optimum(env)
    for name in ("none", "rule", "random"):
        cost = episode_metrics(run_episode(env, make_controller(name, seed=2), seed=5))["total_cost"]
        assert plan.objective <= cost + 1e-6, name
    replay = episode_metrics(run_episode(env, make_controller("optimal"), seed=5))["total_cost"]
    assert replay == pytest.approx(plan.objective, rel=1e-6, abs=1e-9)


def test_nan_actions_raise():
    for env in (MicrogridEnv(**DAYS), IntradayMarketEnv(**DAYS)):
        env.reset(seed=0)
        with pytest.raises(ValueError, match="NaN"):
            env.step(np.array([np.nan, 0.0]))


def test_config_errors():
    with pytest.raises(ValueError, match=r"generator_kw must be > generator_min_kw \(2.0\), got 1.0"):
        MicrogridConfig(generator_kw=1.0)
    with pytest.raises(ValueError, match=r"steps_per_hour must be one of 1, 4; got 2"):
        MarketConfig(steps_per_hour=2)
    with pytest.raises(ValueError, match="outage_rate must be in"):
        MicrogridConfig(outage_rate=1.5)


@pytest.mark.parametrize("make", [lambda: MicrogridEnv(outage_rate=0.05, **DAYS), lambda: IntradayMarketEnv(**DAYS)])
def test_episodes_are_reproducible_from_a_seed(make):
    logs = [run_episode(make(), make_controller("random", seed=9), seed=21) for _ in range(2)]
    for name in logs[0]:
        np.testing.assert_array_equal(logs[0][name], logs[1][name])
    other = run_episode(make(), make_controller("random", seed=9), seed=22)
    assert not np.array_equal(other["reward"], logs[0]["reward"])


def test_microgrid_carbon_counts_the_generator_fuel():
    env = MicrogridEnv(outage_rate=0.0, generator_carbon=0.8, **DAYS)
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.array([0.0, 1.0]))
    log = {name: values[:10] for name, values in env.log.items()}
    expected = (log["grid_import"] * log["carbon"]).sum() + 0.8 * env.config.generator_kw * 10
    assert episode_metrics(log)["carbon"] == pytest.approx(expected)
