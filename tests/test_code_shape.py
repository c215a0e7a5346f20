"""The shape the code keeps: functions short enough to read at once (docs/architecture.md); the import layers are
checked by `lint-imports` in scripts/test.sh."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kgdistill"
MAX_LINES = 80


def long_functions(root: Path, limit: int = MAX_LINES) -> list[str]:
    """Every function or method under ``root`` longer than ``limit`` lines (decorators not counted)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_is_longer_than_80_lines():
    long = long_functions(PACKAGE)
    assert not long, "split these functions: " + "; ".join(long)


def test_the_checker_finds_long_methods_and_nested_functions(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("class A:\n    def f(self):\n" + "        x = 1\n" * 80
                              + "def g():\n    def inner():\n" + "        y = 2\n" * 79 + "    return inner\n")
    assert set(long_functions(pkg)) == {"pkg/a.py:2 f (81 lines)", "pkg/a.py:83 g (82 lines)"}
