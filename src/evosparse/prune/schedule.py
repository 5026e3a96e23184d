"""When pruning events happen and how dense each layer must be after them.

:class:`PruningSchedule` is the dense-to-sparse counterpart of :class:`~evosparse.topology.UpdateSchedule`:
instead of a fraction to rewire, it gives the density a layer must have at each pruning event, given its
final density ``d_f``:

* ``one_shot``: one event at ``start``, straight to ``d_f`` (magnitude pruning, OBD, L1 thresholding).
* ``iterative``: ``cycles`` events, evenly spaced from ``start`` to ``end``; each removes the same
  fraction of what is left, so after event ``i`` of ``n`` the density is ``d_f ** (i / n)``
  (Han et al. 2015's prune-retrain cycles; Frankle and Carbin 2019's iterative magnitude pruning).
* ``cubic``: every ``every`` units from ``start`` to ``end`` (Zhu and Gupta 2017, Eq. 1, with initial
  density 1):  ``d_t = d_f + (1 - d_f) * (1 - (t - start) / (end - start)) ** 3`` -- fast pruning while
  the network is redundant, slower as it approaches the target.
"""

from __future__ import annotations

from dataclasses import dataclass

from evosparse.topology.schedule import UNITS


def check_spacing(
    start: int, end: int, cycles: int, *, names: tuple[str, str, str] = ("start", "end", "cycles")
) -> None:
    """Iterative pruning's ``cycles`` events fall on whole units from ``start`` to ``end`` (names: for errors)."""
    if cycles > 1 and (end == start or (end - start) % (cycles - 1)):
        first, last, count = names
        raise ValueError(
            f"{count} ({cycles}) events must be evenly spaced from {first} ({start}) to {last} ({end}): "
            f"{last} - {first} must be a positive multiple of {count} - 1"
        )


PRUNING_KINDS = ("one_shot", "iterative", "cubic")


@dataclass(frozen=True)
class PruningSchedule:
    """Args:
    kind: "one_shot", "iterative" or "cubic".
    start: counter value of the first event (>= 1: after that epoch / step).
    end: counter value of the last event (iterative, cubic; one_shot ignores it).
    cycles: number of events of the iterative kind.
    every: spacing of cubic events.
    unit: "epoch" or "step".
    """

    kind: str = "one_shot"
    start: int = 1
    end: int | None = None
    cycles: int = 1
    every: int = 1
    unit: str = "epoch"

    def __post_init__(self) -> None:
        if self.kind not in PRUNING_KINDS:
            raise ValueError(f"kind must be one of {PRUNING_KINDS}, got {self.kind!r}")
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        for name in ("start", "cycles", "every"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.kind != "one_shot":
            if self.end is None or self.end < self.start:
                raise ValueError(
                    f"end must be an integer >= start ({self.start}) for kind={self.kind!r}, got {self.end}"
                )
        if self.kind == "iterative":
            check_spacing(self.start, self.end, self.cycles)

    @property
    def last(self) -> int:
        """Counter value of the last event."""
        return self.start if self.kind == "one_shot" else int(self.end)

    @property
    def n_events(self) -> int:
        """How many pruning events the schedule has."""
        if self.kind == "one_shot":
            return 1
        if self.kind == "iterative":
            return self.cycles
        return len(range(self.start, self.end + 1, self.every)) + int((self.end - self.start) % self.every != 0)

    def is_event(self, t: int) -> bool:
        return self.density(t, 0.5) is not None

    def density(self, t: int, final_density: float) -> float | None:
        """Target density at counter ``t`` (None: no event at ``t``)."""
        if self.kind == "one_shot":
            return final_density if t == self.start else None
        if not self.start <= t <= self.end:
            return None
        if self.kind == "iterative":
            if self.cycles == 1:
                return final_density if t == self.end else None
            spacing = (self.end - self.start) // (self.cycles - 1)
            if (t - self.start) % spacing:
                return None
            done = (t - self.start) // spacing + 1
            return final_density ** (done / self.cycles)
        if (t - self.start) % self.every and t != self.end:
            return None
        progress = 1.0 if self.end == self.start else (t - self.start) / (self.end - self.start)
        return final_density + (1.0 - final_density) * (1.0 - progress) ** 3
