"""BuildingEnergyEnv: API, energy balance, battery bounds, action checks, reproducibility, options, optimum."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.envs.building import BuildingConfig, BuildingEnergyEnv, Change
from evosparse.envs.controllers import make_controller, run_episode
from evosparse.envs.data import BuildingData
from evosparse.envs.metrics import episode_metrics
from evosparse.envs.optimal import building_optimum

WEEK = dict(episode_hours=24 * 7, start_hour=24 * 200)


@pytest.fixture(scope="module")
def env():
    return BuildingEnergyEnv(**WEEK)


def test_check_env_continuous_and_discrete():
    check_env(BuildingEnergyEnv(episode_hours=48), skip_render_check=True)
    check_env(BuildingEnergyEnv(episode_hours=48, discrete_levels=5), skip_render_check=True)


def test_registered_id_makes_the_environment():
    import evosparse.envs  # noqa: F401  (registers the ids)

    env = gym.make("evosparse/BuildingEnergy-v0", episode_hours=24)
    observation, _ = env.reset(seed=0)
    assert env.observation_space.contains(observation)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    actions=st.lists(st.lists(st.floats(-10, 10, allow_nan=False), min_size=4, max_size=4), min_size=30, max_size=30),
)
def test_energy_balance_and_battery_bounds_under_any_action(env, seed, actions):
    env.reset(seed=seed)
    config = env.config
    for action in actions:
        _, _, _, _, info = env.step(np.array(action))
        assert 0.0 <= info["soc"] <= config.battery_kwh
    log, n = env.log, len(actions)
    consumption = log["load"] + log["battery"] + log["hvac"] + log["ev"] + log["appliance"] - log["pv"]
    np.testing.assert_allclose((log["grid_import"] - log["grid_export"])[:n], consumption[:n], atol=1e-9)
    assert np.all(log["grid_import"][:n] * log["grid_export"][:n] == 0)  # one meter: never both at once
    assert np.all(np.abs(log["battery"][:n]) <= config.battery_kw + 1e-12)
    # the battery's state follows its own equation from the powers actually applied
    stored = np.where(
        log["battery"] > 0, log["battery"] * config.charge_efficiency, log["battery"] / config.discharge_efficiency
    )[:n]
    np.testing.assert_allclose(log["soc"][:n], config.initial_soc * config.battery_kwh + np.cumsum(stored), atol=1e-9)


def test_out_of_range_actions_are_clipped_and_counted(env):
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([5.0, -3.0, 0.5, 0.5]))
    assert info["clipped_actions"] == 2
    assert abs(info["battery"]) <= env.config.battery_kw


def test_nan_action_raises_a_clear_error(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="4 values"):
        env.step(np.zeros(3))


def test_discrete_action_out_of_range_raises():
    env = BuildingEnergyEnv(episode_hours=24, discrete_levels=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"integers in \[0, 2\]"):
        env.step(np.array([3, 0, 0, 0]))


def test_episodes_are_reproducible_from_a_seed():
    logs = []
    for _ in range(2):
        env = BuildingEnergyEnv(**WEEK)
        logs.append(run_episode(env, make_controller("random", seed=7), seed=11))
    for name in logs[0]:
        np.testing.assert_array_equal(logs[0][name], logs[1][name])
    env = BuildingEnergyEnv(**WEEK)
    env.reset(seed=11)
    first = env.episode.ev_required.copy()
    env.reset(seed=12)
    assert not np.array_equal(first, env.episode.ev_required)  # the seed drives the EV sessions


def test_daily_reward_pays_the_same_total_once_a_day():
    totals = {}
    for delay in ("none", "daily"):
        env = BuildingEnergyEnv(**WEEK, reward_delay=delay)
        env.reset(seed=3)
        rewards, hours = [], []
        controller = make_controller("rule")
        controller.start(env)
        observation, done = env._observation(), False
        while not done:
            hours.append(env.episode.clock_hour[env._t])
            observation, reward, _, done, _ = env.step(controller.act(observation))
            rewards.append(reward)
        totals[delay] = (np.array(rewards), np.array(hours))
    immediate, delayed = totals["none"][0], totals["daily"][0]
    assert delayed.sum() == pytest.approx(immediate.sum(), rel=1e-9)
    paid = np.flatnonzero(delayed != 0)
    assert set(totals["daily"][1][paid[:-1]]) == {23}  # settled at the last hour of each day


def test_sudden_changes_apply_from_their_hour():
    changes = (Change("battery_failure", 48), Change("tariff_switch", 24), Change("occupant", 72, scale=2.0))
    env = BuildingEnergyEnv(**WEEK, changes=changes)
    base = BuildingEnergyEnv(**WEEK)
    env.reset(seed=0)
    base.reset(seed=0)
    assert np.all(env.episode.battery_limit[48:] == 0) and np.all(env.episode.battery_limit[:48] > 0)
    window = slice(WEEK["start_hour"] + 24, WEEK["start_hour"] + WEEK["episode_hours"])
    np.testing.assert_array_equal(env.episode.price[24:], env.data.tariff[window])
    np.testing.assert_array_equal(env.episode.price[:24], base.episode.price[:24])
    np.testing.assert_allclose(env.episode.load[72:], 2.0 * base.episode.load[72:])
    for _ in range(60):
        _, _, _, _, info = env.step(np.ones(4))
    assert info["battery"] == 0.0


def test_optimum_is_never_beaten_and_its_replay_costs_what_the_lp_says(env):
    env.reset(seed=5)
    plan = building_optimum(env)
    for name in ("none", "rule", "random"):
        cost = episode_metrics(run_episode(env, make_controller(name, seed=1), seed=5))["total_cost"]
        assert plan.objective <= cost + 1e-6, name
    replay = episode_metrics(run_episode(env, make_controller("optimal"), seed=5))["total_cost"]
    assert replay == pytest.approx(plan.objective, rel=1e-6, abs=1e-6)


def _tiny_data(load, price) -> BuildingData:
    n = len(load)
    zeros = np.zeros(n)
    return BuildingData(
        name="tiny",
        month=np.ones(n, int),
        hour=np.arange(1, n + 1),
        day_type=np.ones(n, int),
        load=np.array(load, float),
        solar=zeros,
        tariff=np.array(price, float),
        carbon=zeros,
        outdoor_temperature=zeros + 22,
        irradiance=zeros,
    )


@pytest.mark.parametrize("efficiency", [1.0, 0.9])
def test_lp_matches_brute_force_on_a_tiny_instance(efficiency):
    # Battery only, no PV: with full efficiency the optimum lies on the 5-level action grid, so exhaustive
    # search over 5^4 action sequences finds it; with losses the LP may only be lower (it is a bound).
    data = _tiny_data([1.0, 2.0, 1.5, 3.0], [0.1, 0.5, 0.2, 0.6])
    config = BuildingConfig(
        price_signal="tariff",
        episode_hours=4,
        hvac=False,
        ev=False,
        appliance=False,
        battery_kwh=2.0,
        battery_kw=1.0,
        initial_soc=0.5,
        pv_kw=0.0,
        charge_efficiency=efficiency,
        discharge_efficiency=efficiency,
    )
    env = BuildingEnergyEnv(config, data=data, day_ahead=np.zeros(4), discrete_levels=5)
    best = np.inf
    for actions in itertools.product(range(5), repeat=4):
        env.reset(seed=0)
        best = min(best, -sum(env.step(np.array([a]))[1] for a in actions))
    continuous = BuildingEnergyEnv(config, data=data, day_ahead=np.zeros(4))
    continuous.reset(seed=0)
    optimum = building_optimum(continuous).objective
    if efficiency == 1.0:
        assert optimum == pytest.approx(best, abs=1e-9)
    else:
        assert optimum <= best + 1e-9


def test_config_errors_name_the_field_value_and_range():
    with pytest.raises(ValueError, match=r"battery_kw must be in \[0, 1e\+06\], got -1"):
        BuildingConfig(battery_kw=-1)
    with pytest.raises(ValueError, match="charge_efficiency must be in"):
        BuildingConfig(charge_efficiency=1.5)
    with pytest.raises(ValueError, match="price_signal must be one of"):
        BuildingConfig(price_signal="spot")
    with pytest.raises(ValueError, match=r"unknown key\(s\) in config: 'battery_size'"):
        BuildingConfig.from_dict({"battery_size": 3})
    with pytest.raises(ValueError, match="start_hour \\+ episode_hours"):
        BuildingEnergyEnv(start_hour=8700, episode_hours=100)
    with pytest.raises(ValueError, match="kind must be one of tariff_switch, battery_failure, occupant"):
        Change("flood", 3)
    assert BuildingConfig.from_dict(BuildingConfig(pv_kw=2.0).to_dict()) == BuildingConfig(pv_kw=2.0)


def test_price_memory_observes_the_mean_of_the_last_hours_prices():
    plain = BuildingEnergyEnv(episode_hours=72, start_hour=24 * 40)
    env = BuildingEnergyEnv(episode_hours=72, start_hour=24 * 40, price_memory_hours=24)
    assert env.observation_space.shape == (plain.observation_space.shape[0] + 1,)
    assert env.observation_names[-1] == "price_mean_past"
    observation, _ = env.reset(seed=0)
    other, _ = plain.reset(seed=0)
    assert np.array_equal(observation[:-1], other)  # the default observation is unchanged
    price, seen = env.episode.price, [observation]
    for _ in range(71):
        seen.append(env.step(env.action_space.sample())[0])
    for t in (0, 1, 10, 23, 24, 50, 71):  # the rules' reference: prices from the episode start, at most 24
        assert seen[t][-1] == pytest.approx(price[max(0, t - 23) : t + 1].mean(), rel=1e-6)
    with pytest.raises(ValueError, match="price_memory_hours"):
        BuildingConfig(price_memory_hours=-1)


def test_target_hvac_action_reaches_its_deviation_and_equals_the_thermostat_power():
    """hvac_action="target": the action is the deviation to reach within the hour (fraction of the band); it
    plays exactly as the power its thermostat computes does in the default "power" environment."""
    settings = dict(episode_hours=48, start_hour=24 * 100)
    target_env = BuildingEnergyEnv(**settings, hvac_action="target")
    power_env = BuildingEnergyEnv(**settings)
    target_env.reset(seed=3)
    power_env.reset(seed=3)
    rng = np.random.default_rng(0)
    band = target_env.config.comfort_band
    for _ in range(48):
        action = rng.uniform(target_env.action_space.low, target_env.action_space.high).astype(np.float32)
        power = action.astype(np.float64)
        power[1] = target_env.hvac_fraction_for_target(float(action[1]))
        target_env.step(action)
        power_env.step(power)
        if abs(power[1]) < 1:  # within the heat pump's limit the zone lands on the target
            assert target_env.log["temperature_deviation"][target_env._t - 1] == pytest.approx(action[1] * band)
    for name in target_env.log:
        np.testing.assert_array_equal(target_env.log[name], power_env.log[name], err_msg=name)
    with pytest.raises(ValueError, match="hvac_action"):
        BuildingConfig(hvac_action="setpoint")
