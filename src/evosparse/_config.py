"""What the frozen, validated config dataclasses (``TrainConfig``, ``NeatConfig``) share: field docs,
unknown-key errors with a "did you mean", TOML values, and number checks for their validators."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import field
from typing import Any


def param(default: Any, doc: str) -> Any:
    """A dataclass field with its one-line doc in ``metadata["doc"]``."""
    return field(default=default, metadata={"doc": doc})


def check_unknown_keys(
    values: Mapping[str, Any], valid: Iterable[str], *, source: str, list_valid: bool = False
) -> None:
    """Raise ValueError naming the keys of ``values`` not in ``valid`` (with the closest valid key)."""
    valid = list(valid)
    unknown = [key for key in values if key not in valid]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        listing = f"; valid keys: {', '.join(valid)}" if list_valid else ""
        raise ValueError(f"unknown key(s) in {source}: {', '.join(hints)}{listing}")


def toml_value(value: Any) -> str:
    """A Python value as a TOML value (bool, int, float, str, list/tuple of those)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # shortest round-tripping form, e.g. 0.0002, 1e-05: both valid TOML
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are a subset of TOML's
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
