"""Run the sparse kernels on whichever thread count is faster *now*, measured on the run's own steps.

Why a measurement and not a rule: which count wins depends on the model, the batch, the machine and what
else runs on it, and changes while a run goes on. Measured on this project's 2-vCPU test machine
(BENCHMARKS.md section 12, sixteenth session; `benchmarks/bench_threads.py`): the SET tutorial model at
batch 100 trained an epoch in 1.17 s on one thread and 2.60 s on two when the machine was quiet (an idle
virtual CPU sleeps, and waking it for each parallel region costs ~0.2 ms), but 1.58 s against 1.74 s with one
busy process beside it; at batch 400 the two were even; the one-million-neuron Liu model, measured the same way,
ran 138 of its 142 steps on both cores on a quiet machine and half of them on one thread beside a busy process.
A fixed size threshold (:data:`evosparse.train.run.SMALL_STEP`) can only be right for
the machine it was measured on.

Switching is free of side effects: every kernel gives each output element to one thread, which adds in the
stored order, so a step gives the same bits on any thread count (tests/test_threading.py, and a run switching
counts against one that does not, tests/train/test_thread_tuner.py). Only the kernels' count is tuned
(:func:`evosparse.train.run.thread_tuner`): torch's reductions over many elements split their sums by thread,
so torch keeps one count for the whole run.

How (one *trial*): time ``min_steps`` steps (at least ``trial_seconds`` of them, unless the candidate is already
``clear_ratio`` times slower or faster than one timed before it) on each candidate count, the step after a switch
not counted (its threads are waking up), and keep the count of the lower median step time.
The next trial comes ``every`` seconds later; each trial that confirms the current count doubles the wait (up
to ``longest``), one that changes it starts again from ``every``, so a steady machine pays for the slower
count rarely and a machine whose load changes is re-measured within a minute or so.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

from evosparse.train.callbacks import Callback


class ThreadTuner(Callback):
    """Measures the candidate thread counts on the run's own training steps and trains on the fastest.

    Args:
        candidates: thread counts to choose from, e.g. ``(1, os.cpu_count())``.
        set_threads: applies a count (a run passes the sparse kernels' :func:`evosparse.sparse.set_num_threads`).
        min_steps: steps timed per candidate in a trial (at least).
        trial_seconds: time spent per candidate in a trial (at least), so that short steps are not judged on
            a few microseconds; not waited for once ``min_steps`` steps put the candidate ``clear_ratio`` times
            above or below one timed before it in the same trial.
        clear_ratio: how far apart two medians must be for a trial to end a candidate early (> 1).
        every: seconds between the end of a trial and the next one; doubled after each trial that keeps the
            count, up to ``longest``.
        overhead_factor: the wait is also at least this many times what the last trial cost (its steps on the
            slower counts, over the faster one's time): a long step whose best count is clear (a wide model
            that needs every core) is re-measured rarely.
        clock: seconds, monotonic (``time.perf_counter``).
    """

    def __init__(
        self,
        candidates: Sequence[int],
        set_threads: Callable[[int], None],
        *,
        min_steps: int = 3,
        trial_seconds: float = 0.25,
        every: float = 30.0,
        longest: float = 480.0,
        overhead_factor: float = 50.0,
        clear_ratio: float = 1.5,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        if len(set(candidates)) < 2 or min(candidates) < 1:
            raise ValueError(f"candidates must be two or more distinct thread counts >= 1, got {list(candidates)}")
        if min_steps < 1:
            raise ValueError(f"min_steps must be >= 1, got {min_steps}")
        if not clear_ratio > 1:
            raise ValueError(f"clear_ratio must be > 1, got {clear_ratio}")
        self.candidates = list(dict.fromkeys(candidates))
        self.clear_ratio = clear_ratio
        self.set_threads = set_threads
        self.min_steps, self.trial_seconds = min_steps, trial_seconds
        self.every, self.longest, self.wait = every, longest, every
        self.overhead_factor = overhead_factor
        self.clock = clock
        self.current = self.candidates[0]
        self.steps_on: dict[int, int] = dict.fromkeys(self.candidates, 0)  # steps trained on each count
        self.trials = 0
        self._queue: list[int] = []  # candidates still to time in the running trial
        self._samples: dict[int, list[float]] = {}
        self._last: float | None = None  # end of the previous step (None: the next step's start is unknown)
        self._skip = False  # the next step follows a switch: not timed
        self._next_trial = 0.0
        self._trial_start = self.current  # the count the running trial started on

    def _on_train_start(self) -> None:
        self.set_threads(self.current)
        self._start_trial()
        self._last = None  # the first step loads the kernels: not timed

    def _on_epoch_end(self) -> None:
        self._last = None  # evaluation and rewiring happen between this epoch's last step and the next one's

    def _on_step_end(self) -> None:
        now = self.clock()
        self.steps_on[self.current] += 1
        if self._last is not None and not self._skip and self._queue:
            self._samples.setdefault(self.current, []).append(now - self._last)
        self._skip = False
        if self._queue:
            self._advance_trial()
        elif now >= self._next_trial:
            self._start_trial()
        self._last = self.clock()  # after our own work: it is not part of the next step

    def _start_trial(self) -> None:
        # the current count first: no switch, so its first step is timed
        self._queue = [self.current] + [c for c in self.candidates if c != self.current]
        self._samples = {}
        self._trial_start = self.current

    def _advance_trial(self) -> None:
        samples = self._samples.get(self._queue[0], [])
        if len(samples) < self.min_steps or (sum(samples) < self.trial_seconds and not self._clear(samples)):
            return
        self._queue.pop(0)
        if self._queue:
            self._switch(self._queue[0])
            return
        medians = {count: statistics.median(times) for count, times in self._samples.items()}
        best = min(medians, key=medians.get)
        self._switch(best)
        self.trials += 1
        self.wait = min(self.wait * 2, self.longest) if best == self._trial_start else self.every
        # what a trial cost (steps on slower counts) stays under 1/overhead_factor of the time between trials
        cost = sum(len(self._samples[c]) * (medians[c] - medians[best]) for c in medians)
        self._next_trial = self.clock() + max(self.wait, self.overhead_factor * cost)

    def _clear(self, samples: list[float]) -> bool:
        """Whether the candidate being timed is already clearly slower or faster than one timed before it."""
        # What a trial costs is mostly its slower candidates' steps: on a quiet 2-vCPU machine the SET tutorial's
        # batch-40 steps took 2.5x longer on two threads, and 0.25 s of them were ~10% of an epoch.
        timed = [statistics.median(times) for count, times in self._samples.items() if count != self._queue[0]]
        if not timed:
            return False
        median = statistics.median(samples)
        return any(median > self.clear_ratio * other or other > self.clear_ratio * median for other in timed)

    def _switch(self, threads: int) -> None:
        if threads != self.current:
            self.set_threads(threads)
            self.current, self._skip = threads, True

    def summary(self) -> dict[str, object]:
        """What the run trained on: ``threads`` (the count of most steps), steps per count, trials made."""
        most = max(self.steps_on, key=self.steps_on.get)
        steps = {str(count): n for count, n in self.steps_on.items()}
        return {"threads": most, "thread_steps": steps, "thread_trials": self.trials}
