"""``evosparse rl tune``: the search space of an RL run, its bad input, and a real search on a local Ray
(2 CPUs) in which ASHA stops an agent that does not learn and the best recipe reads back as an
``evosparse rl train`` config."""

from __future__ import annotations

import csv
import json

import pytest

from evosparse.rl.run import RunConfig, read_config_values, read_run_config
from evosparse.rl.tune import RLSearch
from evosparse.train.tune import Dimension, parse_dimension


def search(**run) -> RLSearch:
    return RLSearch(RunConfig.from_dict({"env": "CartPole-v1", "algo": "dqn", **run}))


def cli(capsys, *argv) -> tuple[int, str, str]:
    """``evosparse ARGV`` in this process: (exit code, stdout, stderr); argparse's exits are caught."""
    from evosparse.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("learning_rate=log(1e-4,1e-2)", Dimension("learning_rate", "loguniform", (1e-4, 1e-2))),
        ("critic_hidden=choice([32],[64,64])", Dimension("critic_hidden", "choice", ((32,), (64, 64)))),
        ("strategy=grid(static,set)", Dimension("strategy", "grid", ("static", "set"))),
        ("reward_every=randint(1,24)", Dimension("reward_every", "randint", (1, 24))),
        ("double_q=grid(true,false)", Dimension("double_q", "grid", (True, False))),
    ],
)
def test_search_forms_over_run_and_agent_settings(text, expected):
    target = search(agent={"strategy": "set", "critic_density": 0.5})
    assert parse_dimension(text, target) == expected


def test_recipe_puts_agent_settings_in_the_agent_table():
    target = search(total_steps=2000, eval_every=1000, agent={"batch_size": 64})
    config = target.recipe({"learning_rate": 1e-3, "reward_every": 4})
    assert config.reward_every == 4 and config.agent == {"batch_size": 64, "learning_rate": 1e-3}
    assert target.reports == 2 and search(total_steps=2001, eval_every=1000).reports == 3  # and one at the end


def test_asha_first_rung_is_the_first_evaluation_after_learning_starts():
    target = search(total_steps=10_000, eval_every=1000, agent={"learning_starts": 1000})
    assert target.grace_period([]) == 2  # the evaluation at step 1000 plays the untrained networks
    assert target.grace_period([parse_dimension("learning_starts=randint(100,2500)", target)]) == 3
    assert search(eval_every=1000, agent={"learning_starts": 999}).grace_period([]) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "critic_density=uniform(0.1,1.5)",
            "strategy 'dense' needs actor_density = critic_density = 1, got 1.0 and 0.1; use static, set",
        ),  # fmt: skip  (each value is checked with the base's other settings)
        (
            "alpha_init=uniform(0.1,1)",
            "'alpha_init' is not a setting a search can set; the settings are the "
            "`evosparse rl train` flags but env, algo, total_steps",
        ),  # fmt: skip
        ("learning_rat=log(1e-4,1e-2)", "did you mean 'learning_rate'?"),
        ("total_steps=choice(100,200)", "'total_steps' is not a setting a search can set"),
        ("batch_size=uniform(8,64)", "uniform draws real numbers, but batch_size is an integer setting"),
        ("strategy=choice(dense,magic)", "strategy must be one of dense, static, set, rigl, gmp; got 'magic'"),
    ],
)
def test_bad_search_is_one_line(text, message):
    with pytest.raises(ValueError) as error:
        parse_dimension(text, search())
    assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"critic_density must be in \(0, 1\], got 1.5"):
        parse_dimension("critic_density=uniform(0.1,1.5)", search(agent={"strategy": "set"}))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--search", "learning_rate=normal(0,1)"), "error: --search 'learning_rate=normal(0,1)': unknown form"),
        ((), "nothing to search: give --search NAME=FORM(...)"),
        (
            ("--search", "learning_rate=log(1e-4,1e-2)", "--grace-period", "3"),
            "grace_period must be in [1, evaluations=2], got 3",
        ),  # fmt: skip
        (("--search", "learning_rate=log(1e-4,1e-2)", "--algo", "ppo"), "argument --algo: invalid choice: 'ppo'"),
        (("--search", "learning_rate=log(1e-4,1e-2)", "--alpha-init", "0.5"), "--alpha-init is a setting of sac"),
        (("--search", "learning_rate=log(1e-4,1e-2)", "--threads", "2"), "unrecognized arguments: --threads"),
    ],
)
def test_rl_tune_bad_input(capsys, tmp_path, argv, message):
    base = ("--env", "CartPole-v1", "--algo", "dqn", "--total-steps", "2000", "--eval-every", "1000")
    code, _, errors = cli(capsys, "rl", "tune", "--out-dir", tmp_path / "x", *base, *argv)
    assert code == 2 and message in errors and errors.startswith("error:"), errors
    assert not (tmp_path / "x").exists()


def test_rl_tune_asha_stops_the_agent_that_does_not_learn(tmp_path, ray_cluster, capsys):
    # Three DQN trials on CartPole, two CPUs: the two that learn from step 100 are identical (same seed) and
    # start first; the third (learning_starts 5000 > total_steps: it never updates, its greedy policy holds
    # one action, ~10 steps per episode) starts when one of them ended, so at its first evaluation two
    # returns of ~30 are recorded: ASHA (keep the best half) must stop it after that one evaluation.
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        'env = "CartPole-v1"\nalgo = "dqn"\ntotal_steps = 2000\neval_every = 1000\neval_episodes = 3\n'
        "[agent]\ncritic_hidden = [32, 32]\ntarget_update_interval = 250\nexploration_fraction = 0.3\n"
        "learning_rate = 1e-3\ntrain_freq = 1\nbatch_size = 64\n"
        "[tune]\nsamples = 1\nreduction_factor = 2\ngrace_period = 1\n"  # the non-learner is judged at step 1000
        '[tune.search]\nlearning_starts = "grid(100, 100, 5000)"\n'
    )
    out = tmp_path / "search"
    code, printed, errors = cli(capsys, "rl", "tune", recipe, "--out-dir", out, "--search", "gamma=choice(0.99)")
    assert code == 0, errors
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [(r["learning_starts"], r["status"], r["evaluations"], r["stopped_early"]) for r in rows] == [
        ("100", "finished", "2", "False"), ("100", "finished", "2", "False"), ("5000", "stopped early", "1", "True")
    ]  # fmt: skip
    for row in rows:  # every reported return is in the trial's own run folder
        history = json.loads((out / "trials" / row["trial"] / "history.json").read_text())
        assert len(history) == int(row["evaluations"])
        assert max(h["return_mean"] for h in history) == float(row["best_return_mean"])
    assert rows[0]["best_return_mean"] == rows[1]["best_return_mean"]  # same recipe, same seed, same returns
    summary = json.loads((out / "tune.json").read_text())
    assert summary["trials"] == 3 and summary["stopped_early"] == 1
    assert summary["best"]["values"] == {"learning_starts": 100, "gamma": 0.99}
    assert "3 trials, 1 stopped early by asha" in printed

    # best.toml is an `evosparse rl train` config: the best trial's recipe (the search set its checkpoints)
    best = RunConfig.from_dict(read_config_values(out / "best.toml"))
    trial = read_run_config(out / "trials" / summary["best"]["trial"])
    assert best == trial.replace(checkpoint_every=best.checkpoint_every)
    assert best.agent["learning_starts"] == 100 and best.agent["critic_hidden"] == [32, 32]
    code, printed, errors = cli(capsys, "rl", "train", "--config", out / "best.toml", "--print-config")
    assert code == 0 and "learning_starts = 100" in printed, errors
