"""Community agents: one policy shared by the buildings (the buildings as a vector env) and independent learners,
in run folders, and as the ``agent:RUN_DIR`` controller of ``evosparse grid run community``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evosparse.cli.main import main
from evosparse.envs.community import AGENT_OBSERVATION_NAMES, CommunityConfig, EnergyCommunityEnv
from evosparse.rl.community import (
    BuildingsVectorEnv,
    CommunityController,
    CommunityRunConfig,
    agent_observations,
    build_learners,
    id_matrix,
    load_learners,
    train_community,
)

F = len(AGENT_OBSERVATION_NAMES)
# Tiny learners that do update: 12 random hours, then one gradient step per hour on batches of 8.
TINY = {"actor_hidden": [8], "critic_hidden": [8], "learning_starts": 12, "batch_size": 8, "buffer_size": 200}


def tiny(mode: str, **fields) -> CommunityRunConfig:
    values = dict(mode=mode, n_buildings=3, episode_days=1, total_hours=36, eval_every=36, checkpoint_every=36,
                  agent=TINY)  # fmt: skip
    return CommunityRunConfig(**{**values, **fields})


def _weights(learners) -> list[torch.Tensor]:
    return [p.detach().clone() for agent in learners.agents for p in agent.networks["actor"].parameters()]


def test_buildings_as_a_vector_env_shapes_and_autoreset():
    env = BuildingsVectorEnv(CommunityConfig(n_buildings=4, episode_hours=2), "traits")
    assert env.num_envs == 4 and env.single_observation_space.shape == (F + 2,)
    observations, _ = env.reset(seed=0)
    assert observations.shape == (4, F + 2)
    traits = np.stack([env.core.load_scale, env.core.pv_kw], 1).astype(np.float32)
    np.testing.assert_array_equal(observations[:, F:], traits)
    _, rewards, terminated, truncated, info = env.step(np.zeros((4, 1), dtype=np.float32))
    assert rewards.shape == (4,) and not terminated.any() and not truncated.any() and info == {}
    observations, _, _, truncated, info = env.step(np.zeros((4, 1), dtype=np.float32))
    assert truncated.all() and info["final_obs"].shape == (4, F + 2) and env.core._t == 0  # reset in the same step
    assert id_matrix(env.core, "one_hot").shape == (4, 4) and id_matrix(env.core, "none").shape == (4, 0)
    rows = agent_observations(env.core, np.arange(4 * F, dtype=np.float32), "none")
    np.testing.assert_array_equal(rows[1], np.arange(F, 2 * F))  # building i's features are row i


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_the_same_seed_gives_the_same_learners(mode):
    first, second = (build_learners(tiny(mode)).learn(16) for _ in range(2))
    assert all(agent.n_updates > 0 for agent in first.agents)  # they learned, not only explored
    for a, b in zip(_weights(first), _weights(second)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    other = build_learners(tiny(mode, seed=1))
    assert any(not torch.equal(a, b) for a, b in zip(_weights(first), _weights(other)))


def test_shared_and_independent_learners_count_the_same_building_hours():
    shared, independent = build_learners(tiny("shared")), build_learners(tiny("independent"))
    assert len(shared.agents) == 1 and len(independent.agents) == 3
    # learning_starts and buffer_size count hours of one building: the shared agent sees 3 per hour
    assert shared.agent.config.learning_starts == 36 and shared.agent.config.buffer_size == 600
    assert independent.agents[0].config.learning_starts == 12
    shared.learn(20), independent.learn(20)
    assert shared.hours == independent.hours == 20
    assert shared.agent.n_updates == 20 - 12 and [agent.n_updates for agent in independent.agents] == [8, 8, 8]
    rows = agent_observations(shared.env.core, shared.env.core._observation_matrix().reshape(-1), "traits")
    assert shared.predict(rows).shape == (3,) and independent.predict(rows[:, :F]).shape == (3,)


def test_a_tiny_run_its_resume_and_the_grid_controller(tmp_path, capsys):
    folder = tmp_path / "shared"
    result = train_community(tiny("shared", total_hours=24, eval_every=12, checkpoint_every=12), folder, log=None)
    assert [row["hour"] for row in result.history] == [12, 24] and json.loads((folder / "summary.json").read_text())
    resumed = train_community(tiny("shared", total_hours=36, eval_every=12, checkpoint_every=12), folder,
                              resume=True, log=None)  # fmt: skip
    assert [row["hour"] for row in resumed.history] == [12, 24, 36] and resumed.learners.agent.n_updates == 36 - 12
    loaded = load_learners(folder)
    for a, b in zip(_weights(loaded), _weights(resumed.learners)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    code = main(["grid", "run", "community", "--n-buildings", "3", "--days", "1",
                 "--controller", f"rule,agent:{folder}", "--json"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    row = json.loads(out)["metrics"][f"agent:{folder}"]
    assert np.isfinite(row["gap_closed"])
    # the controller plays the held-out month's first day as the run's own evaluation plays the month
    env = EnergyCommunityEnv(CommunityConfig(n_buildings=3, start_hour=24 * 335, episode_hours=24))
    observation, _ = env.reset(seed=0)
    controller = CommunityController(folder)
    controller.start(env)
    total, done = 0.0, False
    while not done:
        observation, reward, _, done, _ = env.step(controller.act(observation))
        total += reward
    assert total == pytest.approx(-row["total_cost"], rel=1e-9)


def test_bad_input_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="mode must be one of shared, independent; got 'both'"):
        CommunityRunConfig(mode="both")
    with pytest.raises(ValueError, match="algo must be one of sac, td3; got 'dqn'"):
        CommunityRunConfig(algo="dqn")
    with pytest.raises(ValueError, match="env must not set n_buildings"):
        CommunityRunConfig(env={"n_buildings": 3})
    with pytest.raises(ValueError, match="peak_price"):
        CommunityRunConfig(env={"peak_price": -1.0})
    with pytest.raises(ValueError, match="n_envs must be 1"):
        CommunityRunConfig(agent={"n_envs": 2})
    with pytest.raises(ValueError, match="id_features must be one of none, traits, one_hot"):
        id_matrix(EnergyCommunityEnv(n_buildings=2), "index")
    folder = tmp_path / "run"
    train_community(tiny("independent", total_hours=12), folder, log=None)
    with pytest.raises(ValueError, match="total_hours can only grow"):
        train_community(tiny("independent", total_hours=6), folder, resume=True, log=None)
    with pytest.raises(ValueError, match="whose mode differ"):
        train_community(tiny("shared", total_hours=24), folder, resume=True, log=None)
    code = main(["grid", "run", "community", "--n-buildings", "4", "--days", "1", "--controller", f"agent:{folder}"])
    err = capsys.readouterr().err
    assert code == 2 and "trained on 3 buildings; this community has 4" in err and err.count("\n") == 1
    code = main(["grid", "run", "building", "--days", "1", "--controller", f"agent:{folder}"])
    assert code == 2 and "is a community run; this environment is BuildingEnergyEnv" in capsys.readouterr().err


def test_the_cli_trains_a_community_run_and_rejects_bad_flags(tmp_path, capsys):
    folder = tmp_path / "cli"
    flags = ["--mode", "independent", "--n-buildings", "2", "--episode-days", "1", "--total-hours", "12",
             "--eval-every", "12", "--actor-hidden", "8", "--critic-hidden", "8", "--learning-starts", "6",
             "--batch-size", "4", "--out-dir", str(folder), "--quiet"]  # fmt: skip
    assert main(["rl", "community", *flags]) == 0
    out = capsys.readouterr().out
    assert "independent sac dense on 2 buildings" in out and f"agent:{folder}" in out
    assert json.loads((folder / "summary.json").read_text())["updates"] == 2 * (12 - 6)
    code = main(["rl", "community", *flags[:-3], "--exploration-fraction", "0.2", "--out-dir", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "--exploration-fraction is a setting of dqn, not of --algo sac" in err
    assert err.count("\n") == 1 and not (tmp_path / "x").exists()
