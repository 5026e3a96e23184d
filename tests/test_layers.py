"""The package's layers: no module imports from a layer above its own, and no two packages import each other.

The core is one strict order, each layer standing only on those before it:

    _config, _threading, _memory, _ray, io  <  sparse  <  nn  <  topology  <  prune  <  train  <  cli

``_config``, ``_threading``, ``_memory``, ``_ray`` and ``io`` are the base modules (the one config base; the
OpenMP settings made at import; the train command's allocator setting; the optional Ray connection; safe
serialisation and run folders) and import
nothing of evosparse. The packages beside the
core say what they stand on (``ALLOWED`` below):

* ``data`` (data sets) and ``envs`` (smart-grid environments) know no learning code: an environment
  knows no agent;
* ``neat`` imports none of the core (it has its own genomes and phenotypes), only data and environments;
* ``report`` (plots) draws what the core produces; ``train`` uses it to draw a comparison's figures, so
  it sits just under ``train``;
* ``rl``, ``rbm`` and ``bench`` sit at the train level: they build on sparse / nn / topology / prune /
  train utilities, never on ``cli``;
* ``cli`` may import everything, and ``evosparse/__init__.py`` (the public face) re-exports from any
  package but ``cli``.

Every import counts, including those inside functions (a lazy import is still an edge), under
``TYPE_CHECKING`` and through ``importlib.import_module("evosparse...")``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import evosparse

PACKAGE_DIR = Path(evosparse.__file__).resolve().parent
ROOT = "evosparse"
BASE = frozenset({"_config", "_threading", "_memory", "_ray", "io"})
CORE = ("sparse", "nn", "topology", "prune", "train", "cli")
# Package -> the other packages it may import (its own modules are always allowed).
ALLOWED: dict[str, frozenset[str]] = {
    "_config": frozenset(),
    "_threading": frozenset(),
    "_memory": frozenset(),
    "_ray": frozenset(),
    "io": frozenset(),
    "sparse": BASE,
    "nn": BASE | {"sparse"},
    "topology": BASE | {"sparse", "nn"},
    "prune": BASE | {"sparse", "nn", "topology"},
    "train": BASE | {"sparse", "nn", "topology", "prune", "data", "report"},
    "data": BASE,
    "envs": BASE | {"data"},
    "neat": BASE | {"data", "envs"},
    "report": BASE | {"sparse", "nn", "topology", "prune", "data"},
    "rl": BASE | {"sparse", "nn", "topology", "prune", "train", "data", "envs"},
    "rbm": BASE | {"sparse", "nn", "topology", "prune", "train", "data", "envs"},
    "bench": BASE | {"sparse", "nn", "topology", "prune", "train", "data"},
}
EVERYTHING = frozenset(ALLOWED) | {"cli", ROOT}
ALLOWED["cli"] = EVERYTHING - {"cli"}
ALLOWED[ROOT] = EVERYTHING - {"cli", ROOT}
ALLOWED["__main__"] = frozenset({"cli"})  # ``python -m evosparse`` runs the CLI


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([ROOT, *parts])


def package_of(module: str) -> str:
    """The layer a module belongs to: its first component below ``evosparse`` (the root for the root itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE_DIR / relative).with_suffix(".py").is_file() or (PACKAGE_DIR / relative / "__init__.py").is_file()


def imports_of(module: str, source: str, *, is_package: bool) -> Iterator[tuple[str, int]]:
    """Every evosparse module that ``module``'s source imports, with the line of the import."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # ``from evosparse import data`` imports the module evosparse.data; ``from x import f`` imports x.
                candidate = f"{base}.{alias.name}"
                yield (candidate if base.startswith(ROOT) and is_module(candidate) else base), node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value, node.lineno


def evosparse_edges(module: str, source: str, *, is_package: bool) -> Iterator[tuple[str, int]]:
    for target, line in imports_of(module, source, is_package=is_package):
        if target == ROOT or target.startswith(ROOT + "."):
            yield target, line


def all_modules() -> list[tuple[str, Path]]:
    return sorted((module_name(path), path) for path in PACKAGE_DIR.rglob("*.py"))


def all_edges() -> list[tuple[str, str, int]]:
    """(importing module, imported module, line) for every evosparse import in the package."""
    edges = []
    for module, path in all_modules():
        source = path.read_text(encoding="utf-8")
        for target, line in evosparse_edges(module, source, is_package=path.name == "__init__.py"):
            edges.append((module, target, line))
    return sorted(set(edges))  # ``from x import a, b`` is one edge


def upward_edges(edges: list[tuple[str, str, int]]) -> list[str]:
    problems = []
    for module, target, line in edges:
        source, destination = package_of(module), package_of(target)
        if source == destination:
            continue
        if source not in ALLOWED:
            problems.append(f"{module}: package {source!r} has no layer; add it to ALLOWED in tests/test_layers.py")
        elif destination != source and destination not in ALLOWED[source]:
            allowed = ", ".join(sorted(ALLOWED[source])) or "nothing of evosparse"
            problems.append(f"{module} line {line} imports {target}: {source} may import only {allowed}")
    return problems


def package_cycles(edges: list[tuple[str, str, int]]) -> list[str]:
    """Each cycle of the package graph (packages as nodes), with one import that makes each of its edges."""
    graph: dict[str, dict[str, str]] = {}
    for module, target, line in edges:
        source, destination = package_of(module), package_of(target)
        if source != destination:
            graph.setdefault(source, {}).setdefault(destination, f"{module} line {line} imports {target}")
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == "open":
                loop = [*stack[stack.index(nxt) :], nxt]
                cycles.append(" -> ".join(loop) + " (" + "; ".join(graph[a][b] for a, b in zip(loop, loop[1:])) + ")")
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


# ---- the package itself --------------------------------------------------------------------------------------


def test_every_module_belongs_to_a_layer():
    orphans = [module for module, _ in all_modules() if package_of(module) not in ALLOWED]
    assert not orphans, f"modules in packages with no layer (add them to ALLOWED in tests/test_layers.py): {orphans}"


def test_no_module_imports_from_a_higher_layer():
    problems = upward_edges(all_edges())
    assert not problems, "upward imports:\n" + "\n".join(problems)


def test_no_import_cycle_between_packages():
    cycles = package_cycles(all_edges())
    assert not cycles, "import cycles between packages:\n" + "\n".join(cycles)


def test_the_allowed_table_is_a_strict_order():
    # The rules themselves must be acyclic, and the core must be a chain each layer of which sees all below it.
    table_edges = [(f"{ROOT}.{a}", f"{ROOT}.{b}", 0) for a in ALLOWED for b in ALLOWED[a] if a != ROOT and b != ROOT]
    assert package_cycles(table_edges) == []
    for lower, higher in zip(CORE, CORE[1:]):
        assert lower in ALLOWED[higher] and ALLOWED[lower] < ALLOWED[higher] | {lower}


# ---- the checker, on sources made for the purpose: it must see what it claims to see -------------------------


def test_a_function_local_upward_import_is_caught():
    source = "def f():\n    from evosparse.prune.convert import sparsify_linear\n    return sparsify_linear\n"
    edges = [
        ("evosparse.topology.snip", t, line)
        for t, line in evosparse_edges("evosparse.topology.snip", source, is_package=False)
    ]
    assert edges == [("evosparse.topology.snip", "evosparse.prune.convert", 2)]
    (problem,) = upward_edges(edges)
    assert problem.startswith(
        "evosparse.topology.snip line 2 imports evosparse.prune.convert: topology may import only"
    )


@pytest.mark.parametrize(
    ("module", "source", "is_package", "expected"),
    [
        ("evosparse.cli.main", "from evosparse import data\n", False, "evosparse.data"),
        ("evosparse.cli.main", "from evosparse import __version__\n", False, "evosparse"),
        ("evosparse.nn.mlp", "from .linear import SparseLinear\n", False, "evosparse.nn.linear"),
        ("evosparse.nn", "from . import mlp\n", True, "evosparse.nn.mlp"),
        ("evosparse.nn.mlp", "from ..topology import SET\n", False, "evosparse.topology"),
        (
            "evosparse.nn.mlp",
            "import importlib\nimportlib.import_module('evosparse.train')\n",
            False,
            "evosparse.train",
        ),
        (
            "evosparse.nn.mlp",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import evosparse.prune\n",
            False,
            "evosparse.prune",
        ),
    ],
)
def test_every_kind_of_import_is_resolved(module, source, is_package, expected):
    assert [target for target, _ in evosparse_edges(module, source, is_package=is_package)] == [expected]


def test_a_cycle_names_its_imports():
    edges = [("evosparse.data.a", "evosparse.envs.b", 3), ("evosparse.envs.b", "evosparse.data.a", 7)]
    (cycle,) = package_cycles(edges)
    assert cycle.startswith("data -> envs -> data (evosparse.data.a line 3 imports evosparse.envs.b; ")
    assert "evosparse.envs.b line 7 imports evosparse.data.a" in cycle


def test_io_and_config_import_nothing_of_evosparse():
    edges = [("evosparse.io.files", "evosparse.data.formats", 1), ("evosparse._config", "evosparse.sparse", 2)]
    assert len(upward_edges(edges)) == 2
