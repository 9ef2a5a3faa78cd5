"""The shape of the package, read from its source: imports flow one way, and only the registry and the
objective know backend and model names.

Both checks parse w2v/ with ast (nothing is imported), so they hold for code paths no other test runs.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "w2v"
BACKEND_NAMES = {"dense", "sparse", "onehot", "offload", "fused"}
MODEL_NAMES = {"skipgram", "cbow"}
# The two places that map names to behaviour: backend.name -> class, model.name -> objective.
NAME_OWNERS = {"w2v.backends.registry", "w2v.objective"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside `if TYPE_CHECKING:`: never executed, so not an import at run time."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The w2v modules `name` imports anywhere in its body (function-level imports included).

    Importing a.b.c runs a/__init__ and a/b/__init__ first, so those count as imported too,
    unless `name` lives inside them (a package's own modules import it while it is being built).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets.add(source)
            targets.update(f"{source}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    found = set()
    for target in targets:
        if target not in known:
            continue
        found.add(target)
        parts = target.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in known and not (name == parent or name.startswith(parent + ".")):
                found.add(parent)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each a circle of imports."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_the_import_graph_finds_real_edges():
    """The walk sees relative, nested and `from package import module` imports (else the next test proves nothing)."""
    graph = import_graph()
    assert "w2v.objective" in graph["w2v.trainer"]
    assert {"w2v.backends.base", "w2v.backends.registry"} <= graph["w2v.backends.fused"]
    assert "w2v.table_sync" in graph["w2v.backends.fused"]  # a function-level import
    assert {"w2v.backends.autograd", "w2v.backends.fused", "w2v.backends.offload"} <= graph["w2v.backends"]
    assert "w2v.backends" in graph["w2v.trainer"]  # importing w2v.backends.base runs the package first
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_among_w2v_modules():
    assert cycles(import_graph()) == []


def name_comparisons(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, source) of every comparison against a backend or model name, or a collection of them.

    Sync methods share the word "dense" with a backend (train.sync_method=dense): a comparison
    whose other side speaks of a method is about those, not about a backend.
    """
    names = BACKEND_NAMES | MODEL_NAMES

    def literals(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return set().union(*(literals(e) for e in node.elts)) if node.elts else set()
        return set()

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            hits = set().union(*(literals(o) for o in operands)) & names
            others = " ".join(ast.unparse(o) for o in operands if not literals(o))
            if hits and not ("method" in others and hits <= {"dense"}):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.match_case) and literals(getattr(node.pattern, "value", None) or ast.Pass()) & names:
            found.append((node.lineno, ast.unparse(node.pattern)))
    return found


def test_the_name_check_sees_the_branches_it_forbids():
    sample = ast.parse('if cfg.backend.name == "fused": pass\n'
                       'x = 1 if model_name in ("cbow", "skipgram") else 2\n'
                       'if method == "dense": pass\n'
                       'y = BACKENDS["dense"]\n')
    assert [line for line, _ in name_comparisons(sample)] == [1, 2]


@pytest.mark.parametrize("name", sorted(set(modules()) - NAME_OWNERS))
def test_no_module_branches_on_a_backend_or_model_name(name):
    path = modules()[name]
    assert name_comparisons(ast.parse(path.read_text(), filename=str(path))) == [], \
        f"{name} branches on a backend or model name: ask the backend's capabilities or the objective instead"
