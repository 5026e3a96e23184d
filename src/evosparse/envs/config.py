"""Transitional config base of the environments, with the API of :mod:`evosparse._config`'s ``Config``.

Replaced by ``evosparse._config`` (the one config base) as soon as it offers ``Config``: then this module is
deleted and :mod:`evosparse.envs.base` imports the same names from there.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def param(default: Any, doc: str, *, rule: Any = None) -> Any:
    return field(default=default, metadata={"doc": doc, "rule": rule})


@dataclass(frozen=True)
class Rule:
    accepts: Callable[[Any], bool]
    expected: str
    separator: str = ","

    def check(self, name: str, value: Any, *, optional: bool = False) -> None:
        try:
            ok = bool(self.accepts(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            none = " or None" if optional else ""
            shown = list(value) if isinstance(value, tuple) else value
            raise ValueError(f"{name} must be {self.expected}{none}{self.separator} got {shown!r}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Rule:
    def accepts(value: Any) -> bool:
        return (
            is_real(value)
            and (value > low if low_open else value >= low)
            and (value < high if high_open else value <= high)
        )

    return Rule(accepts, f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}")


def one_of(options: Iterable[Any]) -> Rule:
    options = tuple(options)
    return Rule(lambda value: value in options, f"one of {', '.join(map(str, options))}", separator=";")


def at_least(minimum: int) -> Rule:
    return Rule(lambda value: is_int(value) and value >= minimum, f"an integer >= {minimum}")


_BY_TYPE = {
    bool: Rule(lambda value: isinstance(value, bool), "true or false"),
    int: Rule(is_int, "an integer"),
    float: Rule(is_real, "a finite number"),
    str: Rule(lambda value: isinstance(value, str) and bool(value.strip()), "a non-empty string"),
}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _base_type(hint: Any) -> Any:
    if _optional(hint):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else hint
    return typing.get_origin(hint) or hint


class Config:
    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            hint, value = hints[f.name], getattr(self, f.name)
            base = _base_type(hint)
            if base is float and is_int(value):
                value = float(value)
            if base is tuple and isinstance(value, list | tuple):
                value = tuple(value)
            object.__setattr__(self, f.name, value)
            if value is None and _optional(hint):
                continue
            rule = f.metadata.get("rule") or _BY_TYPE.get(base)
            if isinstance(rule, Rule):
                rule.check(f.name, value, optional=_optional(hint))
            elif rule is not None:
                rule(value)
        self.validate()

    def validate(self) -> None:
        """Rules between fields."""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config"):
        _check_unknown(cls, values, source)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: [v.to_dict() if isinstance(v, Config) else v for v in value] if isinstance(value, tuple) else value
            for f in dataclasses.fields(self)
            for value in [getattr(self, f.name)]
        }

    def replace(self, **changes: Any):
        _check_unknown(type(self), changes, "replace()")
        return dataclasses.replace(self, **changes)


def _check_unknown(cls: type, values: Mapping[str, Any], source: str) -> None:
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = [key for key in values if key not in valid]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ValueError(f"unknown key(s) in {source}: {', '.join(hints)}; valid keys: {', '.join(valid)}")
