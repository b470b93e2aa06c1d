"""The library's shape: imports point one way (no cycles) and nobody uses another's private names.

Read from the source with `ast`, every import counted, inside functions too: a lazy import that
closes a cycle still ties the two modules together.
"""

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[1] / "src" / "cvgen"


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(LIBRARY.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, str | None, int]]:
    """(imported cvgen module, imported name or None, line) of every import in a module."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    found.append((submodule, None, node.lineno))
                else:
                    found.append((base, alias.name, node.lineno))
    return [(module, item, line) for module, item, line in found if module in MODULES]


def graph() -> dict[str, set[str]]:
    return {name: {module for module, _, _ in imports(name)} - {name} for name in MODULES}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_imports_and_cycles():
    assert "cvgen.engines.backend" in graph()["cvgen.engines.compiled"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_another_modules_private_names(name):
    private = [
        f"line {line}: {item} from {module}"
        for module, item, line in imports(name)
        if item and item.startswith("_") and not item.startswith("__")
    ]
    assert private == []


def test_the_package_layout_shows_the_architecture():
    """Engines, their kernels and strategies in one package; benchmarks in another."""
    engines = {n for n in MODULES if n.startswith("cvgen.engines.")}
    assert {
        "cvgen.engines.base",
        "cvgen.engines.backend",
        "cvgen.engines.compiled",
        "cvgen.engines.per_mode",
        "cvgen.engines.total_photon",
        "cvgen.engines.sf",
    } <= engines
    assert any(n.startswith("cvgen.bench.") for n in MODULES)
    stages = {module for module, _, _ in imports("cvgen.stages")}
    assert not {"cvgen.engines.compiled", "cvgen.engines.sf"} & stages  # only the registry
