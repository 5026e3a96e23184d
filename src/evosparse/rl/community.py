"""RL agents for the energy community: one policy shared by every building, or one learner per building.

The community (:class:`evosparse.envs.EnergyCommunityEnv`, whose PettingZoo view gives each building its own
observation, battery action and reward) is learned in two ways, on the existing algorithms (SAC, TD3):

* **shared** (:class:`SharedPolicy`, parameter sharing): the buildings are the environments of one gymnasium
  vector env (:class:`BuildingsVectorEnv`): each hour the agent acts on a batch of N observations (row i =
  building i) and stores N transitions, each with the building's own reward. One set of networks serves every
  building; ``id_features`` tells it which building a row is.
* **independent** (:class:`IndependentLearners`): N agents, one per building, each with its own networks,
  replay buffer and random streams. Each hour (1) every agent chooses its action from its own observation,
  (2) the community steps once with all of them, (3) every agent stores its transition and updates.

Both train over random start days of the first eleven months and are evaluated on the held-out last month
(the centralised environment, whose return is the community's total reward), in a run folder
(:func:`train_community`: a lock, the config, history, atomic checkpoints, summary; ``resume`` continues it).
A finished run plays ``evosparse grid run community --controller agent:RUN_DIR`` (:class:`CommunityController`).

Step counts: the agent settings that count environment steps (``learning_starts``, ``buffer_size``,
``update_every``, ``stop_after``, ``prune_start``) count hours of one building, for both modes; the shared agent
sees N transitions an hour, so they are multiplied by N for it. The run's ``total_hours`` are community hours.

Resume: networks, optimizers, replay buffers and random streams are restored exactly; the community episode in
progress is not saved, so a resumed run starts a new training episode.

Paper: parameter sharing across homogeneous agents (Gupta, Egorov, Kochenderfer, "Cooperative multi-agent
control using deep reinforcement learning", AAMAS 2017); independent learners (Tan, ICML 1993); CityLearn's
decentralised building agents (Vazquez-Canteli et al., 2020).
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from evosparse._config import Config, at_least, between, one_of, param
from evosparse.envs.community import AGENT_OBSERVATION_NAMES, CommunityConfig, EnergyCommunityEnv
from evosparse.envs.policies import Controller
from evosparse.io import RunFolder
from evosparse.rl.registry import ALGORITHMS, algorithm_class
from evosparse.rl.run import (
    CHECKPOINT_JSON,
    TABLE,
    checkpoint_files,
    non_finite,
    read_checkpoint,
    read_checkpointed_manifest,
    set_threads,
    update_flops,
)
from evosparse.train.loop import DivergenceError

KIND = "rl-community"
MODES = ("shared", "independent")
ID_FEATURES = ("none", "traits", "one_hot")
COMMUNITY_ALGOS = ("sac", "td3")  # the battery actions are continuous
STEP_COUNTS = ("learning_starts", "buffer_size", "update_every", "stop_after", "prune_start")  # per building-hour
RUN_FILES = ("config.toml", "history.json", "summary.json", "checkpoint.json", "checkpoint.npz", "checkpoint.pt")
HELD_OUT = {"split": "test", "random_start": False, "start_hour": 0, "episode_hours": 24 * 30}


# ---- the config ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommunityRunConfig(Config):
    """A community run: how the buildings learn, the community, the algorithm, budget and evaluation."""

    mode: str = param("shared", "shared (one policy, parameter sharing) or independent (one learner each)",
                      rule=one_of(MODES))  # fmt: skip
    algo: str = param("sac", "algorithm of every learner: sac or td3", rule=one_of(COMMUNITY_ALGOS))
    n_buildings: int = param(10, "buildings in the community", rule=between(1, 1000))
    id_features: str = param(
        "traits", "what tells the shared policy which building a row is: none, traits (load scale and PV kW), "
        "one_hot (the building's index); independent learners use none", rule=one_of(ID_FEATURES),
    )  # fmt: skip
    total_hours: int = param(20_000, "community hours of training", rule=at_least(1))
    seed: int = param(0, "seed of the learners and of the first training reset", rule=at_least(0))
    episode_days: int = param(7, "days per training episode (random start days of the training split)",
                              rule=between(1, 30))  # fmt: skip
    eval_every: int = param(2_000, "hours between evaluations on the held-out month", rule=at_least(1))
    eval_seed: int = param(1_000_000, "seed of the evaluation episode", rule=at_least(0))
    checkpoint_every: int = param(2_000, "hours between checkpoints (and one at the end)", rule=at_least(1))
    threads: int | None = param(1, "torch CPU threads (None: leave torch's default)", rule=at_least(1))
    env: dict = param(None, "other settings of the community (CommunityConfig fields, e.g. peer_to_peer)", rule=TABLE)
    agent: dict = param(None, "settings of the algorithm's config (per building: see the module doc)", rule=TABLE)

    def validate(self) -> None:
        for name in ("env", "agent"):
            object.__setattr__(self, name, dict(getattr(self, name) or {}))
        reserved = {"n_buildings", "split", "random_start", "start_hour", "episode_hours"} & set(self.env)
        if reserved:
            raise ValueError(f"env must not set {', '.join(sorted(reserved))}: the run sets them (n_buildings, splits)")
        self.community_config()  # unknown or bad community settings, naming the field
        self.algo_config()

    @property
    def row_features(self) -> str:
        """The identity features the learners read: none for independent learners (each knows its building)."""
        return "none" if self.mode == "independent" else self.id_features

    def community_config(self, *, evaluation: bool = False) -> CommunityConfig:
        split = HELD_OUT if evaluation else {
            "split": "train", "random_start": True, "episode_hours": 24 * self.episode_days,
        }  # fmt: skip
        return CommunityConfig.from_dict(
            {**self.env, "n_buildings": self.n_buildings, **split}, source="the community settings ([env])"
        )

    def algo_config(self, *, scale: int = 1):
        """The algorithm's config; step counts multiplied by ``scale`` (N for the shared agent)."""
        config = ALGORITHMS[self.algo].config_class.from_dict(self.agent, source=f"the {self.algo} settings ([agent])")
        if config.n_envs != 1:
            raise ValueError(f"n_envs must be 1 in a community run (the buildings are the batch), got {config.n_envs}")
        if scale == 1:
            return config
        return config.replace(
            **{name: getattr(config, name) * scale for name in STEP_COUNTS if getattr(config, name) is not None}
        )


# ---- observations ---------------------------------------------------------------------------------------------------
def id_matrix(env: EnergyCommunityEnv, id_features: str) -> np.ndarray:
    """(N, k) features appended to every building's observation row (k = 0 for ``none``)."""
    n = env.n_agents
    if id_features == "traits":
        return np.stack([env.load_scale, env.pv_kw], axis=1).astype(np.float32)
    if id_features == "one_hot":
        return np.eye(n, dtype=np.float32)
    if id_features == "none":
        return np.zeros((n, 0), dtype=np.float32)
    raise ValueError(f"id_features must be one of {', '.join(ID_FEATURES)}, got {id_features!r}")


def agent_observations(env: EnergyCommunityEnv, flat_observation: np.ndarray, id_features: str) -> np.ndarray:
    """The centralised observation ``(N * F,)`` as rows ``(N, F + k)``, the identity features appended."""
    rows = np.asarray(flat_observation, dtype=np.float32).reshape(env.n_agents, len(AGENT_OBSERVATION_NAMES))
    return np.concatenate([rows, id_matrix(env, id_features)], axis=1)


class BuildingsVectorEnv(gym.vector.VectorEnv):
    """The community's buildings as the environments of one vector env (same-step autoreset).

    Row i of observations, actions and rewards is building i; all buildings end an episode together, and the
    next one starts at once (its first observation is returned, the last one is in ``info["final_obs"]``).
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, config: CommunityConfig, id_features: str = "traits"):
        self.core = EnergyCommunityEnv(config)
        self.next_seed: int | None = None  # the seed of the next unseeded reset (set after a resume)
        self.id_features = id_features
        self._ids = id_matrix(self.core, id_features)
        self.num_envs = self.core.n_agents
        features = len(AGENT_OBSERVATION_NAMES) + self._ids.shape[1]
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (features,), np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)

    def _rows(self, matrix: np.ndarray) -> np.ndarray:
        return np.concatenate([matrix, self._ids], axis=1)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None:
            seed, self.next_seed = self.next_seed, None
        self.core.reset(seed=seed, options=options)
        return self._rows(self.core._observation_matrix()), {}

    def step(self, actions):
        matrix, rewards, truncated, _ = self.core.step_arrays(np.asarray(actions, dtype=np.float64).reshape(-1))
        observations, info = self._rows(matrix), {}
        if truncated:
            info = {"final_obs": observations, "_final_obs": np.ones(self.num_envs, dtype=bool)}
            self.core.reset()  # the next episode draws its start day from the core's own generator
            observations = self._rows(self.core._observation_matrix())
        done = np.full(self.num_envs, truncated)
        return observations, rewards.astype(np.float64), np.zeros(self.num_envs, dtype=bool), done, info


class _OneBuilding(gym.Env):
    """The spaces of one building, for an independent learner (stepped by :class:`IndependentLearners`)."""

    def __init__(self, features: int):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (features,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def step(self, action):  # pragma: no cover - the learners never let the agent step it
        raise RuntimeError("an independent learner's environment is stepped by IndependentLearners, not by the agent")

    def reset(self, *, seed=None, options=None):  # pragma: no cover
        raise RuntimeError("an independent learner's environment is reset by IndependentLearners, not by the agent")


# ---- the learners -----------------------------------------------------------------------------------------------
class SharedPolicy:
    """One agent for every building (see the module doc)."""

    mode = "shared"

    def __init__(self, config: CommunityRunConfig):
        self.config = config
        self.env = BuildingsVectorEnv(config.community_config(), config.row_features)
        self.n_buildings = self.env.num_envs
        algo_config = config.algo_config(scale=self.n_buildings)
        self.agent = algorithm_class(config.algo)(self.env, algo_config, seed=config.seed)
        self.agents = [self.agent]

    @property
    def hours(self) -> int:
        return self.agent.num_timesteps // self.n_buildings

    num_timesteps = hours  # what a checkpoint records

    def learn(self, hours: int) -> SharedPolicy:
        self.agent.learn(hours * self.n_buildings, schedule_horizon=self.config.total_hours * self.n_buildings)
        return self

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Battery actions ``(N,)`` for the observation rows ``(N, F + k)``."""
        actions, _ = self.agent.predict(rows, deterministic=True)
        return np.asarray(actions, dtype=np.float32).reshape(-1)

    def get_state(self) -> dict[str, Any]:
        return self.agent.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.agent.set_state(state)
        self.env.next_seed = self.config.seed + self.hours  # a new training episode, the same on every resume

    def episode_returns(self) -> list[float]:
        """Training episode returns of the community (the sum over buildings of the last finished episode)."""
        returns = [episode["r"] for episode in self.agent.ep_info_buffer]
        n = self.n_buildings
        return [float(sum(returns[i : i + n])) for i in range(0, len(returns) - n + 1, n)]


class IndependentLearners:
    """One agent per building, stepping the community together (see the module doc)."""

    mode = "independent"

    def __init__(self, config: CommunityRunConfig):
        self.config = config
        self.core = EnergyCommunityEnv(config.community_config())
        self.n_buildings = self.core.n_agents
        algo_config, cls = config.algo_config(), algorithm_class(config.algo)
        seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(config.seed).spawn(self.n_buildings)]
        features = len(AGENT_OBSERVATION_NAMES)
        self.agents = [cls(_OneBuilding(features), algo_config, seed=seed) for seed in seeds]
        self.hours = 0
        self._obs: np.ndarray | None = None
        self._episode_return = 0.0
        self.returns: deque[float] = deque(maxlen=100)

    @property
    def num_timesteps(self) -> int:  # what a checkpoint records
        return self.hours

    def learn(self, hours: int) -> IndependentLearners:
        """``hours`` more community hours: act, step the community once, store and update every learner.

        The agents' own collection loop steps one environment per agent; here one community step serves all,
        so this loop does the agents' collection step (``BaseAlgorithm._collect_step``) for each of them.
        """
        if self._obs is None:  # the first episode, or the first after a resume: a seeded reset either way
            self.core.reset(seed=self.config.seed + self.hours)
            self._obs = self.core._observation_matrix()
        for _ in range(hours):
            obs = self._obs
            chosen = [agent._collection_actions(obs[i : i + 1]) for i, agent in enumerate(self.agents)]
            actions = np.concatenate([env_actions.reshape(-1) for env_actions, _ in chosen])
            next_obs, rewards, truncated, _ = self.core.step_arrays(actions.astype(np.float64))
            done = np.array([truncated])
            for i, agent in enumerate(self.agents):
                agent._store(obs[i : i + 1], chosen[i][1], rewards[i : i + 1], next_obs[i : i + 1],
                             np.zeros(1, dtype=bool), done)  # fmt: skip
                agent.num_timesteps += 1
                agent._vector_steps += 1
                agent._on_env_step()
                if agent._vector_steps % agent.config.train_freq == 0 and (
                    agent.num_timesteps > agent.config.learning_starts
                ):
                    for _ in range(agent.config.gradient_steps):
                        agent._train_step()
                        agent.n_updates += 1
            self._episode_return += float(rewards.sum())
            self.hours += 1
            if truncated:
                self.returns.append(self._episode_return)
                self._episode_return = 0.0
                self.core.reset()
                next_obs = self.core._observation_matrix()
            self._obs = next_obs
        return self

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.array(
            [agent.predict(row, deterministic=True)[0][0] for agent, row in zip(self.agents, rows)], dtype=np.float32
        )

    def get_state(self) -> dict[str, Any]:
        states = [agent.get_state() for agent in self.agents]
        meta = {
            "agents": [state["meta"] for state in states],
            "hours": self.hours,
            "returns": list(self.returns),
        }
        arrays = {f"{i}/{key}": value for i, state in enumerate(states) for key, value in state["arrays"].items()}
        return {"meta": meta, "arrays": arrays, "tensors": {str(i): state["tensors"] for i, state in enumerate(states)}}

    def set_state(self, state: dict[str, Any]) -> None:
        meta = state["meta"]
        if len(meta["agents"]) != len(self.agents):
            raise ValueError(f"the state holds {len(meta['agents'])} learners, this community has {len(self.agents)}")
        for i, agent in enumerate(self.agents):
            prefix = f"{i}/"
            arrays = {key[len(prefix) :]: value for key, value in state["arrays"].items() if key.startswith(prefix)}
            agent.set_state({"meta": meta["agents"][i], "arrays": arrays, "tensors": state["tensors"][str(i)]})
        self.hours = meta["hours"]
        self.returns = deque(meta["returns"], maxlen=100)
        self._obs, self._episode_return = None, 0.0  # a new training episode (see the module doc)

    def episode_returns(self) -> list[float]:
        return list(self.returns)


LEARNERS = {"shared": SharedPolicy, "independent": IndependentLearners}


def build_learners(config: CommunityRunConfig) -> SharedPolicy | IndependentLearners:
    return LEARNERS[config.mode](config)


# ---- evaluation and the controller ----------------------------------------------------------------------------------
def evaluate_community(learners, env: EnergyCommunityEnv, *, seed: int) -> float:
    """The community's return (total reward) over one episode of the centralised ``env``."""
    observation, _ = env.reset(seed=seed)
    id_features = learners.config.row_features
    total, done = 0.0, False
    while not done:
        actions = learners.predict(agent_observations(env, observation, id_features))
        observation, reward, terminated, truncated, _ = env.step(actions)
        total += float(reward)
        done = terminated or truncated
    if not math.isfinite(total):
        raise FloatingPointError(f"the community evaluation return is not finite: {total}")
    return total


class CommunityController(Controller):
    """A community run's learners (last checkpoint) as a yardstick controller of the centralised environment."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.config = read_community_config(self.run_dir)
        self.learners = None

    def start(self, env) -> None:
        self.env = env.unwrapped
        if not isinstance(self.env, EnergyCommunityEnv):
            raise ValueError(f"agent:{self.run_dir} is a community run; this environment is {type(self.env).__name__}")
        if self.env.n_agents != self.config.n_buildings:
            raise ValueError(
                f"agent:{self.run_dir} was trained on {self.config.n_buildings} buildings; this community has "
                f"{self.env.n_agents} (set --n-buildings {self.config.n_buildings})"
            )
        if self.learners is None:
            self.learners = load_learners(self.run_dir)

    def act(self, observation):
        return self.learners.predict(agent_observations(self.env, observation, self.config.row_features))


# ---- the run folder --------------------------------------------------------------------------------------------------
@dataclass
class CommunityResult:
    config: CommunityRunConfig
    out_dir: Path
    learners: Any
    history: list[dict[str, Any]]
    summary: dict[str, Any]


def _check_resume(config: CommunityRunConfig):
    def check(saved: Any) -> None:
        saved_config = CommunityRunConfig.from_dict(saved, source="the saved community run config")
        different = [
            name for name in CommunityRunConfig.flat_names()
            if name not in ("total_hours", "threads") and getattr(saved_config, name) != getattr(config, name)
        ]  # fmt: skip
        if different:
            raise ValueError(
                f"resume continues the saved run, whose {', '.join(different)} differ from the ones given; only "
                "total_hours and threads may change (or start a new run with overwrite)"
            )
        if config.total_hours < saved_config.total_hours:
            raise ValueError(f"total_hours can only grow on resume (saved {saved_config.total_hours}, "
                             f"got {config.total_hours})")  # fmt: skip

    return check


def _counts(learners) -> dict[str, dict[str, int]]:
    """Weights stored and dense, per network, summed over the learners."""
    total: dict[str, dict[str, int]] = {}
    for agent in learners.agents:
        for name, count in agent.parameter_counts().items():
            into = total.setdefault(name, dict.fromkeys(count, 0))
            for key, value in count.items():
                into[key] += value
    return total


def train_community(
    config: CommunityRunConfig, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False, log=print
) -> CommunityResult:
    """Run (or continue) ``config`` in the run folder ``out_dir``; see the module doc."""
    out_dir = Path(out_dir)
    set_threads(config.threads)
    learners = build_learners(config)
    eval_env = EnergyCommunityEnv(config.community_config(evaluation=True))
    folder = RunFolder.open(out_dir, kind=KIND, files=RUN_FILES, config=config.to_dict(), resume=resume,
                            overwrite=overwrite, check=_check_resume(config))  # fmt: skip
    try:
        history: list[dict[str, Any]] = []
        extra = {"flops": 0.0, "train_seconds": 0.0}
        if resume:
            record, state = read_checkpoint(folder.path)
            folder.check_run_id(record["run_id"], folder.path / CHECKPOINT_JSON)
            learners.set_state(state)
            history, extra = record["history"], record["extra"]
            if config.total_hours != folder.config["total_hours"]:
                folder.update_manifest(config=config.to_dict())
        else:
            folder.write("config.toml", config.to_toml().encode("utf-8"))
        while learners.hours < config.total_hours:
            start = learners.hours
            end = min(config.total_hours, (start // config.eval_every + 1) * config.eval_every,
                      (start // config.checkpoint_every + 1) * config.checkpoint_every)  # fmt: skip
            updates_before = [agent.n_updates for agent in learners.agents]
            began = time.perf_counter()
            learners.learn(end - start)
            extra["train_seconds"] += time.perf_counter() - began
            for agent, before in zip(learners.agents, updates_before):
                per_update, per_action = update_flops(agent)
                extra["flops"] += (agent.n_updates - before) * per_update + (end - start) * per_action
                diverged = non_finite(agent)
                if diverged:
                    raise DivergenceError(f"training diverged by hour {end:,}: {diverged} is not finite")
            hour = learners.hours
            if hour % config.eval_every == 0 or hour == config.total_hours:
                returns = learners.episode_returns()
                row = {
                    "hour": hour,
                    "return": evaluate_community(learners, eval_env, seed=config.eval_seed),
                    "train_return_mean": float(np.mean(returns[-10:])) if returns else None,
                    "updates": sum(agent.n_updates for agent in learners.agents),
                    "hours_per_second": hour / max(extra["train_seconds"], 1e-9),
                }
                history.append(row)
                if log:
                    log(f"hour {hour:>8,}  held-out return {row['return']:10.2f}  {row['hours_per_second']:6.1f} h/s")
            if hour % config.checkpoint_every == 0 or hour == config.total_hours:
                files = checkpoint_files(learners, folder.run_id, history, extra)
                files["history.json"] = json.dumps(history, indent=1).encode("utf-8")
                folder.write_set(files, last=(CHECKPOINT_JSON,))
        counts = _counts(learners)
        summary = {
            "env": "community", "mode": config.mode, "algo": config.algo, "n_buildings": config.n_buildings,
            "strategy": learners.agents[0].config.strategy, "seed": config.seed, "steps": learners.hours,
            "final_return": history[-1]["return"] if history else None,
            "best_return": max((row["return"] for row in history), default=None), "parameters": counts,
            "updates": sum(agent.n_updates for agent in learners.agents), "training_flops": extra["flops"],
            "train_seconds": extra["train_seconds"],
        }  # fmt: skip
        folder.write("summary.json", (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
        folder.update_manifest(finished=True)
        return CommunityResult(config, folder.path, learners, history, summary)
    finally:
        folder.close()


def read_community_config(run_dir: str | Path) -> CommunityRunConfig:
    """The config of a community run folder (which must hold a checkpoint)."""
    manifest = read_checkpointed_manifest(run_dir, kind=KIND, what="a community run")
    return CommunityRunConfig.from_dict(manifest["config"], source=f"{run_dir}/run.json")


def load_learners(run_dir: str | Path):
    """The learners of a community run folder at its last checkpoint."""
    learners = build_learners(read_community_config(run_dir))
    _, state = read_checkpoint(run_dir)
    learners.set_state(state)
    return learners
