"""docs/DELETION.md lists every function under src/ that deletes, renames or replaces.

The rule is that lanspread deletes only what it can prove it created, and
docs/DELETION.md names, for every such code path, the proof it checks and the
test in which a player's own file survives it. These tests keep the table whole:
a new call to one of the deletion functions below in a function the table does
not name fails here, so no deletion path lands without its proof entry; and
every row must name functions and tests that exist.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "lanspread"
TABLE = REPO / "docs" / "DELETION.md"
TESTS = REPO / "tests"

MODULE_CALLS = {
    "os": frozenset({"unlink", "remove", "rmdir", "replace", "rename"}),
    "shutil": frozenset({"rmtree"}),
}
"""``module.function`` calls that delete or replace a name."""

PATH_REMOVALS = frozenset({"unlink", "rmdir"})
"""``Path`` methods that delete: matched on any receiver (no other type we use has them)."""

PATH_MOVES = frozenset({"replace", "rename"})
"""``Path`` methods that move a name over another; ``str.replace`` (two arguments) and
``dataclasses.replace`` / ``msgspec.structs.replace`` (keyword arguments) are not them."""


@dataclass(frozen=True, order=True)
class Site:
    module: str
    """Relative to ``src/lanspread``, ``/``-separated (as the table writes it)."""
    function: str
    """Qualified within the module: ``Class.method``, ``outer.inner``."""
    line: int
    call: str


def _call_name(call: ast.Call) -> str | None:
    """The deletion ``call`` makes (``os.unlink``, ``.replace``), or ``None``."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    receiver = func.value
    if isinstance(receiver, ast.Name) and receiver.id in MODULE_CALLS:
        return f"{receiver.id}.{func.attr}" if func.attr in MODULE_CALLS[receiver.id] else None
    if func.attr in PATH_REMOVALS:
        return f".{func.attr}"
    if func.attr in PATH_MOVES and len(call.args) == 1 and not call.keywords:
        return f".{func.attr}"
    return None


def _find_sites(module: str, tree: ast.AST) -> list[Site]:
    """The deletion calls in ``tree``, each with its innermost enclosing class and functions."""
    sites: list[Site] = []

    def walk(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                inner = (*scope, child.name)
            elif isinstance(child, ast.Call):
                name = _call_name(child)
                if name is not None:
                    function = ".".join(scope) or "<module>"
                    sites.append(Site(module, function, child.lineno, name))
            walk(child, inner)

    walk(tree, ())
    return sites


def _definitions(tree: ast.AST) -> set[str]:
    """Every qualified function and method name a module defines."""
    names: set[str] = set()

    def walk(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                inner = (*scope, child.name)
                if not isinstance(child, ast.ClassDef):
                    names.add(".".join(inner))
                walk(child, inner)
            else:
                walk(child, scope)

    walk(tree, ())
    return names


def _modules() -> dict[str, ast.Module]:
    return {
        path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def deletion_sites() -> list[Site]:
    """Every deletion call under ``src/lanspread``, with the function that makes it."""
    sites: list[Site] = []
    for module, tree in _modules().items():
        sites += _find_sites(module, tree)
    return sorted(sites)


@dataclass(frozen=True)
class Row:
    functions: tuple[tuple[str, str], ...]
    """``(module, qualified function)`` pairs of the first column."""
    proof: str
    tests: str


_TICKED = re.compile(r"`([^`]+)`")
_NAMED = re.compile(r"^(?P<module>[\w/]+\.py): (?P<function>[\w.]+)$")
_FUNCTION = re.compile(r"^\.?(?P<function>[\w.]+)$")


def table_rows() -> list[Row]:
    """The rows of the *Every site* table of docs/DELETION.md."""
    text = TABLE.read_text()
    section = text.split("\n## Every site\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"a row of the table needs four cells: {line}"
        functions = []
        module = ""
        # A parenthesis in the first column says how, not which function.
        for ticked in _TICKED.findall(re.sub(r"\([^)]*\)", "", cells[0])):
            named = _NAMED.match(ticked)
            if named is not None:
                module = named["module"]
                functions.append((module, named["function"]))
                continue
            bare = _FUNCTION.match(ticked)
            assert bare is not None, f"not a function name: {ticked!r} in {line}"
            assert module, f"a function before any module: {ticked!r} in {line}"
            previous = functions[-1][1] if functions else ""
            owner = previous.rsplit(".", 1)[0] if ticked.startswith(".") and "." in previous else ""
            name = f"{owner}.{bare['function']}" if owner else bare["function"]
            functions.append((module, name))
        rows.append(Row(tuple(functions), cells[2], cells[3]))
    return rows


def _named_functions() -> set[tuple[str, str]]:
    return {function for row in table_rows() for function in row.functions}


def test_every_deletion_site_is_in_the_table() -> None:
    """A function under src/ that deletes, renames or replaces a file or folder (os.unlink,
    os.remove, os.rmdir, os.replace, os.rename, shutil.rmtree, Path.unlink, Path.rmdir,
    Path.replace, Path.rename) is named in docs/DELETION.md with its proof."""
    named = _named_functions()
    missing = [
        f"{site.module}:{site.line}: {site.call} in {site.function}"
        for site in deletion_sites()
        if (site.module, site.function) not in named
    ]
    assert missing == [], "deletion sites missing from docs/DELETION.md:\n" + "\n".join(missing)


def test_the_scan_finds_each_kind_of_deletion_call() -> None:
    """The scanner sees every listed call form and none of the look-alikes (a string's or a
    dataclass's ``replace``), so an empty result above means the table is whole."""
    source = """
import os, shutil, dataclasses
def deletes(path, other):
    os.unlink(path); os.remove(path); os.rmdir(path); os.replace(path, other)
    os.rename(path, other); shutil.rmtree(path); path.unlink(); path.rmdir()
    path.replace(other); path.rename(other)
class Owner:
    def method(self, path):
        helper = lambda: path.unlink(missing_ok=True)
def looks_alike(text, record, items):
    text.replace("a", "b"); dataclasses.replace(record, a=1); items.remove(1)
"""
    found = [(site.function, site.call) for site in _find_sites("example.py", ast.parse(source))]
    deletes = [
        "os.unlink",
        "os.remove",
        "os.rmdir",
        "os.replace",
        "os.rename",
        "shutil.rmtree",
        ".unlink",
        ".rmdir",
        ".replace",
        ".rename",
    ]
    assert found == [("deletes", call) for call in deletes] + [("Owner.method", ".unlink")]


def test_every_function_the_table_names_exists() -> None:
    """A row naming a function that was renamed or removed fails, so the table never
    vouches for code that is gone."""
    defined = {module: _definitions(tree) for module, tree in _modules().items()}
    stale = [
        f"{module}: {function}"
        for module, function in sorted(_named_functions())
        if function not in defined.get(module, set())
    ]
    assert stale == []


_TEST_REF = re.compile(r"`(?P<file>[\w/]+\.py)?(?:::(?P<test>\w+))?`")


def test_every_row_names_a_proof_and_an_existing_test() -> None:
    """Each row says which proof it checks and cites test files and test functions that
    exist (``file.py::test`` or ``::test`` continuing the previous file)."""
    problems = []
    for row in table_rows():
        label = ", ".join(f"{module}: {function}" for module, function in row.functions)
        if not row.proof:
            problems.append(f"{label}: no proof")
        cited = 0
        current: Path | None = None
        for ref in _TEST_REF.finditer(row.tests):
            if ref["file"]:
                current = TESTS / ref["file"]
                if not current.is_file():
                    problems.append(f"{label}: no test file {ref['file']}")
                    continue
            if ref["test"]:
                if current is None:
                    problems.append(f"{label}: ::{ref['test']} without a file")
                    continue
                if not re.search(rf"^(async )?def {ref['test']}\(", current.read_text(), re.M):
                    problems.append(f"{label}: no test {ref['test']} in {current.name}")
            cited += 1
        if cited == 0 and "see those rows" not in row.tests:
            problems.append(f"{label}: no test cited")
    assert problems == []
