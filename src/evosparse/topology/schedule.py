"""When topology updates happen and how large they are.

A schedule answers two questions for the training loop's counters: "is there an update now?" and
"what fraction of connections does it change?". Counters are epochs or optimizer steps (``unit``).

* constant: every ``every`` units, fraction ``zeta``;
* cosine: the fraction decays as ``zeta * (1 + cos(pi * t / T)) / 2`` (RigL, Evci et al. 2020, Eq. 1),
  with ``T = stop_after`` -- large early rewiring explores, small late rewiring lets weights settle;
* ``stop_after``: no update at or after unit T (RigL's ``end_step``; the SET code also skips the last epoch).

Its dense-to-sparse counterpart, the density of each pruning event, is
:class:`evosparse.prune.schedule.PruningSchedule`.
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
