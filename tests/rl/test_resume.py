"""Exact resume: learn(2N) equals learn(N) + save + load + learn(N) -- weights, topology, Adam, buffer, counters."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from evosparse.io import FileFormatError
from evosparse.rl import DQN, SAC, TD3, BaseAlgorithm

SMALL = {"actor_hidden": (16, 16), "critic_hidden": (16, 16), "learning_starts": 40, "batch_size": 16}


# One torch and one kernel thread: RL's small layers gain nothing from more, and on a busy machine a
# multi-threaded kernel call can wait a whole scheduler slice (the shared fixture in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def assert_same_agent(a: BaseAlgorithm, b: BaseAlgorithm) -> None:
    for name, network in a.networks.items():
        left, right = network.state_dict(), b.networks[name].state_dict()
        assert left.keys() == right.keys(), name
        for key in left:  # values, biases and the sparse patterns (rows, cols)
            assert torch.equal(left[key], right[key]), f"{name}.{key}"
    for name, optimizer in a.optimizers.items():
        left, right = optimizer.state_dict()["state"], b.optimizers[name].state_dict()["state"]
        assert left.keys() == right.keys()
        for index in left:
            for key in left[index]:
                assert torch.equal(left[index][key], right[index][key]), f"{name} state {index}.{key}"
    for name in ("obs", "next_obs", "actions", "rewards", "terminated", "ended"):
        assert np.array_equal(getattr(a.buffer, name), getattr(b.buffer, name)), name
    assert (a.num_timesteps, a.n_updates, a.n_episodes, a.buffer.pos) == (
        b.num_timesteps,
        b.n_updates,
        b.n_episodes,
        b.buffer.pos,
    )
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    assert list(a.ep_info_buffer) == list(b.ep_info_buffer)


CASES = [
    # Pendulum episodes last 200 steps: N = 150 saves mid-episode (the simulator state is restored).
    (TD3, "Pendulum-v1", {"strategy": "set", "actor_density": 0.5, "critic_density": 0.5, "update_every": 60}),
    (SAC, "Pendulum-v1", {"strategy": "rigl", "actor_density": 0.5, "critic_density": 0.5, "update_every": 60}),
    (
        SAC,
        "Pendulum-v1",
        {
            "strategy": "gmp",
            "actor_density": 0.5,
            "critic_density": 0.4,
            "update_every": 60,
            "stop_after": 240,
            "n_step": 3,
        },
    ),
    # DQN's epsilon decays over each learn() call's budget: a constant epsilon makes the two runs comparable.
    (
        DQN,
        "CartPole-v1",
        {
            "strategy": "set",
            "critic_density": 0.5,
            "update_every": 60,
            "train_freq": 1,
            "target_update_interval": 50,
            "exploration_initial_eps": 0.2,
            "exploration_final_eps": 0.2,
        },
    ),
]


@pytest.mark.parametrize(("algo", "env", "options"), CASES, ids=["td3-set", "sac-rigl", "sac-gmp-nstep", "dqn-set"])
def test_save_load_resumes_exactly(tmp_path, algo, env, options):
    n = 150
    straight = algo(env, seed=5, **SMALL, **options).learn(2 * n)
    first = algo(env, seed=5, **SMALL, **options).learn(n)
    first.save(tmp_path / "agent")
    resumed = BaseAlgorithm.load(tmp_path / "agent")
    assert type(resumed) is algo
    assert_same_agent(first, resumed)
    resumed.learn(n)
    assert_same_agent(straight, resumed)
    probe = np.random.default_rng(1).normal(size=(4, *straight.observation_space.shape)).astype(np.float32)
    assert np.array_equal(straight.predict(probe)[0], resumed.predict(probe)[0])


def test_learn_continues_counting():
    options = {**SMALL, "strategy": "set", "actor_density": 0.5, "critic_density": 0.5, "update_every": 60}
    straight = TD3("Pendulum-v1", seed=2, **options).learn(200)
    chunked = TD3("Pendulum-v1", seed=2, **options).learn(70).learn(50).learn(80)
    assert_same_agent(straight, chunked)


def test_get_state_set_state_in_memory():
    agent = SAC("Pendulum-v1", seed=0, **SMALL).learn(90)
    copy = SAC("Pendulum-v1", seed=0, **SMALL)
    copy.set_state(agent.get_state())
    assert_same_agent(agent, copy)
    agent.learn(30)
    copy.learn(30)
    assert_same_agent(agent, copy)


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="mujoco is not installed")
def test_mujoco_resume_mid_episode(tmp_path):
    options = {**SMALL, "strategy": "set", "actor_density": 0.5, "critic_density": 0.5, "update_every": 50}
    straight = TD3("HalfCheetah-v5", seed=1, **options).learn(160)
    first = TD3("HalfCheetah-v5", seed=1, **options).learn(80)  # mid-episode: HalfCheetah episodes last 1000 steps
    first.save(tmp_path / "cheetah")
    resumed = TD3.load(tmp_path / "cheetah").learn(80)
    assert_same_agent(straight, resumed)


def test_vector_env_resume(tmp_path):
    options = {**SMALL, "n_envs": 2}
    straight = SAC("Pendulum-v1", seed=3, **options).learn(120)
    first = SAC("Pendulum-v1", seed=3, **options).learn(60)
    first.save(tmp_path / "vector")
    resumed = SAC.load(tmp_path / "vector").learn(60)
    assert_same_agent(straight, resumed)


def test_load_errors(tmp_path):
    agent = TD3("Pendulum-v1", seed=0, **SMALL).learn(10)
    agent.save(tmp_path / "td3")
    with pytest.raises(ValueError, match="holds a 'td3' agent, not 'sac'"):
        SAC.load(tmp_path / "td3")
    with pytest.raises(FileNotFoundError, match="no saved agent"):
        TD3.load(tmp_path / "missing")
    (tmp_path / "td3" / "arrays.npz").write_bytes(b"not an npz file")
    with pytest.raises(FileFormatError):
        TD3.load(tmp_path / "td3")
