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
    with pytest.raises(ValueError, match=r"holds a run \(a neat run started .*\); add --resume"):
        run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", out, "--quiet"])
    assert run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", out, "--quiet", "--overwrite"]) == 0


# ---- run folders: resume integrity, refusals, safe files (issue 10, items 1, 2, 5, 6) ------------------------
def history_rows(folder) -> list[dict]:
    """history.csv without the timing column."""
    import csv

    with open(folder / "history.csv", encoding="utf-8") as file:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]


class StopAt:
    """A reporter that interrupts the run (like Ctrl-C or a kill) after ``generations`` generations."""

    def __init__(self, generations: int) -> None:
        self.generations = generations

    def start_generation(self, population) -> None:
        pass

    def end_generation(self, population, stats) -> None:
        if len(population.history) == self.generations:
            raise KeyboardInterrupt

    def found_solution(self, population, genome) -> None:
        pass


def test_interrupted_and_resumed_run_has_each_generation_once(tmp_path):
    from evosparse.neat.run import run_neat

    settings = {"generations": 9, "seed": 4, "checkpoint_every": 3, "checkpoint_seconds": None}
    with pytest.raises(KeyboardInterrupt):  # after generation 5; the checkpoint holds 3
        run_neat("xor", out_dir=tmp_path / "run", reporters=[StopAt(5)], **settings)
    assert len(history_rows(tmp_path / "run")) == 4  # rows 0-3 were written; row 4 was interrupted
    resumed = run_neat("xor", out_dir=tmp_path / "run", resume=True, generations=9, checkpoint_every=3)
    straight = run_neat("xor", out_dir=tmp_path / "straight", **settings)
    assert [int(row["generation"]) for row in history_rows(tmp_path / "run")] == list(range(9))
    assert history_rows(tmp_path / "run") == history_rows(tmp_path / "straight")
    assert resumed.summary == straight.summary
    assert (tmp_path / "run" / "winner.npz").read_bytes() == (tmp_path / "straight" / "winner.npz").read_bytes()


def test_finished_or_solved_runs_are_not_run_again(tmp_path):
    from evosparse.io import RunFolderError

    out = str(tmp_path / "run")
    run(["neat", "run", "--task", "xor", "--generations", "3", "--out-dir", out, "--quiet"])
    with pytest.raises(RunFolderError, match="already ran 3 generations; give --generations more than 3"):
        run(["neat", "run", "--task", "xor", "--generations", "3", "--out-dir", out, "--resume", "--quiet"])
    assert run(["neat", "run", "--task", "xor", "--generations", "5", "--out-dir", out, "--resume", "--quiet"]) == 0
    assert len(history_rows(tmp_path / "run")) == 5
    solved = str(tmp_path / "solved")
    run(["neat", "run", "--task", "xor", "--generations", "300", "--out-dir", solved, "--quiet"])
    summary = json.loads((tmp_path / "solved" / "summary.json").read_text())
    assert summary["solved"]
    with pytest.raises(RunFolderError, match="was solved in generation"):
        run(["neat", "run", "--task", "xor", "--generations", "400", "--out-dir", solved, "--resume", "--quiet"])
    assert len(history_rows(tmp_path / "solved")) == summary["generations"]  # nothing appended


def test_resume_refuses_other_settings(tmp_path):
    from evosparse.io import RunFolderError

    out = str(tmp_path / "run")
    base = ["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", out, "--quiet"]
    run([*base, "--seed", "3"])
    again = ["neat", "run", "--generations", "4", "--out-dir", out, "--quiet", "--resume"]
    with pytest.raises(RunFolderError, match=r"you asked for --task single-pole-nv \(saved: xor\)"):
        run([*again, "--task", "single-pole-nv"])
    with pytest.raises(RunFolderError, match=r"--seed 5 \(saved: 3\)"):
        run([*again, "--task", "xor", "--seed", "5"])
    (tmp_path / "other.toml").write_text("n_inputs = 2\npopulation_size = 50\n")
    with pytest.raises(RunFolderError, match=r"a CONFIG with .*population_size = 50 \(saved: 150\)"):
        run(["neat", "run", str(tmp_path / "other.toml"), *again[2:], "--task", "xor"])
    assert run([*again, "--task", "xor", "--seed", "3"]) == 0  # repeating the saved values is fine


def test_a_neat_run_never_writes_into_a_train_run_or_foreign_files(tmp_path):
    from evosparse.io import RunFolder, RunFolderError

    train = tmp_path / "train"
    RunFolder.open(train, kind="train", files=("summary.json",), config={}).close()
    (train / "summary.json").write_text("{}")
    for extra in ([], ["--overwrite"]):
        with pytest.raises(RunFolderError, match="holds a train run|not part of a neat run"):
            run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", str(train), "--quiet", *extra])
    assert (train / "summary.json").read_text() == "{}"
    legacy_train = tmp_path / "legacy"
    legacy_train.mkdir()
    (legacy_train / "checkpoint.pt").write_bytes(b"weights")
    with pytest.raises(RunFolderError, match=r"not part of a neat run \(checkpoint.pt\)"):
        run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", str(legacy_train), "--overwrite"])


def test_a_second_run_never_replaces_the_first_runs_results(tmp_path):
    from evosparse.io import RunFolderError

    out = str(tmp_path / "run")
    first = ["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", out, "--quiet"]
    run([*first, "--checkpoint-every", "1000"])
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(RunFolderError, match="already holds a run"):
        run([*first, "--checkpoint-every", "1000", "--seed", "9"])
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


def test_interrupted_overwrite_never_resumes_the_old_run(tmp_path, monkeypatch):
    from pathlib import Path

    from evosparse.io import RunFolderError

    out = str(tmp_path / "run")
    run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", out, "--quiet"])
    real_unlink = Path.unlink

    def killed(self, *args, **kwargs):
        if self.name == "checkpoint.npz":
            raise KeyboardInterrupt
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", out, "--quiet", "--overwrite"])
    monkeypatch.undo()
    with pytest.raises(RunFolderError, match="belongs to another run"):
        run(["neat", "run", "--task", "xor", "--generations", "4", "--out-dir", out, "--quiet", "--resume"])


def test_old_pickle_files_and_crafted_winners_never_run(tmp_path):
    from hostile import pickle_bytes

    from evosparse.io import FileFormatError, RunFolderError

    marker = tmp_path / "pwned"
    old = tmp_path / "old"
    old.mkdir()
    (old / "checkpoint.pkl").write_bytes(pickle_bytes(marker))
    (old / "winner.pkl").write_bytes(pickle_bytes(marker))
    with pytest.raises(RunFolderError, match="no run.json"):
        run(["neat", "run", "--task", "xor", "--out-dir", str(old), "--resume"])
    with pytest.raises(FileFormatError, match="winner.pkl holds pickled data, which evosparse never loads"):
        run(["neat", "draw", str(old)])
    (tmp_path / "winner.npz").write_bytes(pickle_bytes(marker))
    with pytest.raises(FileFormatError, match="never loads"):
        run(["neat", "draw", str(tmp_path / "winner.npz")])
    assert not marker.exists()
    # --overwrite replaces the old pickle files (deletes them, never reads them)
    assert (
        run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", str(old), "--overwrite", "--quiet"])
        == 0
    )
    assert not (old / "checkpoint.pkl").exists() and not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("epoch,loss\n1,0.5\n", r"not a NEAT history.csv: it has no 'generation', .* column \(columns: epoch, loss\)"),
        ("", "it has no 'generation'"),
        ("generation,best_fitness,mean_fitness,stdev_fitness,n_species\n", "holds no generations yet"),
        ("generation,best_fitness,mean_fitness,stdev_fitness,n_species\n0,x,1,1,1\n", "line 2: best_fitness = 'x'"),
    ],
)
def test_plot_of_a_foreign_history_is_one_line_error(tmp_path, content, message):
    (tmp_path / "h.csv").write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        run(["neat", "plot", str(tmp_path / "h.csv")])
    assert "\n" not in str(caught.value)


def test_files_get_the_users_umask(tmp_path):
    import os

    before = os.umask(0o022)
    try:
        run(["neat", "run", "--task", "xor", "--generations", "2", "--out-dir", str(tmp_path / "run"), "--quiet"])
    finally:
        os.umask(before)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir()}
    assert set(modes.values()) == {0o644}, modes


KILL_RUN = [
    "neat", "run", "--task", "double-pole-nv", "--generations", "14", "--seed", "1",
    "--checkpoint-every", "3", "--quiet",
]  # fmt: skip


@pytest.mark.slow
def test_kill_9_and_resume_gives_the_uninterrupted_result(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    code = "import sys; from evosparse.cli.main import main; sys.exit(main(sys.argv[1:]))"
    env = {**__import__("os").environ, "PYTHONPATH": src}
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", code, *KILL_RUN, "--out-dir", str(out)], env=env)
    deadline = time.monotonic() + 600
    while not (out / "checkpoint.npz").exists() or len(history_rows(out)) < 5:
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = subprocess.run(
        [sys.executable, "-c", code, *KILL_RUN, "--out-dir", str(out), "--resume"], env=env, capture_output=True
    )
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run([sys.executable, "-c", code, *KILL_RUN, "--out-dir", str(tmp_path / "s")], env=env)
    assert straight.returncode == 0
    assert history_rows(out) == history_rows(tmp_path / "s")
    assert [int(row["generation"]) for row in history_rows(out)] == list(range(14))
    assert (out / "summary.json").read_text() == (tmp_path / "s" / "summary.json").read_text()
