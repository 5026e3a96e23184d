"""PruningSchedule: event times and densities of one-shot, iterative and cubic (Zhu and Gupta) pruning."""

from __future__ import annotations

import pytest

from evosparse.prune.schedule import PruningSchedule


def test_one_shot():
    schedule = PruningSchedule("one_shot", start=3)
    assert [schedule.density(t, 0.1) for t in range(1, 6)] == [None, None, 0.1, None, None]
    assert schedule.n_events == 1 and schedule.last == 3


def test_iterative_removes_the_same_fraction_each_cycle():
    schedule = PruningSchedule("iterative", start=2, end=8, cycles=4)
    densities = {t: schedule.density(t, 0.01) for t in range(1, 10)}
    events = {t: d for t, d in densities.items() if d is not None}
    assert list(events) == [2, 4, 6, 8] and schedule.n_events == 4
    assert events[8] == pytest.approx(0.01)
    ratios = [events[4] / events[2], events[6] / events[4], events[8] / events[6]]
    assert all(r == pytest.approx(0.01**0.25) for r in ratios) and events[2] == pytest.approx(0.01**0.25)


def test_cubic_ramp_matches_zhu_and_gupta():
    schedule = PruningSchedule("cubic", start=10, end=50, every=10)
    got = {t: schedule.density(t, 0.05) for t in range(0, 60) if schedule.density(t, 0.05) is not None}
    assert list(got) == [10, 20, 30, 40, 50] and schedule.n_events == 5
    for t, d in got.items():
        # s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3 in sparsity; density = 1 - sparsity, s_i = 0
        sparsity = 0.95 + (0.0 - 0.95) * (1 - (t - 10) / 40) ** 3
        assert d == pytest.approx(1 - sparsity)
    assert got[10] == 1.0 and got[50] == pytest.approx(0.05)
    assert all(a > b for a, b in zip(list(got.values()), list(got.values())[1:]))


def test_cubic_last_event_even_off_the_grid():
    schedule = PruningSchedule("cubic", start=1, end=8, every=3)
    assert [t for t in range(10) if schedule.is_event(t)] == [1, 4, 7, 8] and schedule.n_events == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(kind="linear"), "kind must be one of"),
        (dict(unit="batch"), "unit must be one of"),
        (dict(start=0), "start must be an integer >= 1, got 0"),
        (dict(kind="cubic", start=5, end=3), r"end must be an integer >= start \(5\)"),
        (dict(kind="iterative", start=1, end=6, cycles=3), "evenly spaced"),
        (dict(kind="iterative", start=4, end=4, cycles=2), "evenly spaced"),
    ],
)
def test_bad_schedules(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PruningSchedule(**kwargs)
