"""Hyperparameter search of the RL agents on Ray Tune (``evosparse rl tune``), with ASHA early stopping.

The engine is :mod:`evosparse.train.tune` (search forms, Ray Tune, ASHA, ``trials.csv`` / ``best.toml`` /
``tune.json``); this module says what an RL search is (:class:`RLSearch`):

* **settings**: every ``evosparse rl train`` flag of the run (``reward_every``, ``env_kwargs`` ...) and of
  the algorithm's config (``learning_rate``, ``batch_size``, ``actor_density``, ``strategy`` ...), but
  :data:`NOT_SEARCHED`: the environment, the algorithm and the budget and evaluation protocol stay those of
  the base, so that every trial is scored the same way.
* **trial**: :func:`evosparse.rl.run.train_rl` into ``<out>/trials/<trial id>`` (one CPU, one thread), a
  checkpoint at every evaluation, each evaluation's mean return reported to Tune.
* **metric**: the mean return of the deterministic evaluation episodes (``eval_episodes`` episodes of the
  evaluation environment, every ``eval_every`` steps; ASHA's rungs count evaluations). On the smart-grid
  environments the evaluation environment is the held-out month, so, as with the test accuracy of
  ``evosparse tune``, the best return of a search is an optimistic estimate: confirm the chosen recipe with
  other seeds (``evosparse rl train --config best.toml --seed S``).
* **ASHA's first rung** (unless ``--grace-period`` is given): the first evaluation after ``learning_starts``;
  earlier evaluations play the untrained networks, and stopping trials there would rank initialisations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evosparse.rl.registry import ALGORITHMS
from evosparse.rl.run import RunConfig, train_rl
from evosparse.train.tune import Dimension, SearchTarget, read_history, trial_folder

METRIC = "return_mean"
# The environment, the algorithm and the evaluation protocol define the score; threads are the search's; a
# run folder has one environment (n_envs 1); the keyword tables of the environment are not searched.
NOT_SEARCHED = ("env", "algo", "total_steps", "eval_every", "eval_episodes", "eval_seed", "checkpoint_every",
                "threads", "n_envs", "env_kwargs", "eval_env_kwargs")  # fmt: skip


class RLSearch(SearchTarget):
    """A search of ``evosparse rl train`` recipes around ``base``; the metric is the evaluation's mean return."""

    command, search_command, metric, time, count = "evosparse rl train", "rl tune", METRIC, "step", "evaluations"
    not_searched = NOT_SEARCHED

    def __init__(self, base: RunConfig) -> None:
        self.base = base
        self.agent_names = set(ALGORITHMS[base.algo].config_class.flat_names())

    def leaves(self) -> dict[str, Any]:
        run = {leaf.flat: leaf for leaf in RunConfig.leaves() if leaf.flat != "agent"}
        agent = {leaf.flat: leaf for leaf in ALGORITHMS[self.base.algo].config_class.leaves()}
        return {name: leaf for name, leaf in {**run, **agent}.items() if name not in NOT_SEARCHED}

    def check(self, name: str, value: Any) -> None:
        self.recipe({name: value})

    @property
    def reports(self) -> int:
        return math.ceil(self.base.total_steps / self.base.eval_every)  # every eval_every steps and at the end

    def trainable(self, out_dir: Path) -> Callable[[Mapping[str, Any]], None]:
        from ray import tune as ray_tune

        return ray_tune.with_parameters(run_trial, base=self.base.to_dict(), out_dir=str(out_dir))

    def scores(self, folder: Path) -> list[tuple[float, int]]:
        return [(row[METRIC], row["step"]) for row in read_history(folder / "history.json")]

    def recipe(self, values: Mapping[str, Any]) -> RunConfig:
        run = self.base.to_dict()
        run["agent"] = dict(run["agent"])
        for name, value in values.items():
            (run["agent"] if name in self.agent_names else run)[name] = value
        return RunConfig.from_dict(run, source=f"the {self.base.algo} run")

    def describe(self) -> dict[str, Any]:
        return self.base.to_dict()

    def show(self, score: float) -> str:
        return f"return {score:.2f}"

    def grace_period(self, search: Sequence[Dimension]) -> int:
        """The first evaluation after learning_starts (the largest searched one): before it every agent acts
        with its untrained networks, and a return there says nothing of a recipe."""
        starts = [self.base.algo_config().learning_starts]
        starts += [max(d.values) for d in search if d.name == "learning_starts"]  # bounds or values
        return max(starts) // self.base.eval_every + 1


def run_trial(params: Mapping[str, Any], *, base: Mapping[str, Any], out_dir: str) -> None:
    """One trial (in a Ray worker): ``base`` with the sampled ``params``, trained into ``<out_dir>/trials/<id>``.

    A checkpoint (with ``history.json``) at every evaluation: a trial that ASHA stops has written every
    return it reported.
    """
    from ray import tune

    config = RLSearch(RunConfig.from_dict(base)).recipe(params)
    config = config.replace(threads=1, checkpoint_every=config.eval_every)

    def report(row: Mapping[str, Any]) -> None:
        tune.report({METRIC: float(row[METRIC]), "step": int(row["step"])})

    train_rl(config, trial_folder(out_dir), overwrite=True, progress=False, log=None, on_evaluation=report)
