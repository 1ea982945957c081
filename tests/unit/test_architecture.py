"""The layering of src/mlrelay, read from the source with ``ast``: which module may import which.

Layers, top to bottom. A module may import its own layer and any lower one, never a higher one:

- ``api``: what users call (``mlrelay``, ``fluent``, ``cli``, ``_fluent_models``, ...);
- ``pipeline``: the offline-first delivery layer, ``_pipeline`` and everything under it;
- ``client``: ``client``, ``_registry``, ``_logged_models``, ``_artifacts``, ``_capabilities``;
- ``stores``: ``_stores`` and below, the artifact stores the client opens by URI scheme (the
  tracking server's proxy over the transport, s3:// with boto3);
- ``wire``: ``_transport``, ``_retry``, ``_credentials``, ``_config``;
- ``base``: no HTTP, no global state (``_errors``, ``_validation``, ``_version``, ``_protocol``,
  ``_formats``, ``_pyfunc``).

Inside ``base``, ``_formats`` and ``_protocol`` are narrower still (see ``ONLY``).

What counts as an import: every ``import``/``from ... import`` statement that runs, at module
level, inside functions or inside ``try``; not those under ``if TYPE_CHECKING:``. ``from mlrelay
import x`` imports ``mlrelay.x`` when ``x`` is a submodule, the package ``mlrelay`` otherwise.
The implicit import of a parent package does not count. Imports through ``importlib`` with a
computed name (the lazy ``__getattr__`` of ``mlrelay/__init__.py``) are not seen.

A new module must be placed in ``TABLE``; a new public top-level module is ``api`` by default.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "mlrelay"
MAX_FUNCTION_LINES = 60

# Bottom to top: a module may import a module whose layer is at the same index or lower.
LAYERS = ("base", "wire", "stores", "client", "pipeline", "api")

# Module name -> layer. "name.*" means the module and everything under it.
TABLE: dict[str, str] = {
    "mlrelay": "api",
    "mlrelay.fluent": "api",
    "mlrelay.cli": "api",
    "mlrelay._fluent_models": "api",
    "mlrelay._fluent_logged_models": "api",
    "mlrelay._dagshub": "api",
    "mlrelay._autolog.*": "api",  # beside the fluent API, and calls it
    "mlrelay._pipeline.*": "pipeline",
    "mlrelay.client": "client",
    "mlrelay._registry": "client",
    "mlrelay._logged_models": "client",
    "mlrelay._logged_model_api": "client",
    "mlrelay._artifacts": "client",
    "mlrelay._capabilities": "client",
    "mlrelay._stores.*": "stores",
    "mlrelay._transport": "wire",
    "mlrelay._retry": "wire",
    "mlrelay._credentials": "wire",
    "mlrelay._config": "wire",
    "mlrelay._errors": "base",
    "mlrelay._validation": "base",
    "mlrelay._version": "base",
    "mlrelay._protocol.*": "base",
    "mlrelay._formats.*": "base",
    "mlrelay._pyfunc": "base",
    "mlrelay._system_metrics": "base",
}

# Importer pattern -> the only package modules it may import (stdlib and third party are free).
ONLY: dict[str, tuple[str, ...]] = {
    "mlrelay._formats.*": ("mlrelay._errors", "mlrelay._protocol.*", "mlrelay._formats.*"),
    "mlrelay._protocol.*": ("mlrelay._errors", "mlrelay._validation", "mlrelay._protocol.*"),
}


@dataclass(frozen=True)
class Import:
    """One import of a package module: who imports what, and where."""

    importer: str
    imported: str
    path: Path
    lineno: int


@dataclass(frozen=True)
class Tree:
    """The modules of one package on disk and the package imports they make."""

    package: str
    modules: dict[str, Path]  # module name -> file
    packages: frozenset[str]  # module names that are packages (an __init__.py)
    imports: tuple[Import, ...]


def module_name(root: Path, path: Path) -> str:
    """The dotted name of a .py file under root (the directory that holds the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    """Whether an ``if`` test is ``TYPE_CHECKING`` or ``<module>.TYPE_CHECKING``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _running_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under node that can run: ``if TYPE_CHECKING:`` bodies skipped."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        children: Iterable[ast.AST] = node.orelse
    else:
        children = ast.iter_child_nodes(node)
    for child in children:
        yield from _running_imports(child)


def _from_base(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module a ``from X import ...`` statement reads from."""
    if node.level == 0:
        return node.module or ""
    anchor = importer.split(".") if is_package else importer.split(".")[:-1]
    if node.level - 1 >= len(anchor):
        raise ValueError(f"{importer}: relative import beyond the top-level package")
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _in_package(name: str, package: str) -> bool:
    """Whether a dotted name is the package or under it."""
    return name == package or name.startswith(package + ".")


def imported_modules(
    node: ast.Import | ast.ImportFrom, importer: str, tree_modules: Mapping[str, object], *,
    package: str, is_package: bool,
) -> list[str]:  # fmt: skip
    """The package modules one import statement imports (parents implied by it not counted)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if _in_package(a.name, package)]
    base = _from_base(node, importer, is_package)
    if not _in_package(base, package):
        return []
    found = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        found.append(candidate if candidate in tree_modules else base)
    return found


def collect(root: Path, package: str) -> Tree:
    """Parse every module of root/package (nothing is imported) and gather its package imports."""
    files = sorted((root / package).rglob("*.py"))
    modules = {module_name(root, f): f for f in files}
    packages = frozenset(module_name(root, f) for f in files if f.name == "__init__.py")
    imports = []
    for name, path in modules.items():
        syntax = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _running_imports(syntax):
            for target in imported_modules(
                node, name, modules, package=package, is_package=name in packages
            ):
                if target != name:
                    imports.append(Import(name, target, path, node.lineno))
    return Tree(package, modules, packages, tuple(imports))


def matches(module: str, pattern: str) -> bool:
    """Whether a module matches a table pattern ("a.b" exactly, "a.b.*" for a.b and below)."""
    if pattern.endswith(".*"):
        return _in_package(module, pattern[:-2])
    return module == pattern


def layer_of(module: str, package: str, table: Mapping[str, str]) -> str | None:
    """The layer of a module; None when the table must say (an unknown underscore module)."""
    hits = [p for p in table if matches(module, p)]
    if hits:
        return table[max(hits, key=len)]
    parts = module.split(".")
    if len(parts) < 2:
        return None
    top = f"{package}.{parts[1]}"
    if top in table or parts[1].startswith("_"):
        return None
    return "api"


def check_layers(tree: Tree, table: Mapping[str, str]) -> list[str]:
    """Unplaced modules, then every import of a higher layer, as readable lines."""
    lines = []
    every = sorted(set(tree.modules) | {i.imported for i in tree.imports})
    for module in every:
        if layer_of(module, tree.package, table) is None:
            lines.append(
                f"{module} is in no layer: place it in TABLE in tests/unit/test_architecture.py"
            )
    seen: dict[tuple[str, str], list[Import]] = {}
    for imp in tree.imports:
        low = layer_of(imp.importer, tree.package, table)
        high = layer_of(imp.imported, tree.package, table)
        if low is None or high is None or LAYERS.index(high) <= LAYERS.index(low):
            continue
        seen.setdefault((imp.importer, imp.imported), []).append(imp)
    for (importer, imported), where in sorted(seen.items()):
        low, high = layer_of(importer, tree.package, table), layer_of(imported, tree.package, table)
        lines.append(f"{importer} -> {imported} ({low} -> {high})")
        lines.append("    at " + ", ".join(_location(i.path, i.lineno) for i in where))
    return lines


def check_only(tree: Tree, only: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Every import a narrow subtree (``ONLY``) is not allowed, as readable lines."""
    seen: dict[tuple[str, str, str], list[Import]] = {}
    for imp in tree.imports:
        for pattern, allowed in only.items():
            if matches(imp.importer, pattern) and not any(
                matches(imp.imported, a) for a in allowed
            ):
                seen.setdefault((imp.importer, imp.imported, pattern), []).append(imp)
    lines = []
    for (importer, imported, pattern), where in sorted(seen.items()):
        allowed = ", ".join(only[pattern])
        lines.append(f"{importer} -> {imported} ({pattern} may import only {allowed})")
        lines.append("    at " + ", ".join(_location(i.path, i.lineno) for i in where))
    return lines


def graph_of(tree: Tree) -> dict[str, set[str]]:
    """Module -> the package modules it imports (the same edges the layer check reads)."""
    graph: dict[str, set[str]] = {m: set() for m in tree.modules}
    for imp in tree.imports:
        graph.setdefault(imp.importer, set()).add(imp.imported)
        graph.setdefault(imp.imported, set())
    return graph


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        """Tarjan's depth-first step (the graph is a few dozen modules: recursion is fine)."""
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def shortest_cycle(graph: Mapping[str, set[str]], start: str, within: set[str]) -> list[str]:
    """A shortest cycle through start inside one component, as a closed path of module names."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & within):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if nxt not in parent:
                    parent[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return []


def check_cycles(tree: Tree) -> list[str]:
    """Every import cycle: each component of two or more modules, with one cycle per member."""
    graph = graph_of(tree)
    lines = []
    for component in strongly_connected(graph):
        if len(component) < 2:
            continue
        lines.append(f"cycle among {len(component)} modules: {', '.join(component)}")
        shown: set[tuple[str, ...]] = set()
        for member in component:
            cycle = shortest_cycle(graph, member, set(component))
            turn = cycle[:-1].index(min(cycle[:-1]))
            key = tuple(cycle[turn:-1] + cycle[:turn])
            if key not in shown:
                shown.add(key)
                lines.append("    " + " -> ".join([*key, key[0]]))
    return lines


def check_function_lengths(tree: Tree, limit: int) -> list[str]:
    """Every function or method longer than limit lines (def line to end of body)."""
    lines = []
    for path in tree.modules.values():
        syntax = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for qualname, node in _functions(syntax, ""):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                lines.append(f"{_location(path, node.lineno)} {qualname} ({length} lines)")
    return sorted(lines)


def _functions(
    node: ast.AST, prefix: str
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function under node with its dotted qualified name (classes and nesting)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + child.name, child
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def _location(path: Path, lineno: int) -> str:
    """path:line, relative to the repository when the file is in it."""
    try:
        shown = path.relative_to(SRC.parent)
    except ValueError:
        shown = path
    return f"{shown}:{lineno}"


def _report(title: str, lines: list[str]) -> str:
    """An assertion message: a title and one finding per line."""
    return "\n".join([title, *lines])


# --- The checks on src/mlrelay --------------------------------------------------------------


def _tree() -> Tree:
    """The real package, parsed."""
    return collect(SRC, PACKAGE)


def test_the_checker_sees_the_package() -> None:
    """The walker finds the package's modules and imports, so an empty result means something."""
    tree = _tree()
    assert {"mlrelay", "mlrelay.client", "mlrelay._errors"} <= set(tree.modules)
    assert any(i.imported == "mlrelay._errors" for i in tree.imports)


def test_no_module_imports_a_higher_layer() -> None:
    """Every module is placed in a layer and imports only its own layer or lower ones."""
    lines = check_layers(_tree(), TABLE)
    assert not lines, _report("Layering violations (importer -> imported):", lines)


def test_formats_and_protocol_import_only_their_neighbours() -> None:
    """_formats and _protocol import only the few package modules ONLY allows them."""
    lines = check_only(_tree(), ONLY)
    assert not lines, _report("Imports outside the narrow rules:", lines)


def test_no_import_cycles() -> None:
    """No two package modules import each other, directly or through others."""
    lines = check_cycles(_tree())
    assert not lines, _report("Import cycles:", lines)


def test_no_function_is_longer_than_the_limit() -> None:
    """No function or method in src/mlrelay is longer than MAX_FUNCTION_LINES lines."""
    lines = check_function_lengths(_tree(), MAX_FUNCTION_LINES)
    assert not lines, _report(f"Functions longer than {MAX_FUNCTION_LINES} lines:", lines)


# --- The checker on a synthetic package, so it provably can fail -----------------------------

FAKE_FILES = {
    "__init__.py": "from .top import run\n",
    "top.py": "from ._mid_a import a\n\ndef run():\n    return a\n",
    "_low.py": "def late():\n    from fakepkg import top\n    return top\n",
    "_mid_a.py": "from . import _mid_b\na = 1\n",
    "_mid_b.py": "try:\n    import fakepkg._mid_a\nexcept ImportError:\n    pass\n",
    "_typed.py": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from fakepkg import top\nelse:\n    from . import _low\n"
    ),
    "sub/__init__.py": "from .. import run\nfrom . import leaf\n",
    "sub/leaf.py": "from .._low import late\n",
    "_stray.py": "x = 1\n",
}
FAKE_TABLE = {
    "fakepkg": "api",
    "fakepkg.top": "api",
    "fakepkg._mid_a": "client",
    "fakepkg._mid_b": "client",
    "fakepkg._typed": "wire",
    "fakepkg._low": "base",
    "fakepkg.sub.*": "base",
}


def _fake_tree(root: Path, long_body: int = 0) -> Tree:
    """Write the synthetic package under root and parse it."""
    for name, text in FAKE_FILES.items():
        path = root / "fakepkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    body = "".join(f"        x{i} = {i}\n" for i in range(long_body))
    (root / "fakepkg" / "top.py").write_text(
        FAKE_FILES["top.py"] + f"\nclass K:\n    def long(self):\n{body}        return 0\n",
        encoding="utf-8",
    )
    return collect(root, "fakepkg")


def test_self_test_edges(tmp_path: Path) -> None:
    """Relative, lazy, try and package imports resolve; TYPE_CHECKING ones are left out."""
    tree = _fake_tree(tmp_path)
    edges = {(i.importer, i.imported) for i in tree.imports}
    assert edges == {
        ("fakepkg", "fakepkg.top"),
        ("fakepkg.top", "fakepkg._mid_a"),
        ("fakepkg._low", "fakepkg.top"),
        ("fakepkg._mid_a", "fakepkg._mid_b"),
        ("fakepkg._mid_b", "fakepkg._mid_a"),
        ("fakepkg._typed", "fakepkg._low"),
        ("fakepkg.sub", "fakepkg"),
        ("fakepkg.sub", "fakepkg.sub.leaf"),
        ("fakepkg.sub.leaf", "fakepkg._low"),
    }


def test_self_test_layers_fail(tmp_path: Path) -> None:
    """A low module importing a high one, and a module in no layer, are both reported."""
    lines = check_layers(_fake_tree(tmp_path), FAKE_TABLE)
    assert lines == [
        "fakepkg._stray is in no layer: place it in TABLE in tests/unit/test_architecture.py",
        "fakepkg._low -> fakepkg.top (base -> api)",
        f"    at {tmp_path / 'fakepkg' / '_low.py'}:2",
        "fakepkg.sub -> fakepkg (base -> api)",
        f"    at {tmp_path / 'fakepkg' / 'sub' / '__init__.py'}:1",
    ]
    assert layer_of("fakepkg.newpublic", "fakepkg", FAKE_TABLE) == "api"
    assert layer_of("fakepkg.top.inner", "fakepkg", FAKE_TABLE) is None


def test_self_test_only_rule_fails(tmp_path: Path) -> None:
    """A narrow subtree importing outside its allowed list is reported."""
    lines = check_only(_fake_tree(tmp_path), {"fakepkg.sub.*": ("fakepkg.sub.*",)})
    assert [line for line in lines if not line.startswith("    at")] == [
        "fakepkg.sub -> fakepkg (fakepkg.sub.* may import only fakepkg.sub.*)",
        "fakepkg.sub.leaf -> fakepkg._low (fakepkg.sub.* may import only fakepkg.sub.*)",
    ]


def test_self_test_cycles_fail(tmp_path: Path) -> None:
    """Two modules importing each other (one of them inside ``try``) are reported as a cycle."""
    lines = check_cycles(_fake_tree(tmp_path))
    assert lines == [
        "cycle among 2 modules: fakepkg._mid_a, fakepkg._mid_b",
        "    fakepkg._mid_a -> fakepkg._mid_b -> fakepkg._mid_a",
    ]


def test_self_test_function_length(tmp_path: Path) -> None:
    """A 61-line method is reported with its length; a 60-line one is not."""
    assert check_function_lengths(_fake_tree(tmp_path, long_body=58), 60) == []
    lines = check_function_lengths(_fake_tree(tmp_path, long_body=59), 60)
    assert lines == [f"{tmp_path / 'fakepkg' / 'top.py'}:7 K.long (61 lines)"]


def test_self_test_tarjan() -> None:
    """Tarjan's algorithm splits a graph into its strongly connected components."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": set()}
    assert strongly_connected(graph) == [["a", "b", "c"], ["d", "e"], ["f"]]
    assert shortest_cycle(graph, "b", {"a", "b", "c"}) == ["b", "c", "a", "b"]
