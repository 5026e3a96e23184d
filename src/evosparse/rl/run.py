"""An RL training run in a run folder: what ``evosparse rl train`` does, and its exact resume.

:func:`train_rl` runs one :class:`RunConfig`:

1. **Check** the config, make the training and evaluation environments and the agent, all *before* the
   folder is touched: a bad environment id, an algorithm that cannot act in the action space, or a density
   out of range leaves no trace.
2. **Open** the folder with :class:`evosparse.io.RunFolder` (kind ``"rl"``): a lock, the manifest with the
   config, and the refuse / resume / overwrite decision in that one place.
3. **Learn** with :class:`RunCallback`: every ``eval_every`` steps a deterministic evaluation on the separate
   evaluation environment (``eval_episodes`` episodes, seeds ``eval_seed + i``) appended to ``history.csv``
   / ``history.json`` (and TensorBoard if installed); every ``checkpoint_every`` steps and at the end a
   checkpoint (``checkpoint.json`` last: the commit point). A non-finite loss or weight stops the run with
   :class:`DivergenceError`; the last checkpoint, written before it, is kept. With ``keep_best`` the agent is
   evaluated before it learns too, and ``best/`` holds a checkpoint of the best evaluation so far (highest mean
   return; the earlier one on ties), as SB3's ``EvalCallback(best_model_save_path=...)`` keeps: evaluate on a
   validation split (``evosparse.rl.grid``'s ``validation=True``), not on the test data, to choose by it.
4. **Summarise** in ``summary.json``: final return (mean and sd over the evaluation episodes), parameters
   per network, an estimate of the training FLOPs, steps per second.

A resumed run (``resume=True``) continues from the checkpoint and ends exactly where the uninterrupted run
would have: the agent's state includes networks with their topology, optimizer moments, replay buffer,
random generators and the environment's simulator state (see :mod:`evosparse.rl.envs`).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from evosparse._config import (
    Config,
    Rule,
    at_least,
    check_unknown_keys,
    one_of,
    param,
    positive,
    read_text,
    toml_value,
)
from evosparse.io import RunFolder, dump_arrays, dump_json, file_sha256, load_arrays, load_json
from evosparse.io.errors import FileFormatError
from evosparse.rl.callbacks import BaseCallback
from evosparse.rl.evaluation import evaluate_policy
from evosparse.rl.networks import count_weights
from evosparse.rl.registry import ALGORITHMS, algorithm_class
from evosparse.rl.wrappers import DelayedReward, DynamicsChange

# One DivergenceError and one set_threads for training and RL runs (rl sits above train: see test_layers).
from evosparse.train.loop import DivergenceError
from evosparse.train.run import set_threads

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 with the tomli backport
    import tomli as tomllib

KIND = "rl"
CHECKPOINT_JSON, CHECKPOINT_ARRAYS, CHECKPOINT_TENSORS = "checkpoint.json", "checkpoint.npz", "checkpoint.pt"
BEST = "best"  # the subfolder of the best evaluation's checkpoint (keep_best)
RUN_FILES = (
    "config.toml", "history.csv", "history.json", "summary.json", "returns.png", "tensorboard", BEST,
    CHECKPOINT_JSON, CHECKPOINT_ARRAYS, CHECKPOINT_TENSORS,
)  # fmt: skip
CHECKPOINT_FORMAT = "evosparse.rl.checkpoint"
# Settings that may differ on resume: they do not change what the run computes up to its end.
RESUMABLE_CHANGES = ("total_steps", "threads")


def _table(value: Any) -> bool:
    return value is None or isinstance(value, Mapping)


# A free-form table: keyword arguments of gymnasium.make, or the settings of the algorithm that ``algo``
# chooses. No fixed Config class can declare these, so they are plain dicts, checked in validate().
TABLE = Rule(_table, "a table of settings (a dict)")
TABLES = ("env_kwargs", "eval_env_kwargs", "agent")


# ---- the config ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunConfig(Config):
    """Everything an RL run depends on: environment, algorithm settings, budget, evaluation and checkpoints.

    ``agent`` holds the fields of the algorithm's config (:class:`evosparse.rl.DQNConfig`, ``TD3Config``,
    ``SACConfig``) that differ from their defaults; it is validated by that class.
    """

    env: str = param(
        "Pendulum-v1",
        "gymnasium id of the environment (evosparse/... for the smart grid)",
        rule=Rule(
            lambda value: isinstance(value, str) and bool(value.strip()),
            "a gymnasium environment id such as Pendulum-v1",
        ),
    )
    algo: str = param("sac", "algorithm: dqn, td3 or sac", rule=one_of(ALGORITHMS))
    total_steps: int = param(100_000, "environment steps of training", rule=at_least(1))
    seed: int = param(
        0, "seed of the agent (networks, exploration, replay) and of the first training reset", rule=at_least(0)
    )
    env_kwargs: dict = param(None, "keyword arguments of gymnasium.make for the training environment", rule=TABLE)
    eval_env_kwargs: dict = param(None, "keyword arguments for the evaluation environment, over env_kwargs", rule=TABLE)
    eval_every: int = param(5_000, "environment steps between evaluations", rule=at_least(1))
    eval_episodes: int = param(10, "episodes per evaluation (deterministic policy)", rule=at_least(1))
    eval_seed: int = param(
        1_000_000, "seed of the first evaluation episode (episode i: eval_seed + i)", rule=at_least(0)
    )
    checkpoint_every: int = param(
        10_000, "environment steps between checkpoints (and one at the end)", rule=at_least(1)
    )
    keep_best: bool = param(
        False, "evaluate before learning too, and keep the best evaluation's checkpoint in best/ (choose on validation)"
    )
    reward_every: int = param(1, "pay the reward every this many steps of an episode (1: no delay)", rule=at_least(1))
    change_at_step: int | None = param(
        None, "MuJoCo: training step of a sudden change of dynamics (None: none)", rule=at_least(0)
    )
    body_mass_scale: float = param(1.0, "MuJoCo change: factor on every body's mass and inertia", rule=positive)
    gravity: float | None = param(None, "MuJoCo change: new gravity (z component, e.g. -4.9; None: unchanged)")
    friction_scale: float = param(1.0, "MuJoCo change: factor on every geom's friction", rule=positive)
    threads: int | None = param(1, "torch CPU threads (None: leave torch's default)", rule=at_least(1))
    agent: dict = param(
        None, "settings of the algorithm's config (learning_rate, strategy, actor_density, ...)", rule=TABLE
    )

    def validate(self) -> None:
        for name in TABLES:  # None (the default) is the empty table; a copy, so the caller's dict may change
            object.__setattr__(self, name, dict(getattr(self, name) or {}))
        changes = self.body_mass_scale != 1.0 or self.friction_scale != 1.0 or self.gravity is not None
        if changes and self.change_at_step is None:
            raise ValueError("body_mass_scale, gravity and friction_scale need change_at_step (when the change comes)")
        if self.change_at_step is not None and not changes:
            raise ValueError("change_at_step needs body_mass_scale, gravity or friction_scale (what changes)")
        self.algo_config()  # validates the agent settings, naming the field

    def algo_config(self):
        """The algorithm's config: its defaults with ``agent`` applied."""
        config_class = ALGORITHMS[self.algo].config_class
        return config_class.from_dict(self.agent, source=f"the {self.algo} settings ([agent])")

    def to_toml(self) -> str:
        """TOML: the run's settings (by the base), then ``[env_kwargs]``, ``[eval_env_kwargs]`` and ``[agent]``.

        The base writes a section's fixed fields; these free-form tables it leaves to this adapter. A None
        item is left out (TOML has no null).
        """
        scalars = copy.copy(self)  # no validation: the tables as None, which the base writes as a comment
        for name in TABLES:
            object.__setattr__(scalars, name, None)
        lines = [super(RunConfig, scalars).to_toml().rstrip("\n")]
        for name in TABLES:
            values = {key: value for key, value in getattr(self, name).items() if value is not None}
            if values:
                lines += ["", f"[{name}]"] + [f"{key} = {toml_value(value)}" for key, value in values.items()]
        return "\n".join(lines) + "\n"


def read_config_values(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML (or JSON) run config file, unknown keys rejected with a hint.

    The agent's settings may stand in an ``[agent]`` table or at the top level (flat, as flags are).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    text = read_text(path)
    kind = "JSON" if path.suffix == ".json" else "TOML"
    try:
        values = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"config file {path} is not valid {kind}: {' '.join(str(error).split())}") from None
    return config_values(values, source=f"config file {path}")


def config_values(values: dict[str, Any], *, source: str) -> dict[str, Any]:
    """The run settings of a parsed config document: unknown keys rejected, flat agent settings into ``agent``."""
    agent_names = {name for entry in ALGORITHMS.values() for name in entry.config_class.field_names()}
    check_unknown_keys(values, [*RunConfig.flat_names(), *sorted(agent_names)], source=source)
    flat = {key: values.pop(key) for key in list(values) if key in agent_names}
    if flat:
        values["agent"] = {**flat, **(values.get("agent") or {})}
    return values


# ---- environments ----------------------------------------------------------------------------------------------
def make_run_env(config: RunConfig, *, evaluation: bool = False) -> gym.Env:
    """The training (or evaluation) environment of a run, with its robustness wrappers.

    The evaluation environment takes ``eval_env_kwargs`` over ``env_kwargs`` and pays rewards undelayed
    (episode returns are the same, and an evaluation reads only returns).
    """
    if config.env.startswith("evosparse/"):
        import evosparse.envs  # noqa: F401  (registers the evosparse/... ids)
    kwargs = {**config.env_kwargs, **(config.eval_env_kwargs if evaluation else {})}
    try:
        env = gym.make(config.env, **kwargs)
    except gym.error.Error as error:
        raise ValueError(f"env {config.env!r}: {' '.join(str(error).split())}") from None
    except TypeError as error:  # an unknown keyword argument of the environment
        raise ValueError(f"env_kwargs of {config.env!r}: {' '.join(str(error).split())}") from None
    if config.reward_every > 1 and not evaluation:
        env = DelayedReward(env, config.reward_every)
    if config.change_at_step is not None:
        env = DynamicsChange(
            env,
            at_step=config.change_at_step,
            body_mass_scale=config.body_mass_scale,
            gravity=config.gravity,
            friction_scale=config.friction_scale,
        )
    return env


def build_agent(config: RunConfig, env: gym.Env | None = None):
    """A fresh agent of ``config`` on its training environment (made here unless given)."""
    algo_config = config.algo_config()
    if env is None:
        env = make_run_env(config)
    if algo_config.n_envs > 1:
        raise ValueError(
            f"n_envs must be 1 in a run folder (got {algo_config.n_envs}): evaluation and checkpoints follow one "
            "training environment"
        )
    return algorithm_class(config.algo)(env, algo_config, seed=config.seed)


# ---- checkpoints ------------------------------------------------------------------------------------------------
def checkpoint_files(agent, run_id: str, history: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, bytes]:
    """The three checkpoint files as bytes; ``checkpoint.json`` records the checksums of the other two."""
    state = agent.get_state()
    arrays = dump_arrays(state["arrays"], format=CHECKPOINT_FORMAT + ".arrays")
    buffer = io.BytesIO()
    torch.save(state["tensors"], buffer)
    tensors = buffer.getvalue()
    record = {
        "run_id": run_id,
        "num_timesteps": agent.num_timesteps,
        "meta": state["meta"],
        "history": history,
        "extra": extra,
        "sha256": {
            CHECKPOINT_ARRAYS: hashlib.sha256(arrays).hexdigest(),
            CHECKPOINT_TENSORS: hashlib.sha256(tensors).hexdigest(),
        },
    }
    return {
        CHECKPOINT_ARRAYS: arrays,
        CHECKPOINT_TENSORS: tensors,
        CHECKPOINT_JSON: dump_json(record, format=CHECKPOINT_FORMAT),
    }


def read_checkpoint(folder: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(record of checkpoint.json, agent state) after checking every file's checksum."""
    folder = Path(folder)
    record = load_json(folder / CHECKPOINT_JSON, format=CHECKPOINT_FORMAT, what="RL checkpoint")
    for name, digest in record["sha256"].items():
        if not (folder / name).is_file() or file_sha256(folder / name) != digest:
            raise FileFormatError(f"{folder / name} is missing or fails its SHA-256 checksum (damaged checkpoint)")
    arrays = load_arrays(folder / CHECKPOINT_ARRAYS, format=CHECKPOINT_FORMAT + ".arrays", what="RL checkpoint arrays")
    tensors = torch.load(folder / CHECKPOINT_TENSORS, map_location="cpu", weights_only=True)
    return record, {"meta": record["meta"], "arrays": arrays, "tensors": tensors}


def load_agent(run_dir: str | Path, env: gym.Env | None = None, *, best: bool = False):
    """The agent of a run folder at its last checkpoint, or with ``best`` at its best evaluation's (``keep_best``);
    on ``env``, default: a new training environment."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if best and not (run_dir / BEST / CHECKPOINT_JSON).is_file():
        raise ValueError(f"RUN {run_dir} has no best checkpoint: train it with keep_best = true")
    agent = build_agent(config, env)
    _, state = read_checkpoint(run_dir / BEST if best else run_dir)
    agent.set_state(state)
    return agent


def read_checkpointed_manifest(run_dir: str | Path, *, kind: str, what: str) -> dict:
    """The manifest of a run folder of ``kind`` that holds a checkpoint; errors name the folder and ``what``."""
    from evosparse.io import read_manifest

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"RUN {run_dir} is not a folder")
    manifest = read_manifest(run_dir)
    if manifest is None or manifest.get("kind") != kind:
        found = "no run" if manifest is None else f"a {manifest.get('kind')} run"
        raise ValueError(f"RUN {run_dir} holds {found}, not {what}")
    if not (run_dir / CHECKPOINT_JSON).is_file():
        raise ValueError(f"RUN {run_dir} has no checkpoint yet (it stopped before its first one)")
    return manifest


def read_run_config(run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` recorded in a run folder's manifest."""
    manifest = read_checkpointed_manifest(run_dir, kind=KIND, what="a run of 'evosparse rl train'")
    return RunConfig.from_dict(manifest["config"], source=f"{run_dir}/run.json")


# ---- FLOPs ------------------------------------------------------------------------------------------------------
def update_flops(agent) -> tuple[int, int]:
    """(FLOPs of one gradient step, FLOPs of one action), from the stored weights of the online networks.

    A multiply-add is 2 FLOPs; a backward pass costs 2 forward passes (weight and input gradients), 1 when
    only the input gradient is needed (the critic inside the actor's loss). Per sample of the batch:

    * DQN: Q train 3F, target 1F, online Q on the next state 1F (double DQN);
    * TD3: target actor 1F, target twin critic 1F, critic train 3F; every ``policy_delay``: actor train 3F,
      first critic forward + input gradient 2F of one of the two critics;
    * SAC: actor on the next state 1F, target critic 1F, critic train 3F, actor train 3F, critic forward +
      input gradient 2F.

    Topology updates (every ``update_every`` steps) are left out: they are O(nnz) once per thousand steps.
    """
    weights = {
        name: count_weights(network)[0] for name, network in agent.networks.items() if not name.endswith("_target")
    }
    critic, actor = 2 * weights.get("critic", 0), 2 * weights.get("actor", 0)  # one forward pass of each
    config = agent.config
    if agent.name == "dqn":
        per_sample = critic * (5 if config.double_q else 4)
        act = critic
    elif agent.name == "td3":
        per_sample = actor + 4 * critic + (3 * actor + critic) / config.policy_delay  # 2F of half the twin
        act = actor
    else:
        per_sample = 4 * actor + 6 * critic
        act = actor
    return int(per_sample * config.batch_size), int(act)


# ---- the run ----------------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """What :func:`train_rl` returns."""

    config: RunConfig
    out_dir: Path
    agent: Any
    history: list[dict[str, Any]]
    summary: dict[str, Any]


class _SegmentCallback(BaseCallback):
    """Runs one segment of the run inside ``agent.learn``; stops it after ``end`` steps (that step's update done).

    The segment's ``learn`` call gets ``schedule_horizon=total_steps``, so schedules (DQN's epsilon) span the
    whole run and segments and resumes follow the uninterrupted run exactly.
    """

    def __init__(self, end: int, *, check_every: int, bar=None, extra: Iterable[BaseCallback] = ()):
        super().__init__()
        self.end, self.check_every, self.bar = end, check_every, bar
        self.extra = list(extra)
        self.episodes: list[float] = []
        self.diverged: str | None = None

    def _init_callback(self) -> None:
        for callback in self.extra:
            callback.init_callback(self.model)

    def _on_training_start(self) -> None:
        for callback in self.extra:
            callback.on_training_start()

    def _update_locals(self, locals_: dict[str, Any]) -> None:
        for callback in self.extra:
            callback.update_locals(locals_)

    def _on_step(self) -> bool:
        step = self.num_timesteps
        if self.bar is not None:
            self.bar.update(1)
        for info in self.locals.get("infos", ()):
            if "episode" in info:
                self.episodes.append(float(info["episode"]["r"]))
        keep_going = all([callback.on_step() for callback in self.extra])
        if step % self.check_every == 0:
            self.diverged = non_finite(self.model)
        return keep_going and self.diverged is None and step < self.end

    def _on_rollout_end(self) -> None:
        for callback in self.extra:
            callback.on_rollout_end()

    def _on_training_end(self) -> None:
        for callback in self.extra:
            callback.on_training_end()


def non_finite(agent) -> str | None:
    """The name of a non-finite loss or network of ``agent`` (None when all are finite)."""
    for name, value in agent.logs.items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} = {value}"
    for name, network in agent.networks.items():
        for parameter_name, parameter in network.named_parameters():
            if not bool(torch.isfinite(parameter).all()):
                return f"weights {name}.{parameter_name}"
    return None


def _history_csv(history: list[dict[str, Any]]) -> bytes:
    columns: list[str] = []
    for row in history:
        columns += [key for key in row if key not in columns and key != "returns"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows([{key: value for key, value in row.items() if key != "returns"} for row in history])
    return buffer.getvalue().encode("utf-8")


def _tensorboard(folder: Path):
    """A TensorBoard writer into ``folder/tensorboard``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder / "tensorboard"))


def _check_resume(config: RunConfig) -> Callable[[Any], None]:
    def check(saved: Any) -> None:
        saved_config = RunConfig.from_dict(saved, source="the saved run config")
        different = [
            name for name in RunConfig.flat_names()
            if name not in RESUMABLE_CHANGES and getattr(saved_config, name) != getattr(config, name)
        ]  # fmt: skip
        if different:
            raise ValueError(
                f"--resume continues the saved run, whose {', '.join(different)} differ from the ones given; "
                f"only {', '.join(RESUMABLE_CHANGES)} may change (or start a new run with --overwrite)"
            )
        if config.total_steps < saved_config.total_steps:
            raise ValueError(
                f"total_steps can only grow on --resume (saved {saved_config.total_steps}, got {config.total_steps})"
            )

    return check


def train_rl(
    config: RunConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], object] | None = print,
    callbacks: Iterable[BaseCallback] = (),
    on_evaluation: Callable[[dict[str, Any]], object] | None = None,
) -> RunResult:
    """Run (or with ``resume=True`` continue) ``config`` in ``out_dir``; see the module doc.

    On resume, ``config`` may differ from the saved one only in RESUMABLE_CHANGES (``total_steps`` may grow).
    ``callbacks`` (SB3-shaped) see every training step; one returning False stops the run early (its
    folder stays resumable from the last checkpoint). ``on_evaluation`` is called with every evaluation's
    history row once it is recorded (``evosparse rl tune`` reports it to Ray Tune).
    """
    out_dir = Path(out_dir)
    set_threads(config.threads)
    env, eval_env = make_run_env(config), make_run_env(config, evaluation=True)
    agent = build_agent(config, env)  # bad algorithm / action space / densities: before the folder is touched
    folder = RunFolder.open(
        out_dir, kind=KIND, files=RUN_FILES, config=config.to_dict(), resume=resume, overwrite=overwrite,
        check=_check_resume(config),
    )  # fmt: skip
    try:
        return _run(config, folder, agent, eval_env, resume=resume, progress=progress, log=log, callbacks=callbacks,
                    on_evaluation=on_evaluation)  # fmt: skip
    finally:
        folder.close()
        env.close()
        eval_env.close()


def _run(config, folder, agent, eval_env, *, resume, progress, log, callbacks, on_evaluation) -> RunResult:
    history: list[dict[str, Any]] = []
    extra = {"flops": 0.0, "train_seconds": 0.0, "updates_counted": 0, "steps_counted": 0}
    if resume:
        record, state = read_checkpoint(folder.path)
        folder.check_run_id(record["run_id"], folder.path / CHECKPOINT_JSON)
        agent.set_state(state)
        history, extra = record["history"], record["extra"]
        if config.total_steps != folder.config["total_steps"]:
            folder.update_manifest(config=config.to_dict())
        if log:
            log(f"resumed {folder.path} at step {agent.num_timesteps:,} of {config.total_steps:,}")
    else:
        folder.write("config.toml", config.to_toml().encode("utf-8"))
    writer = _tensorboard(folder.path)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=config.total_steps, initial=agent.num_timesteps, unit="step", desc=f"{config.algo} {config.env}"
        )
    user_callbacks = list(callbacks)
    try:
        if config.keep_best and not history:  # the untrained agent is a candidate too (a residual one: the rule)
            history.append(_evaluate(config, agent, eval_env, [], extra))
            _log_row(history[-1], writer, log)
            _keep_if_best(folder, agent, history, extra)
        while agent.num_timesteps < config.total_steps:
            start = agent.num_timesteps
            end = min(
                config.total_steps,
                (start // config.eval_every + 1) * config.eval_every,
                (start // config.checkpoint_every + 1) * config.checkpoint_every,
            )
            segment = _SegmentCallback(end, check_every=1000, bar=bar, extra=user_callbacks)
            updates_before, began = agent.n_updates, time.perf_counter()
            agent.learn(end - start, callback=segment, schedule_horizon=config.total_steps)
            extra["train_seconds"] += time.perf_counter() - began
            per_update, per_action = update_flops(agent)
            extra["flops"] += (agent.n_updates - updates_before) * per_update + (
                agent.num_timesteps - start
            ) * per_action
            diverged = segment.diverged or non_finite(agent)
            if diverged:
                raise DivergenceError(
                    f"training diverged by step {agent.num_timesteps:,}: {diverged} is not finite; the last good "
                    f"checkpoint (step {history[-1]['step'] if history else 0:,} or earlier) is kept in {folder.path}: "
                    "lower learning_rate or set max_grad_norm, then start again with --overwrite"
                )
            step = agent.num_timesteps
            if step < end:  # a user callback stopped the run: keep the last checkpoint as it is
                if log:
                    log(f"stopped at step {step:,} by a callback; resume from the last checkpoint with --resume")
                break
            if step % config.eval_every == 0 or step == config.total_steps:
                history.append(_evaluate(config, agent, eval_env, segment.episodes, extra))
                _log_row(history[-1], writer, log)
                if config.keep_best:
                    _keep_if_best(folder, agent, history, extra)
            if step % config.checkpoint_every == 0 or step == config.total_steps:
                files = checkpoint_files(agent, folder.run_id, history, extra)
                files["history.csv"] = _history_csv(history)
                files["history.json"] = json.dumps(history, indent=1).encode("utf-8")
                folder.write_set(files, last=(CHECKPOINT_JSON,))
            if on_evaluation is not None and history and history[-1]["step"] == step:
                on_evaluation(history[-1])  # after the checkpoint: a search that stops here loses nothing
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    summary = run_summary(config, agent, history, extra)
    if agent.num_timesteps >= config.total_steps:
        folder.write("summary.json", (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
        folder.update_manifest(finished=True)
    return RunResult(config, folder.path, agent, history, summary)


def _keep_if_best(folder, agent, history: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    """Write ``best/`` (a whole checkpoint, ``checkpoint.json`` last) if the last evaluation beats every earlier
    one. Written before the run's own checkpoint, so a run resumed from that holds the best of its history."""
    returns = [row["return_mean"] for row in history]
    if returns[-1] > max(returns[:-1], default=-math.inf):
        files = checkpoint_files(agent, folder.run_id, history, extra)
        (folder.path / BEST).mkdir(exist_ok=True)
        folder.write_set({f"{BEST}/{name}": data for name, data in files.items()}, last=(f"{BEST}/{CHECKPOINT_JSON}",))


def _evaluate(config: RunConfig, agent, eval_env, episodes: list[float], extra: dict[str, Any]) -> dict[str, Any]:
    for layer in _wrappers(eval_env):
        if isinstance(layer, DynamicsChange):  # the dynamics the training environment has at this step
            layer.freeze_at(agent.num_timesteps)
    evaluation = evaluate_policy(agent, eval_env, episodes=config.eval_episodes, seed=config.eval_seed)
    counts = agent.parameter_counts()
    row: dict[str, Any] = {"step": agent.num_timesteps, **evaluation.row()}
    row["train_return_mean"] = float(np.mean(episodes)) if episodes else None  # None: no episode ended yet
    row["train_episodes"] = len(episodes)
    row["n_updates"] = agent.n_updates
    row.update({f"{name}_weights": count["weights"] for name, count in counts.items()})
    row.update({key: value for key, value in agent.logs.items() if key not in ("n_updates", "num_timesteps")})
    row["flops"] = extra["flops"]
    row["steps_per_second"] = agent.num_timesteps / max(extra["train_seconds"], 1e-9)
    row["returns"] = list(evaluation.returns)
    return row


def _wrappers(env: gym.Env) -> list[gym.Env]:
    layers = []
    while isinstance(env, gym.Wrapper):
        layers.append(env)
        env = env.env
    return layers


def _log_row(row: dict[str, Any], writer, log) -> None:
    if writer is not None:
        step = row["step"]
        for key, value in row.items():
            if key not in ("step", "returns") and isinstance(value, int | float) and math.isfinite(value):
                writer.add_scalar(
                    f"eval/{key}" if key.startswith(("return", "length")) else f"train/{key}", value, step
                )
        writer.flush()
    if log:
        log(
            f"step {row['step']:>9,}  return {row['return_mean']:10.2f} +- {row['return_std']:<8.2f} "
            f"train {_number(row['train_return_mean']):>10}  {row['steps_per_second']:7.1f} steps/s"
        )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def run_summary(config: RunConfig, agent, history: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    """summary.json: the final evaluation, parameters per network, training FLOPs and speed."""
    algo_config = agent.config
    last = history[-1] if history else {}
    return {
        "env": config.env,
        "algo": config.algo,
        "strategy": algo_config.strategy,
        "actor_density": algo_config.actor_density,
        "critic_density": algo_config.critic_density,
        "seed": config.seed,
        "steps": agent.num_timesteps,
        "updates": agent.n_updates,
        "final_return_mean": last.get("return_mean"),
        "final_return_std": last.get("return_std"),
        "final_returns": last.get("returns"),
        "best_return_mean": max((row["return_mean"] for row in history), default=None),
        "best_step": max(history, key=lambda row: row["return_mean"])["step"] if history else None,
        "parameters": agent.parameter_counts(),
        "training_flops": extra["flops"],
        **recovery(config, history),
        "train_seconds": extra["train_seconds"],
        "steps_per_second": agent.num_timesteps / max(extra["train_seconds"], 1e-9),
    }


def recovery(config: RunConfig, history: list[dict[str, Any]]) -> dict[str, Any]:
    """After a sudden change of dynamics: the return before it (the last evaluation before the change),
    right after it (the first evaluation with the changed dynamics), and the steps from the change until an
    evaluation returns to the return before it (None: not within the run).

    An evaluation at step s plays the dynamics of training step s + 1: changed once s >= change_at_step.
    """
    if config.change_at_step is None:
        return {}
    before = [row for row in history if row["step"] < config.change_at_step]
    after = [row for row in history if row["step"] >= config.change_at_step]
    if not before or not after:
        return {"return_before_change": None, "return_after_change": None, "recovery_steps": None}
    level = before[-1]["return_mean"]
    back = [row["step"] for row in after if row["return_mean"] >= level]
    return {
        "return_before_change": level,
        "return_after_change": after[0]["return_mean"],
        "recovery_steps": back[0] - config.change_at_step if back else None,
    }


def format_summary(summary: dict[str, Any]) -> str:
    weights = ", ".join(
        f"{name} {count['weights']:,}/{count['dense_weights']:,}" for name, count in summary["parameters"].items()
    )
    return (
        f"{summary['algo']} {summary['strategy']} on {summary['env']}: final return {summary['final_return_mean']:.2f} "
        f"+- {summary['final_return_std']:.2f} after {summary['steps']:,} steps; weights {weights}; "
        f"{summary['training_flops']:.3g} training FLOPs; {summary['steps_per_second']:.0f} steps/s"
    )
