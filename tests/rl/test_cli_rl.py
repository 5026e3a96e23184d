"""``evosparse rl train / eval`` and ``evosparse plot returns`` through the real entry point, with tiny budgets."""

from __future__ import annotations

import csv
import json

import pytest

from evosparse.cli.main import main

# DQN on CartPole with a 16-16 Q-network: a run of 300 steps takes a second or two.
TINY = [
    "--env", "CartPole-v1", "--algo", "dqn", "--total-steps", "300", "--eval-every", "100",
    "--checkpoint-every", "100", "--eval-episodes", "2", "--critic-hidden", "16,16", "--learning-starts", "100",
    "--target-update-interval", "100", "--quiet",
]  # fmt: skip


def _run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exit_info:  # argparse's usage errors
        code = exit_info.code
    out, err = capsys.readouterr()
    return code, out, err


def _history(folder):
    with (folder / "history.csv").open() as file:
        return list(csv.DictReader(file))


def test_train_eval_resume_and_plot(tmp_path, capsys, one_thread):
    run = tmp_path / "run"
    code, out, err = _run(capsys, "rl", "train", *TINY, "--strategy", "set", "--critic-density", "0.5",
                          "--out-dir", str(run))  # fmt: skip
    assert code == 0, err
    assert "dqn set on CartPole-v1: final return" in out
    for name in ("run.json", "config.toml", "history.csv", "history.json", "summary.json", "checkpoint.json"):
        assert (run / name).is_file(), name
    assert [row["step"] for row in _history(run)] == ["100", "200", "300"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["strategy"] == "set" and summary["critic_density"] == 0.5 and summary["steps"] == 300

    # Longer on --resume: the same as a run with that budget from the start.
    code, _, err = _run(capsys, "rl", "train", "--out-dir", str(run), "--resume", "--total-steps", "400", "--quiet")
    assert code == 0, err
    whole = tmp_path / "whole"
    code, _, err = _run(capsys, "rl", "train", *TINY, "--strategy", "set", "--critic-density", "0.5",
                        "--total-steps", "400", "--out-dir", str(whole))  # fmt: skip
    assert code == 0, err
    columns = ("step", "return_mean", "return_std", "n_updates", "loss", "critic_weights")
    assert [[row[c] for c in columns] for row in _history(run)] == [
        [row[c] for c in columns] for row in _history(whole)
    ]

    code, out, err = _run(capsys, "rl", "eval", str(run), "--episodes", "3", "--json")
    assert code == 0, err
    evaluation = json.loads(out)
    assert evaluation["step"] == 400 and len(evaluation["returns"]) == 3
    # The same seeds as the run's own evaluations: the first two episodes are the last evaluation's.
    assert evaluation["returns"][:2] == json.loads((run / "history.json").read_text())[-1]["returns"]

    code, out, err = _run(capsys, "plot", "returns", str(run), str(whole), "--out", str(tmp_path / "curves.png"))
    assert code == 0, err
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_config_file_and_flags(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(
        'env = "CartPole-v1"\nalgo = "dqn"\ntotal_steps = 5000\nlearning_rate = 0.001\n\n'
        '[agent]\nstrategy = "static"\ncritic_density = 0.25\ncritic_hidden = [32, 32]\n'
    )
    code, out, err = _run(capsys, "rl", "train", "--config", str(config), "--total-steps", "700", "--print-config")
    assert code == 0, err
    assert "total_steps = 700" in out and 'env = "CartPole-v1"' in out
    assert 'strategy = "static"' in out and "critic_density = 0.25" in out and "learning_rate = 0.001" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--algo", "ppo"], "argument --algo: invalid choice: 'ppo'"),
        (["--algo", "td3", "--env", "CartPole-v1"], "td3 needs an action space of kind box"),
        (["--algo", "sac", "--strategy", "set", "--actor-density", "0"], r"actor_density must be in (0, 1], got 0.0"),
        (
            ["--algo", "sac", "--strategy", "rigl", "--critic-density", "1.5"],
            "critic_density must be in (0, 1], got 1.5",
        ),
        (["--algo", "sac", "--actor-density", "0.5"], "strategy 'dense' needs actor_density = critic_density = 1"),
        (["--algo", "sac", "--policy-delay", "3"], "--policy-delay is a setting of td3, not of --algo sac"),
        (["--algo", "sac", "--strategy", "magnitude"], "argument --strategy: invalid choice"),
        (["--env", "NoSuchEnv-v0"], "env 'NoSuchEnv-v0'"),
        (["--env-kwargs", "[1]"], "argument --env-kwargs: expected a JSON object"),
        (["--total-steps", "0"], "total_steps must be an integer >= 1, got 0"),
        (["--resume", "--overwrite"], "--resume continues a run and --overwrite replaces it"),
    ],
)
def test_bad_input_is_one_line_and_touches_nothing(tmp_path, capsys, argv, message):
    folder = tmp_path / "run"
    code, out, err = _run(capsys, "rl", "train", *argv, "--out-dir", str(folder))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not folder.exists()


def test_resume_and_eval_need_a_run(tmp_path, capsys):
    code, _, err = _run(capsys, "rl", "train", "--resume", "--quiet")
    assert code == 2 and "--resume needs --out-dir" in err
    code, _, err = _run(capsys, "rl", "train", "--resume", "--out-dir", str(tmp_path / "none"), "--quiet")
    assert code == 2 and "is not a folder" in err
    code, _, err = _run(capsys, "rl", "eval", str(tmp_path))
    assert code == 2 and err.startswith("error: RUN") and "holds no run" in err
    code, _, err = _run(capsys, "plot", "returns", str(tmp_path))
    assert code == 2 and "has no history.csv" in err


@pytest.mark.parametrize("command", [["rl"], ["rl", "train"], ["rl", "eval"], ["plot", "returns"]])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: evosparse " + " ".join(command) in capsys.readouterr().out
