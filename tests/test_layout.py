"""The shape of the code: no dead functions, and the core never reaches up into webui or worker."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SERVICE_PACKAGES = ("inkwell", "webui", "worker")


def _python_files(*folders: str) -> list[Path]:
    found = []
    for folder in folders:
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            if "models" not in path.relative_to(PROJECT_ROOT).parts:  # the bundled model's shipped copies
                found.append(path)
    return sorted(found)


def test_every_plain_function_and_class_is_used_somewhere() -> None:
    """A top-level function or class nothing names is dead code (decorated ones are registered by their decorator)."""
    sources = {
        path: path.read_text()
        for path in _python_files(*SERVICE_PACKAGES, "tests", "training", "benchmarks", "scripts", "migrations")
    }
    dead = []
    for path in _python_files(*SERVICE_PACKAGES):
        for node in ast.parse(sources[path]).body:
            if not isinstance(node, ast.FunctionDef | ast.ClassDef) or node.decorator_list:
                continue
            name = re.compile(rf"\b{re.escape(node.name)}\b")
            if sum(len(name.findall(text)) for text in sources.values()) <= 1:  # only its own definition
                dead.append(f"{path.relative_to(PROJECT_ROOT)}: {node.name}")
    assert dead == []
