"""One batch-shaped view of a single gymnasium env or a vector env, with a resumable state.

:class:`EnvBatch` steps ``n`` environments and returns arrays with a leading environment axis, together
with the *real* next observation of every environment (the final observation where an episode ended and
the environment was reset). A single ``gymnasium.Env`` is reset by us; a ``SyncVectorEnv`` must reset in
the same step (``autoreset_mode=SAME_STEP``: the final observation is in ``info["final_obs"]``).

:meth:`EnvBatch.state` captures what an exact resume needs and the environments allow: the environment's
random generator, the time-limit counter, the last observation, and the simulator state of MuJoCo
environments (``qpos``, ``qvel``, ``act``, ``qacc_warmstart``, ``time``) and of classic-control ones (their
``state`` attribute). Any wrapper or environment may add its own by defining ``get_resume_state()`` (a
JSON-able dict) and ``set_resume_state(state)`` (the building environment does). An environment whose own
state cannot be captured resumes from a fresh reset (``state()["exact"]`` is False), whatever its wrappers save.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

_MUJOCO_ARRAYS = ("qpos", "qvel", "act", "qacc_warmstart")


def make_env(env: gym.Env | gym.vector.VectorEnv | str, n_envs: int = 1) -> tuple[Any, str | None]:
    """(environment, its id or None): an id string becomes ``gym.make(id)`` or a SAME_STEP SyncVectorEnv."""
    if isinstance(env, str):
        if n_envs == 1:
            return gym.make(env), env
        vector = gym.vector.SyncVectorEnv(
            [lambda: gym.make(env) for _ in range(n_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        )
        return vector, env
    if isinstance(env, gym.vector.VectorEnv | gym.Env):
        spec = getattr(env, "spec", None)
        return env, getattr(spec, "id", None)
    raise TypeError(f"env must be a gymnasium Env, a gymnasium VectorEnv or an environment id, got {env!r}")


class EnvBatch:
    """``n`` environments behind one batch API (see the module doc)."""

    def __init__(self, env: gym.Env | gym.vector.VectorEnv) -> None:
        self.env = env
        self.vector = isinstance(env, gym.vector.VectorEnv)
        if self.vector:
            mode = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
            if mode not in (gym.vector.AutoresetMode.SAME_STEP, "SameStep"):
                raise ValueError(
                    f"a vector env must reset in the same step (autoreset_mode=SAME_STEP), got {mode}; "
                    "pass autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP when creating it"
                )
            self.n = env.num_envs
            self.observation_space, self.action_space = env.single_observation_space, env.single_action_space
            self.members = list(getattr(env, "envs", []))  # SyncVectorEnv's sub-environments
        else:
            self.n = 1
            self.observation_space, self.action_space = env.observation_space, env.action_space
            self.members = [env]

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.env.reset(seed=seed)
        return np.asarray(obs)[None] if not self.vector else np.asarray(obs)

    def step(self, actions: np.ndarray) -> tuple:
        """(new_obs, rewards, terminated, truncated, real_next_obs, infos as a list of dicts)."""
        if self.vector:
            obs, rewards, terminated, truncated, info = self.env.step(actions)
            done = np.logical_or(terminated, truncated)
            real_next = np.array(obs, dtype=np.float32, copy=True)
            infos = [{} for _ in range(self.n)]
            for key, value in info.items():
                if key.startswith("_") or key in ("final_obs", "final_info"):
                    continue
                present = info.get("_" + key, np.ones(self.n, dtype=bool))
                for i in np.flatnonzero(present):
                    infos[i][key] = value[i]
            for i in np.flatnonzero(done):
                real_next[i] = info["final_obs"][i]
                if "final_info" in info:
                    final = info["final_info"]
                    infos[i].update({k: v[i] for k, v in final.items() if not k.startswith("_") and final["_" + k][i]})
            return np.asarray(obs), np.asarray(rewards), np.asarray(terminated), np.asarray(truncated), real_next, infos
        obs, reward, terminated, truncated, info = self.env.step(actions[0])
        real_next = np.asarray(obs, dtype=np.float32)[None]
        if terminated or truncated:
            obs, _ = self.env.reset()
        return (
            np.asarray(obs)[None],
            np.array([reward], dtype=np.float64),
            np.array([terminated]),
            np.array([truncated]),
            real_next,
            [info],
        )

    # ---- resumable state -----------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able metadata, arrays): the state of every member environment (see the module doc)."""
        metas, arrays = [], {}
        exact = len(self.members) == self.n
        for i, member in enumerate(self.members):
            meta: dict[str, Any] = {"custom": {}}
            unwrapped = member.unwrapped
            rng = getattr(unwrapped, "_np_random", None)
            meta["np_random"] = None if rng is None else copy.deepcopy(rng.bit_generator.state)
            for depth, layer in enumerate(_chain(member)):
                if isinstance(layer, TimeLimit):
                    meta["elapsed_steps"] = layer._elapsed_steps
                if hasattr(type(layer), "get_resume_state"):
                    meta["custom"][str(depth)] = layer.get_resume_state()
            if hasattr(unwrapped, "data") and hasattr(unwrapped, "model") and hasattr(unwrapped.data, "qpos"):
                for name in _MUJOCO_ARRAYS:
                    arrays[f"{i}/{name}"] = np.array(getattr(unwrapped.data, name), copy=True)
                meta["time"] = float(unwrapped.data.time)
            elif isinstance(getattr(unwrapped, "state", None), np.ndarray | tuple | list):
                arrays[f"{i}/state"] = np.array(unwrapped.state, copy=True)
                meta["steps_beyond_terminated"] = getattr(unwrapped, "steps_beyond_terminated", None)
            elif not hasattr(type(unwrapped), "get_resume_state"):
                exact = False  # wrappers' counters alone do not bring back the environment's episode
            metas.append(meta)
        return {"exact": exact, "members": metas}, arrays

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bool:
        """Restore :meth:`state` into freshly made environments; False (nothing restored) if not exact."""
        if not meta["exact"] or len(meta["members"]) != len(self.members):
            return False
        self.reset()  # wrappers that enforce reset-before-step (OrderEnforcing, PassiveEnvChecker) are satisfied
        for i, (member, saved) in enumerate(zip(self.members, meta["members"])):
            unwrapped = member.unwrapped
            if saved["np_random"] is not None:
                unwrapped.np_random.bit_generator.state = copy.deepcopy(saved["np_random"])
            for depth, layer in enumerate(_chain(member)):
                if isinstance(layer, TimeLimit) and "elapsed_steps" in saved:
                    layer._elapsed_steps = saved["elapsed_steps"]
                if str(depth) in saved["custom"]:
                    layer.set_resume_state(saved["custom"][str(depth)])
            if f"{i}/qpos" in arrays:
                import mujoco

                for name in _MUJOCO_ARRAYS:
                    getattr(unwrapped.data, name)[:] = arrays[f"{i}/{name}"]
                unwrapped.data.time = saved["time"]
                mujoco.mj_forward(unwrapped.model, unwrapped.data)
                unwrapped.data.qacc_warmstart[:] = arrays[f"{i}/qacc_warmstart"]
            elif f"{i}/state" in arrays:
                unwrapped.state = np.array(arrays[f"{i}/state"], copy=True)
                if saved.get("steps_beyond_terminated") is not None:
                    unwrapped.steps_beyond_terminated = saved["steps_beyond_terminated"]
        return True

    def close(self) -> None:
        self.env.close()


def _chain(env: gym.Env) -> list:
    """The wrappers of ``env``, outermost first, then the unwrapped environment."""
    layers = []
    while isinstance(env, gym.Wrapper):
        layers.append(env)
        env = env.env
    layers.append(env)
    return layers
