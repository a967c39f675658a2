"""The shape of the code: no dead functions, and the core never reaches up into webui or worker."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SERVICE_PACKAGES = ("inkwell", "inkwell_cli", "webui", "worker")


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


def _imported_packages(path: Path) -> set[str]:
    """Top-level packages ``path`` imports anywhere (inside functions too: a lazy import is still an import)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "import_module",
            "__import__",
        ):
            found |= {arg.value.split(".")[0] for arg in node.args if isinstance(arg, ast.Constant)}
    return found


# Who may import whom: the core is imported by everything and imports none of the sides; the web side
# never reaches the workers (nor torch); the command line sits above all of them.
FORBIDDEN_IMPORTS = {
    "inkwell": {"webui", "worker", "inkwell_cli", "training", "flask", "torch", "transformers"},
    "webui": {"worker", "inkwell_cli", "training", "torch", "transformers"},
    "worker": {"webui", "inkwell_cli", "flask"},
}


def test_the_core_imports_neither_the_web_side_nor_the_workers() -> None:
    broken = [
        f"{path.relative_to(PROJECT_ROOT)} imports {', '.join(sorted(bad))}"
        for package, forbidden in FORBIDDEN_IMPORTS.items()
        for path in _python_files(package)
        if (bad := _imported_packages(path) & forbidden)
    ]
    assert broken == []


def test_the_import_check_sees_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def run():\n    from worker.pipeline import cut_page\n    import webui.api\n")
    assert {"worker", "webui"} <= _imported_packages(sample)


def test_the_readme_names_the_path_of_an_upload_in_at_most_twelve_files() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme.split("**One upload, file by file.**", 1)[1].split("\n\n", 2)[1]
    files = re.findall(r"^\|[^|]*\| `([^`]+)` \|", table, flags=re.MULTILINE)
    assert 0 < len(files) <= 12
    assert [name for name in files if not (PROJECT_ROOT / name).is_file()] == []
