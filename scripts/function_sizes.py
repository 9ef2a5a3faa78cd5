"""Print the largest functions in a package, by line count (def line to last line).

Usage: python scripts/function_sizes.py [ROOT=w2v] [N=10]
"""

import ast
import sys
from pathlib import Path


def function_sizes(root: Path):
    """Yield (lines, 'path:qualified.name') for every function and method under root."""
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        yield from _walk(tree, path, prefix="")


def _walk(node, path, prefix):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                yield child.end_lineno - child.lineno + 1, f"{path}:{name}"
            yield from _walk(child, path, prefix=name + ".")


def main(argv):
    root = Path(argv[1]) if len(argv) > 1 else Path("w2v")
    count = int(argv[2]) if len(argv) > 2 else 10
    sizes = sorted(function_sizes(root), reverse=True)
    print(f"{'lines':>5}  function")
    for lines, name in sizes[:count]:
        print(f"{lines:>5}  {name}")


if __name__ == "__main__":
    main(sys.argv)
