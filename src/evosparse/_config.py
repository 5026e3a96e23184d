"""The one base of every evosparse config: frozen, typed, documented, validated, round-tripping to TOML / JSON.

Declare a config in ten lines (an RL or RBM config is declared the same way)::

    from dataclasses import dataclass
    from evosparse._config import Config, at_least, between, one_of, param, positive

    @dataclass(frozen=True)
    class PPOConfig(Config):
        \"\"\"Settings of PPO (Schulman et al. 2017).\"\"\"

        lr: float = param(3e-4, "Adam learning rate (paper: 3e-4)", rule=positive)
        clip: float = param(0.2, "clipping epsilon (paper: 0.2)", rule=between(0, 1, low_open=True))
        policy: str = param("mlp", "policy network", rule=one_of(POLICIES))  # POLICIES imported from its owner
        n_envs: int = param(8, "parallel environments", rule=at_least(1))
        target_kl: float | None = param(None, "stop an update above this KL (None: never)", rule=positive)

        def validate(self) -> None:  # optional: rules that involve several fields
            ...

Do not define ``__post_init__`` in a config (the base's normalises and checks every field): put rules
between fields in ``validate``. Decorate every subclass with ``@dataclass(frozen=True)``.

What the base gives every such class:

* **Types from the annotations**: an ``int`` must be an int (not a bool), a ``float`` a finite number (an
  int becomes a float), a ``bool`` true or false, a ``str`` non-empty, a ``tuple[...]`` is built from any
  list; ``X | None`` also takes None, written "none" in TOML (which has no null).
* **One way to state a rule**: ``rule=`` a :class:`Rule` (:func:`between`, :func:`one_of`,
  :func:`at_least`, :data:`positive`, ...) or any function that raises ``ValueError`` itself (so a rule
  owned elsewhere, such as a schedule's zeta check, lives in one place). Every message has one shape:
  ``"<field> must be in [a, b), got X"``, ``"<field> must be one of a, b; got X"``. Rules between fields
  go in :meth:`Config.validate`.
* **Sections**: a field declared with :func:`section` holds another config (a TOML table ``[model]``).
  Each leaf also has a *flat name* (its field name, or ``flag=``): the command-line flag, the name in
  error messages, and the key of older flat files, which :meth:`Config.from_dict` still reads.
* **Round trips**: :meth:`Config.to_dict` / :meth:`Config.from_dict`, ``to_toml`` / ``from_toml``,
  ``to_json`` / ``from_json``, ``save`` / ``from_file``; :meth:`Config.replace` for a changed copy.
  Unknown keys are rejected with the closest valid key ("did you mean").
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 with the tomli backport
    import tomli as tomllib


# ---- declaring fields ------------------------------------------------------------------------------------
def param(default: Any, doc: str, *, rule: Any = None, flag: str | None = None) -> Any:
    """A config field: its default, one-line doc, optional rule and flat name (``flag``, default: the field name)."""
    if isinstance(default, list | dict | set):
        raise TypeError("a config default must be immutable (use a tuple)")
    return field(default=default, metadata={"doc": doc, "rule": rule, "flag": flag})


def section(config_class: type[Config], doc: str) -> Any:
    """A field holding a whole sub-config (a TOML table); defaults to ``config_class()``."""
    return field(default_factory=config_class, metadata={"doc": doc, "section": config_class})


# ---- rules -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A check of one value: ``accepts(value)`` or the error "<field> must be <expected>; got <value>"."""

    accepts: Callable[[Any], bool]
    expected: str  # completes "<field> must be ...", e.g. "in [0, 1)", "an integer >= 1"
    separator: str = ","  # "..., got X"; choices read "one of a, b; got X"

    def check(self, name: str, value: Any, *, optional: bool = False) -> None:
        try:
            ok = bool(self.accepts(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            # An optional field also takes None; say so unless the expected text already does.
            none = " or None" if optional and "none" not in self.expected.lower() else ""
            shown = list(value) if isinstance(value, tuple) else value
            raise ValueError(f"{name} must be {self.expected}{none}{self.separator} got {shown!r}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Rule:
    """A finite number in the interval, e.g. ``between(0, 1, high_open=True)`` is [0, 1)."""

    def accepts(value: Any) -> bool:
        return (
            is_real(value)
            and (value > low if low_open else value >= low)
            and (value < high if high_open else value <= high)
        )

    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return Rule(accepts, f"in {interval}")


def one_of(options: Iterable[Any]) -> Rule:
    """One of ``options`` (import the tuple from the module that owns it, never copy it)."""
    options = tuple(options)
    # Of the option's own type: 1.0 or True equal the option 1 but are not it (a float steps_per_hour made
    # the market environment fail at reset, found by tests/envs/test_fuzz.py).
    return Rule(
        lambda value: any(value == option and type(value) is type(option) for option in options),
        f"one of {', '.join(map(str, options))}",
        separator=";",
    )


def subset_of(options: Iterable[Any]) -> Rule:
    """A non-empty list whose every item is one of ``options``."""
    options = tuple(options)
    return Rule(
        lambda value: isinstance(value, tuple) and len(value) > 0 and all(v in options for v in value),
        f"a non-empty list of {', '.join(map(str, options))}",
        separator=";",
    )


def at_least(minimum: int) -> Rule:
    """An integer >= ``minimum`` (``at_least(1)``: a positive integer)."""
    return Rule(lambda value: is_int(value) and value >= minimum, f"an integer >= {minimum}")


positive = Rule(lambda value: is_real(value) and value > 0, "a finite number > 0")
non_negative = Rule(lambda value: is_real(value) and value >= 0, "a finite number >= 0")
finite = Rule(is_real, "a finite number")
boolean = Rule(lambda value: isinstance(value, bool), "true or false")
integer = Rule(is_int, "an integer")
text = Rule(lambda value: isinstance(value, str) and bool(value.strip()), "a non-empty string")
sizes = Rule(
    lambda value: isinstance(value, tuple) and len(value) > 0 and all(is_int(v) and v >= 1 for v in value),
    "one or more positive integers (e.g. 256,256)",
)
_BY_TYPE = {bool: boolean, int: integer, float: finite, str: text}


# ---- the base --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Leaf:
    """One setting of a config seen flat: its flat name, the section path to it, its field and type."""

    flat: str
    path: tuple[str, ...]  # section field names, outermost first; () for a top-level field
    field: dataclasses.Field
    hint: Any

    @property
    def doc(self) -> str:
        return self.field.metadata.get("doc", "")

    @property
    def optional(self) -> bool:
        return _optional(self.hint)

    @property
    def base_type(self) -> Any:
        return _base_type(self.hint)


class Config:
    """Base of every config dataclass (decorate subclasses with ``@dataclass(frozen=True)``); see the module doc."""

    #: If set, ``from_toml`` also accepts the settings wrapped in a table of this name (e.g. ``[neat]``).
    toml_table: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            name, value = f.name, getattr(self, f.name)
            flat = f.metadata.get("flag") or name
            if "section" in f.metadata:
                if isinstance(value, Mapping):
                    object.__setattr__(self, name, f.metadata["section"].from_dict(value, source=f"[{name}]"))
                elif not isinstance(value, f.metadata["section"]):
                    raise ValueError(f"{name} must be a {f.metadata['section'].__name__} or a table, got {value!r}")
                continue
            hint = hints[name]
            value = _normalise(value, hint)
            object.__setattr__(self, name, value)
            if value is None and _optional(hint):
                continue
            rule = f.metadata.get("rule") or _type_rule(hint)
            if isinstance(rule, Rule):
                rule.check(flat, value, optional=_optional(hint))
            elif rule is not None:
                rule(value)  # a validation function owned elsewhere; it raises its own ValueError
        self.validate()

    def validate(self) -> None:
        """Rules between fields (override; raise ValueError naming the fields and values)."""

    # ---- flat view -------------------------------------------------------------------------------------
    @classmethod
    def leaves(cls) -> list[_Leaf]:
        """Every setting, sections expanded, in declaration order (flat names are unique)."""
        return list(_leaves(cls))

    @classmethod
    def flat_names(cls) -> list[str]:
        return [leaf.flat for leaf in _leaves(cls)]

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Flat name -> one-line doc."""
        return {leaf.flat: leaf.doc for leaf in _leaves(cls)}

    def to_flat(self) -> dict[str, Any]:
        """Flat name -> value, for every setting."""
        values = {}
        for leaf in _leaves(type(self)):
            owner = self
            for name in leaf.path:
                owner = getattr(owner, name)
            values[leaf.flat] = getattr(owner, leaf.field.name)
        return values

    # ---- dictionaries ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Field name -> value (sections as nested dicts, tuples as lists), in declaration order."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            values[f.name] = value.to_dict() if isinstance(value, Config) else _plain(value)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config"):
        """Build from a mapping: nested tables by field name, or settings by flat name (older flat files).

        Unknown keys raise ValueError naming them, the closest valid key and the valid keys.
        """
        return cls(**_arguments(cls, values, source=source))

    def replace(self, **changes: Any):
        """A copy with ``changes`` (by flat or field name; a section as a table) applied, validated."""
        arguments = _arguments(type(self), changes, source="replace()", base=self)
        return dataclasses.replace(self, **arguments)

    # ---- TOML / JSON / files ---------------------------------------------------------------------------
    def to_toml(self) -> str:
        """A TOML document, each setting under its doc as a comment; sections as tables.

        TOML has no null: None is left out as a comment where None is the default, else written "none".
        """
        summary = (type(self).__doc__ or type(self).__name__).strip().splitlines()[0]
        lines = [f"# {type(self).__name__}: {summary}"]
        lines += _toml_lines(self, prefix="")
        return "\n".join(lines).strip() + "\n"

    @classmethod
    def from_toml(cls, text: str, *, source: str = "TOML config"):
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{source} is not valid TOML: {error}") from None
        return cls.from_dict(cls._unwrap(values), source=source)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "JSON config"):
        return cls.from_dict(_json_object(text, source), source=source)

    @classmethod
    def from_file(cls, path: str | Path):
        """Read a ``.json`` file (by suffix) or a TOML one; errors name the file."""
        return cls.from_dict(cls.values_from_file(path), source=str(path))

    @classmethod
    def values_from_file(cls, path: str | Path) -> dict[str, Any]:
        """The keys and values a TOML / JSON file sets (checked, not merged with the defaults)."""
        path = Path(path)
        text_ = read_text(path)
        if path.suffix.lower() == ".json":
            values = _json_object(text_, str(path))
        else:
            try:
                values = cls._unwrap(tomllib.loads(text_))
            except tomllib.TOMLDecodeError as error:
                raise ValueError(f"{path} is not valid TOML: {error}") from None
        try:
            cls.from_dict(values, source=str(path))
        except ValueError as error:
            message = str(error)
            raise ValueError(message if str(path) in message else f"{path}: {message}") from None
        return values

    @classmethod
    def flatten(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Flat name -> value of the settings a (checked) nested or flat mapping sets."""
        return _flatten(cls, values)

    def save(self, path: str | Path) -> Path:
        """Write ``.json`` (by suffix) or TOML."""
        path = Path(path)
        path.write_text(self.to_json() if path.suffix.lower() == ".json" else self.to_toml(), encoding="utf-8")
        return path

    @classmethod
    def _unwrap(cls, values: dict[str, Any]) -> dict[str, Any]:
        table = cls.toml_table
        if table and isinstance(values.get(table), Mapping) and len(values) == 1:
            return dict(values[table])
        return values


def read_text(path: str | Path) -> str:
    """A config file's text; a missing, unreadable or non-UTF-8 file is an error naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FileNotFoundError(f"cannot read config file {path}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"cannot read config file {path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None


def check_unknown_keys(values: Mapping[str, Any], valid: Iterable[str], *, source: str) -> None:
    """Raise ValueError naming the keys of ``values`` not in ``valid``, the closest valid key, and the valid keys."""
    valid = list(valid)
    unknown = [key for key in values if key not in valid]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ValueError(f"unknown key(s) in {source}: {', '.join(hints)}; valid keys: {', '.join(valid)}")


def toml_value(value: Any) -> str:
    """A Python value as a TOML value (bool, int, float, str, list/tuple of those, dict as an inline table)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # shortest round-tripping form, e.g. 0.0002, 1e-05: both valid TOML
    if isinstance(value, str):
        # A TOML basic string: JSON's escapes are a subset of TOML's. Characters outside the BMP stay as they
        # are (JSON would write surrogate pairs, which TOML rejects); DEL must be escaped in TOML, not in JSON.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):  # an inline table; TOML has no null, so a None item is left out
        return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items() if item is not None) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


# ---- machinery -------------------------------------------------------------------------------------------
@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _optional(hint: Any) -> bool:
    return (isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union) and type(
        None
    ) in typing.get_args(hint)


def _base_type(hint: Any) -> Any:
    if _optional(hint):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else hint
    return typing.get_origin(hint) or hint


def _type_rule(hint: Any) -> Rule | None:
    """The rule a field without ``rule=`` gets from its annotation (a tuple: the type of its items)."""
    base = _base_type(hint)
    if base is not tuple:
        return _BY_TYPE.get(base)
    args = typing.get_args(
        hint if not _optional(hint) else next(a for a in typing.get_args(hint) if a is not type(None))
    )
    item = _BY_TYPE.get(args[0]) if args else None
    if item is None:
        return None
    names = {boolean: "true / false values", integer: "integers", finite: "finite numbers", text: "non-empty strings"}
    return Rule(
        lambda value: isinstance(value, tuple) and all(item.accepts(v) for v in value), f"a list of {names[item]}"
    )


def _normalise(value: Any, hint: Any) -> Any:
    """What TOML, JSON and the command line produce, as the annotation's type."""
    base = _base_type(hint)
    if _optional(hint) and base is not str and isinstance(value, str) and value.strip().lower() in ("none", "null"):
        return None  # TOML has no null
    if base is float and is_int(value):
        return float(value)
    if base is tuple and isinstance(value, list | tuple):
        return tuple(value)
    return value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@functools.cache
def _leaves_of(cls: type) -> tuple[_Leaf, ...]:
    hints, found = _hints(cls), []
    for f in dataclasses.fields(cls):
        if "section" in f.metadata:
            found += [
                dataclasses.replace(leaf, path=(f.name, *leaf.path)) for leaf in _leaves_of(f.metadata["section"])
            ]
        else:
            found.append(_Leaf(f.metadata.get("flag") or f.name, (), f, hints[f.name]))
    names = [leaf.flat for leaf in found]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TypeError(f"{cls.__name__}: flat names must be unique, repeated: {', '.join(duplicates)}")
    return tuple(found)


def _leaves(cls: type) -> Iterator[_Leaf]:
    return iter(_leaves_of(cls))


def _sections(cls: type) -> dict[str, type[Config]]:
    return {f.name: f.metadata["section"] for f in dataclasses.fields(cls) if "section" in f.metadata}


def _arguments(cls: type, values: Mapping[str, Any], *, source: str, base: Config | None = None) -> dict[str, Any]:
    """Constructor arguments of ``cls`` from nested tables and / or flat names (merged onto ``base``)."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{source} must be a table of settings, got {type(values).__name__}")
    sections = _sections(cls)
    own = {f.name: (f.metadata.get("flag") or f.name) for f in dataclasses.fields(cls) if f.name not in sections}
    by_flat = {flat: name for name, flat in own.items()}
    nested_flat = {leaf.flat: leaf for leaf in _leaves(cls) if leaf.path}
    arguments: dict[str, Any] = {}
    tables: dict[str, dict[str, Any]] = {}
    unknown: dict[str, Any] = {}
    for key, value in values.items():
        if key in sections and isinstance(value, Mapping | Config):  # a table; a scalar here is a flat name
            table = value.to_dict() if isinstance(value, Config) else value
            _merge(tables.setdefault(key, {}), table, key, source)
        elif key in by_flat or key in own:
            arguments[by_flat.get(key, key)] = value
        elif key in nested_flat:
            leaf = nested_flat[key]
            table = tables.setdefault(leaf.path[0], {})
            for name in leaf.path[1:]:
                table = table.setdefault(name, {})
            _merge(table, {leaf.field.name: value}, leaf.path[0], source)
        else:
            unknown[key] = value
    flats = [leaf.flat for leaf in _leaves(cls)]
    check_unknown_keys(unknown, [*flats, *(name for name in sections if name not in flats)], source=source)
    for name, table in tables.items():
        current = getattr(base, name) if base is not None else None
        where = f"{source} [{name}]"
        if current is not None:
            arguments[name] = current.replace(**table) if table else current
        else:
            arguments[name] = sections[name].from_dict(table, source=where)
    return arguments


def _merge(target: dict[str, Any], values: Mapping[str, Any], name: str, source: str) -> None:
    for key, value in values.items():
        if key in target and target[key] != value:
            raise ValueError(f"{source} sets {key} twice (in [{name}] and as a flat key): {target[key]!r}, {value!r}")
        target[key] = value


def _flatten(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    sections, flat = _sections(cls), {}
    own = {f.name: (f.metadata.get("flag") or f.name) for f in dataclasses.fields(cls) if f.name not in sections}
    for key, value in values.items():
        if key in sections and isinstance(value, Mapping):
            flat.update(_flatten(sections[key], value))
        else:
            flat[own.get(key, key)] = value
    return flat


def _toml_lines(config: Config, prefix: str) -> list[str]:
    lines, tables = [], []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Config):
            tables.append((f, value))
            continue
        doc = f.metadata.get("doc", "")
        if value is None:
            if f.default is None:  # left out: reading the file gives the default, None
                lines.append(f"# {f.name}: {doc} (none)")
                continue
            value = "none"
        lines.append(f"# {doc}")
        lines.append(f"{f.name} = {toml_value(value)}")
    for f, value in tables:
        name = f"{prefix}{f.name}"
        lines += ["", f"[{name}]  # {f.metadata.get('doc', '')}", *_toml_lines(value, prefix=f"{name}.")]
    return lines


def _json_object(text_: str, source: str) -> dict[str, Any]:
    try:
        values = json.loads(text_)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source} is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{source} must hold a JSON object, got {type(values).__name__}")
    return values
