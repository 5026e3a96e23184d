"""Validation and dict round-trip shared by the environments' frozen config dataclasses."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


def check_range(
    field: str,
    value: float,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ``ValueError`` naming the field, the value and the allowed range unless ``value`` lies in it."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    above = number and (value > low if low_open else value >= low)
    below = number and (value < high if high_open else value <= high)
    if not (above and below):
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{field} must be in {left}{low}, {high}{right}, got {value!r}")


def check_choice(field: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{field} must be one of {choices}, got {value!r}")


class ConfigMixin:
    """``from_dict`` (unknown keys are an error naming them) and ``to_dict`` for a config dataclass."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; known fields: {sorted(names)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)
