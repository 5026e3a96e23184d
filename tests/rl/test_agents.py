"""The agent API: learning checks with tiny budgets, seeds, predict, callbacks, vector envs, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from evosparse.rl import (
    ALGORITHMS,
    DQN,
    SAC,
    TD3,
    BaseCallback,
    CallbackList,
    DQNConfig,
    SACConfig,
    TD3Config,
    algorithm_class,
    make_agent,
)

SMALL = {"actor_hidden": (16, 16), "critic_hidden": (16, 16), "learning_starts": 30, "batch_size": 16}


# One torch and one kernel thread: RL's small layers gain nothing from more, and on a busy machine a
# multi-threaded kernel call can wait a whole scheduler slice (the shared fixture in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def evaluate(agent, env_id: str, episodes: int = 10, seed: int = 1000) -> float:
    """Mean return of the deterministic policy over ``episodes`` seeded episodes."""
    env = gym.make(env_id)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action, _ = agent.predict(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


# ---- learning checks (tiny budgets, fixed seeds) -------------------------------------------------------------------
# Budgets the default suite can afford: n-step returns (n = 3) propagate rewards faster than one-step TD,
# and Pendulum's gamma 0.98 (rl-zoo's) shortens the horizon. SAC and TD3 pass -250 on Pendulum by 4,000 and
# 5,000 steps (below). DQN/CartPole, mean of 10 episodes after 6,000 steps over seeds 0-5 (one thread, fifth
# session): a 64-64 Q-network gave 238, 343, 309, 92, 196, 165 (2 of 6 below 195); 128-128 gives 277, 391, 233,
# 264, 221, 281, and stays >= 214 at every later evaluation to 10,000 steps: the check no longer rests on one seed.
CARTPOLE_DQN = {
    "learning_rate": 1e-3,
    "batch_size": 64,
    "learning_starts": 1000,
    "train_freq": 2,
    "target_update_interval": 500,
    "exploration_fraction": 0.35,
    "exploration_final_eps": 0.02,
    "n_step": 3,
    "buffer_size": 20_000,
    "critic_hidden": (128, 128),
}
PENDULUM = {
    "actor_hidden": (64, 64),
    "critic_hidden": (64, 64),
    "batch_size": 128,
    "learning_starts": 500,
    "learning_rate": 1e-3,
    "gamma": 0.98,
    "n_step": 3,
}


def test_dqn_solves_cartpole():
    agent = DQN("CartPole-v1", seed=1, **CARTPOLE_DQN).learn(6_000)
    assert evaluate(agent, "CartPole-v1") >= 195


# Budgets checked over seeds 0-5 (mean return of 10 episodes after 3,000 / 4,000 / 5,000 steps): SAC -267..-171
# at 3,000, -245..-169 at 4,000 (seed 4 then dips to -407 at 5,000); TD3's deterministic policy is slower to
# settle (-786..-209 at 3,000, -315..-182 at 4,000, -209..-172 at 5,000). The runs' numbers depend on the CPU
# (its vector width and torch's kernels for it): on a later machine (Xeon with AVX-512, 2026-12-03) TD3 gave
# -424 / -177 / -177 for seed 0 at 5,000 / 6,000 / 7,000 steps, seeds 1 and 3-5 -185..-168 from 5,000 on, and seed 2
# stayed at -345..-312 up to 8,000. So TD3 gets 6,000 steps: past where seed 0 settled on both machines.
@pytest.mark.parametrize(("algo", "steps"), [(SAC, 4_000), (TD3, 6_000)])
def test_sac_and_td3_solve_pendulum(algo, steps):
    agent = algo("Pendulum-v1", seed=0, **PENDULUM).learn(steps)
    assert evaluate(agent, "Pendulum-v1") >= -250


# ---- seeds ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("algo", "env"), [(DQN, "CartPole-v1"), (TD3, "Pendulum-v1"), (SAC, "Pendulum-v1")])
def test_same_seed_same_run_other_seed_other_run(algo, env):
    options = {**SMALL, "strategy": "set", "critic_density": 0.5, "update_every": 40}
    runs = [algo(env, seed=seed, **options).learn(120) for seed in (4, 4, 5)]
    same = [
        torch.equal(a, b)
        for a, b in zip(
            runs[0].networks["critic"].state_dict().values(), runs[1].networks["critic"].state_dict().values()
        )
    ]
    assert all(same)
    assert np.array_equal(runs[0].buffer.obs, runs[1].buffer.obs)
    assert not np.array_equal(runs[0].buffer.obs, runs[2].buffer.obs)


# ---- predict -------------------------------------------------------------------------------------------------------
def test_predict_single_and_batched_observations():
    agent = TD3("Pendulum-v1", seed=0, **SMALL)
    single, state = agent.predict(np.zeros(3, np.float32))
    assert single.shape == (1,) and state is None and -2.0 <= single[0] <= 2.0  # scaled to the Box [-2, 2]
    batch, _ = agent.predict(np.zeros((5, 3), np.float32))
    assert batch.shape == (5, 1)
    assert np.array_equal(agent.predict(np.ones(3))[0], agent.predict(np.ones(3))[0])
    dqn = DQN("CartPole-v1", seed=0, critic_hidden=(8,))
    action, _ = dqn.predict(np.zeros(4, np.float32))
    assert action.shape == () and action in (0, 1)
    with pytest.raises(ValueError, match=r"observation must have shape \(4,\)"):
        dqn.predict(np.zeros(3))


def test_sac_stochastic_predict_differs_from_the_deterministic_action():
    agent = SAC("Pendulum-v1", seed=0, **SMALL)
    obs = np.zeros((64, 3), np.float32)
    deterministic = agent.predict(obs)[0]
    stochastic = agent.predict(obs, deterministic=False)[0]
    assert np.all(deterministic == deterministic[0]) and np.std(stochastic) > 0.01


# ---- callbacks -----------------------------------------------------------------------------------------------------
class Recorder(BaseCallback):
    def __init__(self, stop_at: int | None = None):
        super().__init__()
        self.stop_at, self.events, self.episodes = stop_at, [], []

    def _on_training_start(self):
        self.events.append("start")

    def _on_step(self):
        for info in self.locals["infos"]:
            if "episode" in info:
                self.episodes.append(info["episode"])
        return self.stop_at is None or self.num_timesteps < self.stop_at

    def _on_rollout_end(self):
        self.events.append("rollout")

    def _on_training_end(self):
        self.events.append("end")


def test_callbacks_see_every_step_and_can_stop_learn():
    first, second = Recorder(), Recorder(stop_at=250)
    agent = TD3("Pendulum-v1", seed=0, **SMALL).learn(400, callback=CallbackList([first, second]))
    assert agent.num_timesteps == 250 and first.n_calls == 250 == second.n_calls
    assert first.events[0] == "start" and first.events[-1] == "end"
    assert first.events.count("rollout") == 250 - SMALL["learning_starts"]  # one update phase per step after warm-up
    assert first.episodes == [{"r": pytest.approx(e["r"]), "l": 200} for e in agent.ep_info_buffer]
    agent.learn(10, callback=lambda locals_, model: None)  # a function works as a callback too
    assert agent.num_timesteps == 260


def test_progress_bar_runs(capsys):
    DQN("CartPole-v1", seed=0, critic_hidden=(8,), learning_starts=5).learn(20, progress_bar=True)


# ---- environments --------------------------------------------------------------------------------------------------
def test_vector_envs_from_an_id():
    agent = SAC("Pendulum-v1", seed=0, n_envs=3, **SMALL).learn(90)
    assert agent.n_envs == 3 and agent.num_timesteps == 90 and len(agent.buffer) == 90
    assert agent.n_updates == 90 // 3 - SMALL["learning_starts"] // 3


def test_vector_env_object_needs_same_step_autoreset():
    vector = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)  # gymnasium's default: next step
    with pytest.raises(ValueError, match="autoreset_mode=SAME_STEP"):
        DQN(vector)
    same_step = gym.vector.SyncVectorEnv(
        [lambda: gym.make("CartPole-v1")] * 2, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    agent = DQN(same_step, seed=0, critic_hidden=(8,), learning_starts=10).learn(300)
    assert agent.n_episodes > 0 and agent.num_timesteps == 300


def test_truncation_is_stored_apart_from_termination():
    agent = SAC("Pendulum-v1", seed=0, **SMALL).learn(400)  # Pendulum only truncates (at 200 steps)
    assert agent.buffer.terminated[:400].sum() == 0 and agent.buffer.ended[:400].sum() == 2
    assert agent.n_episodes == 2


# ---- registry and bad input ----------------------------------------------------------------------------------------
def test_registry_lists_algorithms_and_their_action_spaces():
    assert set(ALGORITHMS) == {"dqn", "td3", "sac"}
    assert ALGORITHMS["dqn"].action_kinds == ("discrete", "multi_discrete")
    assert ALGORITHMS["sac"].config_class is SACConfig and ALGORITHMS["td3"].cls is TD3
    assert isinstance(make_agent("dqn", "CartPole-v1", critic_hidden=(8,)), DQN)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: algorithm_class("ppo"), "algorithm must be one of dqn, td3, sac; got 'ppo'"),
        (lambda: TD3("CartPole-v1"), r"td3 needs an action space of kind box; env CartPole-v1 has Discrete\(2\)"),
        (lambda: SAC("CartPole-v1"), "sac needs an action space of kind box"),
        (lambda: DQN("Pendulum-v1"), "dqn needs an action space of kind discrete or multi_discrete"),
        (lambda: TD3("Pendulum-v1", strategy="set", actor_density=0.0), r"actor_density must be in \(0, 1\], got 0"),
        (lambda: SAC("Pendulum-v1", strategy="set", critic_density=1.5), r"critic_density must be in \(0, 1\]"),
        (lambda: TD3("Pendulum-v1", actor_density=0.5), "strategy 'dense' needs actor_density = critic_density = 1"),
        (lambda: TD3("Pendulum-v1", strategy="magic"), "strategy must be one of dense, static, set, rigl, gmp"),
        (lambda: TD3("Pendulum-v1", zeta=1.0), r"zeta must be in \[0, 1\), got 1.0"),
        (lambda: SAC("Pendulum-v1", strategy="gmp", actor_density=0.5), "strategy 'gmp' needs stop_after"),
        (lambda: SAC("Pendulum-v1", decay="cosine"), "decay 'cosine' needs stop_after"),
        (lambda: DQN("CartPole-v1", gamma=1.5), r"gamma must be in \[0, 1\], got 1.5"),
        (lambda: DQN("CartPole-v1", batch_size=0), "batch_size must be an integer >= 1, got 0"),
        (lambda: DQN("CartPole-v1", learning_rat=0.1), "did you mean 'learning_rate'"),
        (lambda: DQN("CartPole-v1", seed=1.5), "seed must be an integer, got 1.5"),
        (lambda: TD3("Pendulum-v1").learn(-1), "total_timesteps must be an integer >= 0, got -1"),
        (lambda: TD3("Pendulum-v1", DQNConfig()), "config must be a TD3Config, got DQNConfig"),
    ],
)
def test_bad_input_gets_a_one_line_error(call, message):
    with pytest.raises((ValueError, TypeError), match=message) as error:
        call()
    assert "\n" not in str(error.value)


def test_config_defaults_are_the_papers_and_sb3s():
    td3, sac, dqn = TD3Config(), SACConfig(), DQNConfig()
    assert (td3.learning_rate, td3.policy_delay, td3.target_policy_noise, td3.target_noise_clip, td3.tau) == (
        1e-3,
        2,
        0.2,
        0.5,
        0.005,
    )
    assert (sac.learning_rate, sac.batch_size, sac.alpha_init, sac.autotune, sac.target_entropy) == (
        3e-4,
        256,
        1.0,
        True,
        None,
    )
    assert (dqn.learning_rate, dqn.batch_size, dqn.train_freq, dqn.target_update_interval, dqn.max_grad_norm) == (
        1e-4,
        32,
        4,
        10_000,
        10.0,
    )
    assert td3.actor_hidden == sac.critic_hidden == (256, 256)
    assert TD3Config.from_toml(TD3Config(strategy="set", actor_density=0.5).to_toml()).actor_density == 0.5


@pytest.mark.parametrize("strategy", ["dense", "set"])
def test_sac_actor_output_scale_shrinks_only_the_initial_output_layer(strategy):
    from evosparse.rl.networks import weight_layers

    density = 1.0 if strategy == "dense" else 0.5
    options = {**SMALL, "strategy": strategy, "actor_density": density, "critic_density": density}
    plain, scaled = (
        SAC("Pendulum-v1", seed=3, **options),
        SAC("Pendulum-v1", seed=3, actor_output_scale=0.01, **options),
    )
    plain_layers, scaled_layers = weight_layers(plain.actor.mlp), weight_layers(scaled.actor.mlp)
    for index, (a, b) in enumerate(zip(plain_layers, scaled_layers)):
        factor = 0.01 if index == len(plain_layers) - 1 else 1.0
        for name, tensor in a.named_parameters():
            torch.testing.assert_close(dict(b.named_parameters())[name], tensor * factor, rtol=0, atol=0)
    for name, tensor in plain.critic.state_dict().items():  # the same random stream: critics unchanged
        assert torch.equal(tensor, scaled.critic.state_dict()[name])
    observations = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert scaled.actor(observations, None)[0].abs().max() < 0.1 * plain.actor(observations, None)[0].abs().max()
    with pytest.raises(ValueError, match=r"actor_output_scale must be in \(0, 1\], got 0"):
        SACConfig(actor_output_scale=0)
