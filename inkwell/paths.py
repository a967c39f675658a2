"""Where the project's own files are, with nothing but the standard library.

Kept apart from ``inkwell.config`` so that the training pipeline and the benchmarks can find the
bundled model on a machine that has only the worker's libraries (a lent GPU machine has no
pydantic-settings).
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODEL = PROJECT_ROOT / "worker" / "models" / "inkwell-handwriting-small"
