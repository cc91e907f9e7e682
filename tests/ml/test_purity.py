"""app.ml is pure (no database, Redis, queue or web code), and no import cycle runs through its modules."""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "app" / "ml"
BANNED = ("sqlalchemy", "sqlmodel", "redis", "rq", "fastapi")

_PROBE = """
import importlib, json, pkgutil, sys
import app.ml
names = ["app.ml"] + [m.name for m in pkgutil.walk_packages(app.ml.__path__, "app.ml.")]
for name in names:
    importlib.import_module(name)
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"modules": names, "banned": loaded}))
"""


def test_importing_every_module_of_app_ml_loads_no_database_queue_or_web_library() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(BANNED)], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(report["modules"]) > 20 and "app.ml.lifecycle" in report["modules"]
    assert report["banned"] == []


def test_importing_app_ml_leaves_torch_and_skops_to_the_code_that_uses_them() -> None:
    """A CLI command or a tuning trial imports app.ml; skops (all of scikit-learn) and torch cost a process
    3-4 s of its start and are imported only where a model file or a price network needs them."""
    out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(["torch", "skops"])], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1])["banned"] == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """app.ml modules imported anywhere in the file (inside functions too), except under TYPE_CHECKING."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                if child in modules:
                    found.add(child)  # `from app.ml import targets` imports the module app.ml.targets
                elif node.module in modules:
                    found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(f) for f in files}
    graph = {}
    for path in files:
        name = _module_name(path)
        graph[name] = _imports(ast.parse(path.read_text()), modules) - {name}
    return graph


def test_app_ml_has_no_import_cycle_even_through_imports_inside_functions() -> None:
    graph = import_graph()
    assert {"app.ml.base", "app.ml.validation", "app.ml.dataset", "app.ml.registry"} <= set(graph)
    assert "app.ml.validation" in graph["app.ml.base"]  # the graph sees real edges
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_the_cycle_check_would_catch_a_cycle_hidden_in_a_function() -> None:
    source = "def f():\n    from app.ml.base import BaseModel\n"
    modules = {"app.ml.base", "app.ml.validation"}
    graph = {"app.ml.base": {"app.ml.validation"}, "app.ml.validation": _imports(ast.parse(source), modules)}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError:
        return
    raise AssertionError("a function-level import cycle went unnoticed")
