"""ThreadTuner: which count it keeps, when it measures again, and that switching never changes a run's numbers."""

from __future__ import annotations

import os

import numba
import pytest
import torch
from helpers import assert_same_run

from evosparse.train.thread_tuner import ThreadTuner


class Machine:
    """A clock whose steps take ``step_seconds[count]`` on the count the tuner last set."""

    def __init__(self, step_seconds: dict[int, float]) -> None:
        self.step_seconds = dict(step_seconds)
        self.now = 0.0
        self.threads = None
        self.calls: list[int] = []

    def set_threads(self, count: int) -> None:
        self.threads = count
        self.calls.append(count)

    def clock(self) -> float:
        return self.now

    def run(self, tuner: ThreadTuner, steps: int) -> None:
        for _ in range(steps):
            self.now += self.step_seconds[self.threads]
            tuner.on_step_end()


def tuner_on(machine: Machine, candidates=(2, 1), **settings) -> ThreadTuner:
    settings = {"min_steps": 3, "trial_seconds": 0.0, "every": 10.0, "longest": 40.0, **settings}
    tuner = ThreadTuner(candidates, machine.set_threads, clock=machine.clock, **settings)
    tuner.on_train_start()
    return tuner


def test_keeps_the_faster_count_after_timing_each():
    machine = Machine({2: 0.010, 1: 0.004})
    tuner = tuner_on(machine)
    assert machine.threads == 2  # starts on the first candidate
    machine.run(tuner, 3)  # the first step is not timed (kernels load): 2 timed so far
    assert machine.threads == 2
    machine.run(tuner, 1)  # 3 timed on 2 threads: switch to 1
    assert machine.threads == 1
    machine.run(tuner, 3)  # the step after the switch is not timed: 2 on 1 thread
    assert tuner.trials == 0
    machine.run(tuner, 1)
    assert tuner.trials == 1 and machine.threads == 1
    machine.run(tuner, 100)
    assert machine.threads == 1 and tuner.steps_on[1] > tuner.steps_on[2]
    assert tuner.summary() == {"threads": 1, "thread_steps": {"2": 4, "1": 104}, "thread_trials": 1}


def test_measures_again_later_and_follows_a_change_of_load():
    machine = Machine({2: 0.010, 1: 0.004})
    tuner = tuner_on(machine)
    machine.run(tuner, 8)  # first trial: 1 thread wins
    assert machine.threads == 1 and tuner.trials == 1
    machine.step_seconds = {2: 0.002, 1: 0.004}  # the other process ended: two threads now pay
    machine.run(tuner, int(9.9 / 0.004))  # within `every` (10 s): no new trial yet
    assert machine.threads == 1 and tuner.trials == 1
    machine.run(tuner, 200)
    assert machine.threads == 2 and tuner.trials == 2


def test_waits_twice_as_long_after_each_trial_that_keeps_the_count():
    machine = Machine({2: 0.010, 1: 0.004})
    tuner = tuner_on(machine)
    waits = []
    for _ in range(5):
        trials = tuner.trials
        while tuner.trials == trials:
            machine.run(tuner, 1)
        waits.append(tuner.wait)
    assert waits == [10.0, 20.0, 40.0, 40.0, 40.0]  # up to `longest`
    assert machine.threads == 1


def test_a_costly_trial_waits_longer():
    # steps of 1 s against 3 s: a trial of 3 steps on the slower count costs 6 s; 50 x 6 s = 300 s to the next
    machine = Machine({2: 1.0, 1: 3.0})
    tuner = tuner_on(machine, every=10.0, longest=40.0)
    while tuner.trials == 0:
        machine.run(tuner, 1)
    assert machine.threads == 2
    ended = machine.now
    while tuner.trials == 1:
        machine.run(tuner, 1)
    assert machine.now - ended >= 300.0


def test_trial_seconds_sets_a_minimum_time_per_candidate():
    machine = Machine({2: 0.001, 1: 0.0005})
    tuner = tuner_on(machine, trial_seconds=0.1)
    machine.run(tuner, 50)  # 49 timed steps of 1 ms: not yet 0.1 s
    assert machine.threads == 2
    machine.run(tuner, 60)
    assert machine.threads == 1


def test_a_clearly_slower_or_faster_candidate_is_not_timed_for_trial_seconds():
    # 1 thread first (1 ms steps): it takes its 0.1 s; then 2 threads at 2.5 ms: clearly slower after 3 steps
    machine = Machine({1: 0.001, 2: 0.0025})
    tuner = tuner_on(machine, candidates=(1, 2), trial_seconds=0.1)
    while machine.threads == 1:
        machine.run(tuner, 1)
    on_one = tuner.steps_on[1]
    assert on_one >= 100
    machine.run(tuner, 4)  # untimed after the switch, then 3 timed: 7.5 ms, not 0.1 s, on the slower count
    assert tuner.trials == 1 and machine.threads == 1 and tuner.steps_on[2] == 4
    # the other way round: a candidate 3x faster than the first also ends after min_steps
    machine = Machine({2: 0.003, 1: 0.001})
    tuner = tuner_on(machine, trial_seconds=0.1)
    while machine.threads == 2:
        machine.run(tuner, 1)
    machine.run(tuner, 4)
    assert tuner.trials == 1 and machine.threads == 1 and tuner.steps_on[1] == 4


def test_close_candidates_are_timed_for_trial_seconds():
    machine = Machine({1: 0.001, 2: 0.0012})  # 1.2x apart: below clear_ratio (1.5)
    tuner = tuner_on(machine, candidates=(1, 2), trial_seconds=0.1)
    while tuner.trials == 0:
        machine.run(tuner, 1)
    assert tuner.steps_on[2] > 80 and machine.threads == 1
    machine = Machine({1: 0.001, 2: 0.0012})
    tuner = tuner_on(machine, candidates=(1, 2), trial_seconds=0.1, clear_ratio=1.1)
    while tuner.trials == 0:
        machine.run(tuner, 1)
    assert tuner.steps_on[2] == 4 and machine.threads == 1


def test_the_step_after_an_epoch_end_is_not_timed():
    machine = Machine({2: 0.010, 1: 0.004})
    tuner = tuner_on(machine, min_steps=2)
    machine.run(tuner, 3)  # untimed first step, then two timed on 2 threads -> switch to 1
    assert machine.threads == 1
    machine.run(tuner, 2)  # untimed (after the switch), then one timed on 1 thread
    tuner.on_epoch_end()
    machine.now += 60.0  # evaluation and rewiring: not a step (timed, it would make 2 threads look faster)
    machine.run(tuner, 1)  # untimed
    assert tuner.trials == 0
    machine.run(tuner, 1)  # the second timed step on 1 thread: the trial ends
    assert tuner.trials == 1 and machine.threads == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="candidates must be two or more distinct thread counts >= 1, got \\[2, 2\\]"):
        ThreadTuner((2, 2), print)
    with pytest.raises(ValueError, match="candidates"):
        ThreadTuner((0, 1), print)
    with pytest.raises(ValueError, match="min_steps must be >= 1, got 0"):
        ThreadTuner((1, 2), print, min_steps=0)
    with pytest.raises(ValueError, match="clear_ratio must be > 1, got 1.0"):
        ThreadTuner((1, 2), print, clear_ratio=1.0)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 cores to switch between 1 and 2 threads")
def test_a_run_that_switches_counts_gives_the_same_numbers(tmp_path, monkeypatch):
    """The real trainer on digits, the tuner measuring at every step (so it switches counts all the time),
    against the same run on one thread: the same weights and history, bit for bit."""
    from evosparse.data import load_dataset
    from evosparse.train import TrainConfig, load_checkpoint, train
    from evosparse.train import run as run_module

    monkeypatch.delenv("EVOSPARSE_THREADS", raising=False)
    made = []

    def restless(*args, **kwargs):  # the run's own tuner, told to measure at every step
        tuner = tuner_for_the_run(*args, **kwargs)
        if tuner is None:  # the run on a fixed count
            return None
        tuner.min_steps, tuner.trial_seconds, tuner.every, tuner.wait, tuner.overhead_factor = 1, 0.0, 0.0, 0.0, 0.0
        made.append(tuner)
        return tuner

    tuner_for_the_run = run_module.thread_tuner
    monkeypatch.setattr(run_module, "thread_tuner", restless)
    digits = load_dataset("digits")
    base = dict(hidden=(256, 256), epsilon=10, epochs=2, batch_size=32, seed=4, dropout=0.1)
    before = (torch.get_num_threads(), numba.get_num_threads())
    try:
        tuned = train(TrainConfig.from_dict({**base, "out_dir": str(tmp_path / "tuned")}), dataset=digits, log=None)
        fixed = TrainConfig.from_dict({**base, "threads": 1, "out_dir": str(tmp_path / "fixed")})
        train(fixed, dataset=digits, log=None)
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
    assert len(made) == 1
    steps = tuned.summary["thread_steps"]
    cores = str(os.cpu_count())
    assert steps["1"] > 10 and steps[cores] > 10 and tuned.summary["thread_trials"] > 10
    one, two = (load_checkpoint(tmp_path / name / "checkpoint.pt")["trainer"] for name in ("tuned", "fixed"))
    assert_same_run(one, two)


def test_no_tuner_when_the_count_is_fixed_or_the_model_is_dense(monkeypatch):
    from evosparse.nn import SparseMLP
    from evosparse.train import TrainConfig
    from evosparse.train.run import thread_tuner

    sparse, dense = SparseMLP([4, 8, 2], epsilon=2, seed=0), torch.nn.Sequential(torch.nn.Linear(4, 2))
    monkeypatch.delenv("EVOSPARSE_THREADS", raising=False)
    cores = os.cpu_count() or 1
    tuner = thread_tuner(TrainConfig(), sparse, 1, workers=1)
    assert (tuner is None) if cores < 2 else tuner.candidates == [1, cores]
    if cores >= 2:
        assert thread_tuner(TrainConfig(), sparse, None, workers=1).candidates == [cores, 1]
    assert thread_tuner(TrainConfig.from_dict({"threads": 1}), sparse, 1, workers=1) is None
    assert thread_tuner(TrainConfig(), sparse, 1, workers=2) is None
    assert thread_tuner(TrainConfig(), dense, 1, workers=1) is None
    monkeypatch.setenv("EVOSPARSE_THREADS", "1")
    assert thread_tuner(TrainConfig(), sparse, 1, workers=1) is None
