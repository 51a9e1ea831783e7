"""The import graph of the core, read from the source: no cycles, and no import up the layers of docs/design.md."""

import ast
import functools
from pathlib import Path

import gencli

ROOT = Path(gencli.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["gencli", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


@functools.cache
def _imports(path: Path, module_level_only: bool) -> frozenset[str]:
    """Return every name ``path`` imports (``pkg.mod`` and ``pkg.mod.attr``), outside ``if TYPE_CHECKING:`` blocks."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.orelse:
                    visit_one(stmt)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and module_level_only:
                continue
            else:
                visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package up
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        visit(node)

    visit(ast.parse(path.read_text()))
    return frozenset(found)


def _graph(module_level_only: bool, within: str = "gencli") -> dict[str, set[str]]:
    """Module -> the core modules it imports (a module importing its own parent package is no edge: Python does that)."""
    graph = {}
    for me, path in MODULES.items():
        if not (me == within or me.startswith(within + ".")):
            continue
        edges = set()
        for name in _imports(path, module_level_only):
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != me and not me.startswith(name + ".") and name.startswith(within):
                edges.add(name)
        graph[me] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_core_modules_at_import_time():
    assert _cycles(_graph(module_level_only=True)) == []


def test_no_import_cycle_inside_metrics_even_through_imports_inside_functions():
    graph = _graph(module_level_only=False, within="gencli.metrics")
    assert "gencli.metrics.fid" in graph and "gencli.metrics.featureset" in graph["gencli.metrics.fid"]
    assert _cycles(graph) == []


def test_no_import_up_the_layers():
    full = _graph(module_level_only=False)
    # The command line is the top layer: nothing below it imports it. Only the program's entry points
    # start it (``gencli`` runs gencli.launcher, ``python -m gencli`` gencli.__main__), and the fast
    # completer they ask first stays below it.
    entry_points = {"gencli.__main__", "gencli.launcher"}
    upward = [(m, d) for m, deps in full.items() for d in deps
              if d.startswith("gencli.cli") and not m.startswith("gencli.cli") and m not in entry_points]
    assert upward == []
    assert not any(d.startswith("gencli.cli") for d in full["gencli.completion"])
    # Metrics are below the command line and the HTML report.
    assert [(m, d) for m, deps in full.items() if m.startswith("gencli.metrics") for d in deps
            if d == "gencli.report"] == []
    # The core names no model family: no module of gencli imports a plugin's package.
    families = [(me, name) for me, path in MODULES.items() for name in _imports(path, module_level_only=False)
                if name.startswith("gencli_")]
    assert families == []
