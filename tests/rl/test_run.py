"""RL runs in a run folder: exact resume, the divergence guard, the folder rules, the config's TOML round trip,
the summary's counts."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from evosparse.io import RunFolderError
from evosparse.rl.callbacks import BaseCallback
from evosparse.rl.run import (
    DivergenceError,
    RunConfig,
    load_agent,
    read_config_values,
    read_run_config,
    train_rl,
)

# Tiny agents: a few seconds per run on one thread. DQN with SET and delayed rewards covers the topology, the
# epsilon schedule and a wrapper's state in the checkpoint; SAC with RigL covers the twin critic and alpha.
DQN_RUN = RunConfig(
    env="CartPole-v1",
    algo="dqn",
    total_steps=400,
    eval_every=100,
    checkpoint_every=200,
    eval_episodes=2,
    reward_every=5,
    agent={
        "critic_hidden": [16, 16],
        "learning_starts": 100,
        "target_update_interval": 100,
        "strategy": "set",
        "critic_density": 0.5,
        "update_every": 100,
    },
)
SAC_RUN = RunConfig(
    env="Pendulum-v1",
    env_kwargs={"max_episode_steps": 50},
    algo="sac",
    total_steps=200,
    eval_every=50,
    checkpoint_every=100,
    eval_episodes=1,
    agent={
        "actor_hidden": [16, 16],
        "critic_hidden": [16, 16],
        "learning_starts": 100,
        "batch_size": 32,
        "strategy": "rigl",
        "actor_density": 0.5,
        "critic_density": 0.5,
        "update_every": 50,
    },
)
TIMING = ("steps_per_second",)


class StopAt(BaseCallback):
    """Stops the run after ``step`` steps, as an interruption would (the folder keeps its last checkpoint)."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        return self.num_timesteps < self.step


def _without_timing(history):
    return [{key: value for key, value in row.items() if key not in TIMING} for row in history]


def _networks(agent):
    return agent.get_state()["tensors"]["networks"]


@pytest.mark.parametrize("config", [DQN_RUN, SAC_RUN], ids=["dqn-set-delayed", "sac-rigl"])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, config, one_thread):
    whole = train_rl(config, tmp_path / "whole", log=None)
    stop = config.checkpoint_every + config.eval_every // 2 + 3  # between two checkpoints
    cut = train_rl(config, tmp_path / "cut", log=None, callbacks=[StopAt(stop)])
    assert cut.agent.num_timesteps == stop and not (tmp_path / "cut" / "summary.json").exists()
    resumed = train_rl(config, tmp_path / "cut", resume=True, log=None)
    assert resumed.agent.num_timesteps == config.total_steps
    assert _without_timing(resumed.history) == _without_timing(whole.history)
    assert [row["step"] for row in whole.history] == list(
        range(config.eval_every, config.total_steps + 1, config.eval_every)
    )
    first, second = _networks(whole.agent), _networks(resumed.agent)
    assert first.keys() == second.keys()
    for name in first:
        for key in first[name]:
            assert torch.equal(first[name][key], second[name][key]), f"{name}.{key}"
    # The files agree too: history.csv rebuilt from the checkpoint, the same summary but for timings.
    assert json.loads((tmp_path / "whole" / "history.json").read_text()) == json.loads(json.dumps(whole.history))
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("whole", "cut")]
    for summary in summaries:
        for key in ("train_seconds", "steps_per_second"):
            summary.pop(key)
    assert summaries[0] == summaries[1]


def test_summary_counts_weights_and_flops(tmp_path, one_thread):
    dense = train_rl(
        DQN_RUN.replace(total_steps=400, agent={**DQN_RUN.agent, "strategy": "dense", "critic_density": 1.0}),
        tmp_path / "d",
        log=None,
    )
    sparse = train_rl(DQN_RUN.replace(total_steps=400), tmp_path / "s", log=None)
    dense_counts, sparse_counts = dense.summary["parameters"]["critic"], sparse.summary["parameters"]["critic"]
    # CartPole: 4 inputs, 16, 16, 2 actions.
    assert dense_counts["weights"] == dense_counts["dense_weights"] == 4 * 16 + 16 * 16 + 16 * 2
    assert sparse_counts["dense_weights"] == dense_counts["dense_weights"]
    assert sparse_counts["weights"] < 0.75 * dense_counts["weights"]
    assert dense.summary["updates"] == sparse.summary["updates"] == (400 - 100) // 4
    assert 0 < sparse.summary["training_flops"] < dense.summary["training_flops"]
    # DQN: 5 forward passes of 2 x weights FLOPs per sample of 32, plus one forward pass per action.
    expected = 75 * 32 * 5 * 2 * dense_counts["weights"] + 400 * 2 * dense_counts["weights"]
    assert dense.summary["training_flops"] == expected
    assert dense.summary["final_return_mean"] == pytest.approx(np.mean(dense.summary["final_returns"]))
    assert load_agent(tmp_path / "s").num_timesteps == 400


def _nan_reward_env(after: int = 250):
    """CartPole whose reward turns NaN after ``after`` steps (garbage data from a simulator)."""

    class NaNReward(gym.Wrapper):
        steps = 0

        def step(self, action):
            observation, reward, terminated, truncated, info = self.env.step(action)
            NaNReward.steps += 1
            return observation, (float("nan") if NaNReward.steps > after else reward), terminated, truncated, info

    NaNReward.steps = 0
    return NaNReward(gym.make("CartPole-v1"))


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    if "evosparse-test/NaNReward-v0" not in gym.registry:
        gym.register("evosparse-test/NaNReward-v0", entry_point=_nan_reward_env)
    config = DQN_RUN.replace(env="evosparse-test/NaNReward-v0", reward_every=1, eval_every=100, checkpoint_every=200)
    with pytest.raises(DivergenceError, match=r"training diverged by step .*loss = nan.*last good checkpoint"):
        train_rl(config, tmp_path / "run", log=None)
    record = json.loads((tmp_path / "run" / "checkpoint.json").read_text())["data"]
    assert record["num_timesteps"] == 200  # the one before the NaN rewards reached the loss
    assert not (tmp_path / "run" / "summary.json").exists()
    assert load_agent(tmp_path / "run").num_timesteps == 200


def test_folder_rules(tmp_path):
    config = DQN_RUN.replace(total_steps=200, eval_every=100, checkpoint_every=100)
    train_rl(config, tmp_path / "run", log=None)
    with pytest.raises(RunFolderError, match="already holds a run"):
        train_rl(config, tmp_path / "run", log=None)
    with pytest.raises(ValueError, match="whose seed differ"):
        train_rl(config.replace(seed=1), tmp_path / "run", resume=True, log=None)
    with pytest.raises(ValueError, match="total_steps can only grow"):
        train_rl(config.replace(total_steps=100), tmp_path / "run", resume=True, log=None)
    longer = train_rl(config.replace(total_steps=300), tmp_path / "run", resume=True, log=None)
    assert [row["step"] for row in longer.history] == [100, 200, 300]
    assert read_run_config(tmp_path / "run").total_steps == 300
    again = train_rl(config.replace(seed=1), tmp_path / "run", overwrite=True, log=None)
    assert again.agent.num_timesteps == 200 and read_run_config(tmp_path / "run").seed == 1
    # A bad setting fails before the folder is touched.
    with pytest.raises(ValueError, match="td3 needs an action space of kind box"):
        train_rl(config.replace(algo="td3", agent={}), tmp_path / "new", log=None)
    assert not (tmp_path / "new").exists()


def test_run_config_round_trips_through_toml(tmp_path):
    config = RunConfig(
        env="evosparse/BuildingEnergy-v0",
        algo="td3",
        env_kwargs={"reward_delay": "daily", "changes": [{"kind": "battery_failure", "hour": 48}]},
        eval_env_kwargs={"start_hour": 8040},
        threads=None,
        agent={"strategy": "set", "actor_density": 0.2, "critic_density": 0.5, "actor_hidden": [64, 64]},
    )
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert RunConfig.from_dict(read_config_values(path)) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"algo": "ppo"}, "algo must be one of dqn, td3, sac"),
        ({"total_steps": 0}, "total_steps must be an integer >= 1"),
        ({"eval_episodes": 0}, "eval_episodes must be an integer >= 1"),
        ({"reward_every": 0}, "reward_every must be an integer >= 1"),
        ({"body_mass_scale": 2.0}, "need change_at_step"),
        ({"change_at_step": 100}, "change_at_step needs body_mass_scale"),
        ({"agent": {"actor_density": 0.0, "strategy": "set"}}, r"actor_density must be in \(0, 1\]"),
        ({"agent": {"critic_density": 1.5, "strategy": "set"}}, r"critic_density must be in \(0, 1\]"),
        ({"agent": {"policy_delay": 2}}, "unknown key"),
        ({"env_kwargs": [1, 2]}, "env_kwargs must be a table"),
    ],
)
def test_run_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{"algo": "sac", **changes})


def test_evaluations_follow_a_sudden_change_of_dynamics(tmp_path, monkeypatch):
    pytest.importorskip("mujoco")
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT into the working directory
    # No update before the end (learning_starts > total_steps): the policy is fixed, so the evaluation
    # returns change only because the dynamics do, from the evaluation at the change step on.
    config = RunConfig(
        env="InvertedPendulum-v5", algo="td3", total_steps=150, eval_every=30, checkpoint_every=60, eval_episodes=2,
        change_at_step=75, gravity=-30.0, body_mass_scale=3.0,
        agent={"actor_hidden": [8], "critic_hidden": [8], "learning_starts": 500},
    )  # fmt: skip
    result = train_rl(config, tmp_path / "run", log=None)
    returns = [row["return_mean"] for row in result.history]
    assert returns[0] == returns[1] and returns[2] == returns[3] == returns[4] and returns[1] != returns[2]
    summary = result.summary
    assert summary["return_before_change"] == returns[1] and summary["return_after_change"] == returns[2]
    assert summary["recovery_steps"] == (None if returns[2] < returns[1] else 90 - 75)
    # The training environment's change is in the checkpoint: the resumed agent's environment has it too.
    agent = load_agent(tmp_path / "run")
    assert agent.env.get_wrapper_attr("changed") and agent.env.unwrapped.model.opt.gravity[2] == -30.0
