"""When topology updates happen and how large they are.

A schedule answers two questions for the training loop's counters: "is there an update now?" and
"what fraction of connections does it change?". Counters are epochs or optimizer steps (``unit``).

* constant: every ``every`` units, fraction ``zeta``;
* cosine: the fraction decays as ``zeta * (1 + cos(pi * t / T)) / 2`` (RigL, Evci et al. 2020, Eq. 1),
  with ``T = stop_after`` -- large early rewiring explores, small late rewiring lets weights settle;
* ``stop_after``: no update at or after unit T (RigL's ``end_step``; the SET code also skips the last epoch).

:class:`PruningSchedule` is the dense-to-sparse counterpart: instead of a fraction to rewire, it gives
the density a layer must have at each pruning event, given its final density ``d_f``:

* ``one_shot``: one event at ``start``, straight to ``d_f`` (magnitude pruning, OBD, L1 thresholding).
* ``iterative``: ``cycles`` events, evenly spaced from ``start`` to ``end``; each removes the same
  fraction of what is left, so after event ``i`` of ``n`` the density is ``d_f ** (i / n)``
  (Han et al. 2015's prune-retrain cycles; Frankle and Carbin 2019's iterative magnitude pruning).
* ``cubic``: every ``every`` units from ``start`` to ``end`` (Zhu and Gupta 2017, Eq. 1, with initial
  density 1):  ``d_t = d_f + (1 - d_f) * (1 - (t - start) / (end - start)) ** 3`` -- fast pruning while
  the network is redundant, slower as it approaches the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UNITS = ("epoch", "step")
DECAYS = ("constant", "cosine")


@dataclass(frozen=True)
class UpdateSchedule:
    """Args:
    zeta: base fraction of each layer's connections changed per update, in [0, 1).
    every: an update every this many units (>= 1).
    unit: "epoch" or "step".
    decay: "constant" or "cosine" (cosine needs ``stop_after``).
    stop_after: no update at or after this unit count (None: never stop).
    """

    zeta: float = 0.3
    every: int = 1
    unit: str = "epoch"
    decay: str = "constant"
    stop_after: int | None = None

    def __post_init__(self) -> None:
        check_zeta(self.zeta)
        if not (isinstance(self.every, int) and self.every >= 1):
            raise ValueError(f"every must be an integer >= 1, got {self.every!r}")
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        if self.stop_after is not None and self.stop_after < 1:
            raise ValueError(f"stop_after must be >= 1 or None, got {self.stop_after}")
        check_decay(self.decay, self.stop_after)

    def fraction(self, t: int) -> float:
        """Fraction to change at unit count ``t`` (1-based: the t-th epoch or step has just ended); 0 = no update."""
        if t % self.every != 0 or (self.stop_after is not None and t >= self.stop_after):
            return 0.0
        if self.decay == "cosine":
            return self.zeta * 0.5 * (1.0 + math.cos(math.pi * t / self.stop_after))
        return self.zeta


def check_zeta(zeta: object) -> None:
    """The rewired fraction's rule (here and in every config that holds a zeta): in [0, 1)."""
    if not (isinstance(zeta, int | float) and not isinstance(zeta, bool) and 0 <= zeta < 1):
        raise ValueError(f"zeta must be in [0, 1), got {zeta!r}")


def check_decay(decay: str, stop_after: int | None) -> None:
    """A cosine decay reaches 0 at ``stop_after``, so it needs one."""
    if decay == "cosine" and stop_after is None:
        raise ValueError("decay='cosine' needs stop_after (the unit count where the rewired fraction reaches 0)")


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
