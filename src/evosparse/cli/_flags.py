"""What every ``evosparse`` command shares: the parser class, config flags, and the one error path.

* :class:`Parser`: argparse whose usage errors are one ``error: ...`` line and exit code 2.
* :func:`add_config_flags` / :func:`config_changes`: one flag per setting of a config class, named after its
  flat name (``lr`` -> ``--lr``), and back to a dict of the settings given.
* :func:`run_command`: the single error path. ``main`` calls every command's handler through it, so a
  command registered by ``register(commands, Parser)`` (train, info, bench, compare, plot, neat, grid, and
  the coming rl / rbm) turns the library's errors into one ``error: ...`` line on stderr and exit code 2;
  ``EVOSPARSE_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """Bad input found by the command line itself (not by argparse or the library)."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line ``error: ...`` (and a pointer to --help), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {one_line(message)}; see '{self.prog} --help'\n")


def one_line(error: BaseException | str) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# The errors that mean "bad input or a bad environment", not a bug: one line, exit 2. UnicodeError covers
# files that are not text, OSError a missing file, a full disk, a permission denied.
BAD_INPUT_ERRORS = (CommandError, ValueError, OSError, ImportError, UnicodeError, LookupError)


def run_command(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Call a command's handler; bad input -> ``error: ...`` on stderr and exit 2, Ctrl-C -> a resume hint."""
    try:
        code = handler(args)
        for text in getattr(args, "notes", []):
            print(f"note: {text}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(f"\ninterrupted; {interrupt_hint(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BAD_INPUT_ERRORS as error:
        if os.environ.get("EVOSPARSE_DEBUG"):
            raise
        message = one_line(error)
        if isinstance(error, UnicodeDecodeError):  # name the cause; the library names the file where it can
            message = f"a file is not UTF-8 text ({message})"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


def interrupt_hint(args: argparse.Namespace) -> str:
    """How to continue an interrupted command (a command may set ``resume_hint`` with ``set_defaults``)."""
    out_dir = getattr(args, "out_dir", None)
    where = f" --out-dir {out_dir}" if out_dir else " --out-dir <the run folder>"
    again = getattr(args, "resume_hint", None)
    if again is None:
        again = "neat run --task <task> --resume" if getattr(args, "command", None) == "neat" else "train --resume"
    return f"continue from the last checkpoint with: evosparse {again}{where}"


# ---- values of flags -------------------------------------------------------------------------------------
def parse_sizes(text: str) -> tuple[int, ...]:
    """'1000,1000,1000' -> (1000, 1000, 1000); '' -> (); an empty item ('16,,16') is an error.

    Positivity is checked by the config or the command, whose messages name the field.
    """
    if not text.strip():
        return ()
    parts = [part.strip() for part in text.split(",")]
    try:
        if any(not part for part in parts):
            raise ValueError
        return tuple(int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 256,256, got {text!r}") from None


def parse_table(text: str) -> dict:
    """'{"reward_delay": "daily"}' -> {"reward_delay": "daily"}: a JSON object (keyword arguments of an environment)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        example = """'{"reward_delay": "daily"}'"""
        raise argparse.ArgumentTypeError(f"expected a JSON object such as {example}, got {text!r}")
    return value


def parse_numbers(text: str) -> tuple[float, ...]:
    """'0.01,0.05' -> (0.01, 0.05); an empty list or item is an error."""
    parts = [part.strip() for part in text.split(",")]
    try:
        if not text.strip() or any(not part for part in parts):
            raise ValueError
        return tuple(float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.01,0.05, got {text!r}") from None


def parse_names(text: str) -> tuple[str, ...]:
    """'set,rigl' -> ('set', 'rigl'); an empty list or item is an error."""
    parts = tuple(part.strip() for part in text.split(","))
    if not text.strip() or any(not part for part in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated names such as set,rigl, got {text!r}")
    return parts


def seed_type(text: str) -> int:
    """A seed flag's value: an integer >= 0 (numpy's own error for -1 names no flag)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be an integer >= 0, got {text!r}")
    return value


def _optional(parse):
    def parse_or_none(text: str):
        return None if text.strip().lower() in ("none", "null", "") else parse(text)

    parse_or_none.__name__ = parse.__name__  # argparse names the type in its error messages
    return parse_or_none


def field_parser(leaf) -> tuple[Any, str | None, bool]:
    """(type callable, metavar, is_flag) of a config setting, from its annotation and rule."""
    base = leaf.base_type
    if base is bool:
        return None, None, True
    if base is tuple:
        if str in typing.get_args(leaf.hint) or any(str in typing.get_args(a) for a in typing.get_args(leaf.hint)):
            return parse_names, "NAME,NAME,...", False  # tuple[str, ...], e.g. the forecasters to compare
        return parse_sizes, "N,N,...", False
    if base is dict:
        return parse_table, "JSON", False
    parse = {int: int, float: float, str: str}[base]
    metavar = {int: "INT", float: "FLOAT", str: "TEXT"}[base]
    rule = leaf.field.metadata.get("rule")
    expected = getattr(rule, "expected", "")
    if expected.startswith("one of "):  # the choices, in the usage; the config checks them, for its message
        metavar = "{" + expected.removeprefix("one of ").replace(", ", ",") + "}"
    return (_optional(parse), metavar + "|none", False) if leaf.optional else (parse, metavar, False)


def add_config_flags(
    parser: argparse.ArgumentParser, config_class: type, *, skip: Sequence[str] = (), title: str | None = None
) -> None:
    """One flag per setting of ``config_class`` (by flat name) but ``skip``, one group per section.

    A flag not given is absent from the namespace, so a config file or saved settings win over defaults.
    """
    groups: dict[str, Any] = {}
    for leaf in config_class.leaves():
        if leaf.flat in skip:
            continue
        section = leaf.path[0] if leaf.path else ""
        if section not in groups:
            label = f"[{section}] settings" if section else "settings"
            groups[section] = parser.add_argument_group(
                f"{title or config_class.__name__} {label} (default in brackets)"
            )
        default = leaf.field.default
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        doc = f"{leaf.doc} [{default}]".replace("%", "%%")
        parse, metavar, is_flag = field_parser(leaf)
        flag = "--" + leaf.flat.replace("_", "-")
        if is_flag:
            groups[section].add_argument(
                flag, dest=leaf.flat, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=doc
            )
        else:
            groups[section].add_argument(
                flag, dest=leaf.flat, type=parse, metavar=metavar, default=argparse.SUPPRESS, help=doc
            )


def config_changes(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """The settings of ``config_class`` given on the command line, by flat name."""
    return {name: getattr(args, name) for name in config_class.flat_names() if hasattr(args, name)}


def file_and_flags(args: argparse.Namespace, config_class: type) -> dict[str, Any]:
    """Precedence: defaults < the settings the ``--config`` file sets < flags given on the command line."""
    from_file = config_class.flatten(config_class.values_from_file(args.config)) if args.config else {}
    return {**from_file, **config_changes(args, config_class)}


# Settings a dense model (--model dense, the baseline) has no use for: giving one is a mistake, not a no-op.
SPARSE_ONLY = ("strategy", "density")


def train_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig settings of ``train`` / ``compare``: the --config file's, then the flags', by flat name.

    Settings a dense model ignores are refused with ``--model dense``; ``--threads`` is capped to the cores.
    """
    from evosparse.train.config import TrainConfig

    changes = file_and_flags(args, TrainConfig)
    if changes.get("model") == "dense":
        ignored = [name for name in SPARSE_ONLY if name in changes]
        if ignored:
            flags = ", ".join("--" + name.replace("_", "-") for name in ignored)
            raise CommandError(
                f"{flags} has no effect with --model dense (the dense baseline has every connection); "
                "drop it, or use --model sparse"
            )
    if changes.get("threads") is not None and isinstance(changes["threads"], int):
        changes["threads"] = cap_threads(args, changes["threads"])
    return changes


def cap_threads(args: argparse.Namespace, threads: int | None, *, name: str = "--threads") -> int | None:
    """``threads`` capped to this machine's cores (more threads than cores only slow down), with a note."""
    cores = os.cpu_count() or 1
    if threads is not None and threads > cores:
        note(args, f"{name} {threads} is more than this machine's {cores} cores; used {cores}")
        return cores
    return threads


def note(args: argparse.Namespace, text: str) -> None:
    """A remark for the user, printed on stderr once the command succeeded (an error line stays the only line)."""
    args.notes = [*getattr(args, "notes", []), text]


def subcommands(commands, name: str, parser_class, *, dest: str, help: str, description: str):
    """The sub-command parsers of command ``name`` (``evosparse plot``, ``evosparse rbm``, ...), created here if
    no other command module created it yet, so that several modules can each add their own sub-commands."""
    parser = commands.choices.get(name)
    if parser is None:
        parser = commands.add_parser(name, help=help, description=description)
        return parser.add_subparsers(dest=dest, metavar="COMMAND", required=True, parser_class=parser_class)
    return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
