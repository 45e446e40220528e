"""Layering, read from the source (ast, nothing imported): the reference engine stays plain.

``course/ops``, ``course/ir``, ``course/passes`` and ``course/memory`` import neither numba nor
the execution providers (dependencies point from providers/runtime down to ops/ir/passes/memory,
never back), ops does not import ir (op schemas sit below the IR), and no function in
``course/`` outside the fast CPU provider is longer than 60 lines.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

COURSE = pathlib.Path(__file__).resolve().parent.parent / "course"
PLAIN = ("ops", "ir", "passes", "memory", "quant", "prune")  # the packages that must stay free of the fast engine
MAX_FUNCTION_LINES = 60
LONG_FUNCTIONS_ALLOWED = ()  # none: the compiled loops are split too


def _sources(*parts: str):
    root = COURSE.joinpath(*parts)
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _module_of(path: pathlib.Path, root: pathlib.Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_modules(path: pathlib.Path, root: pathlib.Path = COURSE) -> set[str]:
    """Every module ``path`` (a file of the package at ``root``) imports, at top level or inside
    functions; relative imports resolved."""
    package = _module_of(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # ``from course import providers``
    return found


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("package", PLAIN)
def test_plain_packages_import_neither_numba_nor_providers(package):
    bad = {f"{path.relative_to(COURSE)}: {m}"
           for path in _sources(package) for m in imported_modules(path)
           if _is_under(m, "numba") or _is_under(m, "course.providers") or _is_under(m, "llvmlite")}
    assert not bad, "the reference engine must not import the fast engine:\n" + "\n".join(sorted(bad))


def test_ops_do_not_import_the_ir():
    bad = {f"{path.relative_to(COURSE)}: {m}" for path in _sources("ops") for m in imported_modules(path)
           if _is_under(m, "course.ir") or _is_under(m, "course.runtime")}
    assert not bad, "course/ops sits below the IR (no ir <-> ops cycle):\n" + "\n".join(sorted(bad))


# package -> the packages of course/ it may import (course.errors and course._env: anyone)
LAYERS = {
    "ops": set(),
    "ir": {"ops"},
    "passes": {"ir", "ops"},
    "providers": {"ir", "ops", "passes"},
    "memory": {"ir", "ops", "containers", "tensor"},
    "runtime": {"ir", "ops", "passes", "providers", "memory"},
    "quant": {"ir", "ops", "passes"},  # calibration and metrics run the reference ops (passes.evaluate)
    "prune": {"ir", "ops", "passes"},
}


def test_layers_import_one_way():
    """ops (schemas + reference) <- ir <- passes <- providers <- runtime, lazy imports included."""
    bad = []
    for package, allowed in LAYERS.items():
        for path in _sources(package):
            for m in imported_modules(path):
                parts = m.split(".")
                if parts[0] != "course" or len(parts) < 2 or parts[1] in (package, "errors", "_env"):
                    continue
                if (COURSE / parts[1]).is_dir() and parts[1] not in allowed:
                    bad.append(f"{path.relative_to(COURSE)}: {m}")
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))


def test_no_cycle_among_module_level_imports():
    """Between the modules of one package only module-level imports count (a method importing
    its helper lazily, as ``Graph.verify`` does, is how such a cycle is avoided)."""
    modules = {_module_of(p, COURSE): p for p in _sources()}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        found = set()
        for node in top:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif node.module:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        # a package's __init__ importing its own submodules is how packages are built
        graph[name] = {t for t in found if t in modules and t != name and not t.startswith(name + ".")}
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _find_cycle(graph):
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return None

    return next((c for m in sorted(graph) if m not in state and (c := visit(m))), None)


def long_functions(paths) -> list[str]:
    out = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{path.relative_to(COURSE)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_over_60_lines():
    paths = [p for p in _sources() if not any(str(p.relative_to(COURSE)).startswith(a) for a in LONG_FUNCTIONS_ALLOWED)]
    bad = long_functions(paths)
    assert not bad, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(bad)


def test_the_scanner_sees_imports_inside_functions(tmp_path):
    src = tmp_path / "course" / "ops" / "m.py"
    src.parent.mkdir(parents=True)
    src.write_text("def f():\n    from ..providers import cpu\n    import numba.core\n")
    mods = imported_modules(src, tmp_path / "course")
    assert {"course.providers", "course.providers.cpu", "numba.core"} <= mods
