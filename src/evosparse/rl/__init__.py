"""Deep RL agents with truly sparse, evolving networks: DQN, TD3 and SAC with a Stable-Baselines3-shaped API.

Public names (what the CLI, run folders, wrappers and benchmarks build on):

* ``DQN``, ``TD3``, ``SAC`` (:class:`BaseAlgorithm`): ``Algo(env, config=None, *, seed=0, **overrides)``
  with ``env`` a gymnasium Env, a SAME_STEP vector env or an id; ``learn(total_timesteps, callback=None,
  progress_bar=False) -> self`` (counting continues across calls); ``predict(obs, deterministic=True) ->
  (action, None)``; ``save(folder)`` / ``Algo.load(folder, env=None)`` (``BaseAlgorithm.load`` dispatches on
  the saved algorithm); ``get_state()`` / ``set_state()`` for exact resumes; ``logs`` (latest losses),
  ``parameter_counts()``, ``ep_info_buffer`` (last 100 episodes ``{"r", "l"}``), ``num_timesteps``,
  ``n_updates``, ``n_episodes``.
* ``DQNConfig``, ``TD3Config``, ``SACConfig`` (:class:`AlgoConfig`): frozen, validated settings, each field
  with a doc and the paper / SB3 default; ``STRATEGIES`` the topology methods.
* ``ALGORITHMS`` (name -> entry with ``cls``, ``action_kinds``, ``config_class``), ``algorithm_class(name)``,
  ``make_agent(name, env, config, seed=..., **overrides)``: bad names, action spaces and densities fail
  with one-line ValueErrors.
* ``BaseCallback``, ``CallbackList``: SB3-shaped callbacks (``_on_step`` returning False stops ``learn``).
* ``ReplayBuffer`` (n-step returns, bootstrap through truncation), ``EnvBatch`` / ``make_env``.
* Environments and wrappers may define ``get_resume_state()`` / ``set_resume_state(state)`` (JSON-able)
  so that checkpoints taken mid-episode resume exactly (see :mod:`evosparse.rl.envs`).
"""

from evosparse.rl.base import ACTION_KINDS, BaseAlgorithm, action_kind
from evosparse.rl.buffer import ReplayBuffer
from evosparse.rl.callbacks import BaseCallback, CallbackList
from evosparse.rl.config import STRATEGIES, AlgoConfig, DQNConfig, SACConfig, TD3Config
from evosparse.rl.dqn import DQN
from evosparse.rl.envs import EnvBatch, make_env
from evosparse.rl.registry import ALGORITHMS, algorithm_class, make_agent
from evosparse.rl.sac import SAC
from evosparse.rl.td3 import TD3

__all__ = [
    "ACTION_KINDS",
    "ALGORITHMS",
    "DQN",
    "SAC",
    "STRATEGIES",
    "TD3",
    "AlgoConfig",
    "BaseAlgorithm",
    "BaseCallback",
    "CallbackList",
    "DQNConfig",
    "EnvBatch",
    "ReplayBuffer",
    "SACConfig",
    "TD3Config",
    "action_kind",
    "algorithm_class",
    "make_agent",
    "make_env",
]
