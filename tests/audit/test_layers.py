"""The layer contract of src/lanspread: which package may import which, checked on every run.

Dependencies point downwards only (docs/ARCHITECTURE.md). :data:`ALLOWED` is the
contract as a table: each package of ``src/lanspread`` with the packages it may
import besides itself and ``lanspread.errors``. The check reads every module
with :mod:`ast`, so it sees what a plain ``import`` at the top would miss:
imports inside functions, under ``if TYPE_CHECKING:``, relative imports and
``importlib.import_module("lanspread....")`` with a literal name. A violation
names the module, the line, what it imports and what its package may import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "lanspread"

ROOT = "lanspread"
"""The unit of ``lanspread/__init__.py``: the public API (``import lanspread``)."""

ALWAYS = frozenset({"errors"})
"""What every unit may import: the one exception tree."""

_SHELL_BASE = frozenset({"core", "platform", "files", "net"})
_BELOW_RUNTIME = _SHELL_BASE | {"storage", "seeding", "download", "install"}
_RUNTIME_AND_BELOW = _BELOW_RUNTIME | {"runtime"}

ALLOWED: dict[str, frozenset[str]] = {
    # pure rules and state machines: nothing of lanspread but the errors
    "core": frozenset(),
    # per-OS helpers
    "platform": frozenset({"core"}),
    # durable file operations and the proofs of what lanspread wrote
    "files": frozenset({"core", "platform"}),
    # transport
    "net": frozenset({"core", "platform", "files"}),
    # the four sibling shells: none imports another of the four
    "storage": _SHELL_BASE,
    "seeding": _SHELL_BASE,
    "download": _SHELL_BASE,
    "install": _SHELL_BASE,
    # supervises everything below it
    "runtime": _BELOW_RUNTIME,
    # the faces over the runtime
    "web": _RUNTIME_AND_BELOW,
    "demo": _RUNTIME_AND_BELOW,
    # the commands: everything
    "cli": _RUNTIME_AND_BELOW | {"web", "demo", ROOT, "_version"},
    # package data, no code
    "data": frozenset(),
    # the top-level modules
    ROOT: _RUNTIME_AND_BELOW | {"_version"},
    "__main__": frozenset({"cli"}),
    "_version": frozenset(),
    "errors": frozenset(),
}
"""Each unit of ``src/lanspread`` (a package, or a top-level module) and what it may import."""

SIBLING_SHELLS = frozenset({"storage", "seeding", "download", "install"})


@dataclass(frozen=True, order=True)
class Import:
    module: str
    """The importing file, relative to ``src/lanspread``, ``/``-separated."""
    line: int
    target: str
    """The dotted name imported: ``lanspread.storage.scanner``."""


def unit_of_module(module: str) -> str:
    """The unit a file of ``src/lanspread`` belongs to (``install/sweep.py`` -> ``install``)."""
    parts = module.split("/")
    if len(parts) > 1:
        return parts[0]
    name = parts[0].removesuffix(".py")
    return ROOT if name == "__init__" else name


def unit_of_target(target: str, units: frozenset[str]) -> str | None:
    """The unit ``target`` (a dotted name) lies in; ``None`` when it is not lanspread's."""
    parts = target.split(".")
    if parts[0] != ROOT:
        return None
    if len(parts) == 1 or parts[1] not in units:
        return ROOT  # ``import lanspread`` or a name of its __init__
    return parts[1]


def _package_of(module: str) -> list[str]:
    """The dotted package a file sits in, as a list (``install/sweep.py`` -> lanspread.install)."""
    parts = [ROOT, *module.split("/")]
    return parts[:-1]


def _resolve_relative(module: str, level: int, name: str | None) -> str:
    base = _package_of(module)
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _literal_import_call(node: ast.Call) -> str | None:
    """The name in ``importlib.import_module("x")`` or ``__import__("x")``, when a literal."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called not in {"import_module", "__import__"} or not node.args:
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def imports_of(module: str, source: str) -> Iterator[Import]:
    """Every import ``source`` (the file ``module``) makes, wherever in the file it stands."""
    for node in ast.walk(ast.parse(source, module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module, node.level, node.module)
                if node.level
                else (node.module or "")
            )
            for alias in node.names:
                # ``from lanspread import storage`` imports the package storage.
                yield Import(module, node.lineno, f"{base}.{alias.name}")
        elif isinstance(node, ast.Call):
            name = _literal_import_call(node)
            if name is not None:
                yield Import(module, node.lineno, name)


def violations(sources: dict[str, str], allowed: dict[str, frozenset[str]] = ALLOWED) -> list[str]:
    """Each import in ``sources`` (file -> text) that its unit may not make, in words."""
    units = frozenset(allowed)
    found: list[str] = []
    for module, source in sorted(sources.items()):
        unit = unit_of_module(module)
        if unit not in allowed:
            found.append(f"{module}: {unit} has no row in the layer table")
            continue
        permitted = allowed[unit] | ALWAYS | {unit}
        for item in sorted(set(imports_of(module, source))):
            target_unit = unit_of_target(item.target, units)
            if target_unit is None or target_unit in permitted:
                continue
            may = ", ".join(sorted(allowed[unit] | ALWAYS))
            found.append(
                f"{item.module}:{item.line}: {unit} imports {item.target} ({target_unit}); "
                f"{unit} may import only {may}"
            )
    return found


def _sources() -> dict[str, str]:
    return {
        path.relative_to(PACKAGE).as_posix(): path.read_text()
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_package_imports_one_it_may_not() -> None:
    """Every import under src/lanspread, even inside a function or a TYPE_CHECKING block,
    stays within its package's row of the layer table."""
    found = violations(_sources())
    assert found == [], "imports that break the layer contract:\n" + "\n".join(found)


def test_every_package_has_a_row() -> None:
    """A new package (or top-level module) must be placed in the table before it is used."""
    units = {unit_of_module(module) for module in _sources()}
    assert units - set(ALLOWED) == set()
    on_disk = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name[0] != "_"}
    assert on_disk <= set(ALLOWED)


def test_the_table_keeps_the_contract() -> None:
    """The rows themselves say what docs/ARCHITECTURE.md says: core imports nothing, the four
    sibling shells never import each other, and nothing below the runtime imports it."""
    assert ALLOWED["core"] == frozenset()
    for shell in SIBLING_SHELLS:
        assert ALLOWED[shell] & SIBLING_SHELLS == frozenset(), shell
    for unit in ("core", "platform", "files", "net", *SIBLING_SHELLS):
        assert ALLOWED[unit] & {"runtime", "web", "demo", "cli", ROOT} == frozenset(), unit
    assert ALLOWED["runtime"] & {"web", "demo", "cli"} == frozenset()
    assert "cli" not in ALLOWED["web"] | ALLOWED["demo"]


SYNTHETIC = """
from __future__ import annotations
from typing import TYPE_CHECKING
import lanspread.core.manifest
from lanspread.files.atomic import fsync_dir
from lanspread.errors import StorageError
from . import journal
if TYPE_CHECKING:
    from lanspread.storage.index import LibraryIndex

def later():
    from lanspread.install import sweep
    from ..runtime import events
    import importlib
    return importlib.import_module("lanspread.seeding.manifests")
"""


def test_the_check_names_each_forbidden_import_wherever_it_stands() -> None:
    """Fed a download module that imports its siblings at the top, under TYPE_CHECKING,
    inside a function, relatively and through importlib, the check names each one with its
    line, and lets the allowed ones (core, files, errors, its own package) pass."""
    found = violations({"download/example.py": SYNTHETIC})
    may = "core, errors, files, net, platform"
    assert found == [
        f"download/example.py:9: download imports lanspread.storage.index.LibraryIndex "
        f"(storage); download may import only {may}",
        f"download/example.py:12: download imports lanspread.install.sweep (install); "
        f"download may import only {may}",
        f"download/example.py:13: download imports lanspread.runtime.events (runtime); "
        f"download may import only {may}",
        f"download/example.py:15: download imports lanspread.seeding.manifests (seeding); "
        f"download may import only {may}",
    ]


def test_core_may_import_nothing_but_the_errors() -> None:
    """A core module importing even the lowest shell is caught; the errors are always fine."""
    source = "from lanspread.errors import CatalogError\nfrom lanspread.platform import fileio\n"
    assert violations({"core/example.py": source}) == [
        "core/example.py:2: core imports lanspread.platform.fileio (platform); "
        "core may import only errors"
    ]


def test_the_root_package_counts_as_the_public_api() -> None:
    """``from lanspread import __version__`` imports the root package (and so the runtime):
    fine for the commands, not for a shell."""
    source = "from lanspread import __version__\n"
    assert violations({"cli/example.py": source}) == []
    assert violations({"net/example.py": source}) == [
        "net/example.py:1: net imports lanspread.__version__ (lanspread); "
        "net may import only core, errors, files, platform"
    ]


def test_a_unit_without_a_row_is_reported() -> None:
    """A file in a package the table does not know fails, naming the package."""
    assert violations({"plugins/example.py": "x = 1\n"}) == [
        "plugins/example.py: plugins has no row in the layer table"
    ]
