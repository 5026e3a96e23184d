"""``evosparse neat``: run, resume, draw, plot, and one-line errors for bad input."""

from __future__ import annotations

import argparse
import json

import pytest

from evosparse.cli.neat import register


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="evosparse")
    register(parser.add_subparsers(dest="command", required=True), argparse.ArgumentParser)
    args = parser.parse_args(argv)
    assert args.func is args.handler
    return args.handler(args)


def test_run_resume_draw_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["neat", "run", "--task", "xor", "--generations", "4", "--seed", "3", "--out-dir", str(out)]) == 0
    progress = capsys.readouterr().out
    assert progress.count("gen ") == 4  # one progress line per generation
    assert (
        run(
            [
                "neat",
                "run",
                "--task",
                "xor",
                "--generations",
                "7",
                "--seed",
                "3",
                "--out-dir",
                str(out),
                "--resume",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generations"] == 7 and summary["evaluations"] == 7 * 150
    straight = tmp_path / "straight"
    run(["neat", "run", "--task", "xor", "--generations", "7", "--seed", "3", "--out-dir", str(straight), "--quiet"])
    assert json.loads((straight / "summary.json").read_text()) == summary
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 7
    assert run(["neat", "draw", str(out)]) == 0 and (out / "winner.png").stat().st_size > 0
    assert run(["neat", "plot", str(out), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0


def test_run_with_a_neat_python_config_and_print_config(capsys):
    from pathlib import Path

    ini = Path(__file__).resolve().parents[2] / "examples" / "neat" / "xor.ini"
    assert run(["neat", "run", str(ini), "--task", "xor", "--print-config"]) == 0
    assert "population_size = 150" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "error", "message"),
    [
        (["neat", "run", "--task", "tetris"], ValueError, "task must be one of xor"),
        (["neat", "run", "--task", "xor", "--generations", "0"], ValueError, "--generations must be an integer >= 1"),
        (["neat", "run", "--task", "xor", "--resume"], ValueError, "--resume needs --out-dir"),
        (["neat", "run", "missing.toml", "--task", "xor"], FileNotFoundError, "CONFIG file missing.toml not found"),
        (["neat", "draw", "nowhere"], FileNotFoundError, "GENOME nowhere not found"),
        (["neat", "plot", "nowhere.csv"], FileNotFoundError, "HISTORY nowhere.csv not found"),
    ],
)
def test_bad_input_raises_a_named_error(argv, error, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message):
        run(argv)


def test_config_that_does_not_fit_the_task(tmp_path):
    (tmp_path / "c.toml").write_text("n_inputs = 3\n")
    with pytest.raises(ValueError, match="--task xor needs n_inputs = 2"):
        run(["neat", "run", str(tmp_path / "c.toml"), "--task", "xor"])


def test_an_existing_run_is_not_overwritten_by_accident(tmp_path):
    out = str(tmp_path / "run")
    run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", out, "--quiet"])
    with pytest.raises(ValueError, match="holds a run; add --resume"):
        run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", out, "--quiet"])
    assert run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", out, "--quiet", "--overwrite"]) == 0
