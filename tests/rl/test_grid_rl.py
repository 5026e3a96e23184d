"""Agents on the smart grid: runs on the training split evaluated on the held-out month, and the trained agent
as the ``agent:RUN_DIR`` controller of ``evosparse grid run`` beside none / rule / optimal."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evosparse.cli.main import main
from evosparse.envs import BuildingEnergyEnv
from evosparse.envs.controllers import make_controller, run_episode
from evosparse.rl.evaluation import evaluate_policy
from evosparse.rl.grid import AgentController, grid_run_config, split_kwargs
from evosparse.rl.run import RunConfig, load_agent, train_rl

HELD_OUT_START_DAY = 335  # the first day of the test split (the last 30 days of the 365-day data year)

# No update happens (learning_starts > total_steps): these tests are about the plumbing, not about learning.
NO_UPDATES = {"actor_hidden": [8], "critic_hidden": [8], "learning_starts": 1000}


@pytest.fixture(scope="module")
def building_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid") / "td3"
    config = grid_run_config("building", algo="td3", episode_days=1, total_steps=48, eval_every=48, agent=NO_UPDATES)
    train_rl(config, folder, log=None)
    return folder


def _grid_run(capsys, *argv):
    try:
        code = main(["grid", "run", *argv])
    except SystemExit as exit_info:
        code = exit_info.code
    out, err = capsys.readouterr()
    return code, out, err


def test_grid_runs_train_on_the_train_split_and_evaluate_on_the_held_out_month(building_run):
    config = grid_run_config("building", algo="sac", env_kwargs={"reward_delay": "daily"}, total_steps=10)
    assert config.env == "evosparse/BuildingEnergy-v0"
    assert config.env_kwargs == {"reward_delay": "daily", "split": "train", "random_start": True, "episode_hours": 168}
    assert config.eval_env_kwargs == split_kwargs()[1] == {
        "split": "test", "random_start": False, "start_hour": 0, "episode_hours": 720,
    }  # fmt: skip
    history = json.loads((building_run / "history.json").read_text())
    assert [row["length_mean"] for row in history] == [720.0]  # one evaluation: the whole held-out month
    with pytest.raises(ValueError, match="env must be one of building, microgrid, market, community"):
        grid_run_config("house")
    with pytest.raises(ValueError, match=r"episode_days must be an integer in \[1, 30\]"):
        split_kwargs(0)


def test_agent_controller_beside_the_yardsticks(building_run, capsys):
    code, out, err = _grid_run(capsys, "building", "--controller", f"none,rule,agent:{building_run}", "--days", "2",
                               "--json")  # fmt: skip
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    agent_row = metrics[f"agent:{building_run}"]
    assert set(metrics) == {"none", "rule", f"agent:{building_run}"}
    assert np.isfinite(agent_row["gap_closed"]) and agent_row["total_cost"] != metrics["none"]["total_cost"]
    # The same agent on the same episode through the library's evaluation: its return is minus that cost.
    env = BuildingEnergyEnv(start_hour=24 * HELD_OUT_START_DAY, episode_hours=48)
    result = evaluate_policy(load_agent(building_run), env, episodes=1, seed=0)
    assert result.returns[0] == pytest.approx(-agent_row["total_cost"], rel=1e-9, abs=1e-9)


def test_a_dqn_agent_with_levels_plays_the_continuous_environment(tmp_path):
    folder = tmp_path / "dqn"
    config = RunConfig(
        env="evosparse/BuildingEnergy-v0", algo="dqn", total_steps=24, eval_every=24, eval_episodes=1,
        env_kwargs={"discrete_levels": 3, "episode_hours": 24}, agent={"critic_hidden": [8], "learning_starts": 1000},
    )  # fmt: skip
    train_rl(config, folder, log=None)
    controller = AgentController(folder)
    env = BuildingEnergyEnv(episode_hours=24)
    observation, _ = env.reset(seed=0)
    controller.start(env)
    fractions = np.array([controller.act(observation) for _ in range(3)])
    levels, _ = controller.agent.predict(observation)
    expected = env.action_space.low + (env.action_space.high - env.action_space.low) * levels / 2
    np.testing.assert_array_equal(fractions[0], expected.astype(np.float32))


def test_agent_controller_errors(tmp_path, capsys):
    code, _, err = _grid_run(capsys, "building", "--controller", "agent", "--days", "1")
    assert code == 2 and "agent:RUN_DIR" in err and err.count("\n") == 1
    code, _, err = _grid_run(capsys, "building", "--controller", f"agent:{tmp_path / 'nothing'}", "--days", "1")
    assert code == 2 and err.startswith("error: ") and "is not a folder" in err and err.count("\n") == 1
    cartpole = tmp_path / "cartpole"
    train_rl(RunConfig(env="CartPole-v1", algo="dqn", total_steps=10, eval_every=10, eval_episodes=1,
                       agent={"critic_hidden": [4], "learning_starts": 100}), cartpole, log=None)  # fmt: skip
    code, _, err = _grid_run(capsys, "building", "--controller", f"agent:{cartpole}", "--days", "1")
    assert code == 2 and "was trained on CartPole-v1 with observations of shape (4,)" in err


def test_a_building_agent_resumes_mid_episode_exactly(tmp_path):
    """The building environment saves its episode (the draw's generator state, devices, log), so a checkpoint
    taken mid-episode continues that episode: learn(2n) == learn(n) + save + load + learn(n)."""
    import gymnasium as gym

    from evosparse.rl import SAC, BaseAlgorithm
    from evosparse.rl.wrappers import DelayedReward

    def make():
        env = gym.make("evosparse/BuildingEnergy-v0", split="train", random_start=True, episode_hours=48)
        return DelayedReward(env, every=5)

    options = {"actor_hidden": [8], "critic_hidden": [8], "learning_starts": 20, "batch_size": 8}
    straight = SAC(make(), seed=4, **options).learn(60)
    first = SAC(make(), seed=4, **options).learn(30)  # hour 30 of a 48-hour episode
    assert first.envs.state()[0]["exact"]
    first.save(tmp_path / "agent")
    resumed = BaseAlgorithm.load(tmp_path / "agent", env=make())
    np.testing.assert_array_equal(resumed._last_obs, first._last_obs)
    resumed.learn(30)
    for name, network in straight.networks.items():
        for key, value in network.state_dict().items():
            assert torch.equal(value, resumed.networks[name].state_dict()[key]), f"{name}.{key}"
    assert np.array_equal(straight.buffer.rewards, resumed.buffer.rewards)
    np.testing.assert_array_equal(straight._last_obs, resumed._last_obs)
    unwrapped = resumed.env.unwrapped
    np.testing.assert_array_equal(unwrapped.log["reward"], straight.env.unwrapped.log["reward"])


def test_a_wrapper_does_not_make_an_unsavable_environment_resumable():
    """A wrapper's counters alone (DelayedReward) do not restore the episode of an environment without state."""
    import gymnasium as gym

    from evosparse.rl.envs import EnvBatch
    from evosparse.rl.wrappers import DelayedReward

    batch = EnvBatch(DelayedReward(gym.make("evosparse/IntradayMarket-v0", episode_hours=24), every=3))
    batch.reset(seed=0)
    meta, _ = batch.state()
    assert meta["members"][0]["custom"] and not meta["exact"]


def test_an_agent_trained_with_target_hvac_actions_plays_the_power_environment_through_its_thermostat(tmp_path):
    folder = tmp_path / "target"
    config = RunConfig(
        env="evosparse/BuildingEnergy-v0", algo="sac", total_steps=24, eval_every=24, eval_episodes=1,
        env_kwargs={"hvac_action": "target", "episode_hours": 24}, agent=NO_UPDATES,
    )  # fmt: skip
    train_rl(config, folder, log=None)
    controller = AgentController(folder)
    power_env, target_env = (
        BuildingEnergyEnv(episode_hours=24),
        BuildingEnergyEnv(episode_hours=24, hvac_action="target"),
    )
    observation, _ = power_env.reset(seed=0)
    target_observation, _ = target_env.reset(seed=0)
    controller.start(power_env)
    for _ in range(24):  # the controller in the power environment plays as the agent does in its own
        observation = power_env.step(controller.act(observation))[0]
        target_observation = target_env.step(controller.agent.predict(target_observation)[0])[0]
    for name in ("cost", "hvac", "temperature_deviation", "reward"):
        np.testing.assert_array_equal(power_env.log[name], target_env.log[name], err_msg=name)
    assert np.abs(power_env.log["hvac"]).sum() > 0
    target_controller = AgentController(folder)
    with pytest.raises(ValueError, match="hvac_action='power'"):  # the other way round has no thermostat
        power_run = tmp_path / "power"
        train_rl(config.replace(env_kwargs={"episode_hours": 24}), power_run, log=None)
        AgentController(power_run).start(target_env)
    target_controller.start(target_env)  # the same mode: played as it is
    assert target_controller._hvac_target is None


def test_a_residual_agent_trains_on_the_residual_environment_and_plays_through_the_same_wrapper(tmp_path):
    from evosparse.envs import RESIDUAL_ID, ResidualAction

    folder = tmp_path / "residual"
    config = grid_run_config(
        "building", algo="sac", episode_days=1, total_steps=48, eval_every=48, residual="rule",
        residual_scale=[0.3, 0.3, 0.0, 0.0], env_kwargs={"correction_cost": 1.0},
        agent={**NO_UPDATES, "actor_output_scale": 0.5},
    )  # fmt: skip
    assert config.env == RESIDUAL_ID
    assert config.env_kwargs["base_env"] == "building" and config.env_kwargs["base"] == "rule"
    assert config.eval_env_kwargs["correction_cost"] == 0.0  # evaluations report the environment's own cost
    train_rl(config, folder, log=None)
    controller = AgentController(folder)
    env = BuildingEnergyEnv(episode_hours=24)
    observation, _ = env.reset(seed=0)
    controller.start(env)
    wrapped = ResidualAction(BuildingEnergyEnv(episode_hours=24), scale=[0.3, 0.3, 0.0, 0.0])
    agent_observation, _ = wrapped.reset(seed=0)
    for _ in range(24):  # the controller on the bare environment plays as the agent does in the wrapper
        observation = env.step(controller.act(observation))[0]
        agent_observation = wrapped.step(controller.agent.predict(agent_observation, deterministic=True)[0])[0]
    np.testing.assert_array_equal(env.log["reward"], wrapped.unwrapped.log["reward"])
    assert not np.array_equal(
        env.log["battery"], run_episode(BuildingEnergyEnv(episode_hours=24), make_controller("rule"), seed=0)["battery"]
    )
    with pytest.raises(ValueError, match="corrects the rule controller of building; this environment is market"):
        from evosparse.envs import IntradayMarketEnv

        market = IntradayMarketEnv(episode_hours=24)
        market.reset(seed=0)
        AgentController(folder).start(market)
    with pytest.raises(ValueError, match="residual must be one of rule, none or None, got 'optimal'"):
        grid_run_config("building", residual="optimal")
    with pytest.raises(ValueError, match="residual_scale needs residual"):
        grid_run_config("building", residual_scale=0.3)


def test_a_residual_agent_resumes_mid_episode_exactly(tmp_path):
    """The wrapper saves the base controller's memory (the episode's observations) with the checkpoint."""
    import gymnasium as gym

    from evosparse.envs import RESIDUAL_ID
    from evosparse.rl import SAC, BaseAlgorithm

    def make():
        return gym.make(RESIDUAL_ID, split="train", random_start=True, episode_hours=48, price_memory_hours=24)

    options = {"actor_hidden": [8], "critic_hidden": [8], "learning_starts": 20, "batch_size": 8}
    straight = SAC(make(), seed=4, **options).learn(60)
    first = SAC(make(), seed=4, **options).learn(30)  # hour 30 of a 48-hour episode
    assert first.envs.state()[0]["exact"]
    first.save(tmp_path / "agent")
    resumed = BaseAlgorithm.load(tmp_path / "agent", env=make())
    np.testing.assert_array_equal(
        resumed.env.get_wrapper_attr("base_action"), first.env.get_wrapper_attr("base_action")
    )
    resumed.learn(30)
    for name, network in straight.networks.items():
        for key, value in network.state_dict().items():
            assert torch.equal(value, resumed.networks[name].state_dict()[key]), f"{name}.{key}"
    assert np.array_equal(straight.buffer.rewards, resumed.buffer.rewards)
    np.testing.assert_array_equal(resumed.env.unwrapped.log["reward"], straight.env.unwrapped.log["reward"])


# A few updates (learning_starts below total_steps): the evaluations differ, so "best" picks one of them.
FEW_UPDATES = {"actor_hidden": [8], "critic_hidden": [8], "learning_starts": 24, "batch_size": 16}


def _validation_config(total_steps: int = 96):
    return grid_run_config(
        "building", algo="td3", episode_days=1, total_steps=total_steps, eval_every=24, checkpoint_every=24,
        validation=True, agent=FEW_UPDATES,
    )  # fmt: skip


def test_fit_and_validation_splits_divide_the_training_months():
    from evosparse.envs import base

    n = 8760
    assert base.split_hours(n, "validation") == (n - 2 * 720, 720)  # the eleventh month
    assert base.split_hours(n, "fit") == (0, n - 2 * 720)  # the first ten
    assert base.split_hours(n, "train") == (0, n - 720)  # both together
    with pytest.raises(ValueError, match=r"split='validation' needs more than 60 days of data"):
        base.split_hours(60 * 24, "validation")
    train, evaluation = split_kwargs(validation=True)
    assert train["split"] == "fit" and evaluation["split"] == "validation" and evaluation["episode_hours"] == 720
    config = _validation_config()
    assert config.keep_best and config.env_kwargs["split"] == "fit" and config.eval_env_kwargs["split"] == "validation"
    env = BuildingEnergyEnv(split="fit", random_start=True, episode_hours=24 * 7)
    for seed in range(30):  # no training episode reaches into the validation month
        env.reset(seed=seed)
        assert env.first_hour + 24 * 7 <= n - 2 * 720


def test_keep_best_keeps_the_best_validation_checkpoint_and_agent_best_plays_it(tmp_path, capsys):
    config = _validation_config()
    run = train_rl(config, tmp_path / "run", log=None)
    returns = [row["return_mean"] for row in run.history]
    steps = [row["step"] for row in run.history]
    assert steps == [0, 24, 48, 72, 96]  # the untrained agent is evaluated too
    assert len(set(returns)) > 1, "the evaluations should differ for this test to choose among them"
    best_step = steps[returns.index(max(returns))]  # the earliest of equal bests
    assert run.summary["best_step"] == best_step
    best = load_agent(tmp_path / "run", best=True)
    assert best.num_timesteps == best_step
    validation = BuildingEnergyEnv(**{key: value for key, value in config.eval_env_kwargs.items()})
    played = evaluate_policy(best, validation, episodes=1, seed=config.eval_seed)
    assert played.row()["return_mean"] == max(returns)  # the kept agent is the one that scored the best
    code, out, err = _grid_run(capsys, "building", "--controller", f"rule,agent_best:{tmp_path / 'run'}", "--json")
    assert code == 0, err
    # A run without keep_best has no best checkpoint: a one-line error naming the remedy
    plain = tmp_path / "plain"
    train_rl(config.replace(keep_best=False), plain, log=None)
    with pytest.raises(ValueError, match="has no best checkpoint: train it with keep_best = true"):
        load_agent(plain, best=True)
    code, out, err = _grid_run(capsys, "building", "--controller", f"agent_best:{plain}")
    assert code != 0 and "keep_best = true" in err
    # --overwrite replaces the whole run, its best checkpoint included: no stale best/ of the old run remains
    train_rl(config.replace(keep_best=False, total_steps=24), tmp_path / "run", overwrite=True, log=None)
    assert not (tmp_path / "run" / "best").exists()


def test_keep_best_resumes_exactly(tmp_path):
    config = _validation_config()
    whole = train_rl(config, tmp_path / "whole", log=None)
    train_rl(config.replace(total_steps=48), tmp_path / "cut", log=None)
    resumed = train_rl(config, tmp_path / "cut", resume=True, log=None)
    timing = ("steps_per_second",)
    assert [{k: v for k, v in row.items() if k not in timing} for row in resumed.history] == [
        {k: v for k, v in row.items() if k not in timing} for row in whole.history
    ]
    a, b = load_agent(tmp_path / "whole", best=True), load_agent(tmp_path / "cut", best=True)
    assert a.num_timesteps == b.num_timesteps == whole.summary["best_step"]
    first, second = (agent.get_state()["tensors"]["networks"] for agent in (a, b))
    for name in first:
        for key in first[name]:
            assert torch.equal(first[name][key], second[name][key]), f"{name}.{key}"
