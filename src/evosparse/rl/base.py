"""The agent API every algorithm shares, shaped like Stable-Baselines3's ``OffPolicyAlgorithm``.

``Algo(env, config=None, *, seed=0, **overrides)``: ``env`` is a gymnasium Env, a SAME_STEP vector env or
an id string (``config.n_envs`` copies of it); ``overrides`` replace config fields by name. Then:

* ``learn(total_timesteps, callback=None, progress_bar=False) -> self`` runs the off-policy loop:

  1. **collect** one step of every environment (uniform random actions for the first
     ``learning_starts`` steps, then the algorithm's exploration) into the replay buffer;
  2. every ``train_freq`` steps, once past ``learning_starts``, **update**: ``gradient_steps`` times
     ``_train_step`` (the algorithm's targets, losses, optimizer steps, topology and target updates).

  Counting continues across calls: ``learn(n); learn(n)`` runs the same steps as ``learn(2 n)``, apart from
  schedules defined over a call's budget (DQN's epsilon).
* ``predict(observation, deterministic=True) -> (action, None)`` for one observation or a batch.
* ``save(path)`` / ``Algo.load(path, env=None)``: a folder with ``agent.json`` (config, counters,
  random-generator states, topology-strategy states), ``arrays.npz`` (replay buffer, last observations,
  environment simulator state; read with ``allow_pickle=False``) and ``tensors.pt`` (networks with their
  sparse patterns, optimizer states, torch generator; read with ``weights_only=True``). A loaded agent
  continues exactly as the saved one would have (see :mod:`evosparse.rl.envs` for which environments'
  state is captured).
* ``get_state()`` / ``set_state(state)``: the same content in memory, ``{"meta", "arrays", "tensors"}``.

Randomness: ``seed`` seeds four independent streams (network initialisation, exploration, replay sampling,
torch sampling noise) and the first environment reset; nothing global is seeded.
"""

from __future__ import annotations

import copy
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from evosparse._config import is_int
from evosparse.io import load_arrays, load_json, save_arrays, save_json
from evosparse.io.torch_files import load_torch, save_torch
from evosparse.rl.buffer import ReplayBuffer
from evosparse.rl.callbacks import BaseCallback, as_callback
from evosparse.rl.config import AlgoConfig
from evosparse.rl.decomposition import ReturnDecomposition
from evosparse.rl.envs import EnvBatch, make_env
from evosparse.rl.networks import build_mlp, count_weights
from evosparse.rl.normalize import RunningMeanStd
from evosparse.rl.topology import NetworkTopology, build_strategy

FORMAT = "evosparse.rl.agent"
AGENT_FILES = {"meta": "agent.json", "arrays": "arrays.npz", "tensors": "tensors.pt"}
ACTION_KINDS = ("discrete", "multi_discrete", "box")
# Fused Adam (one kernel for all parameters) where this torch build has it on the CPU: fewer Python calls.
_ADAM_OPTIONS = {"fused": True}


def action_kind(space: gym.Space) -> str:
    """ "discrete", "multi_discrete", "box" or the space's class name (unsupported by every algorithm)."""
    if isinstance(space, gym.spaces.Discrete):
        return "discrete"
    if isinstance(space, gym.spaces.MultiDiscrete):
        return "multi_discrete"
    if isinstance(space, gym.spaces.Box):
        return "box"
    return type(space).__name__


class BaseAlgorithm:
    """Base of DQN, TD3 and SAC (see the module doc). Subclasses set the class attributes and implement
    ``_setup``, ``_explore``, ``_policy`` and ``_train_step``."""

    name: ClassVar[str]
    config_class: ClassVar[type[AlgoConfig]]
    action_kinds: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        env: gym.Env | gym.vector.VectorEnv | str,
        config: AlgoConfig | None = None,
        *,
        seed: int = 0,
        **overrides: Any,
    ) -> None:
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(f"config must be a {self.config_class.__name__}, got {type(config).__name__}")
        if overrides:
            config = config.replace(**overrides)
        if not is_int(seed):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.config, self.seed = config, int(seed)
        environment, self.env_id = make_env(env, config.n_envs)
        self.envs = EnvBatch(environment)
        self.env = environment
        self.n_envs = self.envs.n
        self.observation_space, self.action_space = self.envs.observation_space, self.envs.action_space
        kind = action_kind(self.action_space)
        if kind not in self.action_kinds:
            raise ValueError(
                f"{self.name} needs an action space of kind {' or '.join(self.action_kinds)}; "
                f"env {self.env_id or environment} has {self.action_space}"
            )
        if not isinstance(self.observation_space, gym.spaces.Box):
            raise ValueError(f"observation space must be a Box, got {self.observation_space}")
        self.obs_dim = int(np.prod(self.observation_space.shape))
        self.action_space.seed(self.seed)
        # A fourth stream for the reward model: spawning more children leaves the first three unchanged.
        streams = np.random.SeedSequence(self.seed).spawn(4)
        self.rng = np.random.default_rng(streams[0])  # exploration: random actions, epsilon, Gaussian noise
        self.generator = torch.Generator().manual_seed(self.seed)  # sampling inside the updates (SAC, TD3)
        self.buffer = ReplayBuffer(
            config.buffer_size,
            self.observation_space.shape,
            self._stored_action_shape(),
            action_dtype=np.float32 if kind == "box" else np.int64,
            n_envs=self.n_envs,
            n_step=config.n_step,
            gamma=config.gamma,
            seed=np.random.default_rng(streams[1]),
        )
        # Counters (all saved): environment steps over all envs, vector steps, gradient steps, episodes.
        self.num_timesteps = 0
        self._vector_steps = 0
        self.n_updates = 0
        self.n_episodes = 0
        self._target_timesteps = 0  # num_timesteps where the schedules end (see learn's schedule_horizon)
        self._learn_start = 0  # num_timesteps where the schedules start
        self._last_obs: np.ndarray | None = None
        self._seeded_reset = False
        self._episode_return = np.zeros(self.n_envs)
        self._episode_length = np.zeros(self.n_envs, dtype=np.int64)
        self.ep_info_buffer: deque[dict[str, float]] = deque(maxlen=100)  # last episodes: {"r": return, "l": length}
        self._losses: dict[str, torch.Tensor] = {}
        # Running observation statistics (config.normalize_observations): see evosparse.rl.normalize.
        self.obs_normalizer = (
            RunningMeanStd(self.observation_space.shape, clip=config.observation_clip)
            if config.normalize_observations
            else None
        )
        # Filled by _setup: modules and optimizers to save, topology drivers, extra saved tensors.
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.topologies: dict[str, NetworkTopology] = {}
        self._setup(np.random.default_rng(streams[2]))
        self.decomposition: ReturnDecomposition | None = None
        if config.reward_period is not None:
            if kind != "box":
                raise ValueError(
                    f"reward_period needs a Box action space (TD3, SAC); {self.name} has {self.action_space}"
                )
            self.decomposition = ReturnDecomposition(
                self.obs_dim,
                int(np.prod(self.action_space.shape)),
                config.reward_period,
                capacity=self.buffer.capacity,
                n_envs=self.n_envs,
                batch_size=config.batch_size,
                learning_rate=config.learning_rate,
                rng=np.random.default_rng(streams[3]),
            )

    # ---- what subclasses implement --------------------------------------------------------------------------
    def _setup(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _explore(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(actions for the env, actions as stored) of the exploring policy, for a batch of observations."""
        raise NotImplementedError

    def _policy(self, obs: torch.Tensor, deterministic: bool) -> np.ndarray:
        """Environment actions for a batch of observations."""
        raise NotImplementedError

    def _train_step(self) -> None:
        raise NotImplementedError

    def _on_env_step(self) -> None:
        """Called after every vector step (DQN's target update counts environment steps)."""

    # ---- helpers of _setup -----------------------------------------------------------------------------------
    def _mlp(self, sizes: list[int], density: float, rng: np.random.Generator) -> nn.Module:
        """A network of this agent: SparseMLP unless the strategy is dense or gmp (a dense start)."""
        config = self.config
        sparse = config.strategy not in ("dense", "gmp")
        return build_mlp(
            sizes,
            density=density if sparse else 1.0,
            sparse=sparse,
            activation=config.activation,
            backend=config.backend,
            rng=rng,
        )

    def _adam(self, module: nn.Module | list[torch.Tensor]) -> torch.optim.Optimizer:
        params = list(module.parameters()) if isinstance(module, nn.Module) else module
        return torch.optim.Adam(params, lr=self.config.learning_rate, **_ADAM_OPTIONS)

    def _topology(
        self,
        online: nn.Module,
        optimizer: torch.optim.Optimizer,
        targets: tuple[nn.Module, ...],
        sizes_per_mlp: list[list[int]],
        density: float,
        seed: int,
    ) -> NetworkTopology:
        strategy = build_strategy(self.config, sizes_per_mlp, density, seed)
        return NetworkTopology(strategy, online, optimizer, targets, every=self.config.update_every)

    def _stored_action_shape(self) -> tuple[int, ...]:
        space = self.action_space
        return () if isinstance(space, gym.spaces.Discrete) else tuple(space.shape)

    # ---- the loop -----------------------------------------------------------------------------------------------
    def learn(
        self,
        total_timesteps: int,
        callback: BaseCallback | list | None = None,
        progress_bar: bool = False,
        *,
        schedule_horizon: int | None = None,
    ) -> BaseAlgorithm:
        """Run ``total_timesteps`` more environment steps (all environments together) with updates.

        Schedules that run over a ``learn`` call (DQN's epsilon decay) span this call by default, as in SB3.
        ``schedule_horizon=N`` makes them span steps 0 to N instead, whatever this call's share: a run split
        into several calls (segments between evaluations, a resume) passes its total steps, so every call
        follows the schedule of one uninterrupted ``learn(N)``.
        """
        if not (is_int(total_timesteps) and total_timesteps >= 0):
            raise ValueError(f"total_timesteps must be an integer >= 0, got {total_timesteps!r}")
        if schedule_horizon is not None and not (is_int(schedule_horizon) and schedule_horizon >= 1):
            raise ValueError(f"schedule_horizon must be an integer >= 1 or None, got {schedule_horizon!r}")
        callback = as_callback(callback)
        callback.init_callback(self)
        end = self.num_timesteps + total_timesteps
        if schedule_horizon is None:
            self._learn_start, self._target_timesteps = self.num_timesteps, end
        else:
            self._learn_start, self._target_timesteps = 0, schedule_horizon
        if self._last_obs is None:
            self._last_obs = self.envs.reset(seed=None if self._seeded_reset else self.seed)
            self._seeded_reset = True
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=total_timesteps, unit="step", desc=f"{self.name} {self.env_id or ''}".strip())
        config = self.config
        callback.on_training_start()
        try:
            while self.num_timesteps < end:
                keep_going = self._collect_step(callback)
                if bar is not None:
                    bar.update(self.n_envs)
                if self._vector_steps % config.train_freq == 0 and self.num_timesteps > config.learning_starts:
                    callback.on_rollout_end()
                    for _ in range(config.gradient_steps):
                        self._train_step()
                        self.n_updates += 1
                if not keep_going:
                    break
        finally:
            if bar is not None:
                bar.close()
        callback.on_training_end()
        return self

    def _collect_step(self, callback: BaseCallback) -> bool:
        obs = self._last_obs
        env_actions, stored_actions = self._collection_actions(obs)
        new_obs, rewards, terminated, truncated, real_next, infos = self.envs.step(env_actions)
        self._store(obs, stored_actions, rewards, real_next, terminated, truncated)
        self.num_timesteps += self.n_envs
        self._vector_steps += 1
        self._episode_return += rewards
        self._episode_length += 1
        dones = np.logical_or(terminated, truncated)
        for i in np.flatnonzero(dones):
            episode = {"r": float(self._episode_return[i]), "l": int(self._episode_length[i])}
            self.ep_info_buffer.append(episode)
            infos[i].setdefault("episode", episode)
            self._episode_return[i], self._episode_length[i] = 0.0, 0
            self.n_episodes += 1
        self._last_obs = new_obs
        self._on_env_step()
        callback.update_locals(
            {
                "obs": obs,
                "actions": env_actions,
                "rewards": rewards,
                "terminated": terminated,
                "truncated": truncated,
                "dones": dones,
                "infos": infos,
                "new_obs": new_obs,
            }
        )
        return callback.on_step()

    def _collection_actions(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(env actions, stored actions) for a batch of raw observations while collecting: they first update
        the observation statistics (once each), then uniform random actions before ``learning_starts``,
        the exploring policy on the normalised observations after."""
        if self.obs_normalizer is not None:
            self.obs_normalizer.update(obs)
        if self.num_timesteps < self.config.learning_starts:
            return self._random_actions()
        return self._explore(self._normalize(obs))

    def _store(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        """Add a step to the replay buffer: raw observations, rewards times ``reward_scale``."""
        scale = self.config.reward_scale
        rewards = rewards * scale if scale != 1.0 else rewards
        self.buffer.add(obs, actions, rewards, next_obs, terminated, truncated)
        if self.decomposition is not None:
            self.decomposition.add(obs, actions, rewards, np.logical_or(terminated, truncated))

    def _normalize(self, obs: np.ndarray) -> np.ndarray:
        """Observations as the networks see them (unchanged without ``normalize_observations``)."""
        return obs if self.obs_normalizer is None else self.obs_normalizer.normalize(obs)

    def _sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """A replay batch (obs, actions, returns, next_obs, discounts), observations normalised with the
        current statistics (the buffer keeps raw ones, so old transitions follow the statistics)."""
        obs, actions, returns, next_obs, discounts = self.buffer.sample(batch_size)
        if self.obs_normalizer is not None:
            obs, next_obs = self.obs_normalizer.normalize_tensor(obs), self.obs_normalizer.normalize_tensor(next_obs)
        if self.decomposition is not None:  # delayed rewards: one step of the reward model, then its rewards
            shape = self.observation_space.shape
            self.decomposition.update(lambda flat: self._normalize(flat.reshape(-1, *shape)).reshape(flat.shape))
            returns = self.decomposition.rewards(obs, actions)
        return obs, actions, returns, next_obs, discounts

    def _random_actions(self) -> tuple[np.ndarray, np.ndarray]:
        """Uniform random actions (the warm-up before learning_starts), drawn from the exploration stream."""
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            actions = space.start + self.rng.integers(0, space.n, size=self.n_envs)
            return actions, actions - space.start
        if isinstance(space, gym.spaces.MultiDiscrete):
            actions = space.start + self.rng.integers(0, space.nvec, size=(self.n_envs, *space.nvec.shape))
            return actions, actions - space.start
        scaled = self.rng.uniform(-1.0, 1.0, size=(self.n_envs, *space.shape)).astype(np.float32)
        return self._unscale(scaled), scaled

    def _unscale(self, scaled: np.ndarray) -> np.ndarray:
        """[-1, 1] actions -> the Box's [low, high]."""
        low, high = self.action_space.low, self.action_space.high
        return (low + 0.5 * (scaled + 1.0) * (high - low)).astype(self.action_space.dtype)

    # ---- inference ----------------------------------------------------------------------------------------------
    def predict(self, observation: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Action(s) for one observation or a batch (a leading axis); SB3's ``(action, state)`` pair, state None."""
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.shape == self.observation_space.shape
        if not single and obs.shape[1:] != self.observation_space.shape:
            raise ValueError(
                f"observation must have shape {self.observation_space.shape} or (batch, "
                f"{', '.join(map(str, self.observation_space.shape))}), got {obs.shape}"
            )
        obs = self._normalize(obs[None] if single else obs)  # frozen statistics: predict never updates them
        with torch.no_grad():
            actions = self._policy(torch.from_numpy(obs), deterministic)
        return (actions[0] if single else actions), None

    # ---- inspection ---------------------------------------------------------------------------------------------
    @property
    def logs(self) -> dict[str, float]:
        """Latest losses and coefficients (read on demand: no synchronisation in the update loop)."""
        values = {name: float(value) for name, value in self._losses.items()}
        if self.decomposition is not None and self.decomposition.last_loss is not None:
            values["reward_model_loss"] = self.decomposition.last_loss
        values.update(n_updates=self.n_updates, num_timesteps=self.num_timesteps)
        return values

    def parameter_counts(self) -> dict[str, dict[str, int]]:
        """Per online network: weights stored, weights of the same dense network, and all parameters."""
        counts = {}
        for name, network in self.networks.items():
            if name.endswith("_target"):
                continue
            stored, dense = count_weights(network)
            counts[name] = {
                "weights": stored,
                "dense_weights": dense,
                "parameters": sum(p.numel() for p in network.parameters()),
            }
        return counts

    # ---- state ----------------------------------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors besides networks and optimizers (SAC's log alpha)."""
        return {}

    def _load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

    def get_state(self) -> dict[str, Any]:
        """Everything an exact resume needs: ``{"meta": JSON-able, "arrays": numpy, "tensors": torch}``."""
        buffer_meta, buffer_arrays = self.buffer.state()
        arrays = {f"buffer/{k}": v.copy() for k, v in buffer_arrays.items()}
        env_meta = None
        if self._last_obs is not None:
            env_meta, env_arrays = self.envs.state()
            arrays.update({f"env/{k}": v for k, v in env_arrays.items()})
            arrays["last_obs"] = self._last_obs.copy()
        arrays["episode_return"] = self._episode_return.copy()
        arrays["episode_length"] = self._episode_length.copy()
        normalizer_meta = None
        if self.obs_normalizer is not None:
            normalizer_meta, normalizer_arrays = self.obs_normalizer.state()
            arrays.update({f"obs_normalizer/{k}": v for k, v in normalizer_arrays.items()})
        meta = {
            "algorithm": self.name,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "env_id": self.env_id,
            "counters": {
                "num_timesteps": self.num_timesteps,
                "vector_steps": self._vector_steps,
                "n_updates": self.n_updates,
                "n_episodes": self.n_episodes,
                "target_timesteps": self._target_timesteps,
                "learn_start": self._learn_start,
                "seeded_reset": self._seeded_reset,
            },
            "rng": self.rng.bit_generator.state,
            "action_space_rng": self.action_space.np_random.bit_generator.state,
            "buffer": buffer_meta,
            "env": env_meta,
            "topology": {name: topology.state_dict() for name, topology in self.topologies.items()},
            "ep_info_buffer": list(self.ep_info_buffer),
            "obs_normalizer": normalizer_meta,
            "decomposition": None,
        }
        if self.decomposition is not None:
            meta["decomposition"], decomposition_arrays = self.decomposition.state()
            arrays.update({f"decomposition/{k}": v.copy() for k, v in decomposition_arrays.items()})
        # Copies, not views of the live tensors: the state stays a snapshot while training goes on.
        tensors = {
            "networks": {
                name: {key: value.detach().clone() for key, value in network.state_dict().items()}
                for name, network in self.networks.items()
            },
            "optimizers": {name: copy.deepcopy(optimizer.state_dict()) for name, optimizer in self.optimizers.items()},
            "generator": self.generator.get_state(),
            "extra": self._extra_state(),
        }
        if self.decomposition is not None:
            tensors["decomposition"] = {
                "model": {k: v.detach().clone() for k, v in self.decomposition.model.state_dict().items()},
                "optimizer": copy.deepcopy(self.decomposition.optimizer.state_dict()),
            }
        return {"meta": meta, "arrays": arrays, "tensors": tensors}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output into this agent (built with the same config and environment)."""
        from evosparse.prune import adopt_structure

        meta, arrays, tensors = state["meta"], state["arrays"], state["tensors"]
        if meta.get("algorithm") != self.name:
            raise ValueError(f"state is of a {meta.get('algorithm')!r} agent, this agent is {self.name!r}")
        for name, network in self.networks.items():
            saved = tensors["networks"][name]
            adopt_structure(network, saved, self._optimizer_of(name))  # gmp: layers that became sparse
            network.load_state_dict(saved)
            if name.endswith("_target"):
                network.requires_grad_(False)
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(copy.deepcopy(tensors["optimizers"][name]))  # it would share the tensors
        self.generator.set_state(tensors["generator"])
        self._load_extra_state(tensors["extra"])
        if self.decomposition is not None:
            if meta.get("decomposition") is None:
                raise ValueError("state was saved without reward_period: it holds no reward model to restore")
            self.decomposition.model.load_state_dict(tensors["decomposition"]["model"])
            self.decomposition.optimizer.load_state_dict(copy.deepcopy(tensors["decomposition"]["optimizer"]))
            self.decomposition.load_state(
                meta["decomposition"],
                {k[len("decomposition/") :]: v for k, v in arrays.items() if k.startswith("decomposition/")},
            )
        for name, topology in self.topologies.items():
            topology.load_state_dict(meta["topology"][name])
        self._refresh_parameters()
        counters = meta["counters"]
        self.num_timesteps, self._vector_steps = counters["num_timesteps"], counters["vector_steps"]
        self.n_updates, self.n_episodes = counters["n_updates"], counters["n_episodes"]
        self._target_timesteps, self._learn_start = counters["target_timesteps"], counters["learn_start"]
        self._seeded_reset = counters["seeded_reset"]
        self.rng.bit_generator.state = meta["rng"]
        self.action_space.np_random.bit_generator.state = meta["action_space_rng"]
        self.buffer.load_state(meta["buffer"], {k[7:]: v for k, v in arrays.items() if k.startswith("buffer/")})
        self._episode_return = np.array(arrays["episode_return"], dtype=np.float64)
        self._episode_length = np.array(arrays["episode_length"], dtype=np.int64)
        self.ep_info_buffer = deque(meta["ep_info_buffer"], maxlen=100)
        if self.obs_normalizer is not None:
            self.obs_normalizer.load_state(
                meta["obs_normalizer"],
                {k[len("obs_normalizer/") :]: v for k, v in arrays.items() if k.startswith("obs_normalizer/")},
            )
        self._last_obs = None
        if meta["env"] is not None:
            env_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("env/")}
            if self.envs.load_state(meta["env"], env_arrays):
                self._last_obs = np.array(arrays["last_obs"])
            else:  # the environment cannot be restored mid-episode: start a new one
                self._episode_return[:] = 0.0
                self._episode_length[:] = 0

    def _optimizer_of(self, network: str) -> torch.optim.Optimizer | None:
        for topology in self.topologies.values():
            if topology.online is self.networks[network]:
                return topology.optimizer
        return self.optimizers.get(network)

    def _refresh_parameters(self) -> None:
        """Re-read cached parameter lists (after a topology change replaced Parameter objects)."""

    def save(self, path: str | Path) -> Path:
        """Write the agent to folder ``path`` (created if needed): each file atomically, with its checksum."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = self.get_state()
        save_arrays(path / AGENT_FILES["arrays"], state["arrays"], format=FORMAT + ".arrays")
        save_torch(path / AGENT_FILES["tensors"], state["tensors"], format=FORMAT + ".tensors")
        save_json(path / AGENT_FILES["meta"], state["meta"], format=FORMAT)  # last: its presence marks a full save
        return path

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | gym.vector.VectorEnv | str | None = None) -> BaseAlgorithm:
        """An agent from a folder written by :meth:`save`, on ``env`` (default: a new env of the saved id)."""
        path = Path(path)
        if not (path / AGENT_FILES["meta"]).is_file():
            raise FileNotFoundError(f"no saved agent in {path} ({AGENT_FILES['meta']} is missing)")
        meta = load_json(path / AGENT_FILES["meta"], format=FORMAT, what="saved RL agent")
        algorithm = cls
        if getattr(cls, "name", None) != meta.get("algorithm"):
            from evosparse.rl.registry import ALGORITHMS

            if meta.get("algorithm") not in ALGORITHMS or cls is not BaseAlgorithm:
                raise ValueError(f"{path} holds a {meta.get('algorithm')!r} agent, not {getattr(cls, 'name', cls)!r}")
            algorithm = ALGORITHMS[meta["algorithm"]].cls
        if env is None:
            if meta["env_id"] is None:
                raise ValueError(f"{path} was saved from an environment without an id: pass env=")
            env = meta["env_id"]
        config = algorithm.config_class.from_dict(meta["config"], source=str(path / AGENT_FILES["meta"]))
        agent = algorithm(env, config, seed=meta["seed"])
        arrays = load_arrays(path / AGENT_FILES["arrays"], format=FORMAT + ".arrays", what="saved RL agent arrays")
        tensors = load_torch(path / AGENT_FILES["tensors"], format=FORMAT + ".tensors", what="saved RL agent tensors")
        agent.set_state({"meta": meta, "arrays": arrays, "tensors": tensors})
        return agent

    def close(self) -> None:
        self.envs.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self.env_id!r}, strategy={self.config.strategy!r}, seed={self.seed})"


def adam_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()`` for the agents' fused Adam, without the generic ``Optimizer.step`` machinery.

    Once every parameter with a gradient has its Adam state, this calls the same two kernels as
    ``torch.optim.Adam(fused=True).step()`` (the step counters' increment, then ``torch._fused_adam_``) on
    the same state tensors, so the result is bit for bit the same and ``state_dict`` is unchanged; what it
    skips is ~0.3 ms of Python per call here (hooks, profiler records, grouping by device and dtype), which
    a 256-wide agent pays 1.5-3 times per gradient step. Anything else (the first step, which creates the
    state; options this path does not cover) goes through ``optimizer.step()``.
    """
    groups = optimizer.param_groups
    options = groups[0]
    if (
        len(groups) != 1
        or not options.get("fused")
        or options["amsgrad"]
        or options["maximize"]
        or options.get("decoupled_weight_decay", False)
        or isinstance(options["lr"], torch.Tensor)
    ):
        optimizer.step()
        return
    state = optimizer.state
    params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
    for p in options["params"]:
        if p.grad is None:
            continue
        p_state = state.get(p)
        if not p_state:  # a parameter's first step: Adam creates its state
            optimizer.step()
            return
        params.append(p)
        grads.append(p.grad)
        exp_avgs.append(p_state["exp_avg"])
        exp_avg_sqs.append(p_state["exp_avg_sq"])
        steps.append(p_state["step"])
    if not params:
        return
    beta1, beta2 = options["betas"]
    torch._foreach_add_(steps, 1)
    torch._fused_adam_(
        params, grads, exp_avgs, exp_avg_sqs, [], steps,
        amsgrad=False, lr=options["lr"], beta1=beta1, beta2=beta2, weight_decay=options["weight_decay"],
        eps=options["eps"], maximize=False,
    )  # fmt: skip


def polyak_update(online: list[torch.Tensor], target: list[torch.Tensor], tau: float) -> None:
    """``target <- (1 - tau) target + tau online``, in one fused call (tau = 1: a copy)."""
    with torch.no_grad():
        if tau == 1.0:
            torch._foreach_copy_(target, online)
        else:
            torch._foreach_lerp_(target, online, tau)
