"""The package's shape: no import cycle (imports inside functions count), no file over 700 lines, one derivative
rule per op (no ``vjp``), and ops reached from outside ``nerve/ops/`` only through ``nerve.ops`` itself."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "nerve"
MAX_LINES = 700


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(), filename=str(path)) for name, path in FILES.items()}


def _is_package(module: str) -> bool:
    return FILES[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str | None:
    """The absolute module an ``ImportFrom`` names (relative imports resolved against ``module``)."""
    if not node.level:
        return node.module
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _dynamic_targets(node: ast.Call) -> list:
    """Modules loaded by ``import_module("nerve.x")``; an f-string ``import_module(f"nerve.x.{name}")`` stands for
    every module under that prefix."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name != "import_module" or not node.args:
        return []
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        prefix = arg.values[0].value
        return [m for m in FILES if m.startswith(prefix) and m != prefix.rstrip(".")]
    return []


def imports(module: str) -> list:
    """(imported nerve module, line) for every import anywhere in ``module``'s file, functions included.
    ``from a import b`` counts as importing ``a.b`` when ``b`` is a submodule, else as importing ``a``."""
    found = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.append((sub if sub in FILES else source, node.lineno))
        elif isinstance(node, ast.Call):
            found += [(target, node.lineno) for target in _dynamic_targets(node)]
    return sorted({(target, line) for target, line in found if target in FILES}, key=lambda e: (e[1], e[0]))


GRAPH = {m: imports(m) for m in FILES}


def strongly_connected_components(graph: dict) -> list:
    """Tarjan's algorithm, iterative; each component as a list of nodes."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _cycle_through(start: str, members: set) -> list:
    """A shortest import path from ``start`` back to itself inside one component."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for target, _ in GRAPH[path[-1]]:
            if target == start:
                return path + [start]
            if target in members and target not in seen:
                seen.add(target)
                paths.append(path + [target])
    raise AssertionError(f"no cycle through {start}")


def _describe(cycle: list) -> str:
    steps = []
    for a, b in zip(cycle, cycle[1:]):
        line = min(line for target, line in GRAPH[a] if target == b)
        steps.append(f"{a} (line {line}) -> {b}")
    return "\n    ".join(steps)


def test_the_checker_sees_known_edges_and_cycles():
    """Guards the checker itself: a plain ``from`` import, a submodule named in ``from`` (``from nerve import
    backend``), imports made through ``import_module`` (the ops registry), and a known cycle."""
    targets = {m: {t for t, _ in edges} for m, edges in GRAPH.items()}
    assert {"nerve.tensor", "nerve.ops.elementwise", "nerve.ops.broadcast"} <= targets["nerve.ops"]
    assert {"nerve.backend", "nerve.autograd.function"} <= targets["nerve.ops.elementwise"]
    assert "nerve" not in targets["nerve.ops.elementwise"]  # a submodule import does not import the package
    cyclic = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    assert sorted(map(sorted, strongly_connected_components(cyclic))) == [["a", "b", "c"], ["d"]]


def test_no_import_cycle():
    cycles = []
    for component in strongly_connected_components({m: [t for t, _ in edges] for m, edges in GRAPH.items()}):
        if len(component) > 1 or any(t == component[0] for t, _ in GRAPH[component[0]]):
            start = min(component)
            cycles.append(f"{len(component)} modules: {', '.join(sorted(component))}\n  e.g.\n    "
                          + _describe(_cycle_through(start, set(component))))
    if cycles:
        pytest.fail("import cycles in nerve/ (imports inside functions count):\n" + "\n".join(cycles))


def test_no_file_over_700_lines():
    long = {str(p.relative_to(ROOT.parent)): n for p in FILES.values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    if long:
        pytest.fail(f"files over {MAX_LINES} lines: {long}")


def test_no_vjp_method_remains():
    """No class defines ``vjp`` (the functions ``torch.autograd.functional.vjp`` and ``torch.func.vjp`` are
    PyTorch's transforms, not a second rule)."""
    found = [f"{FILES[m].relative_to(ROOT.parent)}:{node.lineno}" for m, tree in TREES.items()
             for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef) for node in cls.body
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "vjp"]
    if found:
        pytest.fail(f"each op has one derivative rule, backward(self, g, m); 'def vjp' remains at {found}")


OUTSIDE_OPS = [m for m in FILES if m != "nerve.ops" and not m.startswith("nerve.ops.")]


def test_code_outside_ops_imports_only_nerve_ops_itself():
    bad = [f"{m} line {line}: {target}" for m in OUTSIDE_OPS for target, line in GRAPH[m]
           if target.startswith("nerve.ops.")]
    if bad:
        pytest.fail("ops modules imported directly (use 'from nerve.ops import name'):\n  " + "\n  ".join(bad))


def test_code_outside_ops_imports_no_private_ops_names():
    bad = [f"{m} line {node.lineno}: {alias.name}" for m in OUTSIDE_OPS for node in ast.walk(TREES[m])
           if isinstance(node, ast.ImportFrom) and _resolve(m, node) == "nerve.ops"
           for alias in node.names if alias.name.startswith("_")]
    if bad:
        pytest.fail("private names imported from nerve.ops:\n  " + "\n  ".join(bad))
